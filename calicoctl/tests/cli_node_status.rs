//! `calicoctl node status` against a real BIRD 2 (Debian's bird2): proves the parser reads
//! what BIRD really prints. BIRD's sessions are passive on loopback, so nothing is sent.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Bird {
    child: Child,
    _dir: tempfile::TempDir,
    socket: std::path::PathBuf,
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts BIRD with two passive Calico-named sessions that will never come up.
fn start_bird() -> Bird {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bird.ctl");
    let conf = dir.path().join("bird.conf");
    let port = free_port();
    std::fs::write(
        &conf,
        format!(
            "router id 10.0.0.1;\n\
             protocol device {{}}\n\
             protocol bgp Mesh_10_0_0_2 {{\n  local 127.0.0.1 port {port} as 64512;\n  neighbor 127.0.0.2 as 64512;\n  passive on;\n  ipv4 {{ import none; export none; }};\n}}\n\
             protocol bgp Global_2001_db8__9 {{\n  local 127.0.0.1 port {port} as 64512;\n  neighbor 127.0.0.3 as 64500;\n  passive on;\n  ipv4 {{ import none; export none; }};\n}}\n"
        ),
    )
    .unwrap();
    let child = Command::new("bird")
        .args(["-f", "-c"])
        .arg(&conf)
        .arg("-s")
        .arg(&socket)
        .arg("-P")
        .arg(dir.path().join("bird.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bird (Debian package bird2) must be installed");
    let bird = Bird {
        child,
        _dir: dir,
        socket,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bird.socket.exists() {
        assert!(Instant::now() < deadline, "BIRD did not create its socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    bird
}

fn node_status(socket: &Path) -> (String, bool) {
    let out = Command::new(env!("CARGO_BIN_EXE_calicoctl"))
        .args(["node", "status", "--socket"])
        .arg(socket)
        .output()
        .unwrap();
    (String::from_utf8(out.stdout).unwrap(), out.status.success())
}

#[test]
fn reads_real_bird_show_protocols() {
    let bird = start_bird();
    let (out, ok) = node_status(&bird.socket);
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Calico process is running.");
    assert_eq!(lines[2], "IPv4 BGP status");
    // BIRD 2 prints `since` as hh:mm:ss.mmm, so that column is 12 wide.
    assert_eq!(
        lines[4],
        "| PEER ADDRESS |     PEER TYPE     | STATE |    SINCE     |  INFO   |"
    );
    let row = lines[6];
    assert!(
        row.starts_with("| 10.0.0.2     | node-to-node mesh | start | "),
        "{row}"
    );
    assert!(row.ends_with("| Passive |"), "{row}");
    let v6 = out.split("IPv6 BGP status\n").nth(1).unwrap();
    // `Global_2001_db8__9` names an IPv6 peer; BIRD's multi-word Info stays one cell.
    let v6_row = v6.lines().nth(3).unwrap();
    assert!(v6_row.starts_with("| 2001:db8::9  | global    | "), "{v6}");
    assert_eq!(v6_row.matches('|').count(), 6, "{v6_row}");
}

#[test]
fn no_daemon_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (out, ok) = node_status(&dir.path().join("absent.ctl"));
    assert!(!ok);
    assert!(
        out.contains("None of the BGP backend processes (BIRD or GoBGP) are running."),
        "{out}"
    );
}
