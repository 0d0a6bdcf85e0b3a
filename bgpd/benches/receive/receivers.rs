//! The receivers under test, each started in the `rx` namespace at
//! 192.168.70.1 / AS 64512 with FIB install off, and a cheap poll of its
//! session state and route count.
//!
//! bgpd and BIRD are asked over one persistent control-socket connection
//! (`show protocols all`, whose "Routes: N imported" is a counter in both:
//! no table walk, no process spawn per poll). GoBGP has only its gRPC API:
//! each poll spawns the `gobgp` CLI (tens of ms of CPU on a 2-core box), so
//! it is polled less often.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::netns::{self, Netns, Proc, bgpd_bin};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Receiver {
    Bgpd,
    Bird,
    Gobgp,
}

pub const ALL: [Receiver; 3] = [Receiver::Bgpd, Receiver::Bird, Receiver::Gobgp];

impl Receiver {
    pub fn name(self) -> &'static str {
        match self {
            Receiver::Bgpd => "bgpd",
            Receiver::Bird => "BIRD",
            Receiver::Gobgp => "GoBGP",
        }
    }

    /// How often the bench asks for the route count.
    pub fn poll_interval(self) -> Duration {
        match self {
            Receiver::Gobgp => Duration::from_millis(100),
            _ => Duration::from_millis(20),
        }
    }
}

/// What one poll saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen {
    pub established: bool,
    pub routes: usize,
}

pub struct Running {
    pub proc_: Proc,
    poll: Box<dyn FnMut() -> Result<Seen, String>>,
}

impl Running {
    pub fn poll(&mut self) -> Result<Seen, String> {
        (self.poll)()
    }
}

/// Start `r` in `rx`. `passive`: wait for the sender to connect (replay
/// mode, where the speaker connects actively).
pub fn start(r: Receiver, rx: &Netns, dir: &Path, passive: bool) -> Result<Running, String> {
    let sock = dir.join("rx.ctl");
    let log = dir.join("rx.log");
    match r {
        Receiver::Bgpd => {
            let conf = format!(
                "asNumber: 64512\nrouterId: 192.168.70.1\npeers:\n  - address: 192.168.70.2\n    asNumber: 64513\n    families: [ipv4]\n    passive: {passive}\nfib: false\ncontrolSocket: {}\n",
                sock.display()
            );
            let p = dir.join("bgpd.yaml");
            std::fs::write(&p, conf).map_err(|e| e.to_string())?;
            let args = [
                bgpd_bin(),
                "--config",
                p.to_str().unwrap(),
                "--metrics-listen",
                "off",
            ];
            let proc_ = rx.spawn(&args, &log);
            Ok(ctl_poller(proc_, sock, "show protocols all"))
        }
        Receiver::Bird => {
            let passive = if passive { "passive on; " } else { "" };
            let conf = format!(
                "router id 192.168.70.1;\nprotocol device {{}}\nprotocol bgp fromsender {{ local 192.168.70.1 as 64512; neighbor 192.168.70.2 as 64513; {passive}ipv4 {{ import all; export none; }}; }}\n"
            );
            let p = dir.join("rx.conf");
            std::fs::write(&p, conf).map_err(|e| e.to_string())?;
            let args = [
                "bird",
                "-f",
                "-c",
                p.to_str().unwrap(),
                "-s",
                sock.to_str().unwrap(),
            ];
            let proc_ = rx.spawn(&args, &log);
            Ok(ctl_poller(proc_, sock, "show protocols all fromsender"))
        }
        Receiver::Gobgp => {
            let passive = if passive {
                "  [neighbors.transport.config]\n    passive-mode = true\n"
            } else {
                ""
            };
            let conf = format!(
                "[global.config]\n  as = 64512\n  router-id = \"192.168.70.1\"\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"192.168.70.2\"\n    peer-as = 64513\n{passive}"
            );
            let p = dir.join("rx.toml");
            std::fs::write(&p, conf).map_err(|e| e.to_string())?;
            let proc_ = rx.spawn(&["gobgpd", "-f", p.to_str().unwrap()], &log);
            let ns = rx.name.clone();
            let mut up = false;
            Ok(Running {
                proc_,
                // `gobgp neighbor ADDR` only until Established: its
                // Accepted count costs gobgpd a walk of the Adj-RIB-In
                // (polling it slowed GoBGP 5x); the table summary is a
                // length.
                poll: Box::new(move || {
                    let gobgp = |args: &[&str]| {
                        let mut v = vec!["ip", "netns", "exec", &ns, "gobgp"];
                        v.extend_from_slice(args);
                        netns::output(&v)
                    };
                    if !up {
                        let o = gobgp(&["neighbor", "192.168.70.2"]);
                        up = o.to_ascii_lowercase().contains("bgp state = established");
                    }
                    let routes = if up {
                        let o = gobgp(&["global", "rib", "summary", "-a", "ipv4"]);
                        number_after(&o, "Destination:").unwrap_or(0)
                    } else {
                        0
                    };
                    Ok(Seen {
                        established: up,
                        routes,
                    })
                }),
            })
        }
    }
}

/// A poller over a BIRD-protocol control socket, connected on first use.
fn ctl_poller(proc_: Proc, sock: PathBuf, cmd: &'static str) -> Running {
    let mut ctl: Option<Ctl> = None;
    Running {
        proc_,
        poll: Box::new(move || {
            if ctl.is_none() {
                ctl = Some(Ctl::connect(&sock)?);
            }
            let c = ctl.as_mut().expect("just set");
            let o = match c.ask(cmd) {
                Ok(o) => o,
                Err(e) => {
                    ctl = None;
                    return Err(e);
                }
            };
            let state = o.lines().find(|l| l.contains("BGP state:")).unwrap_or("");
            Ok(Seen {
                established: state.contains("Established"),
                routes: number_after(&o, "Routes:").unwrap_or(0),
            })
        }),
    }
}

/// One client connection speaking BIRD's control protocol: a reply is
/// lines `NNNN-text` / ` text`, ended by a line `NNNN text`.
struct Ctl {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Ctl {
    fn connect(p: &Path) -> Result<Ctl, String> {
        let w = UnixStream::connect(p).map_err(|e| format!("{}: {e}", p.display()))?;
        w.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let r = BufReader::new(w.try_clone().map_err(|e| e.to_string())?);
        let mut c = Ctl { w, r };
        c.read_reply()?; // greeting "0001 BIRD ... ready."
        Ok(c)
    }

    fn ask(&mut self, cmd: &str) -> Result<String, String> {
        writeln!(self.w, "{cmd}").map_err(|e| e.to_string())?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> Result<String, String> {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            if self.r.read_line(&mut l).map_err(|e| e.to_string())? == 0 {
                return Err("control socket closed".into());
            }
            let b = l.as_bytes();
            let last = b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b' ';
            all.push_str(&l);
            if last {
                return Ok(all);
            }
        }
    }
}

/// The first number after `key` in `o`.
pub fn number_after(o: &str, key: &str) -> Option<usize> {
    let at = o.find(key)?;
    o[at + key.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Poll `f` every `every` until it gives a value or `within` passes.
pub fn wait<T>(within: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(every);
    }
    None
}
