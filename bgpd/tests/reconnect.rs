//! Reconnecting to real peers (needs root; throwaway network namespaces): a refused connect
//! is no session failure. bgpd waits in Active, retries within a second, and takes the
//! peer's own connection meanwhile (RFC 4271 8.2.2), as BIRD and FRR do.
//!
//! - GoBGP that only listens, started long after bgpd: up within a second or so of starting.
//! - GoBGP that never listens (`port = -1`) and only connects out, ExaBGP's default: bgpd's
//!   own connects are all refused, and the session still comes up on GoBGP's connection.

mod netns;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netns::{Netns, Proc, bgpd_bin, birdc, link, wait_output};

const T: Duration = Duration::from_secs(40);

fn gobgp_conf(dir: &Path, listen: bool, passive: bool) -> String {
    let port = if listen { "" } else { "  port = -1\n" };
    let conf = format!(
        r#"[global.config]
  as = 64513
  router-id = "192.168.61.2"
{port}
[[neighbors]]
  [neighbors.config]
    neighbor-address = "192.168.61.1"
    peer-as = 64512
  [neighbors.transport.config]
    passive-mode = {passive}
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#
    );
    let p = dir.join("gobgpd.toml");
    std::fs::write(&p, conf).unwrap();
    p.to_str().unwrap().to_string()
}

fn bgpd_conf(dir: &Path) -> String {
    let conf = format!(
        r#"asNumber: 64512
routerId: 192.168.61.1
peers:
  - address: 192.168.61.2
    asNumber: 64513
    families: [ipv4]
originate: [10.244.9.0/26]
controlSocket: {}
"#,
        dir.join("bgpd.ctl").display()
    );
    let p = dir.join("bgpd.yaml");
    std::fs::write(&p, conf).unwrap();
    p.to_str().unwrap().to_string()
}

fn session_up(sock: &Path) -> bool {
    birdc(sock, &["show", "protocols"]).contains(" up ")
}

/// Polls until the session is up; the time it took.
fn time_to_up(sock: &Path, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if session_up(sock) {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// bgpd in one namespace, its control socket answering; GoBGP to start in the other.
struct Pair {
    _a: Netns,
    b: Netns,
    dir: tempfile::TempDir,
    sock: PathBuf,
    bgpd: Proc,
}

impl Pair {
    fn start(tag_a: &str, tag_b: &str) -> Pair {
        let a = Netns::new(tag_a);
        let b = Netns::new(tag_b);
        link(&a, &b, "192.168.61", "fd61");
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("bgpd.ctl");
        let bgpd = a.spawn(
            &[bgpd_bin(), "--config", &bgpd_conf(dir.path())],
            &dir.path().join("bgpd.log"),
        );
        wait_output("control socket", T, "BGP", false, || {
            birdc(&sock, &["show", "protocols"])
        });
        Pair {
            _a: a,
            b,
            dir,
            sock,
            bgpd,
        }
    }

    fn gobgpd(&self, listen: bool, passive: bool) -> Proc {
        let gcfg = gobgp_conf(self.dir.path(), listen, passive);
        self.b.spawn(
            &["gobgpd", "-f", &gcfg],
            &self.dir.path().join("gobgpd.log"),
        )
    }

    fn stop(mut self, mut gobgpd: Proc) {
        gobgpd.signal("KILL");
        assert!(gobgpd.wait_exit(T));
        self.bgpd.signal("TERM");
        assert!(self.bgpd.wait_exit(T), "{}", self.bgpd.log_text());
    }
}

#[test]
fn peer_that_starts_listening_late_is_up_within_a_second() {
    let p = Pair::start("bgra", "bgrb");
    // Long enough for several refused connects; before, the IdleHoldTimer would have
    // grown to 10 s by now.
    std::thread::sleep(Duration::from_secs(4));
    assert!(!session_up(&p.sock));

    // GoBGP only listens: the session can come up only on bgpd's retry.
    let gobgpd = p.gobgpd(true, true);
    let took = time_to_up(&p.sock, Duration::from_secs(10));
    eprintln!("session up {took:?} after gobgpd started (its own start-up included)");
    let took = took.unwrap_or_else(|| panic!("not up in 10 s:\n{}", p.bgpd.log_tail(30)));
    // The retry interval is at most 0.8 s; gobgpd's start-up comes on top.
    assert!(took < Duration::from_secs(3), "up only after {took:?}");
    p.stop(gobgpd);
}

#[test]
fn peer_that_only_connects_out_gets_a_session() {
    let p = Pair::start("bgrc", "bgrd");
    // GoBGP never listens: every connect of bgpd's is refused, and only GoBGP's own
    // connection (every second) can carry the session.
    let gobgpd = p.gobgpd(false, false);
    let took = time_to_up(&p.sock, Duration::from_secs(15));
    eprintln!("session up {took:?} after gobgpd started");
    assert!(
        took.is_some(),
        "no session with a peer that only connects out:\n{}",
        p.bgpd.log_tail(30)
    );
    // Our route reached GoBGP over that session.
    wait_output("10.244.9.0/26 in GoBGP", T, "10.244.9.0/26", false, || {
        p.b.output(&["gobgp", "global", "rib", "-a", "ipv4"])
    });
    p.stop(gobgpd);
}
