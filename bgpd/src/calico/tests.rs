use std::net::IpAddr;

use config::model::{AnyResource, parse_documents};
use ipnet::IpNet;

use super::*;
use crate::daemon::ConfigUpdate;

fn node(name: &str, ip: &str, extra_bgp: &str, labels: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  bgp:\n    ipv4Address: {ip}/16\n{extra_bgp}---\n"
    )
}

fn view(yaml: &str) -> ClusterView {
    let mut v = ClusterView::default();
    for r in parse_documents(yaml).unwrap() {
        match r {
            AnyResource::Node(n) => v.nodes.push(n),
            AnyResource::BGPPeer(p) => v.peers.push(p),
            AnyResource::BGPConfiguration(c) => v.bgp_config = Some(c),
            AnyResource::IPPool(p) => v.pools.push(p),
            other => panic!("unexpected {:?}", other.kind()),
        }
    }
    v
}

fn three_nodes() -> String {
    node("node1", "172.18.0.11", "", "")
        + &node("node2", "172.18.0.12", "", "")
        + &node("node3", "172.18.0.13", "    asNumber: 65003\n", "")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn full_mesh_with_lower_address_connecting() {
    let v = view(&three_nodes());
    let d1 = desired(&v, "node1").unwrap();
    assert_eq!(d1.identity.as_number, 64512);
    assert_eq!(d1.identity.router_id.to_string(), "172.18.0.11");
    assert_eq!(d1.identity.cluster_id, None);
    let names: Vec<String> = d1.peers.values().map(|p| p.name()).collect();
    assert_eq!(names, ["Mesh_172_18_0_12", "Mesh_172_18_0_13"]);
    assert!(
        d1.peers.values().all(|p| !p.passive),
        "lowest address connects to all"
    );
    assert_eq!(d1.peers[&ip("172.18.0.13")].as_number, 65003);

    let d3 = desired(&v, "node3").unwrap();
    assert_eq!(d3.identity.as_number, 65003);
    assert!(
        d3.peers.values().all(|p| p.passive),
        "highest address waits for all"
    );
    let d2 = desired(&v, "node2").unwrap();
    assert!(!d2.peers[&ip("172.18.0.13")].passive);
    assert!(d2.peers[&ip("172.18.0.11")].passive);
}

#[test]
fn mesh_off_means_no_peers_and_default_as_comes_from_bgp_configuration() {
    let yaml = three_nodes()
        + "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: false, asNumber: 64600}\n";
    let d = desired(&view(&yaml), "node1").unwrap();
    assert!(d.peers.is_empty());
    assert_eq!(d.identity.as_number, 64600);
}

const RR_PEERING: &str = "apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: peer-with-route-reflectors}
spec:
  nodeSelector: all()
  peerSelector: route-reflector == 'true'
---
";

#[test]
fn route_reflector_recipe() {
    let yaml = node("node1", "172.18.0.11", "", "")
        + &node("node2", "172.18.0.12", "", "")
        + &node(
            "rr1",
            "172.18.0.2",
            "    routeReflectorClusterID: 224.0.0.1\n",
            "route-reflector: 'true'",
        )
        + &node(
            "rr2",
            "172.18.0.3",
            "    routeReflectorClusterID: 224.0.0.1\n",
            "route-reflector: 'true'",
        )
        + RR_PEERING
        + "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: false}\n";
    let v = view(&yaml);

    let client = desired(&v, "node1").unwrap();
    let names: Vec<String> = client.peers.values().map(|p| p.name()).collect();
    assert_eq!(names, ["Node_172_18_0_2", "Node_172_18_0_3"]);
    assert!(client.peers.values().all(|p| !p.route_reflector_client));

    let rr = desired(&v, "rr1").unwrap();
    assert_eq!(rr.identity.cluster_id, Some("224.0.0.1".parse().unwrap()));
    // Clients reach the RR through the symmetric selector peering; the other RR of the
    // same cluster is a plain iBGP peer.
    assert!(rr.peers[&ip("172.18.0.11")].route_reflector_client);
    assert!(rr.peers[&ip("172.18.0.12")].route_reflector_client);
    assert!(!rr.peers[&ip("172.18.0.3")].route_reflector_client);
    assert_eq!(rr.peers.len(), 3);
    // 172.18.0.2 < 172.18.0.11: the RR connects, the client waits.
    assert!(!rr.peers[&ip("172.18.0.11")].passive);
    assert!(client.peers[&ip("172.18.0.2")].passive);
}

#[test]
fn route_reflector_leaves_the_mesh_but_clients_keep_it() {
    let yaml = three_nodes()
        + &node(
            "rr1",
            "172.18.0.2",
            "    routeReflectorClusterID: 224.0.0.1\n",
            "route-reflector: 'true'",
        )
        + RR_PEERING;
    let v = view(&yaml);
    let n1 = desired(&v, "node1").unwrap();
    assert_eq!(n1.peers[&ip("172.18.0.12")].name(), "Mesh_172_18_0_12");
    assert_eq!(n1.peers[&ip("172.18.0.2")].name(), "Node_172_18_0_2");
    let rr = desired(&v, "rr1").unwrap();
    assert!(rr.peers.values().all(|p| p.name().starts_with("Node_")));
    // node3 is in another AS: a peer, but not a reflection client.
    assert!(!rr.peers[&ip("172.18.0.13")].route_reflector_client);
}

#[test]
fn explicit_peers_global_and_per_node() {
    let yaml = three_nodes()
        + "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {peerIP: '10.0.0.1:1790', asNumber: 64500}\n---\n"
        + "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: n2only}\nspec: {node: node2, peerIP: 10.0.0.2, asNumber: 64501}\n---\n"
        + "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: over-mesh}\nspec: {node: node1, peerIP: 172.18.0.12, asNumber: 64512}\n";
    let v = view(&yaml);
    let d1 = desired(&v, "node1").unwrap();
    let tor = &d1.peers[&ip("10.0.0.1")];
    assert_eq!(
        (tor.name().as_str(), tor.port, tor.as_number),
        ("Global_10_0_0_1", 1790, 64500)
    );
    assert!(!d1.peers.contains_key(&ip("10.0.0.2")));
    // An explicit peer replaces the mesh session to the same address.
    assert_eq!(d1.peers[&ip("172.18.0.12")].name(), "Node_172_18_0_12");
    let d2 = desired(&v, "node2").unwrap();
    assert_eq!(d2.peers[&ip("10.0.0.2")].name(), "Node_10_0_0_2");
    // Calico's default sourceAddress is the node's own IP.
    assert_eq!(tor.source_address, Some(ip("172.18.0.11")));
    assert_eq!(
        d1.peers[&ip("172.18.0.13")].source_address,
        Some(ip("172.18.0.11"))
    );
}

#[test]
fn peer_keepalive_and_source_address_options() {
    let yaml = three_nodes()
        + "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {peerIP: 10.0.0.1, asNumber: 64500, keepaliveTime: 30s, sourceAddress: None}\n";
    let d = desired(&view(&yaml), "node1").unwrap();
    let tor = &d.peers[&ip("10.0.0.1")];
    assert_eq!(tor.keepalive_time, Some(30));
    assert_eq!(tor.source_address, None);
}

#[test]
fn exports_only_confirmed_blocks_and_borrowed_addresses_inside_exported_pools() {
    let yaml = three_nodes()
        + "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pods}\nspec: {cidr: 10.244.0.0/16}\n---\n"
        + "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: quiet}\nspec: {cidr: 10.99.0.0/16, disableBGPExport: true}\n";
    let mut v = view(&yaml);
    v.affine_blocks = vec![
        net("10.244.1.0/26"),
        net("10.99.0.0/26"),
        net("192.168.0.0/26"),
    ];
    v.borrowed = vec![ip("10.244.7.5"), ip("10.244.1.9"), ip("10.99.3.3")];
    let d = desired(&v, "node1").unwrap();
    let got: Vec<String> = d.originate.iter().map(ToString::to_string).collect();
    assert_eq!(got, ["10.244.1.0/26", "10.244.7.5/32"]);
}

#[test]
fn blocks_of_vxlan_always_pools_are_not_exported_and_cross_subnet_ones_are() {
    let yaml = three_nodes()
        + "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: vx}\nspec: {cidr: 10.70.0.0/16, vxlanMode: Always}\n---\n"
        + "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: cross}\nspec: {cidr: 10.71.0.0/16, vxlanMode: CrossSubnet}\n";
    let mut v = view(&yaml);
    v.affine_blocks = vec![net("10.70.1.0/26"), net("10.71.1.0/26")];
    v.borrowed = vec![ip("10.70.9.9")];
    let d = desired(&v, "node1").unwrap();
    let got: Vec<String> = d.originate.iter().map(ToString::to_string).collect();
    assert_eq!(got, ["10.71.1.0/26"]);
    // Both pools' routes are felix's: learnt ones stay out of the kernel.
    assert_eq!(d.fib_exclude, [net("10.70.0.0/16"), net("10.71.0.0/16")]);
    let mut bgp_only = d.clone();
    bgp_only.fib_exclude.clear();
    assert!(matches!(
        updates(&bgp_only, &d).as_slice(),
        [ConfigUpdate::SetFibExclude(x)] if *x == d.fib_exclude
    ));
}

#[test]
fn unknown_node_or_missing_address_is_an_error() {
    let v = view(&three_nodes());
    assert_eq!(
        desired(&v, "node9"),
        Err(DesiredError::NoSuchNode("node9".into()))
    );
    let bare =
        view("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: bare}\nspec: {}\n");
    assert!(matches!(
        desired(&bare, "bare"),
        Err(DesiredError::NoAddress { .. })
    ));
}

#[test]
fn updates_diff_peers_and_prefixes() {
    let v = view(&three_nodes());
    let old = desired(&v, "node1").unwrap();
    let mut new = old.clone();
    new.peers.remove(&ip("172.18.0.13"));
    new.peers.get_mut(&ip("172.18.0.12")).unwrap().hold_time = 90;
    new.originate.insert(net("10.244.0.0/26"));
    let ups = updates(&old, &new);
    let text: Vec<String> = ups
        .iter()
        .map(|u| match u {
            ConfigUpdate::RemovePeer(ip) => format!("remove {ip}"),
            ConfigUpdate::AddPeer(p) => format!("add {} hold {}", p.address, p.hold_time),
            ConfigUpdate::SetOriginated(p) => format!("originate {p:?}"),
            ConfigUpdate::RetryNow(ip) => format!("retry {ip}"),
            ConfigUpdate::SetFibExclude(x) => format!("exclude {x:?}"),
        })
        .collect();
    assert_eq!(
        text,
        [
            "remove 172.18.0.12",
            "remove 172.18.0.13",
            "add 172.18.0.12 hold 90",
            "originate [10.244.0.0/26]"
        ]
    );
    assert!(updates(&old, &old).is_empty());
}

#[test]
fn only_relevant_events_mark_parts_stale_and_blocks_update_in_place() {
    use config::datastore::{Kv, WatchEvent};
    let put = |key: &str, value: &str| {
        WatchEvent::Put(Kv {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            mod_revision: 7,
        })
    };
    let mut cached = Cached::default();
    let mut dirty = Dirty::default();
    for irrelevant in [
        "/calico/resources/v3/projectcalico.org/workloadendpoints/default/n1-k8s-p-eth0",
        "/calico/resources/v3/projectcalico.org/networkpolicies/default/p",
        "/calico/ipam/v2/host/node2/ipv4/block/10.0.0.0-26",
        "/calico/ipam/v2/handle/k8s-pod-network.abc",
    ] {
        note_event(&put(irrelevant, "{}"), "node1", &mut cached, &mut dirty);
    }
    assert_eq!(dirty, Dirty::default());

    note_event(
        &put("/calico/resources/v3/projectcalico.org/nodes/node3", "{}"),
        "node1",
        &mut cached,
        &mut dirty,
    );
    note_event(
        &put("/calico/ipam/v2/host/node1/ipv4/block/10.0.0.0-26", "{}"),
        "node1",
        &mut cached,
        &mut dirty,
    );
    assert!(dirty.resources && dirty.affinities && !dirty.borrowed);

    let key = "/calico/ipam/v2/assignment/ipv4/block/10.65.79.0-26";
    let block = r#"{"cidr":"10.65.79.0/26","affinity":"host:node2","allocations":[0],"unallocated":[],
        "attributes":[{"handle_id":"h","secondary":{"node":"node1"}}],"sequenceNumber":1}"#;
    let mut dirty = Dirty::default();
    note_event(&put(key, block), "node1", &mut cached, &mut dirty);
    assert!(dirty.borrowed);
    assert_eq!(cached.view().borrowed, vec![ip("10.65.79.0")]);
    // The same content again changes nothing; a delete removes it.
    let mut dirty = Dirty::default();
    note_event(&put(key, block), "node1", &mut cached, &mut dirty);
    assert!(!dirty.borrowed);
    note_event(
        &WatchEvent::Delete {
            key: key.into(),
            mod_revision: 8,
        },
        "node1",
        &mut cached,
        &mut dirty,
    );
    assert!(dirty.borrowed);
    assert!(cached.view().borrowed.is_empty());
}

