//! bgpd against GoBGP 3 (`gobgpd` + `gobgp` CLI) in throwaway network
//! namespaces (needs root): GoBGP connects to a passive bgpd over IPv4 with
//! TCP MD5, bgpd connects to GoBGP over IPv6; routes both ways, a
//! withdrawal, and GoBGP killed.

mod netns;

use std::path::Path;
use std::time::Duration;

use netns::{BgpRoutes, Netns, bgpd_bin, birdc, link, wait_output};

const T: Duration = Duration::from_secs(40);

fn gobgp_conf(dir: &Path) -> String {
    let conf = r#"[global.config]
  as = 64513
  router-id = "192.168.60.2"

[[neighbors]]
  [neighbors.config]
    neighbor-address = "192.168.60.1"
    peer-as = 64512
    auth-password = "gobgp-pw"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"

[[neighbors]]
  [neighbors.config]
    neighbor-address = "fd60::1"
    peer-as = 64512
  [neighbors.transport.config]
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"#;
    let p = dir.join("gobgpd.toml");
    std::fs::write(&p, conf).unwrap();
    p.to_str().unwrap().to_string()
}

fn bgpd_conf(dir: &Path) -> String {
    let conf = format!(
        r#"asNumber: 64512
routerId: 192.168.60.1
peers:
  - address: 192.168.60.2
    asNumber: 64513
    families: [ipv4]
    passive: true
    password: gobgp-pw
  - address: "fd60::2"
    asNumber: 64513
    families: [ipv6]
originate: [10.244.7.0/26, "fd00:247::/64"]
controlSocket: {}
metricsListen: 127.0.0.1:9092
"#,
        dir.join("bgpd.ctl").display()
    );
    let p = dir.join("bgpd.yaml");
    std::fs::write(&p, conf).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn gobgp_both_directions_md5_ipv6_withdraw_kill() {
    let a = Netns::new("bgga");
    let b = Netns::new("bggb");
    link(&a, &b, "192.168.60", "fd60");
    let dir = tempfile::tempdir().unwrap();
    let gcfg = gobgp_conf(dir.path());
    let mut gobgpd = b.spawn(&["gobgpd", "-f", &gcfg], &dir.path().join("gobgpd.log"));
    let cfg = bgpd_conf(dir.path());
    let mut bgpd = a.spawn(
        &[bgpd_bin(), "--config", &cfg],
        &dir.path().join("bgpd.log"),
    );
    let sock = dir.path().join("bgpd.ctl");

    wait_output("both sessions up", T, "up     ", false, || {
        let p = birdc(&sock, &["show", "protocols"]);
        if p.matches(" up ").count() == 2 {
            "up     ".into()
        } else {
            p
        }
    });
    let gobgp = |args: &[&str]| {
        let mut v = vec!["gobgp"];
        v.extend_from_slice(args);
        b.output(&v)
    };
    gobgp(&["global", "rib", "add", "-a", "ipv4", "10.2.0.0/24"]);
    gobgp(&["global", "rib", "add", "-a", "ipv4", "10.2.1.0/24"]);
    gobgp(&["global", "rib", "add", "-a", "ipv6", "fd00:2::/64"]);

    // Ours arrive in GoBGP's RIB, theirs in our FIB.
    wait_output("10.244.7.0/26 in GoBGP", T, "10.244.7.0/26", false, || {
        gobgp(&["global", "rib", "-a", "ipv4"])
    });
    wait_output("fd00:247::/64 in GoBGP", T, "fd00:247::/64", false, || {
        gobgp(&["global", "rib", "-a", "ipv6"])
    });
    wait_output(
        "10.2.0.0/24 in our FIB",
        T,
        "10.2.0.0/24 via 192.168.60.2",
        false,
        || a.bgp_routes(false),
    );
    wait_output(
        "fd00:2::/64 in our FIB",
        T,
        "fd00:2::/64 via fd60::2",
        false,
        || a.bgp_routes(true),
    );
    let rib = gobgp(&["global", "rib", "-a", "ipv4", "10.244.7.0/26"]);
    assert!(
        rib.contains("192.168.60.1") && rib.contains("64512"),
        "{rib}"
    );

    // Withdrawal.
    gobgp(&["global", "rib", "del", "-a", "ipv4", "10.2.1.0/24"]);
    wait_output("10.2.1.0/24 withdrawn", T, "10.2.1.0/24", true, || {
        a.bgp_routes(false)
    });
    assert!(a.bgp_routes(false).contains("10.2.0.0/24"));

    // GoBGP killed: everything it gave us goes.
    gobgpd.signal("KILL");
    assert!(gobgpd.wait_exit(T));
    wait_output("v4 gone", T, "10.2.0.0/24", true, || a.bgp_routes(false));
    wait_output("v6 gone", T, "fd00:2::/64", true, || a.bgp_routes(true));

    bgpd.signal("TERM");
    assert!(bgpd.wait_exit(T), "{}", bgpd.log_text());
}
