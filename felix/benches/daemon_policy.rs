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
//! `BENCH_MIX=1`: every endpoint names its port `http` (8080), 20 NetworkSets
//! (labels `role: r<k>`) exist in the namespace, and every fifth policy allows
//! `ports: [http]` from its role selector, which then also holds a network set's
//! nets. Besides the policy changes it times 20 endpoint changes that renumber
//! `http` (moving named-port set members) and 20 network set changes, and counts
//! the iptables-restore and ipset writes each costs (expected: ipset only).
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

fn mixed() -> bool {
    std::env::var_os("BENCH_MIX").is_some_and(|v| v == "1")
}

fn policy(i: usize, port: u16) -> (String, serde_json::Value) {
    let name = format!("pol-{i}");
    // In the mix, every fifth policy (never pol-0, the one changed) uses the named
    // port; its source selector also matches one of the network sets.
    let ports = if mixed() && i % 5 == 4 {
        json!(["http"])
    } else {
        json!([port])
    };
    let value = json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "bench"},
        "spec": {"order": i, "selector": format!("app == 'app{}'", i % 50),
            "ingress": [{"action": "Allow", "protocol": "TCP",
                "source": {"selector": format!("role == 'r{}'", i % 20)},
                "destination": {"ports": ports}}],
            "egress": [{"action": "Allow"}]}});
    (h::key("networkpolicies", Some("bench"), &name), value)
}

/// NetworkSet `net-<k>` (role r<k>) with `nets` networks from 172.16.<k>.0.
fn net_set(k: usize, nets: usize) -> (String, serde_json::Value) {
    let name = format!("net-{k}");
    let nets: Vec<String> = (0..nets)
        .map(|n| format!("172.{}.{k}.{n}/32", 16 + n / 250))
        .collect();
    let value = json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkSet",
        "metadata": {"name": name, "namespace": "bench", "labels": {"role": format!("r{k}")}},
        "spec": {"nets": nets}});
    (h::key("networksets", Some("bench"), &name), value)
}

/// Endpoint `i` of the bench (its `http` port numbered `port` in the mix).
fn endpoint(node: &str, i: usize, port: u16) -> (String, serde_json::Value) {
    let pod = format!("p{i}");
    let app = format!("app{}", i % 50);
    let role = format!("r{}", i % 20);
    let mut v = h::wep_json(
        node,
        "bench",
        &pod,
        &format!("10.65.{}.{}", i / 250, i % 250 + 1),
        &h::cali_name("bench", &pod),
        "02:00:00:00:00:01",
        &[("app", &app), ("role", &role)],
    );
    if mixed() {
        v["spec"]["ports"] = json!([{"name": "http", "protocol": "TCP", "port": port}]);
    }
    let name = v["metadata"]["name"].as_str().unwrap().to_string();
    (h::key("workloadendpoints", Some("bench"), &name), v)
}

/// Timings of a series of live changes, and the kernel writes they cost.
#[derive(Default)]
struct Changes {
    apply: Vec<Duration>,
    e2e: Vec<Duration>,
    restores: f64,
    ipset_writes: f64,
    /// felix's CPU time (user + system) per change.
    cpu: Duration,
}

/// (iptables-restore calls, ipset writes) so far.
fn write_counts(path: &std::path::Path) -> (f64, f64) {
    let body = h::probe::http_get(path.to_path_buf(), 9091, "/metrics")
        .unwrap()
        .1;
    let m = |n: &str| h::probe::metric(&body, n).unwrap_or(0.0);
    (m("felix_iptables_restore_calls"), m("felix_ipset_calls"))
}

/// Writes each item, waiting for felix to apply it; the applies' own times and
/// write -> applied, with the kernel writes per change.
async fn time_changes(
    ds: &config::datastore::Datastore,
    path: &std::path::Path,
    pid: u32,
    items: Vec<(String, serde_json::Value)>,
) -> Changes {
    let mut out = Changes::default();
    let cpu_before = cpu_time(pid);
    let (mut count, mut sum) = wait_applies_after(path, 0.0, Duration::from_secs(5)).await;
    let writes_before = write_counts(path);
    let n = items.len() as f64;
    for (key, value) in items {
        let t0 = Instant::now();
        h::put_json(ds, &key, &value).await;
        let (c, s) = wait_applies_after(path, count, Duration::from_secs(30)).await;
        out.e2e.push(t0.elapsed());
        out.apply
            .push(Duration::from_secs_f64((s - sum) / (c - count)));
        (count, sum) = (c, s);
    }
    let writes_after = write_counts(path);
    out.restores = (writes_after.0 - writes_before.0) / n;
    out.ipset_writes = (writes_after.1 - writes_before.1) / n;
    out.cpu = (cpu_time(pid) - cpu_before).div_f64(n);
    out.apply.sort();
    out.e2e.sort();
    out
}

