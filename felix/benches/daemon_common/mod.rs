//! Shared by the daemon benchmarks (NEED ROOT): bulk etcd writes, felix's
//! metrics, percentiles.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use config::datastore::{Datastore, TxnOp};

#[path = "../../tests/daemon_harness/mod.rs"]
pub mod daemon_harness;

use daemon_harness::probe::{http_get, metric};

/// Creates many keys, 100 per etcd transaction.
pub async fn create_many(ds: &Datastore, items: Vec<(String, serde_json::Value)>) {
    for chunk in items.chunks(100) {
        let ops = chunk
            .iter()
            .map(|(key, value)| TxnOp::Create {
                key: key.clone(),
                value: value.to_string().into_bytes(),
            })
            .collect();
        ds.txn(ops).await.expect("bulk create");
    }
}

/// (count, sum) of felix's apply-time histogram.
pub fn apply_stats(ns: &Path) -> (f64, f64) {
    let body = http_get(ns.to_path_buf(), 9091, "/metrics")
        .expect("metrics")
        .1;
    (
        metric(&body, "felix_int_dataplane_apply_time_seconds_count").unwrap_or(0.0),
        metric(&body, "felix_int_dataplane_apply_time_seconds_sum").unwrap_or(0.0),
    )
}

/// Waits until felix answers /readiness with 200.
pub async fn wait_ready(ns: &Path, limit: Duration) {
    daemon_harness::eventually(limit, "felix ready", || {
        http_get(ns.to_path_buf(), 9099, "/readiness").is_some_and(|(c, _)| c == 200)
    })
    .await;
}

/// Waits until felix has finished more than `count` applies; returns the new (count, sum).
pub async fn wait_applies_after(ns: &Path, count: f64, limit: Duration) -> (f64, f64) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let stats = apply_stats(ns);
        if stats.0 > count {
            return stats;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no apply within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The q-quantile (0..=1) of sorted durations, nearest rank.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}
