//! What this node's BGP speaker should do, computed from the cluster's datastore the way
//! Calico's confd computes BIRD's configuration (shared/REFERENCE.md section 5). Pure.
//!
//! - Identity: AS from the Node (else BGPConfiguration `default`, else 64512), router id
//!   and address from `spec.bgp.ipv4Address`, RR cluster id from
//!   `routeReflectorClusterID`.
//! - Mesh: with `nodeToNodeMeshEnabled` (default true), every node without a cluster id
//!   peers with every other such node (`Mesh_<ip>`); a route reflector leaves the mesh.
//! - BGPPeers: with a `peerIP` (`Global_<ip>` when it names no node, else `Node_<ip>`),
//!   or with a `peerSelector` (`Node_<ip>` for each selected Calico node). Selector
//!   peerings are symmetric, as in Calico: a node selected by `peerSelector` also peers
//!   with the nodes the `nodeSelector` picks — that is how a route reflector meets its
//!   clients.
//! - RFC 4456: a route reflector treats same-AS node peers with another (or no) cluster
//!   id as clients; RRs of one cluster peer as plain iBGP.
//! - Between two Calico nodes only the lower address connects (the higher is passive),
//!   which avoids connection collisions.
//! - Export: this node's confirmed affine blocks, plus /32 (or /128) of addresses its
//!   workloads borrowed from other nodes' blocks, and only inside pools that allow BGP
//!   export and do not always go through VXLAN (felix routes those from the datastore;
//!   a `CrossSubnet` pool is still exported, for the nodes on our own subnet). Nothing
//!   else.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use config::model::{BGPConfiguration, BGPPeer, EncapMode, IPPool, Node};
use config::selector::Selector;
use ipnet::IpNet;

use crate::config::{BfdConfig, FamilyName, PeerConfig, session_name};

/// Calico's default AS.
pub const DEFAULT_AS: u32 = 64512;

/// The datastore state the speaker depends on.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    pub nodes: Vec<Node>,
    /// BGPConfiguration `default`, when present.
    pub bgp_config: Option<BGPConfiguration>,
    pub peers: Vec<BGPPeer>,
    pub pools: Vec<IPPool>,
    /// This node's confirmed block affinities.
    pub affine_blocks: Vec<IpNet>,
    /// Addresses this node's workloads hold in blocks affine to other nodes.
    pub borrowed: Vec<IpAddr>,
}

/// Who this speaker is; changing any of it needs a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub as_number: u32,
    pub router_id: Ipv4Addr,
    pub cluster_id: Option<Ipv4Addr>,
    pub listen_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredBgp {
    pub identity: Identity,
    pub peers: BTreeMap<IpAddr, PeerConfig>,
    pub originate: BTreeSet<IpNet>,
    /// VXLAN pools (Always or CrossSubnet): felix routes their blocks from the
    /// datastore, so learnt routes inside them stay out of the kernel.
    pub fib_exclude: Vec<IpNet>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DesiredError {
    #[error("node {0} is not in the datastore (calicoctl get nodes)")]
    NoSuchNode(String),
    #[error("node {node} has no spec.bgp.ipv4Address: {reason}")]
    NoAddress { node: String, reason: String },
}

struct NodeInfo<'a> {
    node: &'a Node,
    ip: Ipv4Addr,
    as_number: u32,
    cluster_id: Option<Ipv4Addr>,
}

fn node_info<'a>(node: &'a Node, default_as: u32) -> Result<NodeInfo<'a>, String> {
    let bgp = node.spec.bgp.as_ref().ok_or("no spec.bgp")?;
    let addr = bgp.ipv4_address.split('/').next().unwrap_or("");
    let ip: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("ipv4Address {:?} is not an IPv4 address", bgp.ipv4_address))?;
    let cluster_id = match bgp.route_reflector_cluster_id.as_str() {
        "" => None,
        s => Some(
            s.parse()
                .map_err(|_| format!("routeReflectorClusterID {s:?} is not dotted-quad"))?,
        ),
    };
    Ok(NodeInfo {
        node,
        ip,
        as_number: bgp.as_number.map_or(default_as, |a| a.0),
        cluster_id,
    })
}

/// The address a node is peered with (its `spec.bgp.ipv4Address`), if it has a valid one.
pub fn node_address(node: &Node) -> Option<IpAddr> {
    node_info(node, 0).ok().map(|i| IpAddr::V4(i.ip))
}

fn selects(selector: &str, node: &Node) -> bool {
    match Selector::parse(selector) {
        Ok(s) => s.matches(&node.metadata.labels),
        Err(e) => {
            tracing::warn!(selector, error = %e, "BGPPeer selector does not parse; ignored");
            false
        }
    }
}

