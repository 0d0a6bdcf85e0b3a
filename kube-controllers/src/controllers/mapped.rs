//! Controllers where one Kubernetes object becomes one Calico resource that this
//! controller owns (recognised by its name prefix): Namespace -> `kns.*` Profile,
//! ServiceAccount -> `ksa.*` Profile, NetworkPolicy -> `knp.default.*` NetworkPolicy.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy as K8sNetworkPolicy;
use kube::runtime::watcher::Event;

use super::Ctx;
use super::driver::{Controller, Progress};
use super::write::{Outcome, failed, perform};
use crate::convert::policy::{desired_policy, is_k8s_policy, policy_name};
use crate::convert::profile::{
    is_namespace_profile, is_service_account_profile, namespace_profile, service_account_profile,
};
use config::model::Resource;

use crate::reconcile::{Key, Managed, key_of, plan_all, plan_one};

/// A full resync instead of per-key reads when this many keys are pending.
const RESYNC_ABOVE: usize = 64;
/// Attempts per key when writes keep losing races.
const KEY_ATTEMPTS: usize = 5;

/// How one Kubernetes kind maps to one Calico kind.
pub trait Mapping<K>: Send + Sync {
    type Target: Managed;
    fn name(&self) -> &'static str;
    /// The Calico object for `obj`; `None` for an object we cannot name.
    fn desired(&mut self, obj: &K) -> Option<Self::Target>;
    /// The Calico key of `obj` (for deletions; no side effects).
    fn key(&mut self, obj: &K) -> Option<Key> {
        self.desired(obj).map(|t| key_of(&t))
    }
    /// `key`'s object was deleted (or dropped by a relist).
    fn forget(&mut self, _key: &Key) {}
    /// Whether this controller owns the Calico object named `name`.
    fn owns(&self, name: &str) -> bool;
}

/// The controller for a [`Mapping`].
pub struct Mapped<K, M: Mapping<K>> {
    mapping: M,
    /// What etcd should hold, by Calico key.
    desired: BTreeMap<Key, M::Target>,
    /// Filled during a (re)list; replaces `desired` at its end.
    listing: Option<BTreeMap<Key, M::Target>>,
    /// Keys changed since they were last written.
    dirty: BTreeSet<Key>,
    /// The whole of etcd must be compared (first list, relist, new leadership).
    resync: bool,
    /// The first list finished.
    listed: bool,
    _kind: std::marker::PhantomData<fn(K)>,
}

impl<K, M: Mapping<K>> Mapped<K, M> {
    pub fn new(mapping: M) -> Self {
        Mapped {
            mapping,
            desired: BTreeMap::new(),
            listing: None,
            dirty: BTreeSet::new(),
            resync: true,
            listed: false,
            _kind: std::marker::PhantomData,
        }
    }

    /// Compares all of etcd with the view and writes the difference.
    async fn full_resync(&mut self, ctx: &Ctx) -> Progress {
        let name = self.mapping.name();
        let started = Instant::now();
        let current = match ctx.ds.list::<M::Target>(None).await {
            Ok((current, _)) => current,
            Err(e) => {
                failed(ctx, name, "list", "*", &e);
                return Progress::Retry;
            }
        };
        let writes = plan_all(&self.desired, &current, |c| {
            self.mapping.owns(&c.meta().name)
        });
        let mut retry = BTreeSet::new();
        for w in &writes {
            match perform(ctx, name, w).await {
                Outcome::Done => {}
                Outcome::NotLeading => return Progress::Retry,
                Outcome::Conflict | Outcome::Failed => {
                    retry.insert(w.key());
                }
            }
        }
        self.resync = false;
        // Keys changed while we listed are covered by the listing only if we saw them
        // first; keep those that failed for the per-key path.
        self.dirty = retry;
        ctx.metrics
            .sync_seconds
            .with_label_values(&[name])
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(
            controller = name,
            writes = writes.len(),
            desired = self.desired.len(),
            seconds = started.elapsed().as_secs_f64(),
            "resynced with etcd"
        );
        if self.dirty.is_empty() {
            Progress::Done
        } else {
            Progress::Retry
        }
    }

    /// Reads and writes one key until it matches (or a bounded number of races).
    async fn sync_key(&self, ctx: &Ctx, key: &Key) -> Outcome {
        let name = self.mapping.name();
        for _ in 0..KEY_ATTEMPTS {
            let current = match ctx.ds.get::<M::Target>(key.0.as_deref(), &key.1).await {
                Ok(c) => c,
                Err(e) => {
                    failed(ctx, name, "get", &key.1, &e);
                    return Outcome::Failed;
                }
            };
            let Some(write) = plan_one(self.desired.get(key), current.as_ref()) else {
                return Outcome::Done;
            };
            match perform(ctx, name, &write).await {
                Outcome::Conflict => continue,
                other => return other,
            }
        }
        Outcome::Conflict
    }
}

