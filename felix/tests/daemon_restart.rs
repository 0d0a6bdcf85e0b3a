//! NEEDS ROOT. Lifecycle of the felix binary in a node namespace with its own etcd:
//! * a restart with unchanged datastore changes nothing in the kernel: same
//!   `ip route`, `iptables-save`, `ipset save`, neighbours; `ip monitor route`
//!   sees no route event at all; the new felix runs no iptables-restore;
//! * an etcd outage changes nothing (felix stays live and ready), and a change
//!   written after etcd is back is applied;
//! * invalid objects (not JSON, failing validation) are counted in
//!   `felix_resync_invalid_objects`; a policy that fails validation (or does not
//!   decode) closes the endpoints its selector picks instead of being skipped, also
//!   when it is an invalid edit of a valid policy; valid ones are still applied.

mod daemon_harness;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use config::datastore::Datastore;
use config::testing::EtcdServer;
use daemon_harness::probe::{self, Servers, http_get, metric};
use daemon_harness::{
    Felix, Netns, Pod, eventually, in_ns, key, put, put_json, put_kns_profile, run,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// Everything felix may touch, as text, without counters and timestamps.
/// What felix programs (IPv4 routes, permanent neighbours, its tables and
/// sets). IPv6 is left out: the kernel adds a veth's link-local routes
/// whenever its address finishes duplicate address detection, which can
/// fall in the middle of a test and is not felix's doing.
fn kernel_snapshot() -> String {
    let strip = |text: String| -> String {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| match l.rfind(" [") {
                Some(i) if l.starts_with(':') => &l[..i],
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut ipsets: Vec<String> = run("ipset", &["save"]).lines().map(String::from).collect();
    ipsets.sort();
    [
        run("ip", &["-4", "route", "show", "table", "all"]),
        run("ip", &["neigh", "show", "nud", "permanent"]),
        strip(run("iptables-save", &["-t", "filter"])),
        strip(run("iptables-save", &["-t", "nat"])),
        ipsets.join("\n"),
    ]
    .join("\n----\n")
}

/// `ip -4 monitor route` (see [`kernel_snapshot`] for why IPv4 only) in the
/// calling thread's namespace, writing to a file;
/// returns once it provably listens (it saw a marker route come and go).
struct RouteMonitor {
    child: Child,
    out: tempfile::NamedTempFile,
}

impl RouteMonitor {
    async fn start() -> Self {
        let out = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new("ip")
            .args(["-4", "monitor", "route"])
            // Append mode, so that truncating the file later restarts it at 0.
            .stdout(
                std::fs::File::options()
                    .append(true)
                    .open(out.path())
                    .unwrap(),
            )
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut m = RouteMonitor { child, out };
        // `ip` subscribes some time after the spawn: re-add the marker until
        // it shows up, which proves the subscription.
        let marker = "10.254.254.0/24";
        let route = ["route", "replace", marker, "dev", "lo", "proto", "static"];
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            run("ip", &route);
            let seen = std::time::Instant::now() + Duration::from_millis(200);
            while !m.text().contains(marker) && std::time::Instant::now() < seen {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if m.text().contains(marker) {
                break;
            }
            run(
                "ip",
                &["route", "del", marker, "dev", "lo", "proto", "static"],
            );
            assert!(
                std::time::Instant::now() < deadline,
                "ip monitor never listened"
            );
        }
        run(
            "ip",
            &["route", "del", marker, "dev", "lo", "proto", "static"],
        );
        eventually(WAIT, "ip monitor saw the marker go", || {
            m.text().contains("Deleted")
        })
        .await;
        m.out.as_file().set_len(0).unwrap();
        m.child.try_wait().unwrap();
        m
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.out.path()).unwrap_or_default()
    }
}

impl Drop for RouteMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn ready(ns: &Path) {
    eventually(WAIT, "felix ready", || {
        http_get(ns.to_path_buf(), 9099, "/readiness").is_some_and(|(c, _)| c == 200)
    })
    .await;
}

fn metrics(ns: &Path) -> String {
    http_get(ns.to_path_buf(), 9091, "/metrics")
        .expect("metrics served")
        .1
}

async fn base_objects(ds: &Datastore, node: &str, weps: &[(String, String, serde_json::Value)]) {
    put_kns_profile(ds, "ns1", &[]).await;
    for (ns, name, wep) in weps {
        put_json(ds, &key("workloadendpoints", Some(ns), name), wep).await;
    }
    let pool = json!({"apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": {"name": "p1"}, "spec": {"cidr": "10.65.0.0/16", "natOutgoing": true}});
    put_json(ds, &key("ippools", None, "p1"), &pool).await;
    let aff = format!("/calico/ipam/v2/host/{node}/ipv4/block/10.65.0.0-26");
    put(ds, &aff, br#"{"state":"confirmed","deleted":false}"#).await;
    let np = json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
        "metadata": {"name": "good", "namespace": "ns1"},
        "spec": {"selector": "app == 'b'", "ingress": [{"action": "Allow", "protocol": "TCP",
            "source": {"selector": "app == 'a'"}, "destination": {"ports": [8080]}}]}});
    put_json(ds, &key("networkpolicies", Some("ns1"), "good"), &np).await;
}

struct Setup {
    node_ns: Netns,
    node: String,
    pods: Vec<Pod>,
    weps: Vec<(String, String, serde_json::Value)>,
}

fn setup() -> Setup {
    let prefix = daemon_harness::unique_prefix();
    let node_ns = Netns::new_node(&format!("{prefix}-node"));
    let node = format!("{prefix}-n");
    let pods = vec![
        Pod::new(&node_ns, "ns1", "pa", "10.65.0.2", 1),
        Pod::new(&node_ns, "ns1", "pb", "10.65.0.3", 2),
    ];
    let weps = pods
        .iter()
        .zip(["a", "b"])
        .map(|(p, app)| {
            (
                p.namespace.clone(),
                p.wep_name(&node),
                p.wep_json(&node, &[("app", app)]),
            )
        })
        .collect();
    Setup {
        node_ns,
        node,
        pods,
        weps,
    }
}

#[test]
fn restart_with_unchanged_state_changes_nothing() {
    let s = setup();
    let (node, weps, path) = (s.node.clone(), s.weps.clone(), s.node_ns.path());
    in_ns(&s.node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        base_objects(&ds, &node, &weps).await;
        let mut felix = Felix::start(&node, &etcd.endpoint(), &[]);
        ready(&path).await;
        let before = kernel_snapshot();
        assert!(
            before.contains("blackhole 10.65.0.0/26 proto 80"),
            "{before}"
        );
        assert!(
            before.contains("cali-pi-"),
            "policy chain present:\n{before}"
        );
        assert!(
            before.contains("MASQUERADE"),
            "natOutgoing present:\n{before}"
        );

        let monitor = RouteMonitor::start().await;
        assert!(felix.stop(), "clean exit:\n{}", felix.log_text());
        assert_eq!(
            kernel_snapshot(),
            before,
            "SIGTERM left the kernel as it was"
        );
        let felix2 = Felix::start(&node, &etcd.endpoint(), &[]);
        ready(&path).await;
        assert_eq!(kernel_snapshot(), before, "restart changed the kernel");
        let events = monitor.text();
        assert!(events.is_empty(), "route events during restart:\n{events}");
        let m = metrics(&path);
        assert_eq!(
            metric(&m, "felix_iptables_restore_calls"),
            Some(0.0),
            "the restarted felix rewrote rules:\n{}",
            felix2.log_text()
        );
        assert_eq!(metric(&m, "felix_ipset_calls"), Some(0.0), "{m}");
        assert_eq!(metric(&m, "felix_resync_state"), Some(3.0), "{m}");
        assert_eq!(metric(&m, "felix_active_local_endpoints"), Some(2.0), "{m}");
        assert_eq!(metric(&m, "felix_active_local_policies"), Some(1.0), "{m}");
    });
    drop(s.pods);
}

