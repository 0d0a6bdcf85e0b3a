use serde_json::json;

use super::*;

const MAC2: [u8; 6] = [0x66, 0, 0, 0, 0, 2];
const MAC3: [u8; 6] = [0x66, 0, 0, 0, 0, 3];

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn vtep_node(address: &str, tunnel: &str, mac: [u8; 6]) -> OverlayNode {
    OverlayNode {
        address: Some(net(address)),
        vxlan_tunnel_addr: Some(ip(tunnel)),
        vxlan_mac: Some(mac),
    }
}

/// n1 (local) and n2 share 10.0.1.0/24; n3 is across the fabric in 10.0.2.0/24.
fn cluster(vxlan: EncapMode, ipip: EncapMode) -> OverlayInput {
    let mut input = OverlayInput {
        local_node: "n1".into(),
        pools: vec![OverlayPool {
            cidr: net("10.65.0.0/16"),
            vxlan,
            ipip,
        }],
        ..Default::default()
    };
    input.nodes.insert(
        "n1".into(),
        vtep_node("10.0.1.1/24", "10.65.0.1", [0x66, 0, 0, 0, 0, 1]),
    );
    input
        .nodes
        .insert("n2".into(), vtep_node("10.0.1.2/24", "10.65.0.65", MAC2));
    input
        .nodes
        .insert("n3".into(), vtep_node("10.0.2.3/24", "10.65.0.129", MAC3));
    for (block, node) in [
        ("10.65.0.0/26", "n1"),
        ("10.65.0.64/26", "n2"),
        ("10.65.0.128/26", "n3"),
        ("10.65.0.192/26", "n3"),
    ] {
        input.blocks.insert(net(block), node.into());
    }
    input
}

fn vxlan(dst: &str, gw: &str) -> OverlayRoute {
    OverlayRoute::Vxlan {
        dst: net(dst),
        gateway: ip(gw),
    }
}

fn ipip(dst: &str, gw: &str) -> OverlayRoute {
    OverlayRoute::Ipip {
        dst: net(dst),
        gateway: ip(gw),
    }
}

fn direct(dst: &str, gw: &str) -> OverlayRoute {
    OverlayRoute::Direct {
        dst: net(dst),
        gateway: ip(gw),
    }
}

#[test]
fn vxlan_always_tunnels_every_remote_block_and_knows_every_remote_vtep() {
    let plan = overlay_plan(&cluster(EncapMode::Always, EncapMode::Never));
    assert_eq!(
        plan.routes,
        [
            vxlan("10.65.0.64/26", "10.65.0.65"),
            vxlan("10.65.0.128/26", "10.65.0.129"),
            vxlan("10.65.0.192/26", "10.65.0.129"),
        ]
    );
    assert_eq!(
        plan.vteps,
        [
            Vtep {
                node: "n2".into(),
                tunnel_addr: ip("10.65.0.65"),
                mac: MAC2,
                node_ip: ip("10.0.1.2"),
            },
            Vtep {
                node: "n3".into(),
                tunnel_addr: ip("10.65.0.129"),
                mac: MAC3,
                node_ip: ip("10.0.2.3"),
            },
        ]
    );
    assert!(plan.unroutable.is_empty());
    assert!(plan.needs_vxlan && !plan.needs_ipip);
}

#[test]
fn cross_subnet_routes_the_own_subnet_directly_and_tunnels_the_rest() {
    let plan = overlay_plan(&cluster(EncapMode::CrossSubnet, EncapMode::Never));
    assert_eq!(
        plan.routes,
        [
            vxlan("10.65.0.128/26", "10.65.0.129"),
            vxlan("10.65.0.192/26", "10.65.0.129"),
            direct("10.65.0.64/26", "10.0.1.2"),
        ]
    );
    let plan = overlay_plan(&cluster(EncapMode::Never, EncapMode::CrossSubnet));
    assert_eq!(
        plan.routes,
        [
            ipip("10.65.0.128/26", "10.0.2.3"),
            ipip("10.65.0.192/26", "10.0.2.3"),
            direct("10.65.0.64/26", "10.0.1.2"),
        ]
    );
    assert!(plan.vteps.is_empty(), "IPIP needs no VTEPs");
    assert!(plan.needs_ipip && !plan.needs_vxlan);
}

#[test]
fn cross_subnet_without_our_own_address_tunnels_everything() {
    let mut input = cluster(EncapMode::CrossSubnet, EncapMode::Never);
    input.nodes.get_mut("n1").unwrap().address = None;
    let plan = overlay_plan(&input);
    assert!(
        plan.routes
            .iter()
            .all(|r| matches!(r, OverlayRoute::Vxlan { .. })),
        "{:?}",
        plan.routes
    );
    assert_eq!(plan.routes.len(), 3);
}

