//! BFD (RFC 5880/5881) against BIRD 2's BFD in throwaway network namespaces (needs
//! root): both sides see the session Up (`birdc show bfd sessions` on BIRD's socket and
//! on bgpd's control socket); then the link is cut without closing TCP (iptables drops
//! everything on BIRD's veth inside BIRD's namespace), and BIRD's route must leave bgpd's kernel in under a
//! second, where the 90 s hold timer would otherwise decide. Twenty failures in a row,
//! with the detection time's p50 and p99 printed beside the hold time.
//!
//! Keepalives every second on both sides make each new session stable (3 KEEPALIVEs)
//! within seconds; each round waits for that, so the DampPeerOscillations backoff does
//! not hold the next session back.

mod netns;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netns::{BgpRoutes, Netns, Proc, bgpd_bin, birdc, link};

const T: Duration = Duration::from_secs(30);
const HOLD: u64 = 90;
const ROUNDS: usize = 20;
/// Three KEEPALIVEs at one a second, and some slack.
const STABLE: Duration = Duration::from_millis(3500);
/// The whole failure loop gives up after this long.
const LOOP_BUDGET: Duration = Duration::from_secs(300);
const BIRD_ROUTE: &str = "10.1.0.0/24 via 192.168.53.2";
const OUR_ROUTE: &str = "10.244.3.0/26";

fn bird_conf(dir: &Path) -> String {
    let conf = format!(
        r#"router id 192.168.53.2;
log stderr all; debug protocols {{states, events}};
protocol device {{}}
protocol static s4 {{ ipv4; route 10.1.0.0/24 blackhole; }}
protocol bfd {{ interface "*" {{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }}; }}
protocol bgp peer4 {{ local 192.168.53.2 as 64513; neighbor 192.168.53.1 as 64512;
  bfd on; hold time {HOLD}; keepalive time 1;
  error wait time 1, 2; connect delay time 1; connect retry time 2;
  ipv4 {{ import all; export all; }}; }}
"#
    );
    let path = dir.join("bird.conf");
    std::fs::write(&path, conf).unwrap();
    path.to_str().unwrap().to_string()
}

fn bgpd_conf(dir: &Path) -> String {
    let conf = format!(
        r#"asNumber: 64512
routerId: 192.168.53.1
peers:
  - address: 192.168.53.2
    asNumber: 64513
    families: [ipv4]
    holdTime: {HOLD}
    keepaliveTime: 1
    bfd: {{minRxMs: 100, minTxMs: 100, multiplier: 3}}
originate: [{OUR_ROUTE}]
controlSocket: {}
"#,
        dir.join("bgpd.ctl").display()
    );
    let path = dir.join("bgpd.yaml");
    std::fs::write(&path, conf).unwrap();
    path.to_str().unwrap().to_string()
}

/// Whether a `show bfd sessions` reply has `addr` in state Up.
fn bfd_up(reply: &str, addr: &str) -> bool {
    reply.lines().any(|l| {
        let mut w = l.split_whitespace();
        w.next() == Some(addr) && w.nth(1) == Some("Up")
    })
}

struct Setup {
    a: Netns,
    b: Netns,
    dir: tempfile::TempDir,
}

impl Setup {
    fn bird_sock(&self) -> PathBuf {
        self.dir.path().join("bird.ctl")
    }
    fn bgpd_sock(&self) -> PathBuf {
        self.dir.path().join("bgpd.ctl")
    }

