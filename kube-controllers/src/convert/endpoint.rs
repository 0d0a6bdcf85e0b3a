//! Pods -> their workload endpoints' labels, profiles and service account. The CNI
//! plugin writes the same at ADD (through the same `config::model::k8s` functions);
//! this keeps them current when the pod's labels or service account change.

use std::collections::BTreeMap;

use config::model::WorkloadEndpoint;
use config::model::k8s::{ORCHESTRATOR_K8S, pod_endpoint_labels, pod_endpoint_profiles};
use k8s_openapi::api::core::v1::Pod;

use super::profile::labels_of;

/// What of a pod its endpoints carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `spec.serviceAccountName`; empty when unset.
    pub service_account: String,
}

impl PodView {
    /// `None` for a pod without name or namespace.
    pub fn of(pod: &Pod) -> Option<PodView> {
        let name = pod.metadata.name.clone().filter(|n| !n.is_empty())?;
        let namespace = pod.metadata.namespace.clone().filter(|n| !n.is_empty())?;
        let service_account = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default();
        Some(PodView {
            namespace,
            name,
            labels: labels_of(pod.metadata.labels.as_ref()),
            service_account,
        })
    }

    /// `(namespace, name)`.
    pub fn key(&self) -> (String, String) {
        (self.namespace.clone(), self.name.clone())
    }
}

/// Whether `wep` is an endpoint of the Kubernetes pod `namespace/pod`.
pub fn belongs_to(wep: &WorkloadEndpoint, namespace: &str, pod: &str) -> bool {
    wep.spec.pod == pod
        && wep.metadata.namespace.as_deref() == Some(namespace)
        && (wep.spec.orchestrator.is_empty() || wep.spec.orchestrator == ORCHESTRATOR_K8S)
}

/// `wep` with the pod's labels, profiles and service account, or `None` when it already
/// carries them (nothing to write). Everything else (addresses, interface ...) is the
/// CNI plugin's and stays as it is.
pub fn updated_endpoint(wep: &WorkloadEndpoint, pod: &PodView) -> Option<WorkloadEndpoint> {
    let sa = Some(pod.service_account.as_str());
    let labels = pod_endpoint_labels(&pod.namespace, sa, &pod.labels);
    let profiles = pod_endpoint_profiles(&pod.namespace, sa);
    if wep.metadata.labels == labels
        && wep.spec.profiles == profiles
        && wep.spec.service_account_name == pod.service_account
    {
        return None;
    }
    let mut out = wep.clone();
    out.metadata.labels = labels;
    out.spec.profiles = profiles;
    out.spec.service_account_name = pod.service_account.clone();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::model::{LABEL_NAMESPACE, LABEL_ORCHESTRATOR, LABEL_SERVICE_ACCOUNT};

    fn pod(labels: &[(&str, &str)], sa: &str) -> PodView {
        PodView {
            namespace: "prod".into(),
            name: "web-1".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            service_account: sa.into(),
        }
    }

    fn wep() -> WorkloadEndpoint {
        let mut w = WorkloadEndpoint::named("node1-k8s-web--1-eth0", Default::default());
        w.metadata.namespace = Some("prod".into());
        w.metadata.resource_version = Some("7".into());
        w.spec.pod = "web-1".into();
        w.spec.orchestrator = "k8s".into();
        w.spec.ip_networks = vec!["10.244.0.5/32".into()];
        w
    }

    #[test]
    fn new_labels_and_service_account_are_written_the_rest_kept() {
        let got = updated_endpoint(&wep(), &pod(&[("app", "web")], "api")).unwrap();
        assert_eq!(got.metadata.labels["app"], "web");
        assert_eq!(got.metadata.labels[LABEL_NAMESPACE], "prod");
        assert_eq!(got.metadata.labels[LABEL_ORCHESTRATOR], "k8s");
        assert_eq!(got.metadata.labels[LABEL_SERVICE_ACCOUNT], "api");
        assert_eq!(got.spec.profiles, ["kns.prod", "ksa.prod.api"]);
        assert_eq!(got.spec.service_account_name, "api");
        assert_eq!(got.spec.ip_networks, ["10.244.0.5/32"]);
        // The revision read is the CAS guard of the update.
        assert_eq!(got.metadata.resource_version.as_deref(), Some("7"));
    }

    #[test]
    fn an_endpoint_that_is_current_is_not_rewritten() {
        let p = pod(&[("app", "web")], "api");
        let current = updated_endpoint(&wep(), &p).unwrap();
        assert_eq!(updated_endpoint(&current, &p), None);
        // A label change makes it differ again.
        assert!(updated_endpoint(&current, &pod(&[("app", "db")], "api")).is_some());
        // Losing the service account drops its label and profile.
        let none = updated_endpoint(&current, &pod(&[("app", "web")], "")).unwrap();
        assert!(!none.metadata.labels.contains_key(LABEL_SERVICE_ACCOUNT));
        assert_eq!(none.spec.profiles, ["kns.prod"]);
    }

    #[test]
    fn endpoints_are_matched_by_namespace_and_pod() {
        let w = wep();
        assert!(belongs_to(&w, "prod", "web-1"));
        assert!(!belongs_to(&w, "dev", "web-1"));
        assert!(!belongs_to(&w, "prod", "web-2"));
        let mut other = w.clone();
        other.spec.orchestrator = "openstack".into();
        assert!(!belongs_to(&other, "prod", "web-1"));
    }

    #[test]
    fn pod_view_reads_name_namespace_labels_and_account() {
        let mut p = Pod::default();
        assert_eq!(PodView::of(&p), None);
        p.metadata.name = Some("web-1".into());
        p.metadata.namespace = Some("prod".into());
        p.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            service_account_name: Some("api".into()),
            ..Default::default()
        });
        let v = PodView::of(&p).unwrap();
        assert_eq!(v.key(), ("prod".to_string(), "web-1".to_string()));
        assert_eq!(v.service_account, "api");
    }
}