#[test]
fn ipip_always_routes_via_the_node_address_on_tunl0() {
    let plan = overlay_plan(&cluster(EncapMode::Never, EncapMode::Always));
    assert_eq!(
        plan.routes,
        [
            ipip("10.65.0.64/26", "10.0.1.2"),
            ipip("10.65.0.128/26", "10.0.2.3"),
            ipip("10.65.0.192/26", "10.0.2.3"),
        ]
    );
}

#[test]
fn bgp_pools_and_blocks_outside_every_pool_are_left_to_bgp() {
    let input = cluster(EncapMode::Never, EncapMode::Never);
    let plan = overlay_plan(&input);
    assert_eq!(
        plan,
        OverlayPlan {
            local: input.nodes[&input.local_node].clone(),
            ..OverlayPlan::default()
        }
    );
    let mut input = cluster(EncapMode::Always, EncapMode::Never);
    input.blocks.insert(net("10.99.0.0/26"), "n3".into());
    assert_eq!(overlay_plan(&input).routes.len(), 3);
}

#[test]
fn a_remote_node_missing_a_vxlan_field_has_its_blocks_reported_and_nothing_else_changes() {
    let mut input = cluster(EncapMode::Always, EncapMode::Never);
    input.nodes.get_mut("n3").unwrap().vxlan_tunnel_addr = None;
    input.nodes.insert(
        "n4".into(),
        OverlayNode {
            vxlan_mac: None,
            ..vtep_node("10.0.2.4/24", "10.65.1.1", MAC3)
        },
    );
    input.nodes.insert(
        "n5".into(),
        OverlayNode {
            address: None,
            ..vtep_node("10.0.2.5/24", "10.65.1.65", MAC3)
        },
    );
    input.blocks.insert(net("10.65.1.0/26"), "n4".into());
    input.blocks.insert(net("10.65.1.64/26"), "n5".into());
    input.blocks.insert(net("10.65.1.128/26"), "n6".into());
    let plan = overlay_plan(&input);
    assert_eq!(plan.routes, [vxlan("10.65.0.64/26", "10.65.0.65")]);
    let why: Vec<(&str, Unroutable)> = plan
        .unroutable
        .iter()
        .map(|u| (u.node.as_str(), u.why.clone()))
        .collect();
    assert_eq!(
        why,
        [
            ("n3", Unroutable::NoVxlanTunnelAddr),
            ("n3", Unroutable::NoVxlanTunnelAddr),
            ("n4", Unroutable::NoVxlanMac),
            ("n5", Unroutable::NoNodeAddress),
            ("n6", Unroutable::NoNode),
        ]
    );
    // Only complete VTEPs are programmed.
    let nodes: Vec<&str> = plan.vteps.iter().map(|v| v.node.as_str()).collect();
    assert_eq!(nodes, ["n2"]);
}

#[test]
fn overlay_fields_come_from_the_node_resource() {
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "Node",
        "metadata": {"name": "n3"},
        "spec": {"bgp": {"ipv4Address": "10.0.2.3/24"},
                 "ipv4VXLANTunnelAddr": "10.65.0.129",
                 "vxlanTunnelMACAddr": "66:00:00:00:00:03"}
    }))
    .unwrap();
    assert_eq!(
        OverlayNode::of(&node),
        vtep_node("10.0.2.3/24", "10.65.0.129", MAC3)
    );
    let bare: Node = serde_json::from_value(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "Node",
        "metadata": {"name": "n4"}, "spec": {"bgp": {"ipv4Address": "10.0.2.4"}}
    }))
    .unwrap();
    assert_eq!(
        OverlayNode::of(&bare),
        OverlayNode {
            address: Some(net("10.0.2.4/32")),
            ..Default::default()
        }
    );
    let pool: IPPool = serde_json::from_value(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": {"name": "p"},
        "spec": {"cidr": "10.65.0.0/16", "vxlanMode": "CrossSubnet"}
    }))
    .unwrap();
    assert_eq!(
        OverlayPool::of(&pool),
        Some(OverlayPool {
            cidr: net("10.65.0.0/16"),
            vxlan: EncapMode::CrossSubnet,
            ipip: EncapMode::Never,
        })
    );
}

#[test]
fn the_pod_mtu_leaves_room_for_the_encapsulation() {
    let plan = |vxlan, ipip| overlay_plan(&cluster(vxlan, ipip));
    assert_eq!(
        pod_mtu(1500, &plan(EncapMode::Always, EncapMode::Never)),
        1450
    );
    assert_eq!(
        pod_mtu(1500, &plan(EncapMode::Never, EncapMode::Always)),
        1480
    );
    assert_eq!(
        pod_mtu(1500, &plan(EncapMode::Never, EncapMode::Never)),
        1500
    );
    assert_eq!(
        pod_mtu(9000, &plan(EncapMode::CrossSubnet, EncapMode::Never)),
        8950
    );
}
