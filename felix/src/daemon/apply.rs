//! One dataplane apply: takes a [`DesiredState`] and makes the kernel match it,
//! in the order that never leaves a dangling reference: routes, neighbours,
//! sysctls, then ipsets before the iptables rules that use them (filter, nat),
//! then stale ipsets once no rule references them.
//!
//! Each part remembers what it last applied successfully and is skipped when
//! unchanged, unless a refresh (tampering repair) or a link event forces it.
//! A failed part is retried at the next apply (the owner loop schedules one).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;
use tracing::{debug, warn};

use super::settings::OverlaySettings;
use crate::calc::DesiredState;
use crate::calc::desired::ipsets::IpSet;
use crate::calc::routes::{NeighborSpec, RouteSpec};
use crate::dataplane::ipsets::{IpsetError, Ipsets, stand_in_name};
use crate::dataplane::iptables::{Iptables, IptablesError};
use crate::dataplane::neighbors::{NeighborError, NeighborSyncer};
use crate::dataplane::netlink::Netlink;
use crate::dataplane::routes::{DesiredRoutes, RouteError, RouteSpecError, RouteSyncer};
use crate::dataplane::sysctl::{SysctlError, configure_interface};
use crate::metrics::Metrics;

#[derive(Debug, Error)]
pub enum ApplyError {
    #[error("routes: {0}")]
    Routes(#[from] RouteError),
    #[error("routes: desired set rejected: {0}")]
    RouteSpec(#[from] RouteSpecError),
    #[error("routes: {0} write(s) failed, first: {1}")]
    RouteWrites(usize, String),
    #[error("neighbours: {0}")]
    Neighbors(#[from] NeighborError),
    #[error("ipsets: {0}")]
    Ipsets(#[from] IpsetError),
    #[error("iptables: {0}")]
    Iptables(#[from] IptablesError),
    #[error("overlay: {0}")]
    Overlay(String),
    #[error("netlink: {0}")]
    Netlink(#[from] rtnetlink::Error),
}

/// Parts to redo even when their desired state did not change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Force {
    pub routes: bool,
    pub iptables: bool,
}

/// What one apply did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplySummary {
    pub routes_replaced: usize,
    pub routes_deleted: usize,
    pub iptables_restores: u32,
    pub ipsets_written: bool,
    pub sysctl_interfaces: usize,
}

mod fast;
mod overlay;

/// The kernel side of felix, owned by the daemon loop.
pub struct Applier {
    nl: Netlink,
    routes: RouteSyncer,
    neighbors: NeighborSyncer,
    iptables: Iptables,
    ipsets: Ipsets,
    proc_sys: PathBuf,
    metrics: Arc<Metrics>,
    last_routes: Option<Vec<RouteSpec>>,
    last_neighbors: Option<Vec<NeighborSpec>>,
    /// Our set names present in the kernel after the last stale-set sweep.
    swept_sets: Option<BTreeSet<String>>,
    /// Interfaces whose sysctls are set (forgotten when the link changes).
    sysctl_done: BTreeSet<String>,
    /// Interfaces that did not exist at the last attempt: retried on their
    /// link event or at the refresh, not on every apply (a node with many
    /// endpoints whose veths are not there yet would pay a failed open each).
    sysctl_waiting: BTreeSet<String>,
    overlay_settings: OverlaySettings,
    last_overlay: Option<overlay::OverlayApplied>,
    /// Where the pod MTU goes for the CNI plugin (`None`: nowhere).
    mtu_file: Option<PathBuf>,
    pod_mtu_written: Option<u32>,
}

impl Applier {
    pub fn new(nl: Netlink, iptables: Iptables, metrics: Arc<Metrics>) -> Self {
        Self {
            routes: RouteSyncer::new(nl.clone()),
            neighbors: NeighborSyncer::new(nl.clone()),
            nl,
            iptables,
            ipsets: Ipsets::new(),
            proc_sys: PathBuf::from(crate::dataplane::sysctl::PROC_SYS),
            metrics,
            last_routes: None,
            last_neighbors: None,
            swept_sets: None,
            sysctl_done: BTreeSet::new(),
            sysctl_waiting: BTreeSet::new(),
            overlay_settings: OverlaySettings::default(),
            last_overlay: None,
            mtu_file: None,
            pod_mtu_written: None,
        }
    }

    /// Writes the pod MTU to `path` (see `apply_overlay`).
    pub fn with_mtu_file(mut self, path: Option<PathBuf>) -> Self {
        self.mtu_file = path;
        self
    }

    /// The VXLAN device's VNI, port and MTU (Calico's defaults otherwise).
    pub fn with_overlay_settings(mut self, settings: OverlaySettings) -> Self {
        self.overlay_settings = settings;
        self
    }

    /// Whether a link event for `ifname` calls for an apply: a route waits for
    /// it, it is (or was) one of our workload interfaces, or it is the overlay's device,
    /// gone while still wanted (`gone`: the event is a deletion).
    pub fn link_changed(
        &mut self,
        ifname: &str,
        gone: bool,
        desired_interfaces: &[String],
    ) -> bool {
        let ours = desired_interfaces.iter().any(|i| i == ifname);
        if ours {
            // A recreated interface starts with default sysctls.
            self.sysctl_done.remove(ifname);
            self.sysctl_waiting.remove(ifname);
        }
        // The overlay device deleted by someone else: make it again. Not on its
        // appearance (our own creation would cost a second, full sync) nor on our own
        // removal of it (no longer wanted).
        let overlay = gone
            && ifname == crate::calc::overlay::VXLAN_DEVICE
            && self.last_overlay.as_ref().is_some_and(|o| o.wants_vxlan());
        if overlay {
            self.last_overlay = None;
        }
        self.routes.on_link_added(ifname) || ours || overlay
    }

    /// Forgets which interfaces were configured, so the next apply re-checks
    /// every sysctl (periodic refresh).
    pub fn recheck_sysctls(&mut self) {
        self.sysctl_done.clear();
        self.sysctl_waiting.clear();
    }

    /// Makes the kernel match `desired`; see the module doc.
    pub async fn apply(
        &mut self,
        desired: &DesiredState,
        force: Force,
    ) -> Result<ApplySummary, ApplyError> {
        let mut summary = ApplySummary::default();
        let routes_result = self
            .apply_routes(&desired.routes, force.routes, &mut summary)
            .await;
        let rest = self.apply_rest(desired, force, &mut summary).await;
        routes_result?;
        rest?;
        Ok(summary)
    }

    /// Everything but the routes (see [`apply_routes`](Self::apply_routes),
    /// which the owner runs first, before the rest is even assembled).
    pub async fn apply_rest(
        &mut self,
        desired: &DesiredState,
        force: Force,
        summary: &mut ApplySummary,
    ) -> Result<(), ApplyError> {
        let mut clock = Instant::now();
        let neigh_result = self.apply_neighbors(desired, force.routes).await;
        self.phase("neighbors", &mut clock);
        summary.sysctl_interfaces = self.apply_sysctls(&desired.interfaces);
        self.phase("sysctls", &mut clock);
        let tables_result = self.apply_tables(desired, force.iptables, summary).await;
        neigh_result?;
        tables_result?;
        Ok(())
    }

    /// Records the time since `clock` as `phase` and restarts the clock.
    fn phase(&self, phase: &str, clock: &mut Instant) {
        let now = Instant::now();
        self.metrics
            .apply_phase_time
            .with_label_values(&[phase])
            .observe((now - *clock).as_secs_f64());
        *clock = now;
    }

    /// Routes first: they gate reachability of new workloads and are cheap. A
    /// new workload's traffic is still dropped by the dispatch chains until its
    /// endpoint chains exist, so writing them before the rest never opens a
    /// hole. Recorded as the `routes` phase.
    pub async fn apply_routes(
        &mut self,
        routes: &[RouteSpec],
        force: bool,
        summary: &mut ApplySummary,
    ) -> Result<(), ApplyError> {
        let mut clock = Instant::now();
        let result = self.sync_routes(routes, force, summary).await;
        self.phase("routes", &mut clock);
        result
    }

    async fn sync_routes(
        &mut self,
        routes: &[RouteSpec],
        force: bool,
        summary: &mut ApplySummary,
    ) -> Result<(), ApplyError> {
        if !force && self.last_routes.as_deref() == Some(routes) {
            return Ok(());
        }
        let started = Instant::now();
        if !force && self.fast_routes(routes).await {
            self.metrics
                .route_table_list_seconds
                .observe(started.elapsed().as_secs_f64());
            self.last_routes = Some(routes.to_vec());
            return Ok(());
        }
        self.last_routes = None;
        self.routes
            .set_desired(DesiredRoutes::new(routes.iter().cloned())?);
        let report = self.routes.apply().await;
        self.metrics
            .route_table_list_seconds
            .observe(started.elapsed().as_secs_f64());
        let report = report?;
        summary.routes_replaced = report.replaced;
        summary.routes_deleted = report.deleted;
        if let Some(first) = report.failures.first() {
            self.metrics
                .route_errors
                .inc_by(report.failures.len() as u64);
            return Err(ApplyError::RouteWrites(
                report.failures.len(),
                format!("{:?} {}: {}", first.op, first.route, first.message),
            ));
        }
        if !report.pending.is_empty() {
            debug!(
                pending = report.pending.len(),
                "routes waiting for their interface"
            );
        }
        self.last_routes = Some(routes.to_vec());
        Ok(())
    }

    async fn apply_neighbors(
        &mut self,
        desired: &DesiredState,
        force: bool,
    ) -> Result<(), ApplyError> {
        if !force && self.last_neighbors.as_ref() == Some(&desired.neighbors) {
            return Ok(());
        }
        if !force && self.fast_neighbors(&desired.neighbors).await {
            return Ok(());
        }
        self.last_neighbors = None;
        self.neighbors.set_desired(desired.neighbors.clone());
        let report = self.neighbors.apply().await?;
        for (n, e) in &report.failures {
            warn!(neighbor = ?n, error = %e, "neighbour write failed");
        }
        // Entries pending on a missing interface are redone on its link event.
        if report.failures.is_empty() {
            self.last_neighbors = Some(desired.neighbors.clone());
        }
        Ok(())
    }

    /// Sets sysctls on interfaces not configured yet. An interface that does not
    /// exist yet is retried on its link event. Returns how many were configured.
    fn apply_sysctls(&mut self, interfaces: &[String]) -> usize {
        let wanted: BTreeSet<&str> = interfaces.iter().map(String::as_str).collect();
        self.sysctl_done.retain(|i| wanted.contains(i.as_str()));
        self.sysctl_waiting.retain(|i| wanted.contains(i.as_str()));
        let mut configured = 0;
        for ifname in interfaces {
            if self.sysctl_done.contains(ifname) || self.sysctl_waiting.contains(ifname) {
                continue;
            }
            match configure_interface(&self.proc_sys, ifname) {
                Ok(written) => {
                    if !written.is_empty() {
                        debug!(%ifname, keys = written.len(), "interface sysctls set");
                    }
                    configured += 1;
                    self.sysctl_done.insert(ifname.clone());
                }
                Err(SysctlError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    debug!(%ifname, "interface not there yet; sysctls wait for it");
                    self.sysctl_waiting.insert(ifname.clone());
                }
                Err(error) => warn!(%ifname, %error, "setting interface sysctls failed"),
            }
        }
        configured
    }

    /// Sets that exist with another type or family can only be recreated
    /// once no rule references them (`ipset swap` refuses different types):
    /// this fills a stand-in of the right type for each and points felix's
    /// rules at it. The normal sync then recreates the sets, points the rules
    /// back, and the stale-set sweep removes the stand-ins. A rule felix does
    /// not own that references such a set still blocks it (reported).
    async fn detour_sets(
        &mut self,
        desired: &DesiredState,
        names: &[String],
    ) -> Result<(), ApplyError> {
        warn!(sets = ?names, "ipsets exist with another type or family; recreating them");
        let renames: Vec<(String, String)> = names
            .iter()
            .map(|n| (n.clone(), stand_in_name(n)))
            .collect();
        let mut sets: Vec<IpSet> = Vec::with_capacity(desired.ipsets.len());
        for set in &desired.ipsets {
            match renames.iter().find(|(from, _)| *from == set.name) {
                Some((_, to)) => sets.push(IpSet {
                    name: to.clone(),
                    ..set.clone()
                }),
                None => sets.push(set.clone()),
            }
        }
        self.ipsets.sync(&sets).await?;
        for table in [&desired.raw, &desired.mangle, &desired.filter, &desired.nat] {
            self.iptables
                .sync_table(&table.with_sets_renamed(&renames))
                .await?;
        }
        self.swept_sets = None;
        Ok(())
    }

    async fn apply_tables(
        &mut self,
        desired: &DesiredState,
        force: bool,
        summary: &mut ApplySummary,
    ) -> Result<(), ApplyError> {
        let mut clock = Instant::now();
        if force {
            // Refresh or retry: read the sets and tables back and repair them.
            self.ipsets.forget();
            self.iptables.forget();
        }
        let incompatible = self.ipsets.incompatible(&desired.ipsets).await?;
        if !incompatible.is_empty() {
            self.detour_sets(desired, &incompatible).await?;
        }
        // Both plan against what they remember: unchanged state costs no process.
        match self.ipsets.sync(&desired.ipsets).await {
            Ok(outcome) => {
                self.metrics.ipset_calls.inc_by(outcome.attempts.into());
                summary.ipsets_written = outcome.attempts > 0;
            }
            Err(e) => {
                self.metrics.ipset_errors.inc();
                // Rules must not reference sets that do not exist: stop here.
                return Err(e.into());
            }
        }
        self.phase("ipsets", &mut clock);
        for table in [&desired.raw, &desired.mangle, &desired.filter, &desired.nat] {
            match self.iptables.sync_table(table).await {
                Ok(outcome) => {
                    self.metrics
                        .iptables_restore_calls
                        .inc_by(outcome.attempts.into());
                    summary.iptables_restores += outcome.attempts;
                }
                Err(e) => {
                    if let IptablesError::Restore { attempts, .. } = &e {
                        self.metrics
                            .iptables_restore_calls
                            .inc_by((*attempts).into());
                    }
                    self.metrics.iptables_restore_errors.inc();
                    return Err(e.into());
                }
            }
        }
        self.phase("iptables", &mut clock);
        let names: BTreeSet<String> = desired.ipsets.iter().map(|s| s.name.clone()).collect();
        if force || self.swept_sets.as_ref() != Some(&names) {
            self.swept_sets = None;
            let removed = self.ipsets.remove_stale(&desired.ipsets).await?;
            if !removed.is_empty() {
                debug!(?removed, "stale ipsets removed");
            }
            self.swept_sets = Some(names);
        }
        self.phase("stale_ipsets", &mut clock);
        Ok(())
    }
}
