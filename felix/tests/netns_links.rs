//! Neighbour entries and interface sysctls against a real kernel, each test in
//! its own network namespace. NEEDS ROOT (see `support`).

mod support;

use std::path::Path;

use felix::calc::routes::NeighborSpec;
use felix::dataplane::neighbors::NeighborSyncer;
use felix::dataplane::netlink::Netlink;
use felix::dataplane::sysctl::{PROC_SYS, configure_interface};
use support::{in_netns, ip, veth};

const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

fn spec(ip: &str, ifname: &str, mac: [u8; 6]) -> NeighborSpec {
    NeighborSpec {
        ip: ip.parse().unwrap(),
        mac,
        ifname: ifname.into(),
        kind: Default::default(),
    }
}

fn neigh(dev: &str) -> Vec<String> {
    let mut v: Vec<String> = ip(&format!("neigh show dev {dev}"))
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

#[test]
fn permanent_entries_replace_and_remove() {
    in_netns(|| async {
        veth("caliaaaa");
        veth("ethx");
        ip("neigh add 10.71.0.9 lladdr 02:00:00:00:00:09 dev ethx nud permanent");
        ip("neigh add 10.71.0.8 lladdr 02:00:00:00:00:08 dev caliaaaa nud permanent");
        let mut s = NeighborSyncer::new(Netlink::connect().unwrap());
        s.set_desired(vec![
            spec("10.71.0.1", "caliaaaa", MAC),
            spec("fd00:71::1", "caliaaaa", MAC),
            spec("10.71.0.2", "calimiss", MAC),
        ]);
        let r = s.apply().await.unwrap();
        assert_eq!((r.replaced, r.deleted, r.pending.len()), (2, 1, 1), "{r:?}");
        assert!(r.failures.is_empty(), "{r:?}");
        let got = neigh("caliaaaa");
        assert_eq!(
            got,
            [
                "10.71.0.1 lladdr 02:11:22:33:44:55 PERMANENT",
                "fd00:71::1 lladdr 02:11:22:33:44:55 PERMANENT"
            ]
        );
        assert_eq!(
            neigh("ethx"),
            ["10.71.0.9 lladdr 02:00:00:00:00:09 PERMANENT"],
            "not ours"
        );

        // MAC change is a replace in place; second apply is a no-op.
        s.set_desired(vec![spec("10.71.0.1", "caliaaaa", [0x02, 0, 0, 0, 0, 1])]);
        let r = s.apply().await.unwrap();
        assert_eq!((r.replaced, r.deleted), (1, 1), "{r:?}");
        assert_eq!(
            neigh("caliaaaa"),
            ["10.71.0.1 lladdr 02:00:00:00:00:01 PERMANENT"]
        );
        let r = s.apply().await.unwrap();
        assert_eq!((r.replaced, r.deleted), (0, 0), "{r:?}");
    });
}

#[test]
fn interface_sysctls_in_the_namespace() {
    in_netns(|| async {
        veth("caliaaaa");
        let root = Path::new(PROC_SYS);
        let read = |k: &str| {
            std::fs::read_to_string(root.join(k))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(read("net/ipv4/conf/caliaaaa/proxy_arp"), "0");
        let written = configure_interface(root, "caliaaaa").unwrap();
        assert!(
            written.contains(&"net.ipv4.conf.caliaaaa.proxy_arp".to_string()),
            "{written:?}"
        );
        assert_eq!(read("net/ipv4/conf/caliaaaa/proxy_arp"), "1");
        assert_eq!(read("net/ipv4/conf/caliaaaa/forwarding"), "1");
        assert_eq!(read("net/ipv4/conf/caliaaaa/route_localnet"), "1");
        assert_eq!(read("net/ipv4/neigh/caliaaaa/proxy_delay"), "0");
        if root.join("net/ipv6").is_dir() {
            assert_eq!(read("net/ipv6/conf/caliaaaa/accept_ra"), "0");
        }
        assert!(
            configure_interface(root, "caliaaaa").unwrap().is_empty(),
            "second run writes nothing"
        );
        // The peer end was not configured.
        assert_eq!(read("net/ipv4/conf/pcaliaaaa/proxy_arp"), "0");
    });
}