#[test]
fn a_written_node_that_is_a_peer_is_retried_at_once() {
    use config::datastore::{Kv, WatchEvent};
    let v = view(&(three_nodes() + &node("node4", "not-an-address", "", "")));
    let applied = desired(&view(&three_nodes()), "node1").unwrap();
    let mut cached = Cached::default();
    cached.resources.nodes = v.nodes.clone();
    let mut dirty = Dirty::default();
    for name in ["node2", "node4", "node1", "gone"] {
        let ev = WatchEvent::Put(Kv {
            key: format!("/calico/resources/v3/projectcalico.org/nodes/{name}"),
            value: b"{}".to_vec(),
            mod_revision: 9,
        });
        note_event(&ev, "node1", &mut cached, &mut dirty);
    }
    assert_eq!(
        dirty.nodes.iter().map(String::as_str).collect::<Vec<_>>(),
        ["gone", "node1", "node2", "node4"]
    );
    // node2 is a peer; node1 is us, node4 has no usable address, "gone" is not cached.
    assert_eq!(
        retry_now(&dirty.nodes, &cached, &applied),
        [ip("172.18.0.12")]
    );
}

#[test]
fn bfd_if_directly_connected_only_for_peers_on_the_nodes_subnet() {
    // Nodes are on 172.18.0.0/16.
    let peer = |name: &str, spec: &str| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: {name}}}\nspec: {{{spec}}}\n---\n"
        )
    };
    let nodes = node("node1", "172.18.0.11", "", "")
        + &node("node2", "172.18.0.12", "", "")
        + &node("node3", "172.18.0.13", "", "edge: 'true'");
    let yaml = nodes
        + &peer(
            "tor",
            "peerIP: 172.18.0.1, asNumber: 64500, failureDetectionMode: BFDIfDirectlyConnected",
        )
        + &peer(
            "far",
            "peerIP: 10.0.0.1, asNumber: 64500, failureDetectionMode: BFDIfDirectlyConnected",
        )
        + &peer("plain", "peerIP: 172.18.0.2, asNumber: 64500")
        + &peer(
            "to-edge",
            "node: node1, peerSelector: \"edge == 'true'\", failureDetectionMode: BFDIfDirectlyConnected",
        );
    let d = desired(&view(&yaml), "node1").unwrap();
    assert_eq!(
        d.peers[&ip("172.18.0.1")].bfd,
        Some(crate::config::BfdConfig::default())
    );
    assert_eq!(d.peers[&ip("10.0.0.1")].bfd, None, "not single hop");
    assert_eq!(d.peers[&ip("172.18.0.2")].bfd, None, "not asked for");
    assert!(
        d.peers[&ip("172.18.0.13")].bfd.is_some(),
        "selected node, same subnet"
    );
    assert!(
        d.peers[&ip("172.18.0.12")].bfd.is_none(),
        "mesh: no such field"
    );
}
