//! ADD latency of the `calico` plugin (with `calico-ipam` delegated) over 100 sequential
//! pods against a local etcd: p50/p90/p99/max, target p99 < 100 ms.
//!
//! Needs root. Runs like the tests: a host namespace with its own etcd, one fresh pod
//! namespace per ADD (created before its timing starts). Each ADD is the whole process as a
//! runtime sees it: spawn, config, etcd connect, IPAM, veth, pod setup, endpoint write. The
//! binary is spawned directly from a thread inside the host namespace (no `ip netns exec`
//! in the measurement). DEL latency is reported too, since a runtime pays it as well.
//!
//! Twice: with the plain configuration, and with `kubernetes.kubeconfig` so that each ADD
//! also reads its Pod and Namespace from a real kube-apiserver (scripts/kube-apiserver.sh)
//! over TLS, as in a Kubernetes cluster.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Pod, host_test};

const PODS: usize = 100;
const TARGET_P99: Duration = Duration::from_millis(100);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn row(name: &str, samples: &mut [Duration]) -> Duration {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p99 = percentile(samples, 99.0);
    println!(
        "{name:<6} {:>5} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        samples.len(),
        ms(samples[0]),
        ms(percentile(samples, 50.0)),
        ms(percentile(samples, 90.0)),
        ms(p99),
        ms(samples[samples.len() - 1]),
    );
    p99
}

/// ADD then DEL for [`PODS`] pods (namespace `default`, names `<tag>-<i>`) with `conf`;
/// prints the rows and returns the ADD p99.
async fn measure(host: &common::Host, conf: &serde_json::Value, tag: &str) -> Duration {
    let mut adds = Vec::with_capacity(PODS);
    let mut pods = Vec::with_capacity(PODS);
    for i in 0..PODS {
        let pod = Pod::new(&format!("{tag}-{i}"));
        let start = Instant::now();
        let out = host.run_direct("calico", "ADD", &pod, conf).await;
        adds.push(start.elapsed());
        out.result();
        pods.push(pod);
    }
    assert_eq!(host.ips_in_use().await, PODS as u64);
    let mut dels = Vec::with_capacity(PODS);
    for pod in &pods {
        let start = Instant::now();
        let out = host.run_direct("calico", "DEL", pod, conf).await;
        dels.push(start.elapsed());
        assert!(out.ok, "DEL: {}", out.stdout);
    }
    assert_eq!(host.ips_in_use().await, 0);
    println!("calico ADD/DEL latency, {PODS} sequential pods, {tag} (ms)");
    println!(
        "{:<6} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "op", "n", "min", "p50", "p90", "p99", "max"
    );
    let p99 = row("ADD", &mut adds);
    row("DEL", &mut dels);
    println!(
        "ADD p99 {:.2} ms vs target {} ms: {}",
        p99.as_secs_f64() * 1000.0,
        TARGET_P99.as_millis(),
        if p99 < TARGET_P99 { "met" } else { "MISSED" }
    );
    p99
}

fn main() {
    // `cargo bench` passes --bench; any other argument filters nothing here.
    host_test(|host| async move {
        let conf = host.conf("1.0.0");
        let plain = measure(&host, &conf, "etcd-only").await;

        let api = kubetest::KubeApiServer::start(&host.etcd).await;
        let client = api.client().await;
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(client, "default");
        for i in 0..PODS {
            let pod = serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("k8s-{i}"), "labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "c", "image": "x",
                         "ports": [{"name": "http", "containerPort": 8080}]}]}
            }))
            .expect("a pod object");
            pods.create(&kube::api::PostParams::default(), &pod)
                .await
                .expect("creating a pod");
        }
        let mut conf = conf;
        conf["kubernetes"] = serde_json::json!({"kubeconfig": api.kubeconfig_path()});
        conf["policy"] = serde_json::json!({"type": "k8s"});
        let with_api = measure(&host, &conf, "k8s").await;
        println!(
            "ADD p99 with the pod read from the API: {:.2} ms ({:.2}x without)",
            with_api.as_secs_f64() * 1000.0,
            with_api.as_secs_f64() / plain.as_secs_f64()
        );
    });
}
