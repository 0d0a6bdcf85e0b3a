//! bgpd against BIRD 2 in throwaway network namespaces (needs root):
//! IPv4 and IPv6 (MP-BGP) sessions, active and passive, with and without
//! TCP MD5; routes both ways, a withdrawal, a killed peer, and `birdc`
//! talking to bgpd's control socket.

mod netns;

use std::path::Path;
use std::time::Duration;

use netns::{BgpRoutes, Netns, Proc, bgpd_bin, birdc, link, wait_output};

const T: Duration = Duration::from_secs(30);

fn bird_conf(dir: &Path, static_v4: &[&str], active: bool, password: Option<&str>) -> String {
    let routes: String = static_v4
        .iter()
        .map(|r| format!("route {r} blackhole; "))
        .collect();
    let passive = if active { "" } else { "passive;" };
    let pw = password
        .map(|p| format!("password \"{p}\";"))
        .unwrap_or_default();
    let conf = format!(
        r#"router id 192.168.50.2;
protocol device {{}}
protocol static s4 {{ ipv4; {routes} }}
protocol static s6 {{ ipv6; route fd00:1::/64 blackhole; }}
protocol bgp peer4 {{ local 192.168.50.2 as 64513; neighbor 192.168.50.1 as 64512; {passive} {pw}
  ipv4 {{ import all; export all; }}; }}
protocol bgp peer6 {{ local fd50::2 as 64513; neighbor fd50::1 as 64512; {passive} {pw}
  ipv6 {{ import all; export all; }}; }}
"#
    );
    let path = dir.join("bird.conf");
    std::fs::write(&path, conf).unwrap();
    path.to_str().unwrap().to_string()
}

fn bgpd_conf(dir: &Path, passive: bool, password: Option<&str>) -> String {
    let pw = password
        .map(|p| format!("    password: \"{p}\"\n"))
        .unwrap_or_default();
    let conf = format!(
        r#"asNumber: 64512
routerId: 192.168.50.1
peers:
  - address: 192.168.50.2
    asNumber: 64513
    families: [ipv4]
    passive: {passive}
{pw}  - address: "fd50::2"
    asNumber: 64513
    families: [ipv6]
    passive: {passive}
{pw}originate: [10.244.1.0/26, "fd00:244::/64"]
controlSocket: {}
metricsListen: 127.0.0.1:9092
"#,
        dir.join("bgpd.ctl").display()
    );
    let path = dir.join("bgpd.yaml");
    std::fs::write(&path, conf).unwrap();
    path.to_str().unwrap().to_string()
}

struct Setup {
    a: Netns,
    b: Netns,
    dir: tempfile::TempDir,
    bgpd: Proc,
    bird: Proc,
}

fn setup(bgpd_passive: bool, password: Option<&str>) -> Setup {
    setup_with(bgpd_passive, password, |_| {})
}

/// As [`setup`], running `before_bgpd` on bgpd's namespace first.
fn setup_with(
    bgpd_passive: bool,
    password: Option<&str>,
    before_bgpd: impl FnOnce(&Netns),
) -> Setup {
    let a = Netns::new("bgpa");
    let b = Netns::new("bgpb");
    link(&a, &b, "192.168.50", "fd50");
    let dir = tempfile::tempdir().unwrap();
    let bird_cfg = bird_conf(
        dir.path(),
        &["10.1.0.0/24", "10.1.1.0/24"],
        bgpd_passive,
        password,
    );
    let bird_sock = dir.path().join("bird.ctl");
    let bird = b.spawn(
        &[
            "bird",
            "-f",
            "-c",
            &bird_cfg,
            "-s",
            bird_sock.to_str().unwrap(),
        ],
        &dir.path().join("bird.log"),
    );
    before_bgpd(&a);
    let cfg = bgpd_conf(dir.path(), bgpd_passive, password);
    let bgpd = a.spawn(
        &[bgpd_bin(), "--config", &cfg],
        &dir.path().join("bgpd.log"),
    );
    Setup {
        a,
        b,
        dir,
        bgpd,
        bird,
    }
}

impl Setup {
    fn our_sock(&self) -> std::path::PathBuf {
        self.dir.path().join("bgpd.ctl")
    }
    fn bird_sock(&self) -> std::path::PathBuf {
        self.dir.path().join("bird.ctl")
    }