struct Row {
    policies: usize,
    sync: Duration,
    /// Mean calculation time over all applies (first one included).
    calc: Duration,
    policy_changes: Changes,
    /// Mean ms per phase over the changes.
    phases: String,
    /// In the mix: endpoint renumbering its named port, network set changes.
    endpoint_changes: Option<Changes>,
    net_set_changes: Option<Changes>,
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
        items.extend((0..ENDPOINTS).map(|i| endpoint(&node, i, 8080)));
        if mixed() {
            items.extend((0..20).map(|k| net_set(k, 10)));
        }
        items.extend((0..policies).map(|i| policy(i, 8000 + (i % 1000) as u16)));
        create_many(&ds, items).await;

        let started = Instant::now();
        let _felix = h::Felix::start(&node, &etcd.endpoint(), &[]);
        wait_ready(&path, Duration::from_secs(300)).await;
        let sync = started.elapsed();
        let pid = _felix.pid().expect("felix runs");
        wait_applies_after(&path, 0.0, Duration::from_secs(5)).await;
        let phases_before = phase_sums(&path);
        let changed = (0..CHANGES).map(|k| policy(0, 20_000 + k as u16)).collect();
        let policy_changes = time_changes(&ds, &path, pid, changed).await;
        let phases = phase_report(&phases_before, &phase_sums(&path));
        let (endpoint_changes, net_set_changes) = if mixed() {
            // Endpoints selected by named-port policies (app4, app9, ...: i % 5 == 4).
            let renumbered = (0..CHANGES)
                .map(|k| endpoint(&node, 4 + 5 * k, 9000 + k as u16))
                .collect();
            let eps = time_changes(&ds, &path, pid, renumbered).await;
            let grown = (0..CHANGES).map(|k| net_set(k % 20, 11 + k)).collect();
            let sets = time_changes(&ds, &path, pid, grown).await;
            (Some(eps), Some(sets))
        } else {
            (None, None)
        };
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
            policy_changes,
            phases,
            endpoint_changes,
            net_set_changes,
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
        "{:>8} {:>12} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14}",
        "policies",
        "sync ms",
        "calc mean ms",
        "apply p50 ms",
        "apply p99 ms",
        "e2e p50 ms",
        "e2e p99 ms",
        "cpu/change ms"
    );
    for r in &rows {
        let c = &r.policy_changes;
        println!(
            "{:>8} {:>12.0} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14}",
            r.policies,
            r.sync.as_secs_f64() * 1e3,
            ms(r.calc),
            ms(quantile(&c.apply, 0.5)),
            ms(quantile(&c.apply, 0.99)),
            ms(quantile(&c.e2e, 0.5)),
            ms(quantile(&c.e2e, 0.99)),
            ms(c.cpu),
        );
    }
    for r in &rows {
        println!("{} policies, per-change mean ms: {}", r.policies, r.phases);
    }
    for r in &rows {
        for (what, c) in [
            ("endpoint renumbers http", &r.endpoint_changes),
            ("network set change", &r.net_set_changes),
        ] {
            let Some(c) = c else { continue };
            println!(
                "{} policies, {what}: apply p50 {} p99 {} ms, e2e p50 {} p99 {} ms, \
                 per change {:.2} iptables-restore, {:.2} ipset writes, felix cpu {} ms",
                r.policies,
                ms(quantile(&c.apply, 0.5)),
                ms(quantile(&c.apply, 0.99)),
                ms(quantile(&c.e2e, 0.5)),
                ms(quantile(&c.e2e, 0.99)),
                c.restores,
                c.ipset_writes,
                ms(c.cpu),
            );
        }
    }
}
