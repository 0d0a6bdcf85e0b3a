//! Namespaces and service accounts -> `kns.*` / `ksa.*` profiles, against a real
//! kube-apiserver and etcd: create, update, delete, and removal of stale profiles at
//! start.

mod support;

use config::model::{Profile, ProfileSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube_controllers::controllers::Kind;
use serde_json::json;
use support::{CONVERGE, Cluster, eventually};

/// The label the API server puts on every namespace, as the profile applies it.
const META: &str = "pcns.kubernetes.io/metadata.name";

async fn profile(c: &Cluster, name: &str) -> Option<Profile> {
    c.ds.get::<Profile>(None, name).await.unwrap()
}

async fn wait_labels(c: &Cluster, name: &str, want: &[(&str, &str)]) -> Profile {
    let want: std::collections::BTreeMap<String, String> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    eventually(
        &format!("profile {name} with labels {want:?}"),
        CONVERGE,
        || async {
            profile(c, name)
                .await
                .filter(|p| p.spec.labels_to_apply == want)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_profiles_follow_namespaces() {
    let c = Cluster::start().await;
    // Left over from a namespace deleted while no controller ran, and one not ours.
    c.ds.create(&Profile::named("kns.gone", ProfileSpec::default()))
        .await
        .unwrap();
    c.ds.create(&Profile::named("mine", ProfileSpec::default()))
        .await
        .unwrap();
    c.create_namespace("prod", json!({"team": "a"})).await;
    let running = c.controllers(&[Kind::Namespace]);

    let p = wait_labels(
        &c,
        "kns.prod",
        &[
            ("pcns.projectcalico.org/name", "prod"),
            ("pcns.team", "a"),
            (META, "prod"),
        ],
    )
    .await;
    assert_eq!(p.spec.ingress.len(), 1, "allow-all ingress");
    assert_eq!(p.spec.egress.len(), 1, "allow-all egress");
    eventually("stale kns.gone removed", CONVERGE, || async {
        profile(&c, "kns.gone").await.is_none().then_some(())
    })
    .await;
    assert!(
        profile(&c, "mine").await.is_some(),
        "a profile we do not own stays"
    );

    // A label change is written to the profile.
    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(c.client.clone());
    namespaces
        .patch(
            "prod",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "b", "tier": "1"}}})),
        )
        .await
        .unwrap();
    wait_labels(
        &c,
        "kns.prod",
        &[
            ("pcns.projectcalico.org/name", "prod"),
            ("pcns.team", "b"),
            ("pcns.tier", "1"),
            (META, "prod"),
        ],
    )
    .await;

    // A namespace created while the controller runs.
    c.create_namespace("dev", json!({})).await;
    wait_labels(
        &c,
        "kns.dev",
        &[("pcns.projectcalico.org/name", "dev"), (META, "dev")],
    )
    .await;

    c.delete_namespace("dev").await;
    eventually("kns.dev removed", CONVERGE, || async {
        profile(&c, "kns.dev").await.is_none().then_some(())
    })
    .await;
    assert!(profile(&c, "kns.prod").await.is_some());
    assert!(running.health.ready(), "leading and synced");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_profiles_follow_service_accounts() {
    let c = Cluster::start().await;
    c.create_namespace("prod", json!({})).await;
    c.ds.create(&Profile::named("ksa.prod.gone", ProfileSpec::default()))
        .await
        .unwrap();
    let _: ServiceAccount = c
        .create(
            "prod",
            json!({"metadata": {"name": "api", "labels": {"role": "web"}}}),
        )
        .await;
    let running = c.controllers(&[Kind::ServiceAccount]);

    let p = wait_labels(
        &c,
        "ksa.prod.api",
        &[("pcsa.projectcalico.org/name", "api"), ("pcsa.role", "web")],
    )
    .await;
    assert!(
        p.spec.ingress.is_empty() && p.spec.egress.is_empty(),
        "labels only"
    );
    eventually("stale ksa.prod.gone removed", CONVERGE, || async {
        profile(&c, "ksa.prod.gone").await.is_none().then_some(())
    })
    .await;

    let accounts = Api::<ServiceAccount>::namespaced(c.client.clone(), "prod");
    accounts
        .patch(
            "api",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"role": "db"}}})),
        )
        .await
        .unwrap();
    wait_labels(
        &c,
        "ksa.prod.api",
        &[("pcsa.projectcalico.org/name", "api"), ("pcsa.role", "db")],
    )
    .await;

    accounts
        .delete("api", &DeleteParams::default())
        .await
        .unwrap();
    eventually("ksa.prod.api removed", CONVERGE, || async {
        profile(&c, "ksa.prod.api").await.is_none().then_some(())
    })
    .await;
    running.stop().await;
}
