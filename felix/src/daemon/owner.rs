//! The owner loop: the one task that holds the model and the dataplane. It
//! receives syncer updates and link events, coalesces bursts, and applies.
//!
//! Coalescing: events are folded into the calculation as they arrive (cheap);
//! an apply runs at once when felix was idle, and otherwise no sooner than
//! `apply_min_interval` after the previous one, so a burst of a thousand
//! updates costs a few applies, not a thousand. Nothing is applied before the
//! syncer is in sync: a half-listed model would delete what the rest of the
//! datastore still wants (after a restart, that would flap every route).

use std::sync::Arc;
use std::time::Duration;

use daemon_kit::backoff::Backoff;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::apply::{Applier, ApplySummary, Force};
use super::links::LinkEvent;
use super::settings::FelixConfig;
use super::tunnel_addr::{TunnelNeed, tunnel_need};
use crate::calc::{CalcError, Calculator, DesiredState};
use crate::health::{ApplyTracker, Health};
use crate::metrics::Metrics;
use crate::syncer::SyncerEvent;

/// Idle wake-up to report liveness.
const HEARTBEAT: Duration = Duration::from_secs(5);
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// Syncer messages folded in before the loop looks at its timers again.
const MAX_DRAIN: usize = 1024;

pub struct Owner {
    pub config: FelixConfig,
    pub calc: Calculator,
    pub applier: Applier,
    pub health: Health,
    pub metrics: Arc<Metrics>,
    /// What this node's Node lacks for the overlay (the tunnel address task).
    pub tunnel: watch::Sender<Option<TunnelNeed>>,
}

/// Loop state between iterations.
struct State {
    in_sync: bool,
    /// Something to apply (updates, a refresh, a link event, a retry).
    pending: bool,
    force: Force,
    last_apply: Option<Instant>,
    retry_at: Option<Instant>,
    /// Delays between failed applies: [`RETRY_MIN`] doubling to [`RETRY_MAX`].
    retry: Backoff,
    interfaces: Vec<String>,
    errors: Vec<CalcError>,
    /// Readiness from apply outcomes.
    applied: ApplyTracker,
}

