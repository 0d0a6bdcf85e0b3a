//! Overlay routes to other nodes' blocks, from the datastore alone (no BGP), the way
//! Calico's felix programs VXLAN: for every block affine to a remote node in a pool
//! whose `vxlanMode` calls for the tunnel, `<block> via <its tunnel addr> dev
//! vxlan.calico onlink`; per remote VTEP a permanent ARP entry (tunnel address -> VTEP
//! MAC) and an FDB entry (VTEP MAC -> node address). `CrossSubnet` sends blocks of
//! nodes on our own subnet directly (`<block> via <node addr>`), unencapsulated. IPIP
//! (`ipipMode`) routes `<block> via <node addr> dev tunl0 onlink`.
//!
//! Pure: the daemon feeds it Nodes, block affinities and pools (REFERENCE.md section
//! 10) and programs what comes out. A remote block that cannot be routed (its node has
//! no address, no tunnel address or MAC) is reported, never routed half-way.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use config::model::{EncapMode, IPPool, Node};
use ipnet::Ipv4Net;

use super::routes::{NeighborKind, NeighborSpec, RouteSpec, parse_mac};

/// Calico's VXLAN device name.
pub const VXLAN_DEVICE: &str = "vxlan.calico";
/// Calico's IPIP device name.
pub const IPIP_DEVICE: &str = "tunl0";
/// Bytes VXLAN adds to each packet (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14).
pub const VXLAN_OVERHEAD: u32 = 50;
/// Bytes IPIP adds (the outer IPv4 header).
pub const IPIP_OVERHEAD: u32 = 20;

/// What the overlay needs to know of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverlayNode {
    /// `spec.bgp.ipv4Address`: the node's address and its subnet.
    pub address: Option<Ipv4Net>,
    /// `spec.ipv4VXLANTunnelAddr`.
    pub vxlan_tunnel_addr: Option<Ipv4Addr>,
    /// `spec.vxlanTunnelMACAddr`.
    pub vxlan_mac: Option<[u8; 6]>,
}

impl OverlayNode {
    /// The overlay fields of a Node; fields that do not parse count as absent (the
    /// Node's validation reports them).
    pub fn of(node: &Node) -> OverlayNode {
        let address = node.spec.bgp.as_ref().and_then(|b| {
            let a = b.ipv4_address.as_str();
            a.parse::<Ipv4Net>()
                .ok()
                .or_else(|| a.parse::<Ipv4Addr>().ok().map(Ipv4Net::from))
        });
        OverlayNode {
            address,
            vxlan_tunnel_addr: node.spec.ipv4_vxlan_tunnel_addr.parse().ok(),
            vxlan_mac: parse_mac(&node.spec.vxlan_tunnel_mac_addr),
        }
    }
}

/// `66:00:00:00:00:01`: the form Node's `vxlanTunnelMACAddr` holds.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// One pool's encapsulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverlayPool {
    pub cidr: Ipv4Net,
    pub vxlan: EncapMode,
    pub ipip: EncapMode,
}

impl OverlayPool {
    /// `None` for IPv6 pools and CIDRs that do not parse.
    pub fn of(pool: &IPPool) -> Option<OverlayPool> {
        Some(OverlayPool {
            cidr: pool.spec.cidr.parse().ok()?,
            vxlan: pool.spec.effective_vxlan_mode(),
            ipip: pool.spec.effective_ipip_mode(),
        })
    }
}

/// The cluster as the overlay sees it.
#[derive(Clone, Debug, Default)]
pub struct OverlayInput {
    pub local_node: String,
    pub nodes: BTreeMap<String, OverlayNode>,
    /// Confirmed block affinities of every node: block -> node.
    pub blocks: BTreeMap<Ipv4Net, String>,
    pub pools: Vec<OverlayPool>,
}