    /// Drop (or with `on` false, pass again) everything on BIRD's veth.
    fn cut(&self, veth: &str, on: bool) {
        let op = if on { "-I" } else { "-D" };
        for (chain, dir) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
            self.b
                .exec(&["iptables", op, chain, dir, veth, "-j", "DROP"]);
        }
    }

    /// BIRD's end of the veth pair.
    fn bird_veth(&self) -> String {
        veth(&self.b)
    }

    /// The last lines of a log in the test directory.
    fn tail(&self, log: &str) -> String {
        let t = std::fs::read_to_string(self.dir.path().join(log)).unwrap_or_default();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits until `cmd`'s output contains `needle`; on timeout, panics with both logs.
    fn wait(&self, what: &str, needle: &str, cmd: impl Fn() -> String) {
        let r = netns_kit::poll(T, Duration::from_millis(50), || {
            let o = cmd();
            if o.contains(needle) { Ok(()) } else { Err(o) }
        });
        if let Err(last) = r {
            panic!(
                "timed out waiting for {what}; last seen:\n{last}\n--- bgpd:\n{}\n--- BIRD:\n{}",
                self.tail("bgpd.log"),
                self.tail("bird.log")
            );
        }
    }

    fn wait_bfd_up(&self) {
        let up = |sock: PathBuf, addr: &'static str| {
            move || {
                let r = birdc(&sock, &["show", "bfd", "sessions"]);
                if bfd_up(&r, addr) {
                    "UP".to_string()
                } else {
                    r
                }
            }
        };
        self.wait("BFD Up at BIRD", "UP", up(self.bird_sock(), "192.168.53.1"));
        self.wait("BFD Up at bgpd", "UP", up(self.bgpd_sock(), "192.168.53.2"));
    }

    fn wait_established(&self) {
        self.wait("BIRD Established", "Established", || {
            birdc(&self.bird_sock(), &["show", "protocols", "peer4"])
        });
        self.wait("BIRD's route in our kernel", BIRD_ROUTE, || {
            self.a.bgp_routes(false)
        });
        self.wait("our route in BIRD", OUR_ROUTE, || {
            birdc(&self.bird_sock(), &["show", "route", "for", "10.244.3.1"])
        });
    }
}

/// The veth in a namespace.
fn veth(ns: &Netns) -> String {
    let out = ns.ip(&["-o", "link", "show", "type", "veth"]);
    let line = out.lines().next().expect("a veth in the namespace");
    let name = line.split(':').nth(1).expect("ip -o link format").trim();
    name.split('@').next().unwrap().to_string()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
fn bfd_with_bird_takes_routes_down_in_under_a_second() {
    let s = Setup {
        a: Netns::new("bgbfda"),
        b: Netns::new("bgbfdb"),
        dir: tempfile::tempdir().unwrap(),
    };
    link(&s.a, &s.b, "192.168.53", "fd53");
    // Let the new links settle (carrier, IPv6 link-local addresses) before BIRD starts:
    // an interface event right after its session came up makes BIRD re-resolve the
    // neighbor ("Neighbor lost") and restart BGP and BFD, a failure we did not cause.
    std::thread::sleep(Duration::from_secs(2));
    let cfg = bird_conf(s.dir.path());
    let sock = s.bird_sock();
    let mut bird: Proc = s.b.spawn(
        &["bird", "-f", "-c", &cfg, "-s", sock.to_str().unwrap()],
        &s.dir.path().join("bird.log"),
    );
    let cfg = bgpd_conf(s.dir.path());
    let mut bgpd = s.a.spawn(
        &[bgpd_bin(), "--config", &cfg],
        &s.dir.path().join("bgpd.log"),
    );
    s.wait_established();
    s.wait_bfd_up();
    std::thread::sleep(STABLE);
    println!(
        "BIRD:\n{}\nbgpd:\n{}",
        birdc(&s.bird_sock(), &["show", "bfd", "sessions"]),
        birdc(&s.bgpd_sock(), &["show", "bfd", "sessions"])
    );

    let veth = s.bird_veth();
    let mut times = Vec::with_capacity(ROUNDS);
    let started = Instant::now();
    for round in 0..ROUNDS {
        assert!(
            started.elapsed() < LOOP_BUDGET,
            "round {round}: the loop ran out of its {LOOP_BUDGET:?}"
        );
        // Nothing closes TCP and no interface changes: the link just stops carrying
        // packets, both ways (filtered in BIRD's namespace).
        s.cut(&veth, true);
        let cut = Instant::now();
        loop {
            let routes = s.a.bgp_routes(false);
            if !routes.contains(BIRD_ROUTE) {
                break;
            }
            assert!(
                cut.elapsed() < Duration::from_secs(5),
                "round {round}: BIRD's route still in our kernel after 5 s:\n{routes}\n{}",
                bgpd.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let took = cut.elapsed();
        println!("round {round}: BIRD's route gone from bgpd's kernel after {took:?}");
        times.push(took);
        s.cut(&veth, false);
        s.wait_bfd_up();
        s.wait_established();
        // A session that fails before it is stable (3 KEEPALIVEs received, 3 s here)
        // counts as an oscillation, and bgpd damps it (RFC 4271 8.1.1): let it settle.
        std::thread::sleep(STABLE);
    }
    let log = bgpd.log_text();
    assert!(
        log.contains("BfdDown") || log.contains("BFD session down"),
        "no BFD-caused session drop in bgpd's log:\n{log}"
    );
    times.sort();
    let (p50, p99) = (percentile(&times, 0.50), percentile(&times, 0.99));
    println!(
        "detection over {ROUNDS} link failures: p50 {p50:?}, p99 {p99:?}, max {:?}; \
         the hold timer it replaces: {HOLD} s",
        times[times.len() - 1]
    );
    assert!(
        p99 < Duration::from_secs(1),
        "detection p99 {p99:?} is not under 1 s: {times:?}"
    );

    bgpd.signal("TERM");
    assert!(bgpd.wait_exit(T), "{}", bgpd.log_text());
    bird.signal("TERM");
    assert!(bird.wait_exit(T));
}

/// The state bgpd's `show bfd sessions` gives `addr`.
fn bgpd_bfd_state(sock: &Path, addr: &str) -> Option<String> {
    let r = birdc(sock, &["show", "bfd", "sessions"]);
    r.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some(addr)).then(|| w.nth(1).unwrap_or_default().to_string())
    })
}

