//! Needs root: pods wired by the real CNI plugins on two nodes; IPAM and WEPs seen through
//! calicoctl, and everything released by CNI DEL.

use testnet::Cluster;

const POOL: &str = "apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pods
spec:
  cidr: 10.244.0.0/16
  blockSize: 26
";

#[test]
fn cni_wires_pods_and_calicoctl_sees_them() {
    let mut cluster = Cluster::create().expect("fabric");
    cluster.add_node("node1").unwrap();
    cluster.add_node("node2").unwrap();
    cluster.apply_nodes(&Default::default()).unwrap();
    cluster
        .calicoctl(&["apply", "-f", "-"], Some(POOL))
        .unwrap();

    let a = cluster.add_pod("node1", "default", "pod-a").unwrap();
    let b = cluster.add_pod("node1", "default", "pod-b").unwrap();
    let c = cluster.add_pod("node2", "shop", "pod-c").unwrap();
    assert_ne!(a, b);
    // The /26 block an address is in.
    let net = |ip: &str| {
        let addr: std::net::Ipv4Addr = ip.parse().unwrap();
        u32::from(addr) & !63
    };
    // Each node allocates from its own affine block.
    assert_eq!(net(&a), net(&b));
    assert_ne!(net(&a), net(&c));

    let weps = cluster.calicoctl(&["get", "wep", "-A"], None).unwrap();
    for (ns, pod, ip) in [
        ("default", "pod-a", &a),
        ("default", "pod-b", &b),
        ("shop", "pod-c", &c),
    ] {
        let line = weps
            .lines()
            .find(|l| l.contains(pod))
            .unwrap_or_else(|| panic!("no WEP for {pod}:\n{weps}"));
        assert!(line.starts_with(ns), "{line}");
        assert!(line.contains(&format!("{ip}/32")), "{line}");
    }
    let usage = cluster
        .calicoctl(&["ipam", "show", "--show-blocks"], None)
        .unwrap();
    let rows = table_rows(&usage);
    assert!(
        rows.contains(&vec![
            "IP Pool",
            "10.244.0.0/16",
            "65536",
            "3 (0%)",
            "65533 (100%)"
        ]),
        "{usage}"
    );
    assert_eq!(
        rows.iter().filter(|r| r[0] == "Block").count(),
        2,
        "{usage}"
    );

    let check = cluster.calicoctl(&["ipam", "check"], None).unwrap();
    assert!(
        check.ends_with("Check complete; found 0 problems.\n"),
        "{check}"
    );

    cluster.delete_pod("pod-b").unwrap();
    let usage = cluster.calicoctl(&["ipam", "show"], None).unwrap();
    assert_eq!(table_rows(&usage)[1][3], "2 (0%)", "{usage}");
    let weps = cluster.calicoctl(&["get", "wep", "-A"], None).unwrap();
    assert!(!weps.contains("pod-b"), "{weps}");
}

/// The cells of a bordered table, row by row (header included).
fn table_rows(table: &str) -> Vec<Vec<&str>> {
    table
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect()
}
