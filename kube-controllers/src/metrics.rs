//! Prometheus metrics (text format on `:9094/metrics` by default), served with axum as
//! felix serves its own: how many writes, conflicts, conversion failures, how long a
//! sync takes. Counters carry no `_total` suffix, as in Calico.

use std::sync::Arc;

use axum::Router;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Every metric kube-controllers exports, registered in its own registry.
pub struct Metrics {
    registry: Registry,
    /// etcd writes that succeeded, by controller and operation (create/update/delete).
    pub writes: IntCounterVec,
    /// Writes that lost a compare-and-swap race (and were retried), by controller.
    pub conflicts: IntCounterVec,
    /// Writes that failed otherwise (etcd unreachable ...) and will be retried.
    pub write_errors: IntCounterVec,
    /// NetworkPolicies the converter could not express (written fail-closed).
    pub conversion_failures: IntCounter,
    /// Policies currently written fail-closed.
    pub policies_failed_closed: IntGauge,
    /// Time of a full resync (list, diff, writes), by controller.
    pub sync_seconds: HistogramVec,
    /// 1 when the controller has synced since it started leading, by controller.
    pub synced: IntGaugeVec,
    /// 1 while this replica leads.
    pub is_leader: IntGauge,
    /// Calico nodes removed because their Kubernetes node was deleted.
    pub nodes_deleted: IntCounter,
    /// IPAM addresses released by garbage collection.
    pub ipam_released: IntCounter,
    /// IPAM allocations currently suspected leaked (waiting for the grace period).
    pub ipam_leak_candidates: IntGauge,
}

const SYNC_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

impl Metrics {
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
            r.register(Box::new(c.clone())).expect("unique metric name");
            c
        }
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter"),
            )
        };
        let counter =
            |name: &str, help: &str| reg(&registry, IntCounter::new(name, help).expect("valid"));
        let gauge =
            |name: &str, help: &str| reg(&registry, IntGauge::new(name, help).expect("valid"));
        let m = Metrics {
            writes: counter_vec(
                "kube_controllers_datastore_writes",
                "etcd writes that succeeded.",
                &["controller", "op"],
            ),
            conflicts: counter_vec(
                "kube_controllers_datastore_conflicts",
                "etcd writes that lost a compare-and-swap race and were retried.",
                &["controller"],
            ),
            write_errors: counter_vec(
                "kube_controllers_datastore_errors",
                "etcd writes that failed and will be retried.",
                &["controller"],
            ),
            conversion_failures: counter(
                "kube_controllers_policy_conversion_failures",
                "NetworkPolicies that could not be converted and were written fail-closed.",
            ),
            policies_failed_closed: gauge(
                "kube_controllers_policies_failed_closed",
                "NetworkPolicies currently written fail-closed (selector and types, no rules).",
            ),
            sync_seconds: reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "kube_controllers_sync_seconds",
                        "Time of a full resync: Kubernetes listing, diff and etcd writes.",
                    )
                    .buckets(SYNC_BUCKETS.to_vec()),
                    &["controller"],
                )
                .expect("valid histogram"),
            ),
            synced: reg(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "kube_controllers_synced",
                        "1 when the controller's etcd state matches the Kubernetes API.",
                    ),
                    &["controller"],
                )
                .expect("valid gauge"),
            ),
            is_leader: gauge("kube_controllers_is_leader", "1 while this replica leads."),
            nodes_deleted: counter(
                "kube_controllers_nodes_deleted",
                "Calico nodes removed because their Kubernetes node was deleted.",
            ),
            ipam_released: counter(
                "kube_controllers_ipam_released_addresses",
                "IPAM addresses released by garbage collection.",
            ),
            ipam_leak_candidates: gauge(
                "kube_controllers_ipam_leak_candidates",
                "IPAM allocations suspected leaked, waiting for the grace period.",
            ),
            registry,
        };
        Arc::new(m)
    }

    /// The Prometheus text exposition of every metric.
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
    fn counters_show_in_the_text_format() {
        let m = Metrics::new();
        m.writes.with_label_values(&["namespace", "create"]).inc();
        m.conversion_failures.inc();
        m.sync_seconds.with_label_values(&["policy"]).observe(0.2);
        let text = m.render();
        assert!(text.contains(
            "kube_controllers_datastore_writes{controller=\"namespace\",op=\"create\"} 1"
        ));
        assert!(text.contains("kube_controllers_policy_conversion_failures 1"));
        assert!(text.contains("kube_controllers_sync_seconds_count{controller=\"policy\"} 1"));
    }
}
