//! Deleted Kubernetes nodes -> their Calico node and IPAM removed, and IPAM garbage
//! collection. Runs a cleanup when a Kubernetes node is deleted, after every (re)list
//! and on gaining leadership (nodes deleted while no replica was watching), and a
//! garbage collection after each cleanup and every `gc_interval`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use config::model::Node as CalicoNode;
use k8s_openapi::api::core::v1::{Node as K8sNode, Pod};
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::watcher::Event;

use super::Ctx;
use super::driver::{Controller, Progress};
use crate::nodes::cleanup::{calico_node_index, read_allocations, release, remove_node};
use crate::nodes::leaks::{ClusterView, LeakTracker, PodPlacement};
use crate::nodes::stale::{k8s_node_name, stale_nodes};

const NAME: &str = "node";

/// IPAM garbage collection timing.
#[derive(Clone, Copy, Debug)]
pub struct GcConfig {
    /// How often allocations are checked.
    pub interval: Duration,
    /// How long a pod address must look leaked before it is released; `None` turns
    /// that off (addresses of deleted nodes are still released).
    pub leak_grace: Option<Duration>,
}

impl Default for GcConfig {
    /// Calico's defaults: every 5 minutes, 15 minutes' grace.
    fn default() -> Self {
        GcConfig {
            interval: Duration::from_secs(300),
            leak_grace: Some(Duration::from_secs(900)),
        }
    }
}

/// The node controller.
pub struct Nodes {
    client: Client,
    ipam: ipam::Ipam,
    gc: GcConfig,
    tracker: LeakTracker,
    k8s_nodes: BTreeSet<String>,
    listing: Option<BTreeSet<String>>,
    listed: bool,
    cleanup_due: bool,
    next_gc: Option<Instant>,
}

impl Nodes {
    pub fn new(client: Client, ds: config::datastore::Datastore, gc: GcConfig) -> Self {
        Nodes {
            client,
            ipam: ipam::Ipam::new(ds, ipam::PoolSource::Datastore),
            gc,
            tracker: LeakTracker::new(gc.leak_grace),
            k8s_nodes: BTreeSet::new(),
            listing: None,
            listed: false,
            cleanup_due: true,
            next_gc: None,
        }
    }

    /// Removes every Calico node whose Kubernetes node is gone.
    async fn cleanup(&mut self, ctx: &Ctx) -> Result<(), String> {
        let (calico, _) = ctx
            .ds
            .list::<CalicoNode>(None)
            .await
            .map_err(|e| e.to_string())?;
        let nodes_api: Api<K8sNode> = Api::all(self.client.clone());
        for name in stale_nodes(&calico, &self.k8s_nodes) {
            let k8s_name = calico
                .iter()
                .find(|n| n.metadata.name == name)
                .and_then(k8s_node_name)
                .unwrap_or(&name)
                .to_string();
            // Confirm with the API server, not only the watch cache (Calico does the
            // same): a node re-created meanwhile must keep its Calico node.
            match nodes_api.get_opt(&k8s_name).await {
                Ok(None) => {}
                Ok(Some(_)) => continue,
                Err(e) => return Err(format!("cannot confirm node {k8s_name} is gone: {e}")),
            }
            if !ctx.leadership.is_leading() {
                return Err("not leading".into());
            }
            remove_node(&ctx.ds, &self.ipam, &name)
                .await
                .map_err(|e| format!("removing node {name}: {e}"))?;
            ctx.metrics.nodes_deleted.inc();
            tracing::info!(node = %name, kubernetes_node = %k8s_name, "Kubernetes node deleted: removed its Calico node, endpoints and IPAM affinities");
        }
        Ok(())
    }

