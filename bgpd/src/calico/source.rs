//! Reads the [`ClusterView`] from etcd: resources through the typed datastore, IPAM
//! affinities and blocks through the ipam crate's keys and JSON.

use std::net::IpAddr;

use config::datastore::{Datastore, DatastoreError};
use config::model::{BGPConfiguration, BGPPeer, IPPool, Node};
use ipam::{AffinityState, AllocationBlock, Ipam, PoolSource};

use super::desired::ClusterView;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Datastore(#[from] DatastoreError),
    #[error("IPAM data: {0}")]
    Ipam(#[from] ipam::IpamError),
    #[error("undecodable IPAM block {key}: {message}")]
    Block { key: String, message: String },
}

/// Everything the speaker depends on, and the store revision to watch from (taken before
/// the reads, so no change between reading and watching is missed).
pub async fn read_view(ds: &Datastore, node: &str) -> Result<(ClusterView, i64), SourceError> {
    let (_, revision) = ds
        .list_raw("/calico/resources/v3/projectcalico.org/nodes/")
        .await?;
    let (nodes, _) = ds.list::<Node>(None).await?;
    let bgp_config = ds.get::<BGPConfiguration>(None, "default").await?;
    let (peers, _) = ds.list::<BGPPeer>(None).await?;
    let (pools, _) = ds.list::<IPPool>(None).await?;
    let ipam = Ipam::new(ds.clone(), PoolSource::Datastore);
    let affine_blocks = ipam
        .host_affinities(node, 4)
        .await?
        .into_iter()
        .chain(ipam.host_affinities(node, 6).await?)
        .filter(|a| a.state == AffinityState::Confirmed)
        .map(|a| a.cidr)
        .collect();
    let borrowed = borrowed_addresses(ds, node).await?;
    Ok((
        ClusterView {
            nodes,
            bgp_config,
            peers,
            pools,
            affine_blocks,
            borrowed,
        },
        revision,
    ))
}

/// Addresses allocated to `node`'s workloads (attribute `node`) in blocks affine to
/// another node: Calico advertises these as host routes from the borrowing node.
async fn borrowed_addresses(ds: &Datastore, node: &str) -> Result<Vec<IpAddr>, SourceError> {
    let mut out = Vec::new();
    for version in [4, 6] {
        let (kvs, _) = ds.list_raw(&ipam::keys::block_prefix(version)).await?;
        for kv in kvs {
            let block: AllocationBlock =
                serde_json::from_slice(&kv.value).map_err(|e| SourceError::Block {
                    key: kv.key.clone(),
                    message: e.to_string(),
                })?;
            if block.host() == Some(node) {
                continue;
            }
            for (ordinal, slot) in block.allocations.iter().enumerate() {
                let borrowed_by_us = slot
                    .and_then(|i| block.attributes.get(i))
                    .is_some_and(|a| a.secondary.get("node").map(String::as_str) == Some(node));
                if borrowed_by_us {
                    out.push(block.ip_at(ordinal));
                }
            }
        }
    }
    Ok(out)
}