/// A route to a remote block.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OverlayRoute {
    /// `<dst> via <gateway> dev vxlan.calico onlink` (gateway: the tunnel address).
    Vxlan { dst: Ipv4Net, gateway: Ipv4Addr },
    /// `<dst> via <gateway> dev tunl0 onlink` (gateway: the node address).
    Ipip { dst: Ipv4Net, gateway: Ipv4Addr },
    /// `<dst> via <gateway>`: a node on our subnet, no encapsulation (`CrossSubnet`).
    Direct { dst: Ipv4Net, gateway: Ipv4Addr },
}

/// A remote VXLAN tunnel endpoint: the ARP entry `ip lladdr mac dev vxlan.calico` and
/// the FDB entry `mac dst node_ip dev vxlan.calico`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vtep {
    pub node: String,
    pub tunnel_addr: Ipv4Addr,
    pub mac: [u8; 6],
    pub node_ip: Ipv4Addr,
}

/// Why a remote block has no route.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unroutable {
    NoNode,
    NoNodeAddress,
    NoVxlanTunnelAddr,
    NoVxlanMac,
}

impl Unroutable {
    pub fn reason(&self) -> &'static str {
        match self {
            Unroutable::NoNode => "its node has no Node resource",
            Unroutable::NoNodeAddress => "its node has no spec.bgp.ipv4Address",
            Unroutable::NoVxlanTunnelAddr => "its node has no spec.ipv4VXLANTunnelAddr",
            Unroutable::NoVxlanMac => "its node has no spec.vxlanTunnelMACAddr",
        }
    }
}

/// A remote block left without a route, with the reason (logged and counted).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnroutableBlock {
    pub block: Ipv4Net,
    pub node: String,
    pub why: Unroutable,
}

/// What the overlay wants in the kernel, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverlayPlan {
    pub routes: Vec<OverlayRoute>,
    pub vteps: Vec<Vtep>,
    pub unroutable: Vec<UnroutableBlock>,
    /// Some pool uses VXLAN / IPIP: the device must exist.
    pub needs_vxlan: bool,
    pub needs_ipip: bool,
    /// This node's own overlay fields (the device's local address, tunnel address
    /// and MAC).
    pub local: OverlayNode,
}

/// How one remote block is reached.
enum Path {
    Vxlan,
    Ipip,
    Direct,
    /// The pool leaves it to BGP (`Never`), or no pool holds it.
    NotOurs,
}

fn path(pool: Option<&OverlayPool>, same_subnet: bool) -> Path {
    let Some(pool) = pool else {
        return Path::NotOurs;
    };
    let encap = |mode| match mode {
        EncapMode::Always => Some(true),
        EncapMode::CrossSubnet => Some(!same_subnet),
        EncapMode::Never => None,
    };
    match (encap(pool.vxlan), encap(pool.ipip)) {
        (Some(true), _) => Path::Vxlan,
        (_, Some(true)) => Path::Ipip,
        (Some(false), _) | (_, Some(false)) => Path::Direct,
        (None, None) => Path::NotOurs,
    }
}

