//! This node's VXLAN tunnel address and VTEP MAC, as calico-node's `allocateip` keeps
//! them: while a pool uses VXLAN and the Node lacks `spec.ipv4VXLANTunnelAddr` (or holds
//! one outside every VXLAN pool) or `spec.vxlanTunnelMACAddr`, an address is assigned
//! from the VXLAN pools under the handle `vxlan-tunnel-addr-<node>` and written to the
//! Node with a fresh locally administered MAC. The Node's update then reaches every
//! felix through the syncer like any other change. kube-controllers releases the
//! address when the node goes.
//!
//! The owner loop says what is needed ([`TunnelNeed`], pure: [`tunnel_need`]); this
//! task does the etcd work, retrying with backoff, so the dataplane never waits on it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use config::datastore::{Datastore, DatastoreError, EtcdConfig};
use config::model::{EncapMode, Node};
use daemon_kit::backoff::Backoff;
use ipam::{AutoAssignArgs, Ipam, PoolSource};
use ipnet::{IpNet, Ipv4Net};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::calc::CalcInput;
use crate::calc::overlay::format_mac;

/// Calico's IPAM handle for a node's VXLAN tunnel address.
pub fn handle(node: &str) -> String {
    format!("vxlan-tunnel-addr-{node}")
}

/// What the Node needs: the VXLAN pools to take an address from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelNeed {
    pub pools: Vec<Ipv4Net>,
}

/// Whether this node needs a VXLAN tunnel address or MAC written (see the module doc).
/// `None` when no pool uses VXLAN, the Node is not in the datastore (felix does not
/// create it), or it has both.
pub fn tunnel_need(input: &CalcInput) -> Option<TunnelNeed> {
    let pools: Vec<Ipv4Net> = input
        .pools
        .values()
        .filter(|p| p.spec.effective_vxlan_mode() != EncapMode::Never && !p.spec.disabled)
        .filter_map(|p| p.spec.cidr.parse().ok())
        .collect();
    let node = input.nodes.get(&input.node)?;
    if pools.is_empty() {
        return None;
    }
    let addr_ok = node
        .vxlan_tunnel_addr
        .is_some_and(|a| pools.iter().any(|p| p.contains(&a)));
    (!addr_ok || node.vxlan_mac.is_none()).then_some(TunnelNeed { pools })
}

/// A locally administered unicast MAC (first octet `x2`, `x6`, `xa` or `xe`), random
/// enough that two nodes never share one; it is stored in the Node, never derived again.
pub fn fresh_mac(node: &str) -> [u8; 6] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let digest = Sha256::new()
        .chain_update(node.as_bytes())
        .chain_update(nanos.to_le_bytes())
        .chain_update(std::process::id().to_le_bytes())
        .finalize();
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&digest[..6]);
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("datastore: {0}")]
    Datastore(#[from] DatastoreError),
    #[error("IPAM: {0}")]
    Ipam(#[from] ipam::IpamError),
    #[error("Node {0} is not in the datastore")]
    NoNode(String),
    #[error("IPAM assigned no IPv4 address from the VXLAN pools {0:?}")]
    NothingAssigned(Vec<Ipv4Net>),
}

/// Follows `need` until the sender goes: whenever it holds a need, makes the Node whole.
pub async fn run(etcd: EtcdConfig, node: String, mut need: watch::Receiver<Option<TunnelNeed>>) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30)).jitter(0.2);
    let mut ds: Option<Datastore> = None;
    loop {
        let wanted = need.borrow_and_update().clone();
        if let Some(wanted) = wanted {
            let result = match &ds {
                Some(ds) => ensure(ds, &node, &wanted).await,
                None => match Datastore::connect(&etcd).await {
                    Ok(connected) => {
                        let r = ensure(&connected, &node, &wanted).await;
                        ds = Some(connected);
                        r
                    }
                    Err(e) => Err(e.into()),
                },
            };
            match result {
                Ok(()) => backoff.reset(),
                Err(error) => {
                    let delay = backoff.next_delay();
                    warn!(%error, retry_in = ?delay, "VXLAN tunnel address not written yet");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => continue,
                        changed = need.changed() => if changed.is_err() { return },
                    }
                    continue;
                }
            }
        }
        if need.changed().await.is_err() {
            return;
        }
    }
}

