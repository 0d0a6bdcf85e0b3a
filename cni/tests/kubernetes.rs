//! The `calico` plugin reading the pod from a real kube-apiserver (built by
//! scripts/kube-apiserver.sh) over the test's etcd: labels, service account and named
//! ports reach the endpoint; the pool annotations (pod over namespace) and `ipAddrs`
//! reach IPAM; an API server that is down, a pod that is missing and a kubeconfig that
//! is wrong each fail the ADD with one clear line and nothing left behind.
//!
//! NEEDS ROOT (network namespaces, see `common`).

mod common;

use std::collections::BTreeMap;

use common::{Host, Pod, host_test, pod_ip};
use config::model::Protocol;
use k8s_openapi::api::core::v1::{Namespace, Pod as KubePod};
use kube::Api;
use kube::api::PostParams;
use kubetest::KubeApiServer;
use serde_json::{Value, json};

fn conf(host: &Host, kubeconfig: &str) -> Value {
    let mut conf = host.conf("1.0.0");
    conf["kubernetes"] = json!({"kubeconfig": kubeconfig});
    conf["policy"] = json!({"type": "k8s"});
    conf
}

async fn create_namespace(client: &kube::Client, name: &str, annotations: Value) {
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations}
    }))
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

/// A pod object as kubelet would find it: labels, service account, one named port.
async fn create_pod(client: &kube::Client, pod: &Pod, annotations: Value) {
    let object: KubePod = serde_json::from_value(json!({
        "metadata": {"name": pod.name, "namespace": pod.namespace,
                     "labels": {"app": "web", "tier": "front"},
                     "annotations": annotations},
        "spec": {"serviceAccountName": "api",
                 "containers": [{"name": "c", "image": "nginx",
                                 "ports": [{"name": "http", "containerPort": 8080}]}]}
    }))
    .unwrap();
    Api::<KubePod>::namespaced(client.clone(), &pod.namespace)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

fn pod_in(name: &str, namespace: &str) -> Pod {
    let mut pod = Pod::new(name);
    pod.namespace = namespace.into();
    pod
}

#[test]
fn add_reads_the_pod_and_namespace_from_the_api() {
    host_test(|host| async move {
        let api = KubeApiServer::start(&host.etcd).await;
        let client = api.client().await;
        common::create_pool(&host.ds, "blue", "10.250.0.0/16").await;
        create_namespace(
            &client,
            "prod",
            json!({"cni.projectcalico.org/ipv4pools": "[\"blue\"]"}),
        )
        .await;
        let conf = conf(&host, api.kubeconfig_path().to_str().unwrap());

        // Labels, service account and the named port reach the endpoint; the namespace's
        // pool annotation reaches IPAM.
        let web = pod_in("web-1", "prod");
        create_pod(&client, &web, json!({})).await;
        let out = host.calico("ADD", &web, &conf).await.result();
        assert!(pod_ip(&out).starts_with("10.250."), "{out}");
        let wep = host.wep(&web).await.expect("endpoint written");
        let labels: BTreeMap<&str, &str> = wep
            .metadata
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            BTreeMap::from([
                ("app", "web"),
                ("tier", "front"),
                ("projectcalico.org/namespace", "prod"),
                ("projectcalico.org/orchestrator", "k8s"),
                ("projectcalico.org/serviceaccount", "api"),
            ])
        );
        assert_eq!(wep.spec.profiles, ["kns.prod", "ksa.prod.api"]);
        assert_eq!(wep.spec.service_account_name, "api");
        let ports: Vec<(&str, Protocol, u16)> = wep
            .spec
            .ports
            .iter()
            .map(|p| (p.name.as_str(), p.protocol, p.port))
            .collect();
        assert_eq!(ports, [("http", Protocol::Tcp, 8080)]);

        // The pod's own pool annotation wins over its namespace's.
        let own = pod_in("own-pool", "prod");
        create_pod(
            &client,
            &own,
            json!({"cni.projectcalico.org/ipv4pools": "[\"10.244.0.0/16\"]"}),
        )
        .await;
        let out = host.calico("ADD", &own, &conf).await.result();
        assert!(pod_ip(&out).starts_with("10.244."), "{out}");

        // ipAddrs: exactly that address, through IPAM.
        let fixed = pod_in("fixed", "prod");
        create_pod(
            &client,
            &fixed,
            json!({"cni.projectcalico.org/ipAddrs": "[\"10.244.9.9\"]"}),
        )
        .await;
        let out = host.calico("ADD", &fixed, &conf).await.result();
        assert_eq!(pod_ip(&out), "10.244.9.9");

        for pod in [&web, &own, &fixed] {
            assert!(host.calico("DEL", pod, &conf).await.ok);
        }
        assert_eq!(host.ips_in_use().await, 0);
    });
}

#[test]
fn add_fails_cleanly_when_the_api_cannot_answer() {
    host_test(|host| async move {
        let mut api = KubeApiServer::start(&host.etcd).await;
        let client = api.client().await;
        let kubeconfig = api.kubeconfig_path().to_str().unwrap().to_string();
        let conf = conf(&host, &kubeconfig);

        // A pod the API does not know: try again later, nothing allocated.
        let ghost = pod_in("ghost", "default");
        let out = host.calico("ADD", &ghost, &conf).await;
        assert_eq!(
            out.error_code(),
            u64::from(cni::error::TRY_AGAIN),
            "{}",
            out.stdout
        );
        assert!(
            out.json()["msg"]
                .as_str()
                .unwrap()
                .contains("pod default/ghost")
        );
        host.assert_nothing_left(&ghost).await;

        // The API server down: a clear error, nothing allocated; back up: the ADD works.
        let pod = pod_in("web", "default");
        create_pod(&client, &pod, json!({})).await;
        api.stop();
        let out = host.calico("ADD", &pod, &conf).await;
        assert_eq!(
            out.error_code(),
            u64::from(cni::error::TRY_AGAIN),
            "{}",
            out.stdout
        );
        let msg = out.json()["msg"].as_str().unwrap().to_string();
        assert!(msg.contains("not reachable"), "{msg}");
        host.assert_nothing_left(&pod).await;
        api.restart().await;
        let out = host.calico("ADD", &pod, &conf).await.result();
        assert!(pod_ip(&out).starts_with("10.244."), "{out}");
        assert!(host.calico("DEL", &pod, &conf).await.ok);

        // A kubeconfig that is missing or not a kubeconfig: one line naming the file.
        let missing = "/nonexistent/calico-kubeconfig";
        let garbage = api.dir().join("garbage-kubeconfig");
        std::fs::write(&garbage, "this: [is not a kubeconfig").unwrap();
        for path in [missing, garbage.to_str().unwrap()] {
            let out = host.calico("ADD", &pod, &self::conf(&host, path)).await;
            assert_eq!(out.error_code(), u64::from(cni::error::INVALID_CONFIG));
            let v = out.json();
            let line = format!("{}: {}", v["msg"], v["details"]);
            assert!(line.contains(path), "{line}");
            assert!(!line.contains('\n'), "{line}");
            host.assert_nothing_left(&pod).await;
        }
    });
}