impl<K: Send, M: Mapping<K>> Controller<K> for Mapped<K, M> {
    fn name(&self) -> &'static str {
        self.mapping.name()
    }

    fn on_event(&mut self, event: Event<K>) {
        match event {
            Event::Init => self.listing = Some(BTreeMap::new()),
            Event::InitApply(obj) => {
                if let Some(t) = self.mapping.desired(&obj) {
                    self.listing
                        .get_or_insert_with(BTreeMap::new)
                        .insert(key_of(&t), t);
                }
            }
            Event::InitDone => {
                let listed = self.listing.take().unwrap_or_default();
                for gone in self.desired.keys().filter(|k| !listed.contains_key(*k)) {
                    self.mapping.forget(gone);
                }
                self.desired = listed;
                self.resync = true;
                self.listed = true;
            }
            Event::Apply(obj) => {
                if let Some(t) = self.mapping.desired(&obj) {
                    let key = key_of(&t);
                    self.desired.insert(key.clone(), t);
                    self.dirty.insert(key);
                }
            }
            Event::Delete(obj) => {
                if let Some(key) = self.mapping.key(&obj) {
                    self.mapping.forget(&key);
                    self.desired.remove(&key);
                    self.dirty.insert(key);
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
        let mut progress = Progress::Done;
        let mut pending = std::mem::take(&mut self.dirty).into_iter();
        while let Some(key) = pending.next() {
            match self.sync_key(ctx, &key).await {
                Outcome::Done => {}
                Outcome::NotLeading => {
                    self.resync = true;
                    return Progress::Retry;
                }
                Outcome::Conflict => {
                    self.dirty.insert(key);
                    progress = Progress::Retry;
                }
                Outcome::Failed => {
                    // etcd is likely down: keep the rest for the retry instead of
                    // waiting out a timeout per key.
                    self.dirty.insert(key);
                    self.dirty.extend(pending);
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

/// Namespace -> `kns.<ns>`.
pub struct NamespaceProfiles;

impl Mapping<Namespace> for NamespaceProfiles {
    type Target = config::model::Profile;
    fn name(&self) -> &'static str {
        "namespace"
    }
    fn desired(&mut self, obj: &Namespace) -> Option<Self::Target> {
        namespace_profile(obj)
    }
    fn owns(&self, name: &str) -> bool {
        is_namespace_profile(name)
    }
}

/// ServiceAccount -> `ksa.<ns>.<sa>`.
pub struct ServiceAccountProfiles;

impl Mapping<ServiceAccount> for ServiceAccountProfiles {
    type Target = config::model::Profile;
    fn name(&self) -> &'static str {
        "serviceaccount"
    }
    fn desired(&mut self, obj: &ServiceAccount) -> Option<Self::Target> {
        service_account_profile(obj)
    }
    fn owns(&self, name: &str) -> bool {
        is_service_account_profile(name)
    }
}

/// NetworkPolicy -> `knp.default.<name>`, failing closed (see [`crate::convert::policy`]).
pub struct Policies {
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Policies currently written fail-closed.
    failed_closed: BTreeSet<Key>,
}

impl Policies {
    pub fn new(metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        Policies {
            metrics,
            failed_closed: BTreeSet::new(),
        }
    }

    fn update_gauge(&self) {
        self.metrics
            .policies_failed_closed
            .set(i64::try_from(self.failed_closed.len()).unwrap_or(i64::MAX));
    }
}

impl Mapping<K8sNetworkPolicy> for Policies {
    type Target = config::model::NetworkPolicy;
    fn name(&self) -> &'static str {
        "policy"
    }
    fn desired(&mut self, obj: &K8sNetworkPolicy) -> Option<Self::Target> {
        let d = desired_policy(obj)?;
        let key = key_of(&d.policy);
        match &d.failure {
            Some(f) => {
                if self.failed_closed.insert(key) {
                    self.metrics.conversion_failures.inc();
                    tracing::error!(
                        namespace = %f.namespace,
                        name = %f.name,
                        field = %f.field,
                        reason = %f.reason,
                        "NetworkPolicy cannot be converted; written fail-closed (its pods get no allow rules from it)"
                    );
                }
            }
            None => {
                self.failed_closed.remove(&key);
            }
        }
        self.update_gauge();
        Some(d.policy)
    }
    fn key(&mut self, obj: &K8sNetworkPolicy) -> Option<Key> {
        let name = obj.metadata.name.as_deref()?;
        Some((obj.metadata.namespace.clone(), policy_name(name)))
    }
    fn forget(&mut self, key: &Key) {
        self.failed_closed.remove(key);
        self.update_gauge();
    }
    fn owns(&self, name: &str) -> bool {
        is_k8s_policy(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ns(name: &str) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    fn key(name: &str) -> Key {
        (None, name.into())
    }

    #[test]
    fn a_relist_replaces_the_view_and_asks_for_a_full_resync() {
        let mut m = Mapped::new(NamespaceProfiles);
        assert!(!m.synced(), "nothing listed yet");
        for e in [
            Event::Init,
            Event::InitApply(ns("a")),
            Event::InitApply(ns("b")),
        ] {
            m.on_event(e);
        }
        assert!(
            m.desired.is_empty(),
            "the list is buffered until it is complete"
        );
        m.on_event(Event::InitDone);
        assert_eq!(
            m.desired.keys().cloned().collect::<Vec<_>>(),
            [key("kns.a"), key("kns.b")]
        );
        assert!(m.resync && m.listed);
        m.resync = false;
        // b vanished while the watch was broken: the relist drops it.
        for e in [Event::Init, Event::InitApply(ns("a")), Event::InitDone] {
            m.on_event(e);
        }
        assert_eq!(
            m.desired.keys().cloned().collect::<Vec<_>>(),
            [key("kns.a")]
        );
        assert!(m.resync);
    }

    #[test]
    fn watch_events_mark_their_keys_dirty() {
        let mut m = Mapped::new(NamespaceProfiles);
        for e in [Event::Init, Event::InitDone] {
            m.on_event(e);
        }
        m.resync = false;
        assert!(m.synced());
        m.on_event(Event::Apply(ns("c")));
        m.on_event(Event::Apply(ns("d")));
        m.on_event(Event::Delete(ns("d")));
        assert_eq!(
            m.desired.keys().cloned().collect::<Vec<_>>(),
            [key("kns.c")]
        );
        assert_eq!(
            m.dirty.iter().cloned().collect::<Vec<_>>(),
            [key("kns.c"), key("kns.d")]
        );
        assert!(!m.synced());
        m.on_leading();
        assert!(m.resync, "a new leader compares everything");
    }
}
