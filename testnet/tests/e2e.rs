//! Needs root. The whole system end to end: felix, bgpd (Calico mode), the CNI plugins,
//! calicoctl and etcd, in a virtual cluster of network namespaces.

use std::time::Duration;

use testnet::scenario::{self, Shape};

fn shape(route_reflector: bool) -> Shape {
    Shape {
        nodes: 3,
        pods_per_node: 2,
        route_reflector,
        kubernetes: false,
    }
}

/// Two mesh nodes with one pod each, routes converged.
fn two_converged_nodes() -> testnet::Cluster {
    scenario::two_converged_nodes().expect("cluster")
}

/// The peer rows of `calicoctl node status` on a node: (address, type, state, info).
fn peer_rows(cluster: &testnet::Cluster, node: &str) -> Vec<Vec<String>> {
    let n = cluster.node(node).unwrap();
    let socket = n.bgp_socket(cluster.work.path());
    let out = cluster
        .calicoctl_in(
            &n.ns,
            &["node", "status", "--socket", socket.to_str().unwrap()],
            None,
        )
        .unwrap();
    out.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| PEER"))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn full_mesh_cluster_routes_and_pings() {
    let mut cluster = scenario::build(&shape(false)).expect("cluster");
    scenario::wait_converged(&cluster, Duration::from_secs(60)).unwrap();
    let pings = scenario::ping_across_nodes(&cluster).unwrap();
    assert_eq!(pings.len(), 12);
    for p in &pings {
        assert!(p.ok, "{} -> {} ({}) failed", p.from, p.to, p.to_ip);
    }
    let rows = peer_rows(&cluster, "node1");
    let expected: Vec<Vec<String>> = ["172.18.0.12", "172.18.0.13"]
        .iter()
        .map(|ip| vec![ip.to_string(), "node-to-node mesh".into(), "up".into()])
        .collect();
    let got: Vec<Vec<String>> = rows.iter().map(|r| r[..3].to_vec()).collect();
    assert_eq!(got, expected);
    assert!(rows.iter().all(|r| r[4] == "Established"));

    // A node's BGP daemon stops: Graceful Restart keeps its block on the others (and
    // traffic flowing) for the mesh's restart time, then they withdraw it; it returns:
    // routes return. A 5 s restart time keeps the test short (Calico's default is 120 s).
    cluster
        .patch_bgp_configuration(r#"{"spec":{"nodeMeshMaxRestartTime":"5s"}}"#)
        .unwrap();
    // The new restart time takes a new session (the capability is in the OPEN).
    std::thread::sleep(Duration::from_secs(2));
    scenario::wait_converged(&cluster, Duration::from_secs(60)).unwrap();
    let node3_block = cluster
        .routes("node3")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("blackhole ")
                .map(|r| r.split_whitespace().next().unwrap().to_string())
        })
        .unwrap();
    let node3 = cluster
        .nodes
        .iter_mut()
        .find(|n| n.name == "node3")
        .unwrap();
    let bgpd = node3
        .daemons
        .iter_mut()
        .find(|d| d.name().ends_with("/bgpd"))
        .unwrap();
    bgpd.stop(Duration::from_secs(5));
    let pod3 = cluster.pod("pod-3-1").unwrap().ip.clone();
    assert!(
        cluster.routes("node1").unwrap().contains(&node3_block)
            && cluster.ping("pod-1-1", &pod3, 3).unwrap(),
        "node3 reachable while its bgpd restarts"
    );
    testnet::daemon::wait_until(
        "node3's block to be withdrawn",
        Duration::from_secs(20),
        || !cluster.routes("node1").unwrap().contains(&node3_block),
    )
    .unwrap();
    assert!(
        !cluster
            .ping("pod-1-1", &cluster.pod("pod-3-1").unwrap().ip.clone(), 1)
            .unwrap()
    );
    let socket = cluster
        .node("node3")
        .unwrap()
        .bgp_socket(cluster.work.path());
    cluster
        .start_daemon(
            "node3",
            "bgpd",
            &["--datastore", "--control-socket", socket.to_str().unwrap()],
            &[],
        )
        .unwrap();
    scenario::wait_converged(&cluster, Duration::from_secs(60)).unwrap();
    let to = cluster.pod("pod-3-1").unwrap().ip.clone();
    assert!(cluster.ping("pod-1-1", &to, 3).unwrap());
}