#[test]
fn etcd_outage_changes_nothing_and_later_changes_apply() {
    let s = setup();
    let (node, weps, path) = (s.node.clone(), s.weps.clone(), s.node_ns.path());
    in_ns(&s.node_ns, move || async move {
        let mut etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        base_objects(&ds, &node, &weps[..1]).await;
        let felix = Felix::start(&node, &etcd.endpoint(), &[]);
        ready(&path).await;
        let before = kernel_snapshot();
        let monitor = RouteMonitor::start().await;

        etcd.stop();
        eventually(WAIT, "felix notices the outage", || {
            felix.log_text().contains("etcd watch broken")
        })
        .await;
        let p = path.clone();
        assert_eq!(
            http_get(p.clone(), 9099, "/liveness").map(|r| r.0),
            Some(200)
        );
        assert_eq!(http_get(p, 9099, "/readiness").map(|r| r.0), Some(200));
        assert_eq!(kernel_snapshot(), before, "etcd outage changed the kernel");

        etcd.restart().await;
        let ds = etcd.datastore().await;
        let (ns, name, wep) = &weps[1];
        put_json(&ds, &key("workloadendpoints", Some(ns), name), wep).await;
        let want = format!(
            "10.65.0.3 dev {} proto 80 scope link",
            daemon_harness::cali_name("ns1", "pb")
        );
        eventually(WAIT, "change after etcd restart applied", || {
            run("ip", &["route"]).contains(&want)
        })
        .await;
        let events = monitor.text();
        assert!(
            !events.contains("Deleted"),
            "routes deleted during the outage:\n{events}"
        );
        drop(felix);
    });
    drop(s.pods);
}

