//! Prometheus metrics (text format on `:9091/metrics`), named as Calico's felix
//! names them where it has an equivalent, so existing dashboards keep working.
//! Counters carry no `_total` suffix, as in Calico.

use std::sync::Arc;

use axum::Router;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Every metric felix exports, registered in its own registry.
pub struct Metrics {
    registry: Registry,
    /// Time of one whole dataplane apply (routes, neighbours, sysctls, ipsets, iptables).
    pub apply_time: Histogram,
    /// Time of the calculation (model -> desired state) within an apply.
    pub calc_time: Histogram,
    /// Time of each part of an apply (`routes`, `neighbors`, `sysctls`,
    /// `ipsets`, `iptables`, `stale_ipsets`), to see where an apply goes.
    pub apply_phase_time: HistogramVec,
    /// `iptables-restore` runs (attempts, retries included).
    pub iptables_restore_calls: IntCounter,
    /// Table syncs that failed after all retries.
    pub iptables_restore_errors: IntCounter,
    /// `ipset restore` runs.
    pub ipset_calls: IntCounter,
    pub ipset_errors: IntCounter,
    /// 2 = resync in progress (listing), 3 = in sync.
    pub resync_state: IntGauge,
    /// Objects skipped because they did not decode or validate, by kind.
    pub resync_invalid_objects: IntCounterVec,
    pub active_local_endpoints: IntGauge,
    pub active_local_policies: IntGauge,
    pub ipsets_calico: IntGauge,
    /// Time of one route sync (link and route dumps, diff, writes).
    pub route_table_list_seconds: Histogram,
    /// Route writes the kernel refused.
    pub route_errors: IntCounter,
    /// Problems the calculation currently reports (invalid rules, endpoints).
    pub calc_errors: IntGauge,
    /// Remote blocks in overlay pools left without a route (their node lacks an address,
    /// a tunnel address or a VTEP MAC).
    pub overlay_unroutable_blocks: IntGauge,
    /// Dataplane applies that failed and will be retried.
    pub apply_errors: IntCounter,
    /// Link-event subscriptions lost (each followed by a resubscription).
    pub link_watch_failures: IntCounter,
}

const APPLY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        let histogram = |name: &str, help: &str| {
            let h = Histogram::with_opts(
                HistogramOpts::new(name, help).buckets(APPLY_BUCKETS.to_vec()),
            )
            .expect("valid histogram options");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric name");
            h
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid counter options");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric name");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid gauge options");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric name");
            g
        };
        let invalid = IntCounterVec::new(
            Opts::new(
                "felix_resync_invalid_objects",
                "Datastore objects skipped because they did not decode or validate.",
            ),
            &["kind"],
        )
        .expect("valid counter options");
        registry
            .register(Box::new(invalid.clone()))
            .expect("unique metric name");
        let phases = HistogramVec::new(
            HistogramOpts::new(
                "felix_int_dataplane_apply_phase_seconds",
                "Time in seconds that each part of a dataplane apply took.",
            )
            .buckets(APPLY_BUCKETS.to_vec()),
            &["phase"],
        )
        .expect("valid histogram options");
        registry
            .register(Box::new(phases.clone()))
            .expect("unique metric name");
        Arc::new(Metrics {
            apply_phase_time: phases,
            apply_time: histogram(
                "felix_int_dataplane_apply_time_seconds",
                "Time in seconds that it took to apply a dataplane update.",
            ),
            calc_time: histogram(
                "felix_calc_graph_update_time_seconds",
                "Time in seconds that it took to calculate the desired dataplane.",
            ),
            iptables_restore_calls: counter(
                "felix_iptables_restore_calls",
                "Number of iptables-restore calls.",
            ),
            iptables_restore_errors: counter(
                "felix_iptables_restore_errors",
                "Number of iptables-restore errors.",
            ),
            ipset_calls: counter("felix_ipset_calls", "Number of ipset syncs that wrote."),
            ipset_errors: counter("felix_ipset_errors", "Number of ipset sync failures."),
            resync_state: gauge(
                "felix_resync_state",
                "Current datastore state (2 = resync in progress, 3 = in sync).",
            ),
            resync_invalid_objects: invalid,
            active_local_endpoints: gauge(
                "felix_active_local_endpoints",
                "Number of active endpoints on this host.",
            ),
            active_local_policies: gauge(
                "felix_active_local_policies",
                "Number of active policies on this host.",
            ),
            ipsets_calico: gauge("felix_ipsets_calico", "Number of active Calico IP sets."),
            route_table_list_seconds: histogram(
                "felix_route_table_list_seconds",
                "Time taken to list and sync the routing table.",
            ),
            route_errors: counter(
                "felix_route_errors",
                "Number of route writes the kernel refused.",
            ),
            calc_errors: gauge(
                "felix_calc_errors",
                "Number of problems the calculation currently reports.",
            ),
            overlay_unroutable_blocks: gauge(
                "felix_overlay_unroutable_blocks",
                "Number of remote blocks in overlay pools without a route (their node lacks a VTEP).",
            ),
            apply_errors: counter(
                "felix_int_dataplane_failures",
                "Number of times dataplane updates failed and will be retried.",
            ),
            link_watch_failures: counter(
                "felix_link_watch_failures",
                "Number of times the link-event subscription was lost and re-established.",
            ),
            registry,
        })
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        daemon_kit::http::render(&self.registry.gather())
    }

    /// `GET /metrics`.
    pub fn router(self: &Arc<Self>) -> Router {
        daemon_kit::http::metrics_router(self.registry.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_calico_and_counters_have_no_suffix() {
        let m = Metrics::new();
        m.iptables_restore_calls.inc_by(3);
        m.resync_invalid_objects
            .with_label_values(&["networkpolicies"])
            .inc();
        m.apply_time.observe(0.004);
        let text = m.render();
        assert!(
            text.contains("\nfelix_iptables_restore_calls 3\n"),
            "{text}"
        );
        assert!(
            text.contains("felix_resync_invalid_objects{kind=\"networkpolicies\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("felix_int_dataplane_apply_time_seconds_count 1"),
            "{text}"
        );
        for name in [
            "felix_iptables_restore_errors",
            "felix_resync_state",
            "felix_active_local_endpoints",
            "felix_active_local_policies",
            "felix_ipsets_calico",
            "felix_route_table_list_seconds_bucket",
        ] {
            assert!(text.contains(name), "{name} missing in:\n{text}");
        }
    }
}
