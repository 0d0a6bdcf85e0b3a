//! Kubernetes NetworkPolicy -> Calico `knp.default.*`, against a real kube-apiserver and
//! etcd: create, update, delete, removal of stale policies at start.

mod support;

use config::model::{NetworkPolicy, NetworkPolicySpec, Port};
use k8s_openapi::api::networking::v1::NetworkPolicy as K8sPolicy;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube_controllers::controllers::Kind;
use serde_json::json;
use support::{CONVERGE, Cluster, eventually};

async fn policy(c: &Cluster, name: &str) -> Option<NetworkPolicy> {
    c.ds.get::<NetworkPolicy>(Some("prod"), name).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calico_policies_follow_kubernetes_policies() {
    let c = Cluster::start().await;
    c.create_namespace("prod", json!({})).await;
    let mut stale = NetworkPolicy::named("knp.default.gone", NetworkPolicySpec::default());
    stale.metadata.namespace = Some("prod".into());
    c.ds.create(&stale).await.unwrap();
    let mut own = NetworkPolicy::named("allow-dns", NetworkPolicySpec::default());
    own.metadata.namespace = Some("prod".into());
    c.ds.create(&own).await.unwrap();
    let _: K8sPolicy = c
        .create(
            "prod",
            json!({
                "metadata": {"name": "web"},
                "spec": {
                    "podSelector": {"matchLabels": {"app": "web"}},
                    "ingress": [{
                        "from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}],
                        "ports": [{"port": 80}],
                    }],
                },
            }),
        )
        .await;
    let running = c.controllers(&[Kind::Policy]);

    let p = eventually("knp.default.web written", CONVERGE, || async {
        policy(&c, "knp.default.web").await
    })
    .await;
    assert_eq!(p.spec.order, Some(1000.0));
    assert_eq!(
        p.spec.selector,
        "projectcalico.org/orchestrator == 'k8s' && app == 'web'"
    );
    assert_eq!(p.spec.ingress.len(), 1);
    assert_eq!(p.spec.ingress[0].source.namespace_selector, "team == 'a'");
    assert_eq!(p.spec.ingress[0].destination.ports, [Port::Number(80)]);
    eventually("stale knp.default.gone removed", CONVERGE, || async {
        policy(&c, "knp.default.gone").await.is_none().then_some(())
    })
    .await;
    assert!(
        policy(&c, "allow-dns").await.is_some(),
        "a policy we do not own stays"
    );

    let api = Api::<K8sPolicy>::namespaced(c.client.clone(), "prod");
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"ingress": [{"ports": [{"port": 443}]}]}})),
    )
    .await
    .unwrap();
    eventually("knp.default.web updated to port 443", CONVERGE, || async {
        policy(&c, "knp.default.web").await.filter(|p| {
            p.spec.ingress.len() == 1 && p.spec.ingress[0].destination.ports == [Port::Number(443)]
        })
    })
    .await;

    api.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("knp.default.web removed", CONVERGE, || async {
        policy(&c, "knp.default.web").await.is_none().then_some(())
    })
    .await;
    assert!(
        running
            .metrics
            .render()
            .contains("kube_controllers_policies_failed_closed 0")
    );
    running.stop().await;
}
