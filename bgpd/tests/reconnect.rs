//! Reconnecting to real peers (needs root; throwaway network namespaces): a refused connect
//! is no session failure. bgpd waits in Active, retries within a second, and takes the
//! peer's own connection meanwhile (RFC 4271 8.2.2), as BIRD and FRR do.
//!
//! - GoBGP that only listens, started long after bgpd: up within a second or so of starting.
//! - GoBGP that never listens (`port = -1`) and only connects out, ExaBGP's default: bgpd's
//!   own connects are all refused, and the session still comes up on GoBGP's connection.

mod netns;

use std::path::Path;
use std::time::{Duration, Instant};

use netns::{Netns, bgpd_bin, birdc, link, wait_output};

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

#[test]
fn peer_that_starts_listening_late_is_up_within_a_second() {
    let a = Netns::new("bgra");
    let b = Netns::new("bgrb");
    link(&a, &b, "192.168.61", "fd61");
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("bgpd.ctl");
    let mut bgpd = a.spawn(
        &[bgpd_bin(), "--config", &bgpd_conf(dir.path())],
        &dir.path().join("bgpd.log"),
    );
    wait_output("control socket", T, "BGP", false, || {
        birdc(&sock, &["show", "protocols"])
    });
    // Long enough for several refused connects; before, the IdleHoldTimer would have
    // grown to 10 s by now.
    std::thread::sleep(Duration::from_secs(4));
    assert!(!session_up(&sock));

    // GoBGP only listens: the session can come up only on bgpd's retry.
    let gcfg = gobgp_conf(dir.path(), true, true);
    let mut gobgpd = b.spawn(&["gobgpd", "-f", &gcfg], &dir.path().join("gobgpd.log"));
    let took = time_to_up(&sock, Duration::from_secs(10));
    eprintln!("session up {took:?} after gobgpd started (its own start-up included)");
    let took = took.unwrap_or_else(|| panic!("not up in 10 s:\n{}", bgpd.log_tail(30)));
    // The retry interval is at most 0.8 s; gobgpd's start-up comes on top.
    assert!(took < Duration::from_secs(3), "up only after {took:?}");

    gobgpd.signal("KILL");
    assert!(gobgpd.wait_exit(T));
    bgpd.signal("TERM");
    assert!(bgpd.wait_exit(T), "{}", bgpd.log_text());
}

#[test]
fn peer_that_only_connects_out_gets_a_session() {
    let a = Netns::new("bgrc");
    let b = Netns::new("bgrd");
    link(&a, &b, "192.168.61", "fd61");
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("bgpd.ctl");
    let mut bgpd = a.spawn(
        &[bgpd_bin(), "--config", &bgpd_conf(dir.path())],
        &dir.path().join("bgpd.log"),
    );
    wait_output("control socket", T, "BGP", false, || {
        birdc(&sock, &["show", "protocols"])
    });
    // GoBGP never listens: every connect of bgpd's is refused, and only GoBGP's own
    // connection (every second) can carry the session.
    let gcfg = gobgp_conf(dir.path(), false, false);
    let mut gobgpd = b.spawn(&["gobgpd", "-f", &gcfg], &dir.path().join("gobgpd.log"));
    let took = time_to_up(&sock, Duration::from_secs(15));
    eprintln!("session up {took:?} after gobgpd started");
    assert!(
        took.is_some(),
        "no session with a peer that only connects out:\n{}",
        bgpd.log_tail(30)
    );
    // Our route reached GoBGP over that session.
    wait_output("10.244.9.0/26 in GoBGP", T, "10.244.9.0/26", false, || {
        b.output(&["gobgp", "global", "rib", "-a", "ipv4"])
    });

    gobgpd.signal("KILL");
    assert!(gobgpd.wait_exit(T));
    bgpd.signal("TERM");
    assert!(bgpd.wait_exit(T), "{}", bgpd.log_text());
}