/// Graceful Restart's Restart Time for every session (BGPPeer `maxRestartTime` overrides it):
/// Calico's BIRD configuration uses 120 s.
pub const DEFAULT_RESTART_TIME: u16 = 120;

/// BGPPeer options beyond address and AS. Calico's defaults: source address = the node's
/// IP (`sourceAddress: UseNodeIP`). Fields this speaker cannot honour are reported, not
/// silently dropped.
fn apply_peer_options(p: &mut PeerConfig, bp: &BGPPeer, me: &NodeInfo) {
    let s = &bp.spec;
    let name = &bp.metadata.name;
    let node_ip = me.ip;
    p.bfd = bfd_for(bp, me.node, p.address);
    if s.restart_mode == "LongLivedGracefulRestart" {
        tracing::warn!(peer = %name, "restartMode LongLivedGracefulRestart is not supported: the session uses plain graceful restart");
    }
    p.source_address = match s.source_address.as_str() {
        "None" => None,
        _ if p.address.is_ipv4() => Some(IpAddr::V4(node_ip)),
        _ => None,
    };
    if let Some(k) = &s.keepalive_time {
        match config::model::parse_go_duration(k) {
            Ok(d) => p.keepalive_time = Some(u16::try_from(d.as_secs()).unwrap_or(u16::MAX)),
            Err(e) => {
                tracing::warn!(peer = %name, keepaliveTime = %k, error = %e, "keepaliveTime ignored")
            }
        }
    }
    if s.password.is_some() {
        tracing::warn!(peer = %name, "password is a Kubernetes secret reference, which this datastore cannot resolve; session runs without TCP MD5");
    }
    if let Some(t) = &s.max_restart_time {
        p.graceful_restart_time = Some(restart_time(name, "maxRestartTime", t));
    }
}

/// BFD for a BGPPeer with `failureDetectionMode: BFDIfDirectlyConnected` (Calico's field)
/// whose address is on the node's own subnet (the prefix of its `ipv4Address`): BFD here
/// is single hop (RFC 5881), so a peer behind a router gets none.
fn bfd_for(bp: &BGPPeer, node: &Node, peer: IpAddr) -> Option<BfdConfig> {
    if bp.spec.failure_detection_mode != "BFDIfDirectlyConnected" {
        return None;
    }
    let subnet: Option<ipnet::Ipv4Net> = node
        .spec
        .bgp
        .as_ref()
        .and_then(|b| b.ipv4_address.parse().ok());
    match (subnet, peer) {
        (Some(net), IpAddr::V4(ip)) if net.prefix_len() < 32 && net.trunc().contains(&ip) => {
            Some(BfdConfig::default())
        }
        _ => {
            tracing::info!(peer = %bp.metadata.name, address = %peer, "BFDIfDirectlyConnected: peer not on this node's subnet, no BFD");
            None
        }
    }
}

/// A Go duration (`maxRestartTime`, `nodeMeshMaxRestartTime`) as a Restart Time in whole
/// seconds, capped at the capability's 12 bits; the default when it does not parse.
fn restart_time(owner: &str, field: &str, value: &str) -> u16 {
    match config::model::parse_go_duration(value) {
        Ok(d) => u16::try_from(d.as_secs())
            .unwrap_or(u16::MAX)
            .min(crate::config::MAX_RESTART_TIME),
        Err(e) => {
            tracing::warn!(%owner, field, value, error = %e, "restart time ignored: using the default");
            DEFAULT_RESTART_TIME
        }
    }
}

