//! NEEDS ROOT. A pod label change in the Kubernetes API, through kube-controllers (the
//! endpoint's labels in etcd) to felix (the rule's ipset in the kernel): p50/p99 of
//! label patch acknowledged -> endpoint updated in etcd, and -> felix's apply finished.
//! Target (Kubernetes issue): p99 under 100 ms.
//!
//! Everything runs in one throwaway node namespace: a real etcd, a real kube-apiserver
//! (scripts/kube-apiserver.sh), the kube-controllers binary (built in release first:
//! `cargo build --release -p kube-controllers`, or KUBE_CONTROLLERS_BIN) and felix.
//! PODS local endpoints; a GlobalNetworkPolicy on the `app=web` pod allows TCP from
//! `app=client`, so each relabel moves an address in or out of that rule's ipset.
//!
//! Run: `cargo build --release -p kube-controllers && cargo bench -p felix --bench daemon_k8s_labels`

mod daemon_common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use config::testing::EtcdServer;
use daemon_common::daemon_harness::{self as h, Netns, in_ns};
use daemon_common::*;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

const PODS: usize = 100;
const NAMESPACE: &str = "bench";

fn kube_controllers_binary() -> PathBuf {
    let path = std::env::var_os("KUBE_CONTROLLERS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/kube-controllers")
        });
    assert!(
        path.is_file(),
        "{} is missing: cargo build --release -p kube-controllers (or set KUBE_CONTROLLERS_BIN)",
        path.display()
    );
    path
}

/// The kube-controllers process, killed on drop.
struct Controllers(Child);

impl Drop for Controllers {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pod_name(i: usize) -> String {
    format!("p{i}")
}

fn main() {
    let prefix = h::unique_prefix();
    let node_ns = Netns::new_node(&format!("{prefix}-node"));
    let node = format!("{prefix}-n");
    let path = node_ns.path();
    let (to_etcd, to_felix) = in_ns(&node_ns, move || async move {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        let api = kubetest::KubeApiServer::start(&etcd).await;
        let client = api.client().await;
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
        // Pod objects and the endpoints the CNI plugin would have written for them.
        let mut items = Vec::new();
        for i in 0..=PODS {
            let name = if i == PODS {
                "web".to_string()
            } else {
                pod_name(i)
            };
            let app = if i == PODS { "web" } else { "idle" };
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"app": app}},
                "spec": {"containers": [{"name": "c", "image": "x"}]}
            }))
            .unwrap();
            pods.create(&PostParams::default(), &pod).await.unwrap();
            let wep = h::wep_json(
                &node,
                NAMESPACE,
                &name,
                &format!("10.65.{}.{}", i / 250, i % 250 + 1),
                &h::cali_name(NAMESPACE, &name),
                "02:00:00:00:00:01",
                &[("app", app)],
            );
            let key_name = wep["metadata"]["name"].as_str().unwrap().to_string();
            items.push((h::key("workloadendpoints", Some(NAMESPACE), &key_name), wep));
        }
        items.push((
            h::key("globalnetworkpolicies", None, "web-from-clients"),
            json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
                   "metadata": {"name": "web-from-clients"},
                   "spec": {"selector": "app == 'web'", "types": ["Ingress"],
                            "ingress": [{"action": "Allow", "protocol": "TCP",
                                         "source": {"selector": "app == 'client'"}}]}}),
        ));
        create_many(&ds, items).await;

        let _controllers = Controllers(
            Command::new(kube_controllers_binary())
                .arg("--kubeconfig")
                .arg(api.kubeconfig_path())
                .args([
                    "--health-listen",
                    "127.0.0.1:0",
                    "--metrics-listen",
                    "127.0.0.1:0",
                ])
                .env("ETCD_ENDPOINTS", etcd.endpoint())
                .env("LOG_LEVEL", "warn")
                .stdin(Stdio::null())
                .spawn()
                .expect("starting kube-controllers"),
        );
        let _felix = h::Felix::start(&node, &etcd.endpoint(), &[]);
        wait_ready(&path, Duration::from_secs(120)).await;
        // kube-controllers' first sync (the kns.bench profile) and felix's applies settle.
        let wep_of = |i: usize| {
            let name = config::model::wep_name(&node, "k8s", &pod_name(i), "eth0");
            let ds = ds.clone();
            async move {
                ds.get::<config::model::WorkloadEndpoint>(Some(NAMESPACE), &name)
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        h::eventually(
            Duration::from_secs(30),
            "kns.bench profile on the endpoints",
            || h::run("ipset", &["list", "-n"]).contains("cali40"),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (mut count, _) = wait_applies_after(&path, 0.0, Duration::from_secs(5)).await;

        let mut to_etcd = Vec::new();
        let mut to_felix = Vec::new();
        // Each pod in turn becomes a client: its address joins the rule's set.
        let app = "client";
        for i in 0..PODS {
            let t0 = Instant::now();
            pods.patch(
                &pod_name(i),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"app": app}}})),
            )
            .await
            .unwrap();
            // Polling etcd (a local get is ~0.3 ms) and felix's metrics: both every 1 ms.
            loop {
                if wep_of(i)
                    .await
                    .metadata
                    .labels
                    .get("app")
                    .map(String::as_str)
                    == Some(app)
                {
                    break;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(30),
                    "endpoint never updated"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            to_etcd.push(t0.elapsed());
            let (c, _) = wait_applies_after(&path, count, Duration::from_secs(30)).await;
            to_felix.push(t0.elapsed());
            count = c;
        }
        // The last state is in the kernel: the relabelled pods' addresses in the set.
        let sets = h::run("ipset", &["save"]);
        for i in 0..PODS {
            let ip = format!("10.65.{}.{}", i / 250, i % 250 + 1);
            assert!(
                sets.contains(&format!(" {ip}\n")),
                "{ip} not in a set:\n{sets}"
            );
        }
        to_etcd.sort();
        to_felix.sort();
        (to_etcd, to_felix)
    });
    println!(
        "\npod label change -> endpoint in etcd -> felix applied, {PODS} local endpoints, {PODS} relabels (ms)"
    );
    println!("{:<28} {:>9} {:>9} {:>9}", "", "p50", "p99", "max");
    for (what, v) in [
        ("patch -> etcd endpoint", &to_etcd),
        ("patch -> felix applied", &to_felix),
    ] {
        println!(
            "{what:<28} {:>9} {:>9} {:>9}",
            ms(quantile(v, 0.5)),
            ms(quantile(v, 0.99)),
            ms(*v.last().unwrap())
        );
    }
    drop(node_ns);
}