/// The routes and VTEPs for every remote block, from scratch.
pub fn overlay_plan(input: &OverlayInput) -> OverlayPlan {
    let local = input.nodes.get(&input.local_node);
    let local_subnet = local.and_then(|n| n.address).map(|a| a.trunc());
    let mut plan = OverlayPlan {
        needs_vxlan: input.pools.iter().any(|p| p.vxlan != EncapMode::Never),
        needs_ipip: input.pools.iter().any(|p| p.ipip != EncapMode::Never),
        local: local.cloned().unwrap_or_default(),
        ..OverlayPlan::default()
    };
    for (block, owner) in &input.blocks {
        if *owner == input.local_node {
            continue;
        }
        let pool = input.pools.iter().find(|p| p.cidr.contains(block));
        let node = input.nodes.get(owner);
        let address = node.and_then(|n| n.address);
        let same_subnet =
            matches!((local_subnet, address), (Some(s), Some(a)) if s.contains(&a.addr()));
        let unroutable = |why| UnroutableBlock {
            block: *block,
            node: owner.clone(),
            why,
        };
        let route = match (path(pool, same_subnet), node, address) {
            (Path::NotOurs, ..) => continue,
            (_, None, _) => Err(unroutable(Unroutable::NoNode)),
            (_, _, None) => Err(unroutable(Unroutable::NoNodeAddress)),
            (Path::Direct, _, Some(a)) => Ok(OverlayRoute::Direct {
                dst: *block,
                gateway: a.addr(),
            }),
            (Path::Ipip, _, Some(a)) => Ok(OverlayRoute::Ipip {
                dst: *block,
                gateway: a.addr(),
            }),
            (Path::Vxlan, Some(n), Some(_)) => match (n.vxlan_tunnel_addr, n.vxlan_mac) {
                (None, _) => Err(unroutable(Unroutable::NoVxlanTunnelAddr)),
                (_, None) => Err(unroutable(Unroutable::NoVxlanMac)),
                (Some(gateway), Some(_)) => Ok(OverlayRoute::Vxlan {
                    dst: *block,
                    gateway,
                }),
            },
        };
        match route {
            Ok(r) => plan.routes.push(r),
            Err(u) => plan.unroutable.push(u),
        }
    }
    if plan.needs_vxlan {
        plan.vteps = input
            .nodes
            .iter()
            .filter(|(name, _)| **name != input.local_node)
            .filter_map(|(name, n)| {
                Some(Vtep {
                    node: name.clone(),
                    tunnel_addr: n.vxlan_tunnel_addr?,
                    mac: n.vxlan_mac?,
                    node_ip: n.address?.addr(),
                })
            })
            .collect();
    }
    plan.routes.sort();
    plan.unroutable.sort();
    plan
}

impl OverlayPlan {
    /// The kernel routes the plan wants (felix owns them with its workload routes).
    pub fn route_specs(&self) -> impl Iterator<Item = RouteSpec> + '_ {
        self.routes.iter().map(|r| match *r {
            OverlayRoute::Vxlan { dst, gateway } => RouteSpec::Tunnel {
                dst: dst.into(),
                gateway: gateway.into(),
                ifname: VXLAN_DEVICE.into(),
            },
            OverlayRoute::Ipip { dst, gateway } => RouteSpec::Tunnel {
                dst: dst.into(),
                gateway: gateway.into(),
                ifname: IPIP_DEVICE.into(),
            },
            OverlayRoute::Direct { dst, gateway } => RouteSpec::Via {
                dst: dst.into(),
                gateway: gateway.into(),
            },
        })
    }

    /// Per remote VTEP, its ARP entry (tunnel address -> MAC) and its FDB entry
    /// (MAC -> node address) on `vxlan.calico`: the kernel never has to learn or
    /// flood (the device is created with learning off).
    pub fn neighbor_specs(&self) -> impl Iterator<Item = NeighborSpec> + '_ {
        self.vteps.iter().flat_map(|v| {
            [
                NeighborSpec {
                    ip: v.tunnel_addr.into(),
                    mac: v.mac,
                    ifname: VXLAN_DEVICE.into(),
                    kind: NeighborKind::Arp,
                },
                NeighborSpec {
                    ip: v.node_ip.into(),
                    mac: v.mac,
                    ifname: VXLAN_DEVICE.into(),
                    kind: NeighborKind::Fdb,
                },
            ]
        })
    }
}

/// The pod MTU for a host interface MTU: the overlay's overhead taken off, the
/// largest one when pools use both (a pod's traffic may take either).
pub fn pod_mtu(host_mtu: u32, plan: &OverlayPlan) -> u32 {
    let overhead = match (plan.needs_vxlan, plan.needs_ipip) {
        (true, _) => VXLAN_OVERHEAD,
        (false, true) => IPIP_OVERHEAD,
        (false, false) => 0,
    };
    host_mtu.saturating_sub(overhead)
}

#[cfg(test)]
mod tests;
