//! Traffic probes run from inside a namespace: TCP and UDP servers and clients
//! on threads that joined the namespace, ICMP with `ping`, and a tiny HTTP GET
//! for felix's health and metrics endpoints. Every probe is bounded in time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use netns_kit::enter as join_ns;

/// How long a probe may wait for an answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(700);

/// Runs `f` on a thread inside the namespace at `path` and returns its result.
pub fn on_ns<T: Send + 'static>(path: PathBuf, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        join_ns(&path);
        f()
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// TCP and UDP servers on one port in a namespace: TCP answers "ok" to every
/// connection, UDP echoes. Stopped on drop.
pub struct Servers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Servers {
    pub fn start(ns: PathBuf, port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let tcp = {
            let (stop, ns, ready) = (stop.clone(), ns.clone(), ready_tx.clone());
            std::thread::spawn(move || {
                join_ns(&ns);
                let l = TcpListener::bind(("0.0.0.0", port)).expect("tcp bind");
                l.set_nonblocking(true).unwrap();
                ready.send(()).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((mut s, _)) => {
                            let _ = s.write_all(b"ok");
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        let udp = {
            let (stop, ready) = (stop.clone(), ready_tx);
            std::thread::spawn(move || {
                join_ns(&ns);
                let s = UdpSocket::bind(("0.0.0.0", port)).expect("udp bind");
                s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                ready.send(()).unwrap();
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = s.recv_from(&mut buf) {
                        let _ = s.send_to(&buf[..n], from);
                    }
                }
            })
        };
        ready_rx.recv().unwrap();
        ready_rx.recv().unwrap();
        Servers {
            stop,
            threads: vec![tcp, udp],
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Whether a TCP connection from namespace `ns` to `ip:port` gets the server's "ok".
pub fn tcp(ns: PathBuf, ip: &str, port: u16) -> bool {
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    on_ns(ns, move || {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) else {
            return false;
        };
        s.set_read_timeout(Some(PROBE_TIMEOUT)).unwrap();
        let mut buf = [0u8; 2];
        s.read_exact(&mut buf).is_ok() && &buf == b"ok"
    })
}

/// Whether a UDP datagram from `ns` to `ip:port` is echoed back.
pub fn udp(ns: PathBuf, ip: &str, port: u16) -> bool {
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    on_ns(ns, move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(PROBE_TIMEOUT)).unwrap();
        if s.send_to(b"ping", addr).is_err() {
            return false;
        }
        let mut buf = [0u8; 8];
        matches!(s.recv_from(&mut buf), Ok((4, _)))
    })
}

/// Whether one ICMP echo from namespace `ns` to `ip` is answered within a second.
pub fn icmp(ns: &str, ip: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c1", "-W1", "-q", ip])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `GET path` on 127.0.0.1:port inside `ns`: (status code, body), or None
/// when nothing listens.
pub fn http_get(ns: PathBuf, port: u16, path: &str) -> Option<(u16, String)> {
    let path = path.to_string();
    on_ns(ns, move || {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut s = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((code, body))
    })
}

/// The value of one unlabelled metric line `name value`, if present.
pub fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