#[test]
fn invalid_objects_are_counted_and_invalid_policies_close_their_endpoints() {
    let s = setup();
    let (node, weps, path) = (s.node.clone(), s.weps.clone(), s.node_ns.path());
    let (a, b) = (s.pods[0].ns.path(), s.pods[1].ns.path());
    let b_ip = s.pods[1].ip.clone();
    let _servers = [
        Servers::start(b.clone(), 8080),
        Servers::start(b.clone(), 9090),
    ];
    in_ns(&s.node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        base_objects(&ds, &node, &weps).await;
        let np_key = |n: &str| key("networkpolicies", Some("ns1"), n);
        put(&ds, &np_key("garbage"), b"{not json").await;
        let bad = json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
            "metadata": {"name": "bad", "namespace": "ns1"},
            "spec": {"selector": "app == ", "ingress": [{"action": "Deny"}]}});
        put_json(&ds, &np_key("bad"), &bad).await;
        let _felix = Felix::start(&node, &etcd.endpoint(), &[]);
        ready(&path).await;
        let invalid = |m: &str| {
            m.lines()
                .find_map(|l| {
                    l.strip_prefix("felix_resync_invalid_objects{kind=\"networkpolicies\"} ")
                })
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        assert_eq!(invalid(&metrics(&path)), Some(2.0));
        // The valid policy is enforced: B takes only TCP 8080 from A. (The invalid
        // one's selector does not parse, so it selects nothing felix can know of.)
        let allowed = |port| probe::tcp(a.clone(), &b_ip, port);
        assert!(allowed(8080), "good policy allows 8080");
        assert!(!allowed(9090), "good policy denies 9090");

        // An invalid edit of the good policy closes what it selects (B), rather than
        // keep a version the datastore no longer holds.
        let broken = json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
            "metadata": {"name": "good", "namespace": "ns1"},
            "spec": {"selector": "app == 'b'", "ingress": [{"action": "Allow", "protocol": "TCP",
                "destination": {"ports": [99999]}}]}});
        put_json(&ds, &np_key("good"), &broken).await;
        let p = path.clone();
        eventually(WAIT, "invalid edit counted", || {
            invalid(&metrics(&p)) == Some(3.0)
        })
        .await;
        eventually(WAIT, "B closed by the invalid policy", || !allowed(8080)).await;
        assert!(!allowed(9090), "B closed by the invalid policy");

        // Another policy after it (by name) does not reopen B: the invalid one
        // drops first. Fixed, both apply: 8080 and 9090 open.
        let more = json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
            "metadata": {"name": "more", "namespace": "ns1"},
            "spec": {"selector": "app == 'b'", "ingress": [{"action": "Allow", "protocol": "TCP",
                "destination": {"ports": [9090]}}]}});
        put_json(&ds, &np_key("more"), &more).await;
        let good = json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
            "metadata": {"name": "good", "namespace": "ns1"},
            "spec": {"selector": "app == 'b'", "ingress": [{"action": "Allow", "protocol": "TCP",
                "destination": {"ports": [8080]}}]}});
        eventually(WAIT, "new policy in the kernel", || {
            run("iptables-save", &["-t", "filter"]).contains("cali-pi-ns1/more")
        })
        .await;
        assert!(!allowed(9090) && !allowed(8080), "still closed");
        put_json(&ds, &np_key("good"), &good).await;
        eventually(WAIT, "fixed policy applied", || allowed(8080)).await;
        assert!(allowed(9090));
    });
    drop(s.pods);
}
