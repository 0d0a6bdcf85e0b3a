//! Start-up benchmark against a real kube-apiserver and etcd: 1,000 pods in 10
//! namespaces (each pod with an endpoint in etcd as the CNI plugin wrote it, but with
//! stale labels), a service account per namespace and 200 NetworkPolicies. Measures the
//! `kube-controllers` binary from spawn to etcd fully written (10 `kns.*`, 10 `ksa.*`,
//! 200 `knp.default.*` and 1,000 endpoint label updates), its CPU time and peak RSS.
//!
//! `cargo bench -p kube-controllers --bench startup`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use config::datastore::Datastore;
use config::model::{NetworkPolicy, Profile, WorkloadEndpoint, WorkloadEndpointSpec, wep_name};
use config::testing::EtcdServer;
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy as K8sPolicy;
use kube::Api;
use kube::api::PostParams;
use kubetest::KubeApiServer;
use serde_json::json;

const NAMESPACES: usize = 10;
const PODS_PER_NAMESPACE: usize = 100;
const POLICIES_PER_NAMESPACE: usize = 20;
const PARALLEL: usize = 16;

async fn create<K>(api: Api<K>, obj: serde_json::Value)
where
    K: Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    K: kube::Resource,
{
    let obj: K = serde_json::from_value(obj).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
}

fn endpoint(ns: &str, pod: &str, n: usize) -> WorkloadEndpoint {
    let mut w = WorkloadEndpoint::named(
        wep_name("node1", "k8s", pod, "eth0"),
        WorkloadEndpointSpec {
            orchestrator: "k8s".into(),
            node: "node1".into(),
            pod: pod.into(),
            endpoint: "eth0".into(),
            container_id: format!("cid-{ns}-{pod}"),
            interface_name: format!("cali{n:011x}"),
            ip_networks: vec![format!("10.244.{}.{}/32", n / 250, n % 250 + 1)],
            profiles: vec![format!("kns.{ns}")],
            ..WorkloadEndpointSpec::default()
        },
    );
    w.metadata.namespace = Some(ns.into());
    w.metadata.labels = [("app".to_string(), "stale".to_string())].into();
    w
}

async fn populate(client: &kube::Client, ds: &Datastore) {
    let mut pods = Vec::new();
    let mut policies = Vec::new();
    for i in 0..NAMESPACES {
        let ns = format!("bench-{i}");
        create(
            Api::<Namespace>::all(client.clone()),
            json!({"metadata": {"name": ns, "labels": {"team": format!("t{i}")}}}),
        )
        .await;
        create(
            Api::<ServiceAccount>::namespaced(client.clone(), &ns),
            json!({"metadata": {"name": "app", "labels": {"tier": "web"}}}),
        )
        .await;
        for p in 0..PODS_PER_NAMESPACE {
            pods.push((ns.clone(), format!("pod-{p}"), i * PODS_PER_NAMESPACE + p));
        }
        for p in 0..POLICIES_PER_NAMESPACE {
            policies.push((ns.clone(), format!("policy-{p}"), p));
        }
    }
    stream::iter(pods)
        .for_each_concurrent(PARALLEL, |(ns, name, n)| {
            let client = client.clone();
            let ds = ds.clone();
            async move {
                create(
                    Api::<Pod>::namespaced(client, &ns),
                    json!({
                        "metadata": {"name": name, "labels": {"app": format!("app-{}", n % 7), "pod": name}},
                        "spec": {"serviceAccountName": "app", "nodeName": "node1",
                                 "containers": [{"name": "c", "image": "registry.invalid/pause:1"}]},
                    }),
                )
                .await;
                ds.create(&endpoint(&ns, &name, n)).await.unwrap();
            }
        })
        .await;
    stream::iter(policies)
        .for_each_concurrent(PARALLEL, |(ns, name, p)| {
            let client = client.clone();
            async move {
                create(
                    Api::<K8sPolicy>::namespaced(client, &ns),
                    json!({
                        "metadata": {"name": name},
                        "spec": {
                            "podSelector": {"matchLabels": {"app": format!("app-{}", p % 7)}},
                            "policyTypes": ["Ingress", "Egress"],
                            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "app-1"}}},
                                                  {"namespaceSelector": {"matchLabels": {"team": "t1"}}}],
                                         "ports": [{"port": 80 + p}, {"port": 8000, "endPort": 8100}]}],
                            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}],
                        },
                    }),
                )
                .await;
            }
        })
        .await;
}

/// Whether etcd holds everything the controllers should write.
async fn fully_written(ds: &Datastore) -> bool {
    let (profiles, _) = ds.list::<Profile>(None).await.unwrap();
    let kns = profiles
        .iter()
        .filter(|p| p.metadata.name.starts_with("kns.bench-"))
        .count();
    let ksa = profiles
        .iter()
        .filter(|p| p.metadata.name.starts_with("ksa.bench-"))
        .count();
    let (policies, _) = ds.list::<NetworkPolicy>(None).await.unwrap();
    let knp = policies
        .iter()
        .filter(|p| p.metadata.name.starts_with("knp.default."))
        .count();
    let (weps, _) = ds.list::<WorkloadEndpoint>(None).await.unwrap();
    let labelled = weps
        .iter()
        .filter(|w| w.metadata.labels.get("pod") == Some(&w.spec.pod))
        .count();
    kns == NAMESPACES
        && ksa == NAMESPACES
        && knp == NAMESPACES * POLICIES_PER_NAMESPACE
        && labelled == NAMESPACES * PODS_PER_NAMESPACE
}

/// (user + system CPU seconds, peak RSS in KiB) of a running process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (ticks / 100.0, hwm)
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let etcd = EtcdServer::start().await;
    let api = KubeApiServer::start(&etcd).await;
    let client = api.client().await;
    let ds = etcd.datastore().await;
    let setup = Instant::now();
    populate(&client, &ds).await;
    println!("setup: {:.1?} (load {})", setup.elapsed(), uptime());

    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-controllers"))
        .arg("--kubeconfig")
        .arg(api.kubeconfig_path())
        .args(["--etcd-endpoints", &etcd.endpoint()])
        .args([
            "--health-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .env("LOG_LEVEL", "warning")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .spawn()
        .expect("starting kube-controllers");
    let pid = child.id();
    let mut done = None;
    while started.elapsed() < Duration::from_secs(120) {
        if fully_written(&ds).await {
            done = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (cpu, hwm) = usage(pid);
    let _ = child.kill();
    let _ = child.wait();
    let done = done.expect("etcd fully written within 120 s");
    println!(
        "kube-controllers: {} pods / {} namespaces / {} policies: etcd fully written {:.2?} after spawn; \
         CPU {:.2} s (user+sys at that point); peak RSS {:.1} MiB; load {}",
        NAMESPACES * PODS_PER_NAMESPACE,
        NAMESPACES,
        NAMESPACES * POLICIES_PER_NAMESPACE,
        done,
        cpu,
        hwm as f64 / 1024.0,
        uptime()
    );
}
