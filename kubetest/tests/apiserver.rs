//! The real kube-apiserver (scripts/kube-apiserver.sh) over a real etcd: objects through
//! kube::Api and kubectl, RBAC, and a stop/restart on the same port and certificates.
//! Fails (never skips) when the binary is not built.

use config::testing::EtcdServer;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{ListParams, PostParams};
use kubetest::KubeApiServer;
use serde_json::json;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_pods_enforces_rbac_and_survives_a_restart() {
    let etcd = EtcdServer::start().await;
    let mut server = KubeApiServer::start(&etcd).await;
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let client = server.client().await;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "kubetest"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("creating a namespace");
    // Only the API server runs: no token controller, no scheduler, no kubelet.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kubetest");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "pod-1", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/pause:1"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("creating a pod with only the API server running");
    let listed = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("listing pods");
    let names: Vec<_> = listed
        .items
        .iter()
        .filter_map(|p| p.metadata.name.as_deref())
        .collect();
    assert_eq!(names, ["pod-1"]);
    let all = namespaces.list(&ListParams::default()).await.unwrap();
    assert!(
        all.items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some("kubetest"))
    );

    let get_ns = server.kubectl(&["get", "ns", "-o", "name"]);
    assert!(get_ns.status.success(), "kubectl get ns: {get_ns:?}");
    assert!(
        stdout(&get_ns).lines().any(|l| l == "namespace/kubetest"),
        "kubectl get ns: {}",
        stdout(&get_ns)
    );

    // RBAC: the admin (system:masters) may; a service account nobody bound may not.
    let admin = server.kubectl(&["auth", "can-i", "list", "pods"]);
    assert_eq!(stdout(&admin), "yes", "{admin:?}");
    let nobody = server.kubectl(&[
        "auth",
        "can-i",
        "list",
        "pods",
        "--as=system:serviceaccount:default:nobody",
    ]);
    assert_eq!(stdout(&nobody), "no", "{nobody:?}");
    assert!(!nobody.status.success());

    // Down, then up again on the same port with the same certificates: the same client and
    // kubeconfig work again, and the data (in etcd) is still there.
    server.stop();
    assert!(pods.get("pod-1").await.is_err(), "API server still answers");
    assert!(!server.kubectl(&["get", "ns"]).status.success());
    server.restart().await;
    let pod = pods.get("pod-1").await.expect("the pod after a restart");
    assert_eq!(pod.metadata.labels.unwrap()["app"], "web");
    let get_pod = server.kubectl(&["get", "pods", "-n", "kubetest", "-o", "name"]);
    assert_eq!(stdout(&get_pod), "pod/pod-1", "{get_pod:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_over_an_etcd_that_requires_client_certificates() {
    let etcd = EtcdServer::start_tls().await;
    let server = KubeApiServer::start(&etcd).await;
    let namespaces: Api<Namespace> = Api::all(server.client().await);
    let names: Vec<_> = namespaces
        .list(&ListParams::default())
        .await
        .expect("listing namespaces")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.iter().any(|n| n == "default"), "{names:?}");
}
