//! The `calico-ipam` plugin: addresses from Calico's block IPAM in etcd. The handle of a
//! container's addresses is `<network name>.<containerID>`; each allocation carries Calico's
//! secondary attributes `namespace`, `node`, `pod` and `timestamp`.

mod assign;
mod gc;
mod time;

use std::collections::BTreeMap;

use config::datastore::Datastore;
use ipam::{Ipam, IpamError, PoolSource};

use crate::env::Command;
use crate::error::{CHECK_MISMATCH, CniError, INVALID_CONFIG, PLUGIN_NOT_AVAILABLE, Result};
use crate::result::CniResult;
use crate::skel::Invocation;

/// Runs one command of the `calico-ipam` plugin; the text to print on success.
pub async fn run(inv: Invocation) -> Result<Option<String>> {
    inv.conf.check_datastore()?;
    match inv.env.command {
        Command::Add => assign::add(&inv).await.map(Some),
        Command::Del => del(&inv).await.map(|()| None),
        Command::Check => check(&inv).await.map(|()| None),
        Command::Gc => gc::gc(&inv).await.map(|()| None),
        Command::Status => status(&inv).await.map(|()| None),
        Command::Version => unreachable!("VERSION is answered before commands run"),
    }
}

/// `<network name>.<containerID>`, Calico's CNI handle (REFERENCE.md section 3).
pub fn handle_id(network: &str, container_id: &str) -> String {
    format!("{network}.{container_id}")
}

pub(crate) async fn client(inv: &Invocation) -> Result<Ipam> {
    let cfg = inv.conf.etcd_config(Invocation::env_var)?;
    let ds = Datastore::connect(&cfg).await?;
    let ipam = Ipam::new(ds, PoolSource::Datastore);
    Ok(match inv.conf.ipam()?.hint_dir() {
        Some(dir) => ipam.with_hint_dir(dir),
        None => ipam,
    })
}

/// The secondary attributes stored with each allocation.
pub(crate) fn attributes(inv: &Invocation, node: &str) -> BTreeMap<String, String> {
    let args = &inv.env.args;
    let mut attrs = BTreeMap::from([
        ("node".to_string(), node.to_string()),
        ("timestamp".to_string(), time::now_rfc3339()),
    ]);
    if let Some(ns) = &args.pod_namespace {
        attrs.insert("namespace".into(), ns.clone());
    }
    if let Some(pod) = &args.pod_name {
        attrs.insert("pod".into(), pod.clone());
    }
    attrs
}

/// DEL: releases everything the handle holds; an unknown handle is already released.
async fn del(inv: &Invocation) -> Result<()> {
    let handle = handle_id(inv.conf.name()?, &inv.env.container_id);
    let ipam = client(inv).await?;
    match ipam.release_by_handle(&handle).await {
        Ok(freed) => {
            tracing::info!(%handle, ?freed, "released");
            Ok(())
        }
        Err(IpamError::HandleNotFound { .. }) => {
            tracing::debug!(%handle, "nothing allocated");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// CHECK: every address of `prevResult` is still allocated to this container's handle.
async fn check(inv: &Invocation) -> Result<()> {
    let handle = handle_id(inv.conf.name()?, &inv.env.container_id);
    let prev = inv.conf.prev_result.as_ref().ok_or_else(|| {
        CniError::new(
            INVALID_CONFIG,
            "CHECK needs prevResult",
            "the runtime must pass it",
        )
    })?;
    let prev = CniResult::from_value(prev, "prevResult")?;
    let ipam = client(inv).await?;
    for ip in &prev.ips {
        let addr = ip.address.addr();
        let owner = ipam
            .get_assignment_attributes(addr)
            .await?
            .and_then(|a| a.handle().map(str::to_string));
        if owner.as_deref() != Some(handle.as_str()) {
            return Err(CniError::new(
                CHECK_MISMATCH,
                format!("{addr} is not allocated to {handle}"),
                format!("owner: {}", owner.as_deref().unwrap_or("none")),
            ));
        }
    }
    Ok(())
}

async fn status(inv: &Invocation) -> Result<()> {
    client(inv).await.map(drop).map_err(|e| {
        CniError::new(
            PLUGIN_NOT_AVAILABLE,
            "the datastore is not reachable",
            e.to_string(),
        )
    })
}
