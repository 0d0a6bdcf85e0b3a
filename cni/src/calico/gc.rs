//! GC (spec 1.1.0): forget attachments the runtime no longer knows. The IPAM plugin releases
//! their addresses; this plugin deletes this node's WorkloadEndpoints whose
//! (containerID, interface) is not among `cni.dev/valid-attachments`.

use config::model::WorkloadEndpoint;

use crate::error::{INVALID_ENV, Result};
use crate::skel::Invocation;
use crate::{delegate, wep};

use super::connect;

pub(super) async fn gc(inv: &Invocation) -> Result<()> {
    let valid = inv.conf.valid_attachment_set()?;
    inv.conf.check_datastore()?;
    let node = inv.conf.node_name(Invocation::env_var)?;
    let ipam = inv.conf.ipam()?;
    let plugin = delegate::find(&ipam.plugin_type, &inv.env.path)?;
    match delegate::exec(&plugin, "GC", &inv.stdin).await {
        Ok(_) => {}
        // IPAM plugins older than spec 1.1 (Debian's host-local) do not know GC.
        Err(e) if e.code == INVALID_ENV || e.code == crate::error::INCOMPATIBLE_VERSION => {
            tracing::info!(plugin = %plugin.display(), error = %e, "IPAM plugin does not garbage-collect")
        }
        Err(e) => return Err(e),
    }
    let ds = connect(inv).await?;
    let (weps, _) = ds.list::<WorkloadEndpoint>(None).await?;
    let mut deleted = 0;
    for w in weps {
        let s = &w.spec;
        if s.node != node
            || s.orchestrator != wep::ORCHESTRATOR
            || valid.contains(&(s.container_id.clone(), s.endpoint.clone()))
        {
            continue;
        }
        let id = wep::Identity {
            node: node.clone(),
            namespace: w.metadata.namespace.clone().unwrap_or_default(),
            pod: s.pod.clone(),
            endpoint: s.endpoint.clone(),
            container_id: s.container_id.clone(),
        };
        if id.wep_name() != w.metadata.name {
            // Not named the way this plugin names endpoints: someone else's.
            continue;
        }
        if wep::delete_if_owned(&ds, &id).await? {
            deleted += 1;
            tracing::info!(wep = %w.metadata.name, container = %s.container_id, "stale endpoint removed");
        }
    }
    tracing::info!(deleted, "GC done");
    Ok(())
}