/// Writes a tunnel address from `need.pools` and a MAC to the Node when it lacks them.
/// Idempotent: a Node that already has both (another felix run got there) is left be;
/// an address left under the handle by an attempt that did not reach the Node is
/// released before a new one is assigned.
pub async fn ensure(ds: &Datastore, node: &str, need: &TunnelNeed) -> Result<(), TunnelError> {
    let ipam = Ipam::new(ds.clone(), PoolSource::Datastore);
    let current = ds
        .get::<Node>(None, node)
        .await?
        .ok_or_else(|| TunnelError::NoNode(node.into()))?;
    let have: Option<Ipv4Addr> = current.spec.ipv4_vxlan_tunnel_addr.parse().ok();
    let addr = match have.filter(|a| need.pools.iter().any(|p| p.contains(a))) {
        Some(a) => a,
        None => {
            match ipam.release_by_handle(&handle(node)).await {
                Ok(released) if !released.is_empty() => {
                    info!(?released, "released a tunnel address the Node did not hold");
                }
                Ok(_) | Err(ipam::IpamError::HandleNotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            let assigned = ipam
                .auto_assign(&AutoAssignArgs {
                    num_v4: 1,
                    handle_id: handle(node),
                    attrs: BTreeMap::from([
                        ("node".to_string(), node.to_string()),
                        ("type".to_string(), "vxlanTunnelAddress".to_string()),
                    ]),
                    hostname: node.into(),
                    node_labels: current.metadata.labels.clone(),
                    pools: Some(need.pools.iter().copied().map(IpNet::V4).collect()),
                    ..AutoAssignArgs::default()
                })
                .await?;
            match assigned.first().map(|a| a.ip) {
                Some(std::net::IpAddr::V4(a)) => a,
                _ => return Err(TunnelError::NothingAssigned(need.pools.clone())),
            }
        }
    };
    // The Node may change under us (labels, BGP fields): read, modify, compare-and-swap.
    let mut node_obj = current;
    for attempt in 1.. {
        if node_obj.spec.ipv4_vxlan_tunnel_addr == addr.to_string()
            && !node_obj.spec.vxlan_tunnel_mac_addr.is_empty()
        {
            return Ok(());
        }
        node_obj.spec.ipv4_vxlan_tunnel_addr = addr.to_string();
        if crate::calc::routes::parse_mac(&node_obj.spec.vxlan_tunnel_mac_addr).is_none() {
            node_obj.spec.vxlan_tunnel_mac_addr = format_mac(&fresh_mac(node));
        }
        match ds.update(&node_obj).await {
            Ok(_) => {
                info!(
                    tunnel_addr = %addr,
                    mac = %node_obj.spec.vxlan_tunnel_mac_addr,
                    "VXLAN tunnel address and MAC written to the Node"
                );
                return Ok(());
            }
            Err(DatastoreError::Conflict { .. }) if attempt < 5 => {
                node_obj = ds
                    .get::<Node>(None, node)
                    .await?
                    .ok_or_else(|| TunnelError::NoNode(node.into()))?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns")
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::model::{IPPool, IPPoolSpec, NodeSpec};

    fn input(pool_mode: Option<EncapMode>, node: Option<(&str, &str)>) -> CalcInput {
        let mut input = CalcInput::new("n1");
        let pool = IPPool::named(
            "p",
            IPPoolSpec {
                cidr: "10.70.0.0/16".into(),
                vxlan_mode: pool_mode,
                ..IPPoolSpec::default()
            },
        );
        input.pools.insert("p".into(), pool);
        if let Some((addr, mac)) = node {
            let n = Node::named(
                "n1",
                NodeSpec {
                    ipv4_vxlan_tunnel_addr: addr.into(),
                    vxlan_tunnel_mac_addr: mac.into(),
                    ..NodeSpec::default()
                },
            );
            input.apply_update(crate::calc::Update::NodeSet(n));
        }
        input
    }

    #[test]
    fn a_node_needs_an_address_in_a_vxlan_pool_and_a_mac() {
        let want = Some(TunnelNeed {
            pools: vec!["10.70.0.0/16".parse().unwrap()],
        });
        let always = Some(EncapMode::Always);
        assert_eq!(tunnel_need(&input(always, Some(("", "")))), want);
        assert_eq!(tunnel_need(&input(always, Some(("10.70.0.1", "")))), want);
        // An address from a pool that no longer uses VXLAN: a new one.
        assert_eq!(
            tunnel_need(&input(always, Some(("10.99.0.1", "66:00:00:00:00:01")))),
            want
        );
        assert_eq!(
            tunnel_need(&input(always, Some(("10.70.0.1", "66:00:00:00:00:01")))),
            None
        );
        // No VXLAN pool, or no Node to write to.
        assert_eq!(
            tunnel_need(&input(Some(EncapMode::Never), Some(("", "")))),
            None
        );
        assert_eq!(tunnel_need(&input(always, None)), None);
    }

    #[test]
    fn fresh_macs_are_local_unicast_and_differ() {
        let a = fresh_mac("n1");
        let b = fresh_mac("n2");
        assert_eq!(a[0] & 0x03, 0x02, "{a:x?}");
        assert_ne!(a, b);
    }
}
