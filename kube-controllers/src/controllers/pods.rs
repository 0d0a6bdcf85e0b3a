//! Pods -> the labels, profiles and service account of their workload endpoints.
//! The CNI plugin creates an endpoint at pod ADD with the same values; this keeps them
//! current when a pod's labels change. Endpoints are found by namespace and
//! `spec.pod`; a pod without an endpoint yet is skipped (the CNI plugin will write it).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use config::model::WorkloadEndpoint;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::Event;

use super::Ctx;
use super::driver::{Controller, Progress};
use super::write::{Outcome, failed, perform};
use crate::convert::endpoint::{PodView, belongs_to, updated_endpoint};
use crate::reconcile::Write;

const NAME: &str = "workloadendpoint";
/// A full resync instead of per-namespace listings when this many pods are pending.
const RESYNC_ABOVE: usize = 256;
/// Attempts per endpoint when writes keep losing races.
const ATTEMPTS: usize = 5;

type PodKey = (String, String);

/// The workload endpoint controller.
#[derive(Default)]
pub struct Endpoints {
    pods: BTreeMap<PodKey, PodView>,
    listing: Option<BTreeMap<PodKey, PodView>>,
    dirty: BTreeSet<PodKey>,
    resync: bool,
    listed: bool,
}

impl Endpoints {
    pub fn new() -> Self {
        Endpoints {
            resync: true,
            ..Self::default()
        }
    }

    /// Brings the endpoints in `weps` up to date with their pods; returns the pods
    /// whose endpoints could not be written.
    async fn update(
        &self,
        ctx: &Ctx,
        weps: Vec<WorkloadEndpoint>,
        only: Option<&BTreeSet<PodKey>>,
    ) -> Result<BTreeSet<PodKey>, ()> {
        let mut failed_pods = BTreeSet::new();
        let mut rest = weps.into_iter();
        while let Some(wep) = rest.next() {
            let Some(ns) = wep.metadata.namespace.clone() else {
                continue;
            };
            let key = (ns, wep.spec.pod.clone());
            if only.is_some_and(|o| !o.contains(&key)) {
                continue;
            }
            let Some(pod) = self.pods.get(&key) else {
                continue;
            };
            if !belongs_to(&wep, &key.0, &key.1) {
                continue;
            }
            match update_one(ctx, wep, pod).await {
                Outcome::Done => {}
                Outcome::NotLeading => return Err(()),
                Outcome::Conflict => {
                    failed_pods.insert(key);
                }
                Outcome::Failed => {
                    // etcd is likely down: everything still to do is retried later
                    // rather than waiting out a timeout per endpoint.
                    failed_pods.insert(key);
                    failed_pods.extend(
                        rest.filter_map(|w| {
                            Some((w.metadata.namespace.clone()?, w.spec.pod.clone()))
                        }),
                    );
                    break;
                }
            }
        }
        Ok(failed_pods)
    }

    async fn full_resync(&mut self, ctx: &Ctx) -> Progress {
        let started = Instant::now();
        let weps = match ctx.ds.list::<WorkloadEndpoint>(None).await {
            Ok((weps, _)) => weps,
            Err(e) => {
                failed(ctx, NAME, "list", "*", &e);
                return Progress::Retry;
            }
        };
        let n = weps.len();
        match self.update(ctx, weps, None).await {
            Ok(failed_pods) => {
                self.resync = false;
                self.dirty = failed_pods;
            }
            Err(()) => return Progress::Retry,
        }
        ctx.metrics
            .sync_seconds
            .with_label_values(&[NAME])
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(
            controller = NAME,
            endpoints = n,
            pods = self.pods.len(),
            seconds = started.elapsed().as_secs_f64(),
            "resynced with etcd"
        );
        if self.dirty.is_empty() {
            Progress::Done
        } else {
            Progress::Retry
        }
    }
}

/// Writes one endpoint (if it differs), re-reading it after a lost race.
async fn update_one(ctx: &Ctx, mut wep: WorkloadEndpoint, pod: &PodView) -> Outcome {
    for _ in 0..ATTEMPTS {
        let Some(updated) = updated_endpoint(&wep, pod) else {
            return Outcome::Done;
        };
        match perform(ctx, NAME, &Write::Update(updated)).await {
            Outcome::Conflict => {}
            other => return other,
        }
        let ns = wep.metadata.namespace.clone();
        match ctx
            .ds
            .get::<WorkloadEndpoint>(ns.as_deref(), &wep.metadata.name)
            .await
        {
            Ok(Some(current)) => wep = current,
            // Removed by the CNI plugin meanwhile: nothing to keep current.
            Ok(None) => return Outcome::Done,
            Err(e) => {
                failed(ctx, NAME, "get", &wep.metadata.name, &e);
                return Outcome::Failed;
            }
        }
    }
    Outcome::Conflict
}

impl Controller<Pod> for Endpoints {
    fn name(&self) -> &'static str {
        NAME
    }

    fn on_event(&mut self, event: Event<Pod>) {
        match event {
            Event::Init => self.listing = Some(BTreeMap::new()),
            Event::InitApply(pod) => {
                if let Some(v) = PodView::of(&pod) {
                    self.listing
                        .get_or_insert_with(BTreeMap::new)
                        .insert(v.key(), v);
                }
            }
            Event::InitDone => {
                self.pods = self.listing.take().unwrap_or_default();
                self.resync = true;
                self.listed = true;
            }
            Event::Apply(pod) => {
                if let Some(v) = PodView::of(&pod) {
                    let key = v.key();
                    // Status-only updates (most pod events) change nothing we write.
                    if self.pods.get(&key) != Some(&v) {
                        self.pods.insert(key.clone(), v);
                        self.dirty.insert(key);
                    }
                }
            }
            Event::Delete(pod) => {
                // Its endpoints go with the CNI plugin's DEL.
                if let Some(v) = PodView::of(&pod) {
                    self.pods.remove(&v.key());
                    self.dirty.remove(&v.key());
                }
            }
        }
    }

    fn on_leading(&mut self) {
        self.resync = true;
    }

    async fn reconcile(&mut self, ctx: &Ctx) -> Progress {
        if !self.listed {
            return Progress::Done;
        }
        if self.resync || self.dirty.len() > RESYNC_ABOVE {
            return self.full_resync(ctx).await;
        }
        if self.dirty.is_empty() {
            return Progress::Done;
        }
        let dirty = std::mem::take(&mut self.dirty);
        let namespaces: BTreeSet<&String> = dirty.iter().map(|(ns, _)| ns).collect();
        let mut progress = Progress::Done;
        for ns in namespaces {
            let weps = match ctx.ds.list::<WorkloadEndpoint>(Some(ns)).await {
                Ok((weps, _)) => weps,
                Err(e) => {
                    failed(ctx, NAME, "list", ns, &e);
                    self.dirty
                        .extend(dirty.iter().filter(|(n, _)| n == ns).cloned());
                    progress = Progress::Retry;
                    continue;
                }
            };
            match self.update(ctx, weps, Some(&dirty)).await {
                Ok(failed_pods) if failed_pods.is_empty() => {}
                Ok(failed_pods) => {
                    self.dirty.extend(failed_pods);
                    progress = Progress::Retry;
                }
                Err(()) => {
                    self.resync = true;
                    return Progress::Retry;
                }
            }
        }
        progress
    }

    fn synced(&self) -> bool {
        self.listed && !self.resync && self.dirty.is_empty()
    }
}