    fn wait_established(&self) {
        for name in ["Global_192_168_50_2", "Global_fd50__2"] {
            wait_output(
                &format!("{name} Established"),
                T,
                "Established",
                false,
                || birdc(&self.our_sock(), &["show", "protocols", name]) + &self.bgpd.log_text(),
            );
        }
    }

    fn routes_both_ways(&self) {
        // Ours arrive in BIRD.
        wait_output("10.244.1.0/26 in BIRD", T, "10.244.1.0/26", false, || {
            birdc(&self.bird_sock(), &["show", "route"])
        });
        wait_output("fd00:244::/64 in BIRD", T, "fd00:244::/64", false, || {
            birdc(&self.bird_sock(), &["show", "route"])
        });
        // BIRD's arrive in our FIB with the peer as next hop.
        wait_output(
            "10.1.0.0/24 in our FIB",
            T,
            "10.1.0.0/24 via 192.168.50.2",
            false,
            || self.a.bgp_routes(false),
        );
        wait_output(
            "fd00:1::/64 in our FIB",
            T,
            "fd00:1::/64 via fd50::2",
            false,
            || self.a.bgp_routes(true),
        );
    }
}

#[test]
fn bird_active_ipv4_ipv6_withdraw_and_peer_killed() {
    let mut s = setup(false, None);
    s.wait_established();
    s.routes_both_ways();

    // Our control socket answers birdc like BIRD would.
    let protos = birdc(&s.our_sock(), &["show", "protocols"]);
    assert!(
        protos.contains("Name       Proto      Table      State  Since         Info"),
        "{protos}"
    );
    assert_eq!(
        protos.matches(" BGP        ---        up ").count(),
        2,
        "{protos}"
    );
    let r = birdc(&s.our_sock(), &["show", "route", "for", "10.1.0.7"]);
    assert!(
        r.contains("10.1.0.0/24") && r.contains("via 192.168.50.2"),
        "{r}"
    );
    let count = birdc(&s.our_sock(), &["show", "route", "count"]);
    assert!(
        count.contains("3 of 3 routes for 3 networks in table master4"),
        "{count}"
    );
    let all = birdc(
        &s.our_sock(),
        &["show", "protocols", "all", "Global_192_168_50_2"],
    );
    assert!(all.contains("Neighbor ID:      192.168.50.2"), "{all}");

    // Withdrawal: BIRD drops one static route.
    bird_conf(s.dir.path(), &["10.1.0.0/24"], false, None);
    let out = birdc(&s.bird_sock(), &["configure"]);
    assert!(out.contains("Reconfigured"), "{out}");
    wait_output("10.1.1.0/24 withdrawn", T, "10.1.1.0/24", true, || {
        s.a.bgp_routes(false)
    });
    assert!(s.a.bgp_routes(false).contains("10.1.0.0/24"));

    // Peer killed: its routes leave the RIB and the FIB.
    s.bird.signal("KILL");
    assert!(s.bird.wait_exit(T));
    wait_output("v4 routes gone", T, "10.1.0.0/24", true, || {
        s.a.bgp_routes(false)
    });
    wait_output("v6 routes gone", T, "fd00:1::/64", true, || {
        s.a.bgp_routes(true)
    });
    let r = birdc(&s.our_sock(), &["show", "route"]);
    assert!(!r.contains("10.1.0.0/24"), "{r}");
    assert!(r.contains("10.244.1.0/26"), "own route stays: {r}");

    // SIGTERM: clean exit, socket removed.
    s.bgpd.signal("TERM");
    assert!(
        s.bgpd.wait_exit(T),
        "bgpd did not exit: {}",
        s.bgpd.log_text()
    );
    assert!(!s.our_sock().exists());
    let _ = &s.b;
}

#[test]
fn bird_connects_to_passive_bgpd_with_md5() {
    let s = setup(true, Some("s3cret-pw"));
    s.wait_established();
    s.routes_both_ways();
    let p = birdc(&s.bird_sock(), &["show", "protocols", "all", "peer4"]);
    assert!(p.contains("Established"), "{p}");
    // SIGTERM sends Cease (administrative shutdown) on every session.
    s.bgpd.signal("TERM");
    for peer in ["peer4", "peer6"] {
        wait_output(
            &format!("BIRD's {peer} sees the Cease"),
            T,
            "Administrative shutdown",
            false,
            || birdc(&s.bird_sock(), &["show", "protocols", peer]),
        );
    }
}