    /// Releases allocations that no longer belong to anything.
    async fn collect_garbage(&mut self, ctx: &Ctx) -> Result<(), String> {
        let nodes_api: Api<K8sNode> = Api::all(self.client.clone());
        let pods_api: Api<Pod> = Api::all(self.client.clone());
        // Fresh lists rather than the watch cache: an address is freed on their word.
        let k8s_nodes = nodes_api
            .list_metadata(&ListParams::default())
            .await
            .map_err(|e| format!("listing nodes: {e}"))?;
        let pods = pods_api
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing pods: {e}"))?;
        let (calico, _) = ctx
            .ds
            .list::<CalicoNode>(None)
            .await
            .map_err(|e| e.to_string())?;
        let view = ClusterView {
            k8s_nodes: k8s_nodes
                .items
                .iter()
                .filter_map(|n| n.metadata.name.clone())
                .collect(),
            calico_nodes: calico_node_index(&calico),
            pods: pod_placements(&pods.items),
        };
        let allocations = read_allocations(&ctx.ds).await.map_err(|e| e.to_string())?;
        let leaked = self.tracker.collect(Instant::now(), &allocations, &view);
        ctx.metrics
            .ipam_leak_candidates
            .set(i64::try_from(self.tracker.candidates()).unwrap_or(i64::MAX));
        if leaked.is_empty() {
            return Ok(());
        }
        if !ctx.leadership.is_leading() {
            return Err("not leading".into());
        }
        for a in &leaked {
            tracing::info!(ip = %a.ip, handle = a.handle.as_deref().unwrap_or(""), node = a.attrs.get("node").map(String::as_str).unwrap_or(""), pod = a.attrs.get("pod").map(String::as_str).unwrap_or(""), "releasing leaked IPAM address");
        }
        let n = release(&self.ipam, &leaked)
            .await
            .map_err(|e| e.to_string())?;
        for a in &leaked {
            self.tracker.forget(a);
        }
        ctx.metrics
            .ipam_released
            .inc_by(u64::try_from(n).unwrap_or(0));
        Ok(())
    }
}

fn pod_placements(pods: &[Pod]) -> BTreeMap<(String, String), PodPlacement> {
    pods.iter()
        .filter_map(|p| {
            let key = (p.metadata.namespace.clone()?, p.metadata.name.clone()?);
            let node = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            let ips = p
                .status
                .as_ref()
                .and_then(|s| s.pod_ips.as_ref())
                .map(|ips| ips.iter().filter_map(|i| i.ip.parse().ok()).collect())
                .unwrap_or_default();
            Some((key, PodPlacement { node, ips }))
        })
        .collect()
}

impl Controller<K8sNode> for Nodes {
    fn name(&self) -> &'static str {
        NAME
    }

    fn on_event(&mut self, event: Event<K8sNode>) {
        match event {
            Event::Init => self.listing = Some(BTreeSet::new()),
            Event::InitApply(n) => {
                if let Some(name) = n.metadata.name {
                    self.listing.get_or_insert_with(BTreeSet::new).insert(name);
                }
            }
            Event::InitDone => {
                self.k8s_nodes = self.listing.take().unwrap_or_default();
                self.listed = true;
                self.cleanup_due = true;
            }
            Event::Apply(n) => {
                if let Some(name) = n.metadata.name {
                    self.k8s_nodes.insert(name);
                }
            }
            Event::Delete(n) => {
                if let Some(name) = n.metadata.name {
                    tracing::info!(node = %name, "Kubernetes node deleted");
                    self.k8s_nodes.remove(&name);
                    self.cleanup_due = true;
                }
            }
        }
    }

    fn on_leading(&mut self) {
        self.cleanup_due = true;
    }

    async fn reconcile(&mut self, ctx: &Ctx) -> Progress {
        if !self.listed {
            return Progress::Done;
        }
        if self.cleanup_due {
            let started = Instant::now();
            if let Err(e) = self.cleanup(ctx).await {
                tracing::warn!(controller = NAME, error = %e, "node cleanup failed; will retry");
                ctx.metrics.write_errors.with_label_values(&[NAME]).inc();
                return Progress::Retry;
            }
            self.cleanup_due = false;
            self.next_gc = None;
            ctx.metrics
                .sync_seconds
                .with_label_values(&[NAME])
                .observe(started.elapsed().as_secs_f64());
        }
        if self.next_gc.is_none_or(|t| Instant::now() >= t) {
            if let Err(e) = self.collect_garbage(ctx).await {
                tracing::warn!(controller = NAME, error = %e, "IPAM garbage collection failed; will retry");
                ctx.metrics.write_errors.with_label_values(&[NAME]).inc();
                return Progress::Retry;
            }
            self.next_gc = Some(Instant::now() + self.gc.interval);
        }
        Progress::Done
    }

    fn synced(&self) -> bool {
        self.listed && !self.cleanup_due
    }

    fn wake_in(&self) -> Option<Duration> {
        self.next_gc
            .map(|t| t.saturating_duration_since(Instant::now()))
    }
}