/// RFC 5881 5: a Control packet that arrives with a TTL other than 255 came from beyond
/// the link and is dropped; the same packet with TTL 255 moves the session to Init.
#[test]
fn packets_without_ttl_255_are_dropped() {
    let a = Netns::new("bgbfta");
    let b = Netns::new("bgbftb");
    link(&a, &b, "192.168.55", "fd55");
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("bgpd.ctl");
    let conf = format!(
        "asNumber: 64512\nrouterId: 192.168.55.1\npeers:\n  - address: 192.168.55.2\n    \
         asNumber: 64513\n    families: [ipv4]\n    passive: true\n    bfd: true\n\
         controlSocket: {}\n",
        sock.display()
    );
    let cfg = dir.path().join("bgpd.yaml");
    std::fs::write(&cfg, conf).unwrap();
    let mut bgpd = a.spawn(
        &[bgpd_bin(), "--config", cfg.to_str().unwrap()],
        &dir.path().join("bgpd.log"),
    );
    netns::wait_for("bgpd's BFD session", T, || {
        bgpd_bfd_state(&sock, "192.168.55.2")
            .filter(|s| s == "Down")
            .ok_or_else(|| birdc(&sock, &["show", "bfd", "sessions"]))
    });

    // A remote's first packet: Down, my discriminator 7, yours unknown, 1 s, 100 ms.
    let send = |ttl: u32| {
        netns_kit::in_ns(&b, move || async move {
            let s = std::net::UdpSocket::bind("192.168.55.2:49999").unwrap();
            s.set_ttl(ttl).unwrap();
            let pkt = [
                0x20, 0x40, 3, 24, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40, 0, 1, 0x86, 0xa0,
                0, 0, 0, 0,
            ];
            for _ in 0..5 {
                s.send_to(&pkt, "192.168.55.1:3784").unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    send(64);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        bgpd_bfd_state(&sock, "192.168.55.2").as_deref(),
        Some("Down"),
        "a packet with TTL 64 was accepted:\n{}",
        bgpd.log_text()
    );
    send(255);
    netns::wait_for("Init after a TTL 255 packet", T, || {
        bgpd_bfd_state(&sock, "192.168.55.2")
            .filter(|s| s == "Init")
            .ok_or_else(|| birdc(&sock, &["show", "bfd", "sessions"]))
    });

    bgpd.signal("TERM");
    assert!(bgpd.wait_exit(T), "{}", bgpd.log_text());
}
