//! The `calico` plugin: the pod's veth and addressing, delegated IPAM, and the
//! WorkloadEndpoint felix programs the host from.

mod add;
mod check;
mod del;
mod gc;

use std::path::PathBuf;

use config::datastore::Datastore;

use crate::env::Command;
use crate::error::{CniError, PLUGIN_NOT_AVAILABLE, Result};
use crate::skel::Invocation;
use crate::wep::Identity;

/// Runs one command of the `calico` plugin; the text to print on success.
pub async fn run(inv: Invocation) -> Result<Option<String>> {
    match inv.env.command {
        Command::Add => add::add(&inv).await.map(Some),
        Command::Del => del::del(&inv).await.map(|()| None),
        Command::Check => check::check(&inv).await.map(|()| None),
        Command::Gc => gc::gc(&inv).await.map(|()| None),
        Command::Status => status(&inv).await.map(|()| None),
        Command::Version => unreachable!("VERSION is answered before commands run"),
    }
}

/// What ADD, DEL and CHECK derive from the invocation.
pub(crate) struct Ctx {
    pub id: Identity,
    pub host_ifname: String,
    pub ipam_plugin: PathBuf,
}

impl Ctx {
    pub fn new(inv: &Invocation) -> Result<Ctx> {
        inv.conf.check_datastore()?;
        let node = inv.conf.node_name(Invocation::env_var)?;
        let args = &inv.env.args;
        // Without the Kubernetes arguments (plain CNI use) the container is the "pod".
        let namespace = args
            .pod_namespace
            .clone()
            .unwrap_or_else(|| config::datastore::DEFAULT_NAMESPACE.to_string());
        let pod = args
            .pod_name
            .clone()
            .unwrap_or_else(|| inv.env.container_id.clone());
        let ipam = inv.conf.ipam()?;
        let ipam_plugin = crate::delegate::find(&ipam.plugin_type, &inv.env.path)?;
        Ok(Ctx {
            host_ifname: crate::link::host_veth_name(&namespace, &pod),
            id: Identity {
                node,
                namespace,
                pod,
                endpoint: inv.env.ifname.clone(),
                container_id: inv.env.container_id.clone(),
            },
            ipam_plugin,
        })
    }
}

/// Connects to the configured etcd.
pub(crate) async fn connect(inv: &Invocation) -> Result<Datastore> {
    let cfg = inv.conf.etcd_config(Invocation::env_var)?;
    Ok(Datastore::connect(&cfg).await?)
}

/// CNI 1.1 STATUS: ready when etcd answers (IPAM state and endpoints live there).
async fn status(inv: &Invocation) -> Result<()> {
    connect(inv).await.map(drop).map_err(|e| {
        CniError::new(
            PLUGIN_NOT_AVAILABLE,
            "the datastore is not reachable",
            e.to_string(),
        )
    })
}
