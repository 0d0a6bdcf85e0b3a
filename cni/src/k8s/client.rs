//! The one API request pair of an ADD: the pod and its namespace, over the kubeconfig's
//! credentials, with short timeouts (kubelet waits for us; a hung API server must not
//! hold the pod sandbox for minutes).
//!
//! The client is kube's default stack (base URI, auth) over a connector with TCP_NODELAY:
//! kube's own leaves Nagle on, and a fresh connection's first request then waits for the
//! server's delayed ACK of the TLS handshake's last flight, 40-50 ms measured here, which
//! is most of an ADD (a long-lived client pays it once, a CNI plugin on every ADD).

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::client::ConfigExt;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use super::pod_info::{PodInfo, pod_info};
use crate::error::{CniError, INVALID_CONFIG, Result, TRY_AGAIN};

/// Connecting to the API server; refused connections fail at once anyway.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Both answers.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads pod `namespace/name` and its namespace through `kubeconfig`.
pub async fn read_pod(kubeconfig: &str, namespace: &str, name: &str) -> Result<PodInfo> {
    let client = client(kubeconfig).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let namespaces: Api<Namespace> = Api::all(client);
    let both = async {
        tokio::try_join!(
            async {
                pods.get(name)
                    .await
                    .map_err(|e| api_error(&format!("pod {namespace}/{name}"), e))
            },
            async {
                namespaces
                    .get(namespace)
                    .await
                    .map_err(|e| api_error(&format!("namespace {namespace}"), e))
            },
        )
    };
    let (pod, ns) = tokio::time::timeout(READ_TIMEOUT, both)
        .await
        .map_err(|_| {
            CniError::new(
                TRY_AGAIN,
                format!("cannot read pod {namespace}/{name}: the Kubernetes API did not answer"),
                format!("no answer within {READ_TIMEOUT:?}"),
            )
        })??;
    pod_info(&pod, &ns)
}

async fn client(path: &str) -> Result<Client> {
    // One line naming the file and what is wrong with it.
    let bad = |e: &dyn std::fmt::Display| {
        CniError::new(INVALID_CONFIG, format!("kubeconfig {path}"), one_line(e))
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| bad(&e))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| bad(&e))?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let https = config
        .rustls_https_connector_with_connector(http)
        .map_err(|e| bad(&e))?;
    let hyper = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(https);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer().map_err(|e| bad(&e))?)
        .map_err(BoxError::from)
        .service(hyper);
    Ok(Client::new(service, config.default_namespace))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A failed read: missing objects and refusals are the cluster's answer; anything else
/// (unreachable, timed out) may pass, so the runtime should try again.
fn api_error(what: &str, e: kube::Error) -> CniError {
    match &e {
        kube::Error::Api(status) if status.code == 404 => CniError::new(
            TRY_AGAIN,
            format!("{what} does not exist in the Kubernetes API"),
            one_line(&e),
        ),
        kube::Error::Api(status) => CniError::new(
            INVALID_CONFIG,
            format!("the Kubernetes API refused to read {what}"),
            format!("{} {}: {}", status.code, status.reason, status.message),
        ),
        _ => CniError::new(
            TRY_AGAIN,
            format!("cannot read {what}: the Kubernetes API is not reachable"),
            one_line(&e),
        ),
    }
}

/// The error with its causes, on one line.
fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().replace('\n', " ")
}