impl Owner {
    /// Runs until `shutdown` turns true or the syncer goes away. Leaves the
    /// kernel as it is on exit (Calico's felix does not flush either: pods keep
    /// working while felix restarts).
    pub async fn run(
        mut self,
        mut updates: mpsc::Receiver<SyncerEvent>,
        mut links: mpsc::Receiver<LinkEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut st = State {
            in_sync: false,
            pending: false,
            force: Force::default(),
            last_apply: None,
            retry_at: None,
            retry: Backoff::new(RETRY_MIN, RETRY_MAX),
            interfaces: Vec::new(),
            errors: Vec::new(),
            applied: ApplyTracker::new(
                self.config.ready_max_failures,
                self.config.ready_failure_timeout,
            ),
        };
        let far = || Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let tick = |d: Option<Duration>| d.map_or_else(far, |d| Instant::now() + d);
        let mut route_refresh = tick(self.config.route_refresh);
        let mut iptables_refresh = tick(self.config.iptables_refresh);
        let mut links_open = true;
        loop {
            self.health.beat();
            // Also between retries: a failure that lasts fails readiness on time.
            self.health
                .set_applied(st.applied.applied(std::time::Instant::now()));
            let apply_at = self.next_apply(&st);
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                event = updates.recv() => {
                    let Some(event) = event else {
                        error!("datastore syncer stopped; exiting");
                        break;
                    };
                    self.fold(event, &mut st);
                    for _ in 0..MAX_DRAIN {
                        match updates.try_recv() {
                            Ok(event) => self.fold(event, &mut st),
                            Err(_) => break,
                        }
                    }
                }
                link = links.recv(), if links_open => match link {
                    Some(LinkEvent::Up(name)) => self.link_event(&name, false, &mut st),
                    Some(LinkEvent::Gone(name)) => self.link_event(&name, true, &mut st),
                    Some(LinkEvent::Resync) => {
                        st.pending = true;
                        st.force.routes = true;
                        self.applier.recheck_sysctls();
                    }
                    None => links_open = false,
                },
                () = tokio::time::sleep_until(apply_at.unwrap_or_else(far)), if apply_at.is_some() => {
                    self.apply(&mut st).await;
                }
                () = tokio::time::sleep_until(route_refresh) => {
                    route_refresh = tick(self.config.route_refresh);
                    st.force.routes = true;
                    st.pending = true;
                    self.applier.recheck_sysctls();
                }
                () = tokio::time::sleep_until(iptables_refresh) => {
                    iptables_refresh = tick(self.config.iptables_refresh);
                    st.force.iptables = true;
                    st.pending = true;
                }
                () = tokio::time::sleep(HEARTBEAT) => {}
            }
        }
        self.health.stopped();
        info!("felix stopping; kernel state left in place");
    }

    fn link_event(&mut self, name: &str, gone: bool, st: &mut State) {
        if self.applier.link_changed(name, gone, &st.interfaces) {
            st.pending = true;
            st.force.routes = true;
        }
    }

    fn fold(&mut self, event: SyncerEvent, st: &mut State) {
        match event {
            SyncerEvent::Updates(updates) => {
                if !updates.is_empty() {
                    st.pending = true;
                }
                for update in updates {
                    self.calc.apply(update);
                }
            }
            SyncerEvent::InSync => {
                info!(
                    endpoints = self.calc.input().weps.len(),
                    policies = self.calc.input().policies.len(),
                    "model complete; programming the dataplane"
                );
                st.in_sync = true;
                st.pending = true;
                self.health.set_in_sync(true);
            }
        }
    }

    /// When to apply next, if there is something to apply.
    fn next_apply(&self, st: &State) -> Option<Instant> {
        if !(st.in_sync && st.pending) {
            return None;
        }
        let now = Instant::now();
        let paced = st
            .last_apply
            .map_or(now, |t| t + self.config.apply_min_interval);
        Some(paced.max(st.retry_at.unwrap_or(now)))
    }

    async fn apply(&mut self, st: &mut State) {
        let started = std::time::Instant::now();
        st.pending = false;
        // Pacing counts from the start of an apply: updates that arrive while a
        // long apply runs are folded into one apply right after it.
        st.last_apply = Some(Instant::now());
        let force = std::mem::take(&mut st.force);
        // Routes go out as soon as they are known: the rest of the desired
        // state (chains, sets) is assembled and written after them.
        self.calc.recalculate();
        let need = tunnel_need(self.calc.input());
        self.tunnel.send_if_modified(|now| {
            let changed = *now != need;
            *now = need;
            changed
        });
        let mut calc_time = started.elapsed();
        let mut summary = ApplySummary::default();
        // The overlay's devices before the routes through them.
        let overlay_result = self
            .applier
            .apply_overlay(self.calc.overlay(), force.routes)
            .await;
        let routes_result = self
            .applier
            .apply_routes(self.calc.routes(), force.routes, &mut summary)
            .await;
        let assemble_started = std::time::Instant::now();
        let desired = self.calc.assemble();
        calc_time += assemble_started.elapsed();
        self.metrics.calc_time.observe(calc_time.as_secs_f64());
        self.observe(&desired, st);
        let rest = self.applier.apply_rest(&desired, force, &mut summary).await;
        let result = overlay_result
            .and(routes_result)
            .and(rest)
            .map(|()| summary);
        let elapsed = started.elapsed();
        self.metrics.apply_time.observe(elapsed.as_secs_f64());
        match result {
            Ok(summary) => {
                st.retry_at = None;
                st.retry.reset();
                st.applied.success();
                self.health.set_applied(true);
                tracing::debug!(?summary, ?elapsed, "dataplane applied");
            }
            Err(error) => {
                self.metrics.apply_errors.inc();
                st.applied.failure(std::time::Instant::now());
                self.health
                    .set_applied(st.applied.applied(std::time::Instant::now()));
                let delay = st.retry.next_delay();
                warn!(%error, retry_in = ?delay, "dataplane apply failed; will retry");
                st.retry_at = Some(Instant::now() + delay);
                st.pending = true;
                // Redo everything on retry: the failed part may have left the
                // kernel half-written.
                st.force = Force {
                    routes: true,
                    iptables: true,
                };
            }
        }
    }

    /// Metrics and logs about the desired state.
    fn observe(&self, desired: &DesiredState, st: &mut State) {
        self.metrics
            .active_local_endpoints
            .set(self.calc.local_endpoint_count() as i64);
        let policies: std::collections::BTreeSet<&str> = desired
            .filter
            .chains
            .iter()
            .filter_map(|c| {
                c.name
                    .strip_prefix("cali-pi-")
                    .or_else(|| c.name.strip_prefix("cali-po-"))
            })
            .collect();
        self.metrics
            .active_local_policies
            .set(policies.len() as i64);
        self.metrics.ipsets_calico.set(desired.ipsets.len() as i64);
        self.metrics.calc_errors.set(desired.errors.len() as i64);
        self.metrics
            .overlay_unroutable_blocks
            .set(self.calc.overlay().unroutable.len() as i64);
        if desired.errors != st.errors {
            for e in desired.errors.iter().filter(|e| !st.errors.contains(e)) {
                warn!(error = %e, "calculation problem");
            }
            st.errors = desired.errors.clone();
        }
        st.interfaces = desired.interfaces.clone();
    }
}
