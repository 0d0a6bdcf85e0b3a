//! calico-ipam GC (spec 1.1.0): release this node's allocations of this network whose
//! container is not among `cni.dev/valid-attachments`.
//!
//! Handles are cluster-wide, but the runtime only knows its own node's attachments, so only
//! allocations whose `node` attribute is this node are candidates: another node's pods must
//! never be released from here.

use std::collections::BTreeSet;

use ipam::keys::{block_prefix, parse_block_key};
use ipam::{AllocationBlock, IpamError};

use crate::error::{CniError, DATASTORE_FAILURE, Result};
use crate::skel::Invocation;

use super::client;

pub(super) async fn gc(inv: &Invocation) -> Result<()> {
    let valid: BTreeSet<String> = inv
        .conf
        .valid_attachment_set()?
        .into_iter()
        .map(|(cid, _)| cid)
        .collect();
    let network = inv.conf.name()?;
    let node = inv.conf.node_name(Invocation::env_var)?;
    let ipam = client(inv).await?;
    let prefix = format!("{network}.");
    let mut stale = BTreeSet::new();
    for version in [4, 6] {
        let (kvs, _) = ipam.datastore().list_raw(&block_prefix(version)).await?;
        for kv in kvs.iter().filter(|kv| parse_block_key(&kv.key).is_some()) {
            let block: AllocationBlock = serde_json::from_slice(&kv.value).map_err(|e| {
                CniError::new(
                    DATASTORE_FAILURE,
                    format!("cannot decode {}", kv.key),
                    e.to_string(),
                )
            })?;
            for attr in &block.attributes {
                let (Some(handle), Some(owner)) = (attr.handle(), attr.secondary.get("node"))
                else {
                    continue;
                };
                if owner != &node {
                    continue;
                }
                if let Some(cid) = handle.strip_prefix(&prefix)
                    && !valid.contains(cid)
                {
                    stale.insert(handle.to_string());
                }
            }
        }
    }
    for handle in &stale {
        match ipam.release_by_handle(handle).await {
            Ok(freed) => tracing::info!(%handle, ?freed, "stale allocation released"),
            Err(IpamError::HandleNotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(released = stale.len(), "GC done");
    Ok(())
}
