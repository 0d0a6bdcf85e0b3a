//! Needs root. Kubernetes mode end to end: a real kube-apiserver and kube-controllers in
//! the fabric, pods created as Pod objects with labels on three nodes and wired by the CNI
//! plugin reading them from the API, a Kubernetes NetworkPolicy applied with kubectl and
//! enforced by felix on real TCP across nodes, and relabelled pods flipping their verdict
//! live, both ways.

use std::time::Duration;

use testnet::kube_scenario::{self, OPEN, POLICED, RELABELLED};
use testnet::scenario::{self, Shape};

const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn network_policy_follows_labels_across_nodes() {
    let mut cluster = scenario::build(&Shape {
        nodes: 3,
        pods_per_node: 0,
        route_reflector: false,
        kubernetes: true,
    })
    .expect("cluster");
    let _servers = kube_scenario::add_pods(&mut cluster, 3).expect("pods");
    scenario::wait_converged(&cluster, Duration::from_secs(60)).unwrap();

    // The endpoint carries the pod's labels and its namespace's profile from the API.
    let weps = cluster
        .calicoctl(&["get", "wep", "-n", "shop", "-o", "yaml"], None)
        .unwrap();
    for needle in ["app: web", "app: client", "app: other", "kns.shop"] {
        assert!(weps.contains(needle), "{needle} missing from:\n{weps}");
    }
    kube_scenario::wait_verdicts(&cluster, OPEN, TIMEOUT).unwrap();

    kube_scenario::apply_policy(&cluster).unwrap();
    kube_scenario::wait_verdicts(&cluster, POLICED, TIMEOUT).unwrap();
    let policy = cluster
        .calicoctl(&["get", "networkpolicy", "-n", "shop", "-o", "yaml"], None)
        .unwrap();
    assert!(policy.contains("knp.default.web-from-client"), "{policy}");

    // other becomes a client, then stops being one.
    kube_scenario::relabel(&cluster, "other", "client").unwrap();
    kube_scenario::wait_verdicts(&cluster, RELABELLED, TIMEOUT).unwrap();
    kube_scenario::relabel(&cluster, "other", "other").unwrap();
    kube_scenario::wait_verdicts(&cluster, POLICED, TIMEOUT).unwrap();
    // The web pod loses its label: the policy no longer selects it.
    kube_scenario::relabel(&cluster, "web", "db").unwrap();
    kube_scenario::wait_verdicts(&cluster, OPEN, TIMEOUT).unwrap();

    // Deleting the policy through the API removes it from etcd.
    kube_scenario::relabel(&cluster, "web", "web").unwrap();
    kube_scenario::wait_verdicts(&cluster, POLICED, TIMEOUT).unwrap();
    cluster
        .kubectl(
            &["delete", "networkpolicy", "-n", "shop", "web-from-client"],
            None,
        )
        .unwrap();
    kube_scenario::wait_verdicts(&cluster, OPEN, TIMEOUT).unwrap();
}