#[test]
fn route_reflector_cluster_routes_and_pings() {
    let cluster = scenario::build(&shape(true)).expect("cluster");
    scenario::wait_converged(&cluster, Duration::from_secs(60)).unwrap();
    for p in scenario::ping_across_nodes(&cluster).unwrap() {
        assert!(p.ok, "{} -> {} ({}) failed", p.from, p.to, p.to_ip);
    }
    // Clients peer with the reflector only; the reflector with every client.
    let rows = peer_rows(&cluster, "node1");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][..3], ["172.18.0.14", "node specific", "up"]);
    let rr_rows = peer_rows(&cluster, "rr1");
    assert_eq!(rr_rows.len(), 3, "{rr_rows:?}");
    assert!(rr_rows.iter().all(|r| r[2] == "up"), "{rr_rows:?}");
    // Reflected routes keep the originating node as next hop (RFC 4456).
    let routes = cluster.routes("node1").unwrap();
    let n2 = cluster.node("node2").unwrap().ip.clone();
    assert!(
        routes
            .lines()
            .any(|l| l.contains(&format!("via {n2} dev eth0 proto bgp"))),
        "{routes}"
    );
}

#[test]
fn pod_churn_keeps_ipam_consistent_and_routes_right() {
    let mut cluster = two_converged_nodes();
    for i in 0..10 {
        let name = format!("churn-{i}");
        let ip = cluster.add_pod("node2", "default", &name).unwrap();
        assert!(
            cluster.ping("pod-1-1", &ip, 1).unwrap() || cluster.ping("pod-1-1", &ip, 3).unwrap()
        );
        cluster.delete_pod(&name).unwrap();
        let routes = cluster.routes("node2").unwrap();
        assert!(
            !routes
                .lines()
                .any(|l| l.starts_with(&format!("{ip} dev cali"))),
            "{routes}"
        );
    }
    let check = cluster.calicoctl(&["ipam", "check"], None).unwrap();
    assert!(
        check.ends_with("Check complete; found 0 problems.\n"),
        "{check}"
    );
}

#[test]
fn borrowed_addresses_are_advertised_as_host_routes() {
    let mut cluster = scenario::build(&Shape {
        nodes: 2,
        pods_per_node: 0,
        route_reflector: false,
        kubernetes: false,
    })
    .expect("cluster");
    // A pool of 4-address blocks and one block per node: node1's fifth pod must borrow.
    cluster
        .calicoctl(
            &[
                "patch",
                "ippool",
                "default-ipv4-ippool",
                "-p",
                r#"{"spec":{"disabled":true}}"#,
            ],
            None,
        )
        .unwrap();
    cluster
        .calicoctl(
            &["apply", "-f", "-"],
            Some("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: tiny}\nspec: {cidr: 10.250.0.0/24, blockSize: 30}\n"),
        )
        .unwrap();
    cluster
        .calicoctl(&["ipam", "configure", "--max-blocks-per-host=1"], None)
        .unwrap();
    cluster.add_pod("node2", "default", "host-pod").unwrap();
    for i in 0..4 {
        cluster
            .add_pod("node1", "default", &format!("own-{i}"))
            .unwrap();
    }
    let borrowed = cluster.add_pod("node1", "default", "borrower").unwrap();
    let node1_ip = cluster.node("node1").unwrap().ip.clone();
    let want = format!("{borrowed} via {node1_ip} dev eth0 proto bgp");
    testnet::daemon::wait_until(
        "node2 to route the borrowed address via node1",
        Duration::from_secs(30),
        || {
            cluster
                .routes("node2")
                .unwrap()
                .lines()
                .any(|l| l.starts_with(&want))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.routes("node2").unwrap()));
    assert!(
        cluster.ping("host-pod", &borrowed, 3).unwrap(),
        "host-pod cannot reach the borrowed address"
    );
}

#[test]
fn daemons_ride_through_an_etcd_restart_and_follow_later_changes() {
    let mut cluster = two_converged_nodes();
    cluster.restart_etcd(Duration::from_secs(2)).unwrap();
    for node in &mut cluster.nodes {
        for d in &mut node.daemons {
            assert!(
                d.is_running(),
                "{} exited when etcd went away:\n{}",
                d.name(),
                d.log_tail(20)
            );
        }
    }
    let to = cluster.pod("pod-2-1").unwrap().ip.clone();
    assert!(
        cluster.ping("pod-1-1", &to, 3).unwrap(),
        "traffic broke across the etcd restart"
    );
    // A change made after the restart still reaches bgpd: a new global peer appears.
    cluster
        .calicoctl(
            &["apply", "-f", "-"],
            Some("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {peerIP: 172.18.0.250, asNumber: 64500}\n"),
        )
        .unwrap();
    testnet::daemon::wait_until(
        "node1 to show the new global peer",
        Duration::from_secs(20),
        || {
            peer_rows(&cluster, "node1")
                .iter()
                .any(|r| r[0] == "172.18.0.250" && r[1] == "global")
        },
    )
    .unwrap();
    let mesh = peer_rows(&cluster, "node1");
    assert!(
        mesh.iter()
            .any(|r| r[1] == "node-to-node mesh" && r[2] == "up"),
        "{mesh:?}"
    );
}
