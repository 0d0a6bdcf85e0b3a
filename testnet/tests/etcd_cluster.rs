//! Needs root. The datastore as operators run it: three etcd members, every daemon, the
//! CNI plugin and calicoctl given all three. The leader is killed in the middle of pod
//! churn: every pod added afterwards is wired and answers (felix programmed it), every
//! deleted one is gone, the nodes keep their routes, and `ipam check` finds nothing wrong.

use std::time::Duration;

use testnet::scenario::{self, Shape};

#[test]
fn pod_churn_rides_through_the_loss_of_the_etcd_leader() {
    let shape = Shape {
        nodes: 2,
        pods_per_node: 1,
        route_reflector: false,
        kubernetes: false,
    };
    let mut cluster = scenario::build_with_etcd_members(&shape, 3).expect("cluster");
    scenario::wait_converged(&cluster, Duration::from_secs(60)).unwrap();
    assert!(cluster.etcd_endpoint().split(',').count() == 3);

    for i in 0..8 {
        if i == 3 {
            let leader = cluster.etcd_leader().unwrap();
            cluster.kill_etcd_member(leader);
            eprintln!("killed etcd member {leader}, the leader");
        }
        let node = if i % 2 == 0 { "node1" } else { "node2" };
        let name = format!("churn-{i}");
        let ip = cluster.add_pod(node, "default", &name).unwrap();
        let from = if node == "node1" {
            "pod-2-1"
        } else {
            "pod-1-1"
        };
        assert!(
            cluster.ping(from, &ip, 3).unwrap(),
            "{name} ({ip}) on {node} does not answer {from}"
        );
        if i % 3 == 2 {
            cluster.delete_pod(&name).unwrap();
        }
    }
    scenario::wait_converged(&cluster, Duration::from_secs(30)).unwrap();
    for p in scenario::ping_across_nodes(&cluster).unwrap() {
        assert!(p.ok, "{} -> {} ({}) failed", p.from, p.to, p.to_ip);
    }
    let check = cluster.calicoctl(&["ipam", "check"], None).unwrap();
    assert!(
        check.ends_with("Check complete; found 0 problems.\n"),
        "{check}"
    );
    assert!(cluster.etcd_leader().is_ok(), "a new leader");
}