pub fn desired(view: &ClusterView, node_name: &str) -> Result<DesiredBgp, DesiredError> {
    let spec = view.bgp_config.as_ref().map(|c| &c.spec);
    let default_as = spec.and_then(|s| s.as_number).map_or(DEFAULT_AS, |a| a.0);
    let me_node = view
        .nodes
        .iter()
        .find(|n| n.metadata.name == node_name)
        .ok_or_else(|| DesiredError::NoSuchNode(node_name.to_string()))?;
    let me = node_info(me_node, default_as).map_err(|reason| DesiredError::NoAddress {
        node: node_name.to_string(),
        reason,
    })?;
    // Nodes without a usable address cannot be peers; Calico skips them too.
    let others: Vec<NodeInfo> = view
        .nodes
        .iter()
        .filter(|n| n.metadata.name != node_name)
        .filter_map(|n| node_info(n, default_as).ok())
        .collect();

    let mesh_restart_time = spec
        .and_then(|s| s.node_mesh_max_restart_time.as_deref())
        .map_or(DEFAULT_RESTART_TIME, |t| {
            restart_time("default", "nodeMeshMaxRestartTime", t)
        });
    let mut peers = BTreeMap::new();
    let node_peer = |other: &NodeInfo, prefix: &str| {
        let mut p = PeerConfig::new(IpAddr::V4(other.ip), other.as_number);
        p.name = Some(session_name(prefix, IpAddr::V4(other.ip)));
        p.passive = me.ip > other.ip;
        p.families = vec![FamilyName::Ipv4];
        p.source_address = Some(IpAddr::V4(me.ip));
        p.graceful_restart_time = Some(mesh_restart_time);
        p.route_reflector_client = me.cluster_id.is_some()
            && other.as_number == me.as_number
            && other.cluster_id != me.cluster_id;
        p
    };

    // Explicit BGPPeers first: they win over the mesh for the same address.
    for bp in &view.peers {
        let s = &bp.spec;
        let global = s.node.is_empty() && s.node_selector.is_empty();
        let applies_to_me = global
            || s.node == node_name
            || (!s.node_selector.is_empty() && selects(&s.node_selector, me.node));
        if !s.peer_ip.is_empty() {
            if !applies_to_me {
                continue;
            }
            let Some((ip, port)) = s.peer_addr() else {
                tracing::warn!(peer = %bp.metadata.name, "BGPPeer peerIP does not parse; ignored");
                continue;
            };
            let Some(asn) = s.as_number else { continue };
            if ip == IpAddr::V4(me.ip) {
                continue;
            }
            let mut p = PeerConfig::new(ip, asn.0);
            p.name = Some(session_name(if global { "Global" } else { "Node" }, ip));
            p.port = port.unwrap_or(p.port);
            p.families = vec![if ip.is_ipv4() {
                FamilyName::Ipv4
            } else {
                FamilyName::Ipv6
            }];
            p.ttl_security = s.ttl_security;
            p.graceful_restart_time = Some(DEFAULT_RESTART_TIME);
            apply_peer_options(&mut p, bp, &me);
            peers.entry(ip).or_insert(p);
        } else if !s.peer_selector.is_empty() {
            let node_side = |n: &Node| {
                global
                    || s.node == n.metadata.name
                    || (!s.node_selector.is_empty() && selects(&s.node_selector, n))
            };
            let peer_side = |n: &Node| selects(&s.peer_selector, n);
            for other in &others {
                let forward = applies_to_me && peer_side(other.node);
                let reverse = peer_side(me.node) && node_side(other.node);
                if forward || reverse {
                    peers.entry(IpAddr::V4(other.ip)).or_insert_with(|| {
                        let mut p = node_peer(other, "Node");
                        p.bfd = bfd_for(bp, me.node, p.address);
                        p
                    });
                }
            }
        }
    }

    if spec.is_some_and(|s| s.node_mesh_password.is_some()) {
        tracing::warn!(
            "nodeMeshPassword is a Kubernetes secret reference, which this datastore cannot resolve; mesh sessions run without TCP MD5"
        );
    }
    let mesh = spec.is_none_or(|s| s.mesh_enabled());
    if mesh && me.cluster_id.is_none() {
        for other in others.iter().filter(|o| o.cluster_id.is_none()) {
            peers
                .entry(IpAddr::V4(other.ip))
                .or_insert_with(|| node_peer(other, "Mesh"));
        }
    }

    let exported: Vec<IpNet> = view
        .pools
        .iter()
        .filter(|p| !p.spec.disable_bgp_export)
        .filter(|p| p.spec.effective_vxlan_mode() != EncapMode::Always)
        .filter_map(|p| p.spec.network())
        .collect();
    let in_export_pool = |net: &IpNet| exported.iter().any(|pool| pool.contains(net));
    let fib_exclude: Vec<IpNet> = view
        .pools
        .iter()
        .filter(|p| p.spec.effective_vxlan_mode() != EncapMode::Never)
        .filter_map(|p| p.spec.network())
        .collect();
    let mut originate: BTreeSet<IpNet> = view
        .affine_blocks
        .iter()
        .filter(|b| in_export_pool(b))
        .copied()
        .collect();
    for ip in &view.borrowed {
        let host = IpNet::from(*ip);
        if in_export_pool(&host) && !originate.iter().any(|b| b.contains(ip)) {
            originate.insert(host);
        }
    }

    Ok(DesiredBgp {
        identity: Identity {
            as_number: me.as_number,
            router_id: me.ip,
            cluster_id: me.cluster_id,
            listen_port: spec.map_or(179, |s| s.effective_listen_port()),
        },
        peers,
        originate,
        fib_exclude,
    })
}
