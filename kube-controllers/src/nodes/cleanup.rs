//! The etcd side of removing a node and collecting IPAM garbage. Removal follows
//! libcalico-go's `Nodes().Delete` in etcd mode, in an order that a crash half-way
//! leaves retryable (the Calico Node, which marks the node stale, goes last):
//! release the addresses of its endpoints and tunnels, delete its endpoints, release
//! its block affinities, delete its BGPPeers, `node.<name>` BGPConfiguration and
//! HostEndpoints, then the Node.

use std::collections::BTreeMap;

use config::datastore::{Datastore, DatastoreError};
use config::model::{BGPConfiguration, BGPPeer, HostEndpoint, Node, Resource, WorkloadEndpoint};
use ipam::keys::block_prefix;
use ipam::{AllocationBlock, Ipam, IpamError, ReleaseOptions};

use super::leaks::Allocation;
use super::stale::node_addresses;

#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error(transparent)]
    Datastore(#[from] DatastoreError),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error("cannot decode the IPAM block at {key}: {message}")]
    Block { key: String, message: String },
}

/// Removes Calico node `name` and everything that is only there for it.
pub async fn remove_node(ds: &Datastore, ipam: &Ipam, name: &str) -> Result<(), CleanupError> {
    let node = ds.get::<Node>(None, name).await?;
    let (weps, _) = ds.list::<WorkloadEndpoint>(None).await?;
    let weps: Vec<WorkloadEndpoint> = weps.into_iter().filter(|w| w.spec.node == name).collect();
    let ips = node_addresses(node.as_ref(), name, &weps);
    if !ips.is_empty() {
        let opts: Vec<ReleaseOptions> = ips.iter().copied().map(ReleaseOptions::ip).collect();
        ipam.release_ips(&opts).await?;
    }
    for w in &weps {
        delete_if_present::<WorkloadEndpoint>(
            ds,
            w.metadata.namespace.as_deref(),
            &w.metadata.name,
        )
        .await?;
    }
    ipam.release_host_affinities(name, false).await?;
    let (peers, _) = ds.list::<BGPPeer>(None).await?;
    for p in peers.iter().filter(|p| p.spec.node == name) {
        delete_if_present::<BGPPeer>(ds, None, &p.metadata.name).await?;
    }
    delete_if_present::<BGPConfiguration>(ds, None, &format!("node.{name}")).await?;
    let (heps, _) = ds.list::<HostEndpoint>(None).await?;
    for h in heps.iter().filter(|h| h.spec.node == name) {
        delete_if_present::<HostEndpoint>(ds, None, &h.metadata.name).await?;
    }
    delete_if_present::<Node>(ds, None, name).await?;
    Ok(())
}

async fn delete_if_present<T: Resource>(
    ds: &Datastore,
    namespace: Option<&str>,
    name: &str,
) -> Result<(), DatastoreError> {
    match ds.delete::<T>(namespace, name, None).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Every allocated address of every block, with its handle and attributes.
pub async fn read_allocations(ds: &Datastore) -> Result<Vec<Allocation>, CleanupError> {
    let mut out = Vec::new();
    for version in [4, 6] {
        let (kvs, _) = ds.list_raw(&block_prefix(version)).await?;
        for kv in kvs {
            let block: AllocationBlock =
                serde_json::from_slice(&kv.value).map_err(|e| CleanupError::Block {
                    key: kv.key.clone(),
                    message: e.to_string(),
                })?;
            out.extend(block_allocations(&block));
        }
    }
    Ok(out)
}

/// The allocations of one block.
pub fn block_allocations(block: &AllocationBlock) -> Vec<Allocation> {
    (0..block.allocations.len())
        .filter_map(|ordinal| {
            let attr = block.attribute_of(ordinal)?;
            Some(Allocation {
                ip: block.ip_at(ordinal),
                handle: attr.handle().map(str::to_string),
                attrs: attr.secondary.clone(),
                sequence: block
                    .sequence_number_for_allocation
                    .get(&ordinal.to_string())
                    .copied(),
            })
        })
        .collect()
}

/// Releases `leaked`, each only if it still has the handle and sequence number it was
/// read with (so an address re-allocated meanwhile stays). Returns how many went.
pub async fn release(ipam: &Ipam, leaked: &[Allocation]) -> Result<usize, CleanupError> {
    if leaked.is_empty() {
        return Ok(0);
    }
    let opts: Vec<ReleaseOptions> = leaked
        .iter()
        .map(|a| ReleaseOptions {
            ip: a.ip,
            sequence_number: a.sequence,
            handle: a.handle.clone(),
        })
        .collect();
    let not_allocated = ipam.release_ips(&opts).await?;
    Ok(leaked.len() - not_allocated.len().min(leaked.len()))
}

/// Calico node name -> its Kubernetes node name (`None`: not a Kubernetes node).
pub fn calico_node_index(nodes: &[Node]) -> BTreeMap<String, Option<String>> {
    nodes
        .iter()
        .map(|n| {
            (
                n.metadata.name.clone(),
                super::stale::k8s_node_name(n).map(str::to_string),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_carry_handle_attributes_and_sequence() {
        let block: AllocationBlock = serde_json::from_str(
            r#"{"cidr":"10.65.79.0/30","affinity":"host:n1","allocations":[0,null,1,null],
            "unallocated":[1,3],"attributes":[
              {"handle_id":"k8s-pod-network.c1","secondary":{"namespace":"prod","node":"n1","pod":"web"}},
              {"handle_id":"ipip-tunnel-addr-n1","secondary":{"node":"n1","type":"ipipTunnelAddress"}}],
            "sequenceNumber":7,"sequenceNumberForAllocation":{"0":6,"2":3},"deleted":false}"#,
        )
        .unwrap();
        let a = block_allocations(&block);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].ip.to_string(), "10.65.79.0");
        assert_eq!(a[0].handle.as_deref(), Some("k8s-pod-network.c1"));
        assert_eq!(a[0].attrs["pod"], "web");
        assert_eq!(a[0].sequence, Some(6));
        assert_eq!(a[1].ip.to_string(), "10.65.79.2");
        assert_eq!(a[1].sequence, Some(3));
    }
}