/// DESIGN.md's split: bgpd never replaces or removes another protocol's
/// route. A felix route (proto 80, metric 0) for a prefix bgpd learns
/// stays, next to bgpd's own (other metric); a foreign route holding
/// bgpd's very slot (same metric) is left alone; both survive the
/// withdrawal of the learned routes.
#[test]
fn routes_of_other_protocols_are_left_alone() {
    let cali = netns::unique("cali");
    let mut s = setup_with(false, None, |a| {
        a.ip(&[
            "link",
            "add",
            &cali,
            "type",
            "veth",
            "peer",
            "name",
            &format!("{cali}p"),
        ]);
        a.ip(&["link", "set", &cali, "up"]);
        a.ip(&["link", "set", &format!("{cali}p"), "up"]);
        a.ip(&["route", "add", "10.1.0.0/24", "dev", &cali, "proto", "80"]);
        let metric = bgpd::fib::ROUTE_METRIC.to_string();
        a.ip(&[
            "route",
            "add",
            "10.1.1.0/24",
            "dev",
            &cali,
            "proto",
            "static",
            "metric",
            &metric,
        ]);
    });
    s.wait_established();
    wait_output(
        "bgpd's 10.1.0.0/24 next to felix's",
        T,
        "10.1.0.0/24 via 192.168.50.2",
        false,
        || s.a.bgp_routes(false),
    );
    let felix = format!("10.1.0.0/24 dev {cali} proto 80");
    let foreign = format!("10.1.1.0/24 dev {cali} proto static scope link metric");
    let all = s.a.ip(&["-4", "route", "show"]);
    assert!(all.contains(&felix), "{all}");
    assert!(all.contains(&foreign), "{all}");
    assert!(
        !s.a.bgp_routes(false).contains("10.1.1.0/24"),
        "slot of a static route taken: {all}"
    );
    // The kernel picks felix's local route for the prefix (lower metric).
    let get = s.a.ip(&["-4", "route", "get", "10.1.0.7"]);
    assert!(get.contains(&format!("dev {cali}")), "{get}");
    // Withdrawn (BIRD gone): ours leave, theirs stay.
    s.bird.signal("KILL");
    assert!(s.bird.wait_exit(T));
    wait_output("v4 routes gone", T, "10.1.0.0/24", true, || {
        s.a.bgp_routes(false)
    });
    let all = s.a.ip(&["-4", "route", "show"]);
    assert!(all.contains(&felix), "{all}");
    assert!(all.contains(&foreign), "{all}");
}

#[test]
fn md5_mismatch_never_establishes() {
    // bgpd with a key, BIRD without: the kernel drops the unsigned SYNs.
    let a = Netns::new("bgpa");
    let b = Netns::new("bgpb");
    link(&a, &b, "192.168.50", "fd50");
    let dir = tempfile::tempdir().unwrap();
    let bird_cfg = bird_conf(dir.path(), &["10.1.0.0/24"], true, None);
    let bird_sock = dir.path().join("bird.ctl");
    let _bird = b.spawn(
        &[
            "bird",
            "-f",
            "-c",
            &bird_cfg,
            "-s",
            bird_sock.to_str().unwrap(),
        ],
        &dir.path().join("bird.log"),
    );
    let cfg = bgpd_conf(dir.path(), true, Some("only-we-know"));
    let _bgpd = a.spawn(
        &[bgpd_bin(), "--config", &cfg],
        &dir.path().join("bgpd.log"),
    );
    // The kernel in bgpd's namespace drops BIRD's unsigned SYNs and counts
    // them (TCPMD5NotFound); wait until it has dropped a few.
    netns::wait_for("unsigned SYNs dropped", T, || {
        let o = a.output(&["nstat", "-az", "TcpExtTCPMD5NotFound"]);
        let n: u64 = o
            .lines()
            .find(|l| l.starts_with("TcpExtTCPMD5NotFound"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if n >= 3 { Ok(()) } else { Err(o) }
    });
    let ours = birdc(&dir.path().join("bgpd.ctl"), &["show", "protocols"]);
    assert!(!ours.contains("Established"), "{ours}");
    assert!(a.bgp_routes(false).is_empty());
}
