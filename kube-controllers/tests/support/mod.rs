//! Shared by the integration tests: a real etcd with a real kube-apiserver over it,
//! the controllers started in-process against both, and polling helpers. Everything a
//! test creates lives in that etcd and API server, which are removed on drop.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use config::datastore::Datastore;
use config::testing::EtcdServer;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use kube_controllers::controllers::Kind;
use kube_controllers::controllers::nodes::GcConfig;
use kube_controllers::leader::ElectionConfig;
use kube_controllers::leader::lease::LeaseConfig;
use kube_controllers::run::{Options, Running, start};
use kubetest::KubeApiServer;
use serde_json::json;

/// etcd + kube-apiserver + clients for both. Field order: the API server stops before
/// the etcd it uses.
pub struct Cluster {
    pub api: KubeApiServer,
    pub etcd: EtcdServer,
    /// Calico's own etcd when it is not the API server's ([`Cluster::start_apart`]).
    pub calico_etcd: Option<EtcdServer>,
    pub client: kube::Client,
    pub ds: Datastore,
}

impl Cluster {
    /// One etcd for the API server and Calico (as a small cluster runs).
    pub async fn start() -> Cluster {
        logs();
        let etcd = EtcdServer::start().await;
        let api = KubeApiServer::start(&etcd).await;
        let client = api.client().await;
        let ds = etcd.datastore().await;
        Cluster {
            api,
            etcd,
            calico_etcd: None,
            client,
            ds,
        }
    }

    /// Calico's datastore in an etcd of its own, so that it can fail while the API
    /// server keeps running.
    pub async fn start_apart() -> Cluster {
        logs();
        let etcd = EtcdServer::start().await;
        let api = KubeApiServer::start(&etcd).await;
        let client = api.client().await;
        let calico = EtcdServer::start().await;
        let ds = calico.datastore().await;
        Cluster {
            api,
            etcd,
            calico_etcd: Some(calico),
            client,
            ds,
        }
    }

    /// The controllers in `kinds`, always leading (no election).
    pub fn controllers(&self, kinds: &[Kind]) -> Running {
        self.controllers_with_gc(kinds, GcConfig::default())
    }

    /// Like [`controllers`](Self::controllers), with IPAM garbage collection timings.
    pub fn controllers_with_gc(&self, kinds: &[Kind], gc: GcConfig) -> Running {
        start(
            self.client.clone(),
            self.ds.clone(),
            Options {
                controllers: kinds.to_vec(),
                gc,
                leader: None,
            },
        )
    }

    /// The controllers in `kinds` with a Lease election under `identity`, with short
    /// timings (lease 3 s, renew deadline 2 s, retry 0.25 s).
    pub fn elected(&self, kinds: &[Kind], identity: &str) -> Running {
        start(
            self.client.clone(),
            self.ds.clone(),
            Options {
                controllers: kinds.to_vec(),
                gc: GcConfig::default(),
                leader: Some(LeaseConfig {
                    namespace: "kube-system".into(),
                    name: "calico-kube-controllers".into(),
                    election: ElectionConfig {
                        identity: identity.into(),
                        lease_duration: Duration::from_secs(3),
                        renew_deadline: Duration::from_secs(2),
                        retry_period: Duration::from_millis(250),
                    },
                }),
            },
        )
    }

    pub async fn create_namespace(&self, name: &str, labels: serde_json::Value) {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    }

    /// Deletes a namespace and finalizes it: only the API server runs, so nothing else
    /// would empty `spec.finalizers` and the namespace would stay Terminating.
    pub async fn delete_namespace(&self, name: &str) {
        let api = Api::<Namespace>::all(self.client.clone());
        api.delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("deleting namespace {name}: {e}"));
        let mut ns = api.get(name).await.expect("the terminating namespace");
        if let Some(spec) = ns.spec.as_mut() {
            spec.finalizers = Some(Vec::new());
        }
        api.replace_subresource::<Namespace>("finalize", name, &PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("finalizing namespace {name}: {e}"));
    }

    /// Creates `obj` (namespaced) from JSON.
    pub async fn create<K>(&self, namespace: &str, obj: serde_json::Value) -> K
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        let obj: K = serde_json::from_value(obj).unwrap();
        Api::<K>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("creating {obj:?}: {e}"))
    }
}

/// The controllers' logs on the test's output, filtered by `RUST_LOG` (default: their
/// warnings; kubetest's readiness polling makes kube_client log errors while the API
/// server starts).
fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("kube_controllers=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Polls `check` every 100 ms until it returns `Some`, or panics with `what` after
/// `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long the tests give the controllers to converge.
pub const CONVERGE: Duration = Duration::from_secs(20);
