//! NEEDS ROOT. Policy scale of the felix binary: 2,000 local workload endpoints
//! (no veths: iptables is what is measured) and N policies (N = 100 and 500),
//! each selecting a slice of the endpoints by label and allowing TCP from
//! another slice. Measures the full sync (felix start -> /readiness 200), then
//! 20 live changes of one policy (its port): felix's own apply time for that
//! change and etcd write -> apply finished. A change should cost the same with
//! 100 or 500 policies.
//!
//! Run: `cargo bench -p felix --bench daemon_policy` (`BENCH_POLICIES=500`
//! for one size; `BENCH_DUMP_DIR=<dir>` keeps felix's log, `iptables-save`
//! and `ipset save` of the final state, to time restores by hand against it).
//!
//! Where a change's time goes (kernel 6.18, iptables-nft 1.8.9, 500 policies:
//! 5,111 chains, 43k rules with policy groups; 114k without): felix commits
//! one chain in its long-lived iptables-restore (25-28 ms), almost all of it
//! the nf_tables commit re-validating every rule reachable from the base
//! chains (a rule with a verdict or an xt match makes the kernel walk them;
//! the workload-to-host chains twice, once per hook). A restore process per
//! change cost ~13 ms more: process start, and its socket close waiting for
//! an RCU grace period before the flushed rules are freed. The same commit
//! takes a few ms in a table where nothing reaches the `cali-` chains, and
//! iptables-legacy-restore (whole-table rewrite) 720-830 ms. So the
//! per-change cost still grows with the rules endpoints hold, which policy
//! groups keep independent of the number of policies.

mod daemon_common;

use std::time::{Duration, Instant};

use config::testing::EtcdServer;
use daemon_common::daemon_harness::{self as h, Netns, in_ns};
use daemon_common::*;
use serde_json::json;

const ENDPOINTS: usize = 2_000;
const CHANGES: usize = 20;

fn policy(i: usize, port: u16) -> (String, serde_json::Value) {
    let name = format!("pol-{i}");
    let value = json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "bench"},
        "spec": {"order": i, "selector": format!("app == 'app{}'", i % 50),
            "ingress": [{"action": "Allow", "protocol": "TCP",
                "source": {"selector": format!("role == 'r{}'", i % 20)},
                "destination": {"ports": [port]}}],
            "egress": [{"action": "Allow"}]}});
    (h::key("networkpolicies", Some("bench"), &name), value)
}

struct Row {
    policies: usize,
    sync: Duration,
    /// Mean calculation time over all applies (first one included).
    calc: Duration,
    apply: Vec<Duration>,
    /// Mean ms per phase over the changes.
    phases: String,
    e2e: Vec<Duration>,
}

fn run(policies: usize) -> Row {
    let prefix = h::unique_prefix();
    let node_ns = Netns::new_node(&format!("{prefix}-node"));
    let node = format!("{prefix}-n");
    let path = node_ns.path();
    in_ns(&node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        let mut items = vec![(
            h::key("profiles", None, "kns.bench"),
            h::kns_profile("bench", &[]),
        )];
        for i in 0..ENDPOINTS {
            let pod = format!("p{i}");
            let app = format!("app{}", i % 50);
            let role = format!("r{}", i % 20);
            let v = h::wep_json(
                &node,
                "bench",
                &pod,
                &format!("10.65.{}.{}", i / 250, i % 250 + 1),
                &h::cali_name("bench", &pod),
                "02:00:00:00:00:01",
                &[("app", &app), ("role", &role)],
            );
            let name = v["metadata"]["name"].as_str().unwrap().to_string();
            items.push((h::key("workloadendpoints", Some("bench"), &name), v));
        }
        items.extend((0..policies).map(|i| policy(i, 8000 + (i % 1000) as u16)));
        create_many(&ds, items).await;

        let started = Instant::now();
        let _felix = h::Felix::start(&node, &etcd.endpoint(), &[]);
        wait_ready(&path, Duration::from_secs(300)).await;
        let sync = started.elapsed();
        let (mut count, mut sum) = wait_applies_after(&path, 0.0, Duration::from_secs(5)).await;
        let phases_before = phase_sums(&path);
        let mut apply = Vec::new();
        let mut e2e = Vec::new();
        for k in 0..CHANGES {
            let port = 20_000 + k as u16;
            let (key, value) = policy(0, port);
            let t0 = Instant::now();
            h::put_json(&ds, &key, &value).await;
            let (c, s) = wait_applies_after(&path, count, Duration::from_secs(30)).await;
            e2e.push(t0.elapsed());
            apply.push(Duration::from_secs_f64((s - sum) / (c - count)));
            (count, sum) = (c, s);
        }
        let phases = phase_report(&phases_before, &phase_sums(&path));
        let saved = h::run("iptables-save", &["-t", "filter"]);
        if let Ok(dir) = std::env::var("BENCH_DUMP_DIR") {
            // For measuring restores by hand against felix's real table.
            let dir = std::path::Path::new(&dir);
            std::fs::write(dir.join(format!("filter-{policies}.save")), &saved).unwrap();
            let sets = h::run("ipset", &["save"]);
            std::fs::write(dir.join(format!("ipsets-{policies}.save")), sets).unwrap();
            std::fs::write(dir.join(format!("felix-{policies}.log")), _felix.log_text()).unwrap();
        }
        assert!(
            saved.contains(&format!("{}", 20_000 + CHANGES - 1)),
            "last change not in the kernel"
        );
        apply.sort();
        e2e.sort();
        let body = h::probe::http_get(path.clone(), 9091, "/metrics")
            .unwrap()
            .1;
        let m = |n: &str| h::probe::metric(&body, n).unwrap_or(0.0);
        let calc = Duration::from_secs_f64(
            m("felix_calc_graph_update_time_seconds_sum")
                / m("felix_calc_graph_update_time_seconds_count"),
        );
        Row {
            policies,
            sync,
            calc,
            apply,
            e2e,
            phases,
        }
    })
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_POLICIES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 500]);
    let rows: Vec<Row> = sizes.into_iter().map(run).collect();
    println!("\nfelix policy scale, {ENDPOINTS} local endpoints, {CHANGES} changes of one policy");
    println!(
        "{:>8} {:>12} {:>14} {:>14} {:>14} {:>14} {:>14}",
        "policies",
        "sync ms",
        "calc mean ms",
        "apply p50 ms",
        "apply p99 ms",
        "e2e p50 ms",
        "e2e p99 ms"
    );
    for r in &rows {
        println!(
            "{:>8} {:>12.0} {:>14} {:>14} {:>14} {:>14} {:>14}",
            r.policies,
            r.sync.as_secs_f64() * 1e3,
            ms(r.calc),
            ms(quantile(&r.apply, 0.5)),
            ms(quantile(&r.apply, 0.99)),
            ms(quantile(&r.e2e, 0.5)),
            ms(quantile(&r.e2e, 0.99)),
        );
    }
    for r in &rows {
        println!("{} policies, per-change mean ms: {}", r.policies, r.phases);
    }
}
