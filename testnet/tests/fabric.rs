//! Needs root: the fabric itself (namespaces, bridge, etcd) before any Calico component.

use testnet::Cluster;

#[test]
fn nodes_reach_each_other_and_etcd_over_the_fabric() {
    let mut cluster = Cluster::create().expect("fabric");
    let ip1 = cluster.add_node("node1").unwrap();
    let ip2 = cluster.add_node("node2").unwrap();
    let n1 = cluster.node("node1").unwrap();
    n1.ns
        .run(&["ping", "-c", "1", "-W", "2", &ip2])
        .expect("node1 pings node2 over the bridge");
    assert_ne!(ip1, ip2);
    cluster.apply_nodes(&Default::default()).unwrap();
    let table = cluster
        .calicoctl(&["get", "nodes", "-o", "wide"], None)
        .unwrap();
    assert!(
        table.contains(&format!("node1   (64512)   {ip1}/16")),
        "{table}"
    );
    let prefix = cluster.prefix.clone();
    drop(cluster);
    let left = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains(&prefix),
        "namespaces left behind"
    );
}
