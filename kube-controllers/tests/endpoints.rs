//! Pods -> their workload endpoints' labels, profiles and service account, against a
//! real kube-apiserver and etcd. The endpoints are written as the CNI plugin writes
//! them at ADD; the controller keeps them current.

mod support;

use std::collections::BTreeMap;

use config::model::{WorkloadEndpoint, WorkloadEndpointSpec, wep_name};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube_controllers::controllers::Kind;
use serde_json::json;
use support::{CONVERGE, Cluster, eventually};

/// An endpoint as the CNI plugin would have written it for `pod`, with `labels`.
fn cni_endpoint(pod: &str, labels: &[(&str, &str)]) -> WorkloadEndpoint {
    let mut w = WorkloadEndpoint::named(
        wep_name("node1", "k8s", pod, "eth0"),
        WorkloadEndpointSpec {
            orchestrator: "k8s".into(),
            node: "node1".into(),
            pod: pod.into(),
            endpoint: "eth0".into(),
            container_id: format!("cid-{pod}"),
            interface_name: "cali0123456789a".into(),
            ip_networks: vec!["10.244.0.5/32".into()],
            profiles: vec!["kns.prod".into()],
            ..WorkloadEndpointSpec::default()
        },
    );
    w.metadata.namespace = Some("prod".into());
    w.metadata.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    w
}

fn pod_json(name: &str, labels: serde_json::Value, sa: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "serviceAccountName": sa,
            "nodeName": "node1",
            "containers": [{"name": "c", "image": "registry.invalid/pause:1"}],
        },
    })
}

async fn endpoint(c: &Cluster, pod: &str) -> WorkloadEndpoint {
    c.ds.get::<WorkloadEndpoint>(Some("prod"), &wep_name("node1", "k8s", pod, "eth0"))
        .await
        .unwrap()
        .expect("the endpoint exists")
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_labels_follow_their_pods() {
    let c = Cluster::start().await;
    c.create_namespace("prod", json!({})).await;
    let _: Pod = c
        .create("prod", pod_json("web-1", json!({"app": "web"}), "api"))
        .await;
    // Stale labels, as if the pod changed while no controller ran.
    c.ds.create(&cni_endpoint("web-1", &[("app", "old")]))
        .await
        .unwrap();
    // A pod without an endpoint yet: nothing to write, nothing created.
    let _: Pod = c
        .create("prod", pod_json("pending", json!({"app": "x"}), "api"))
        .await;
    let running = c.controllers(&[Kind::WorkloadEndpoint]);

    let want = map(&[
        ("app", "web"),
        ("projectcalico.org/namespace", "prod"),
        ("projectcalico.org/orchestrator", "k8s"),
        ("projectcalico.org/serviceaccount", "api"),
    ]);
    let w = eventually("endpoint labels from the pod", CONVERGE, || async {
        Some(endpoint(&c, "web-1").await).filter(|w| w.metadata.labels == want)
    })
    .await;
    assert_eq!(w.spec.profiles, ["kns.prod", "ksa.prod.api"]);
    assert_eq!(w.spec.service_account_name, "api");
    assert_eq!(
        w.spec.ip_networks,
        ["10.244.0.5/32"],
        "the CNI plugin's part stays"
    );
    let (all, _) = c.ds.list::<WorkloadEndpoint>(Some("prod")).await.unwrap();
    assert_eq!(all.len(), 1, "no endpoint made up for the pending pod");

    // A label change on the running pod.
    Api::<Pod>::namespaced(c.client.clone(), "prod")
        .patch(
            "web-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "web", "version": "2"}}})),
        )
        .await
        .unwrap();
    let mut want2 = want.clone();
    want2.insert("version".into(), "2".into());
    eventually(
        "endpoint labels after the pod's change",
        CONVERGE,
        || async { Some(endpoint(&c, "web-1").await).filter(|w| w.metadata.labels == want2) },
    )
    .await;

    // The pending pod's endpoint appears (the CNI plugin's ADD, which writes the labels
    // itself): no pod changed, so the controller writes nothing more.
    c.ds.create(&cni_endpoint("pending", &[("app", "x")]))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let writes = running.metrics.render();
    assert!(
        writes.contains(
            "kube_controllers_datastore_writes{controller=\"workloadendpoint\",op=\"update\"} 2"
        ),
        "one write at resync, one for the label change:\n{writes}"
    );
    running.stop().await;
}
