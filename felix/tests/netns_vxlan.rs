//! The VXLAN device against a real kernel, in a throwaway network namespace.
//! NEEDS ROOT (see `support`).

mod support;

use felix::dataplane::netlink::Netlink;
use felix::dataplane::vxlan::{DevicePlan, VxlanDevice, ensure, host_mtu, remove};
use support::{in_netns, ip, veth};

fn want() -> VxlanDevice {
    VxlanDevice {
        name: "vxlan.calico".into(),
        vni: 4096,
        port: 4789,
        local: "10.0.1.1".parse().unwrap(),
        mac: [0x66, 1, 2, 3, 4, 5],
        mtu: 1450,
        tunnel_addr: "10.65.0.1".parse().unwrap(),
    }
}

fn details() -> String {
    ip("-d link show vxlan.calico")
}

fn index() -> String {
    details().split(':').next().unwrap().to_string()
}

#[test]
fn vxlan_device_is_created_kept_adjusted_and_recreated() {
    in_netns(|| async {
        veth("eth1");
        ip("addr add 10.0.1.1/24 dev eth1");
        let nl = Netlink::connect().unwrap();

        assert_eq!(ensure(&nl, &want()).await.unwrap(), DevicePlan::Create);
        let d = details();
        for part in [
            "vxlan id 4096",
            "local 10.0.1.1",
            "dstport 4789",
            "nolearning",
            "mtu 1450",
            "link/ether 66:01:02:03:04:05",
            ",UP",
        ] {
            assert!(d.contains(part), "{part:?} missing from:\n{d}");
        }
        let addrs = ip("addr show dev vxlan.calico");
        assert!(addrs.contains("inet 10.65.0.1/32"), "{addrs}");
        let first = index();

        // Nothing to do: nothing is touched.
        assert!(matches!(
            ensure(&nl, &want()).await.unwrap(),
            DevicePlan::Keep { .. }
        ));

        ip("link set vxlan.calico mtu 1400 down");
        ip("addr flush dev vxlan.calico");
        match ensure(&nl, &want()).await.unwrap() {
            DevicePlan::Adjust { what, .. } => assert_eq!(what, ["mtu", "up"]),
            other => panic!("{other:?}"),
        }
        assert!(details().contains("mtu 1450"));
        assert!(ip("addr show dev vxlan.calico").contains("inet 10.65.0.1/32"));
        assert_eq!(index(), first, "adjusted in place");

        // Someone deleted it: created again.
        ip("link del vxlan.calico");
        assert_eq!(ensure(&nl, &want()).await.unwrap(), DevicePlan::Create);
        assert!(details().contains("vxlan id 4096"));

        // A new VNI cannot be set in place.
        let other_vni = VxlanDevice {
            vni: 4097,
            ..want()
        };
        match ensure(&nl, &other_vni).await.unwrap() {
            DevicePlan::Recreate { why, .. } => assert!(why.contains("VNI"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(details().contains("vxlan id 4097"), "{}", details());

        // A foreign link holding the name is replaced.
        ip("link del vxlan.calico");
        ip("link add vxlan.calico type veth peer name vxpeer");
        match ensure(&nl, &want()).await.unwrap() {
            DevicePlan::Recreate { why, .. } => assert!(why.contains("not a VXLAN"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(details().contains("vxlan id 4096"));

        assert!(remove(&nl, "vxlan.calico").await.unwrap());
        assert!(!remove(&nl, "vxlan.calico").await.unwrap());
        assert!(!ip("link show").contains("vxlan.calico"));
    });
}

#[test]
fn host_mtu_is_the_mtu_of_the_interface_holding_the_node_address() {
    in_netns(|| async {
        veth("eth1");
        ip("addr add 10.0.1.1/24 dev eth1");
        ip("link set eth1 mtu 9000");
        let nl = Netlink::connect().unwrap();
        assert_eq!(
            host_mtu(&nl, "10.0.1.1".parse().unwrap()).await.unwrap(),
            Some(9000)
        );
        assert_eq!(
            host_mtu(&nl, "10.0.9.9".parse().unwrap()).await.unwrap(),
            None
        );
    });
}

/// The overlay's ARP and FDB entries on vxlan.calico: written once, found again by the
/// next sync (nothing rewritten), and removed when no longer wanted.
#[test]
fn vtep_arp_and_fdb_entries_are_synced_and_removed() {
    use felix::calc::routes::{NeighborKind, NeighborSpec};
    use felix::dataplane::neighbors::NeighborSyncer;
    in_netns(|| async {
        veth("eth1");
        ip("addr add 10.0.1.1/24 dev eth1");
        let nl = Netlink::connect().unwrap();
        ensure(&nl, &want()).await.unwrap();
        let mac = [0x66, 0, 0, 0, 0, 2];
        let entry = |ip: &str, kind| NeighborSpec {
            ip: ip.parse().unwrap(),
            mac,
            ifname: "vxlan.calico".into(),
            kind,
        };
        let mut s = NeighborSyncer::new(nl.clone());
        s.set_desired(vec![
            entry("10.65.1.0", NeighborKind::Arp),
            entry("10.0.2.2", NeighborKind::Fdb),
        ]);
        let r = s.apply().await.unwrap();
        assert_eq!(
            (r.replaced, r.deleted, r.failures.len()),
            (2, 0, 0),
            "{r:?}"
        );
        let shown = std::process::Command::new("bridge")
            .args(["fdb", "show", "dev", "vxlan.calico"])
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&shown.stdout).to_string();
        assert!(
            shown.contains("66:00:00:00:00:02 dst 10.0.2.2 self permanent"),
            "{shown}"
        );
        let arp = ip("neigh show dev vxlan.calico");
        assert!(
            arp.contains("10.65.1.0 lladdr 66:00:00:00:00:02 PERMANENT"),
            "{arp}"
        );
        // The next sync finds both: nothing to write.
        let r = s.apply().await.unwrap();
        assert_eq!((r.replaced, r.deleted), (0, 0), "{r:?}");
        // The VTEP moved: its FDB entry is replaced in place.
        s.set_desired(vec![
            entry("10.65.1.0", NeighborKind::Arp),
            entry("10.0.2.3", NeighborKind::Fdb),
        ]);
        let r = s.apply().await.unwrap();
        assert_eq!((r.replaced, r.deleted), (1, 0), "{r:?}");
        s.set_desired(vec![]);
        let r = s.apply().await.unwrap();
        assert_eq!((r.replaced, r.deleted), (0, 2), "{r:?}");
        let shown = std::process::Command::new("bridge")
            .args(["fdb", "show", "dev", "vxlan.calico"])
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&shown.stdout).to_string();
        assert!(!shown.contains("dst"), "{shown}");
    });
}
