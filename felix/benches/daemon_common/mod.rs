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

/// The parts of an apply felix times (`felix_int_dataplane_apply_phase_seconds`),
/// plus the calculation before it.
pub const PHASES: &[&str] = &[
    "calc",
    "overlay",
    "routes",
    "neighbors",
    "sysctls",
    "ipsets",
    "iptables",
    "stale_ipsets",
];

/// Sum of seconds per phase (and the calculation) so far, plus the apply count.
pub fn phase_sums(ns: &Path) -> (f64, Vec<f64>) {
    let body = http_get(ns.to_path_buf(), 9091, "/metrics")
        .expect("metrics")
        .1;
    let sums = PHASES
        .iter()
        .map(|p| {
            let name = if *p == "calc" {
                "felix_calc_graph_update_time_seconds_sum".to_string()
            } else {
                format!("felix_int_dataplane_apply_phase_seconds_sum{{phase=\"{p}\"}}")
            };
            metric(&body, &name).unwrap_or(0.0)
        })
        .collect();
    let count = metric(&body, "felix_int_dataplane_apply_time_seconds_count").unwrap_or(0.0);
    (count, sums)
}

/// Mean ms per apply of each phase between two [`phase_sums`] snapshots.
pub fn phase_report(before: &(f64, Vec<f64>), after: &(f64, Vec<f64>)) -> String {
    let n = (after.0 - before.0).max(1.0);
    PHASES
        .iter()
        .zip(before.1.iter().zip(&after.1))
        .map(|(p, (b, a))| format!("{p} {:.2}", (a - b) * 1e3 / n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// felix's CPU time so far (utime + stime from /proc/<pid>/stat).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after the ')'.
    let clock_ticks = 100.0; // USER_HZ on Linux
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / clock_ticks)
}
