//! Reads what the speaker depends on from etcd, in parts that can be re-read separately:
//! resources through the typed datastore, this node's affinities and the borrowed
//! addresses through the ipam crate's keys and JSON.

use std::collections::BTreeMap;
use std::net::IpAddr;

use config::datastore::{Datastore, DatastoreError, resource_prefix};
use config::model::{BGPConfiguration, BGPPeer, IPPool, Node};
use ipam::{AffinityState, AllocationBlock, Ipam, PoolSource};
use ipnet::IpNet;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Datastore(#[from] DatastoreError),
    #[error("IPAM data: {0}")]
    Ipam(#[from] ipam::IpamError),
}

/// The resources that shape peerings and exports.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    pub nodes: Vec<Node>,
    pub bgp_config: Option<BGPConfiguration>,
    pub peers: Vec<BGPPeer>,
    pub pools: Vec<IPPool>,
}

/// Key prefixes whose changes matter, by part. WorkloadEndpoints, policies, profiles,
/// handles and other nodes' affinities do not change this node's BGP configuration.
pub fn resource_prefixes() -> [String; 4] {
    [
        resource_prefix::<Node>(None),
        resource_prefix::<BGPConfiguration>(None),
        resource_prefix::<BGPPeer>(None),
        resource_prefix::<IPPool>(None),
    ]
}

pub fn affinity_prefixes(node: &str) -> [String; 2] {
    [
        ipam::keys::host_affinity_prefix(node, 4),
        ipam::keys::host_affinity_prefix(node, 6),
    ]
}

pub fn block_prefixes() -> [String; 2] {
    [ipam::keys::block_prefix(4), ipam::keys::block_prefix(6)]
}

/// The store revision to watch from: taken before any read, so no change between the
/// reads and the watch is missed (a change seen twice only causes a recomputation).
pub async fn current_revision(ds: &Datastore) -> Result<i64, SourceError> {
    Ok(ds
        .list_raw(&resource_prefix::<BGPConfiguration>(None))
        .await?
        .1)
}

pub async fn read_resources(ds: &Datastore) -> Result<Resources, SourceError> {
    Ok(Resources {
        nodes: ds.list::<Node>(None).await?.0,
        bgp_config: ds.get::<BGPConfiguration>(None, "default").await?,
        peers: ds.list::<BGPPeer>(None).await?.0,
        pools: ds.list::<IPPool>(None).await?.0,
    })
}

/// This node's confirmed block affinities.
pub async fn read_affinities(ds: &Datastore, node: &str) -> Result<Vec<IpNet>, SourceError> {
    let ipam = Ipam::new(ds.clone(), PoolSource::Datastore);
    let mut out = Vec::new();
    for version in [4, 6] {
        out.extend(
            ipam.host_affinities(node, version)
                .await?
                .into_iter()
                .filter(|a| a.state == AffinityState::Confirmed)
                .map(|a| a.cidr),
        );
    }
    Ok(out)
}

/// Per block key: addresses `node`'s workloads hold in that block while it is affine to
/// another node (Calico advertises these as host routes from the borrowing node).
pub async fn read_borrowed(
    ds: &Datastore,
    node: &str,
) -> Result<BTreeMap<String, Vec<IpAddr>>, SourceError> {
    let mut out = BTreeMap::new();
    for prefix in block_prefixes() {
        for kv in ds.list_raw(&prefix).await?.0 {
            let borrowed = borrowed_in_block(&kv.key, &kv.value, node);
            if !borrowed.is_empty() {
                out.insert(kv.key, borrowed);
            }
        }
    }
    Ok(out)
}

/// The addresses `node` borrowed in one block value. An undecodable block is reported
/// and counts as none: one bad key must not stop the speaker.
pub fn borrowed_in_block(key: &str, value: &[u8], node: &str) -> Vec<IpAddr> {
    let block: AllocationBlock = match serde_json::from_slice(value) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(key, error = %e, "undecodable IPAM block ignored");
            return Vec::new();
        }
    };
    if block.host() == Some(node) {
        return Vec::new();
    }
    block
        .allocations
        .iter()
        .enumerate()
        .filter(|(_, slot)| {
            slot.and_then(|i| block.attributes.get(i))
                .is_some_and(|a| a.secondary.get("node").map(String::as_str) == Some(node))
        })
        .map(|(ordinal, _)| block.ip_at(ordinal))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = r#"{"cidr":"10.65.79.0/26","affinity":"host:node2",
        "allocations":[0,null,1,0],"unallocated":[1],
        "attributes":[{"handle_id":"k8s-pod-network.a","secondary":{"node":"node2"}},
                      {"handle_id":"k8s-pod-network.b","secondary":{"node":"node1","pod":"p"}}],
        "sequenceNumber":3,"deleted":false}"#;

    #[test]
    fn borrowed_addresses_are_ours_in_other_nodes_blocks() {
        let key = "/calico/ipam/v2/assignment/ipv4/block/10.65.79.0-26";
        assert_eq!(
            borrowed_in_block(key, BLOCK.as_bytes(), "node1"),
            vec!["10.65.79.2".parse::<IpAddr>().unwrap()]
        );
        // In its own block nothing is borrowed; garbage counts as nothing.
        assert!(borrowed_in_block(key, BLOCK.as_bytes(), "node2").is_empty());
        assert!(borrowed_in_block(key, b"{not json", "node1").is_empty());
    }
}
