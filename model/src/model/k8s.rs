//! How a Kubernetes pod, namespace and service account appear in the Calico model, as
//! libcalico-go's `conversion` package maps them. One definition for the two writers of a
//! pod's endpoint: the CNI plugin (at ADD) and kube-controllers (when the pod changes).

use std::collections::BTreeMap;

use super::endpoint::{LABEL_NAMESPACE, LABEL_ORCHESTRATOR, LABEL_SERVICE_ACCOUNT};

/// The orchestrator name of Kubernetes pods (`projectcalico.org/orchestrator`).
pub const ORCHESTRATOR_K8S: &str = "k8s";
/// Prefix of a namespace's profile (`kns.<namespace>`).
pub const NAMESPACE_PROFILE_PREFIX: &str = "kns.";
/// Prefix of a service account's profile (`ksa.<namespace>.<name>`).
pub const SERVICE_ACCOUNT_PROFILE_PREFIX: &str = "ksa.";
/// Prefix of the labels a namespace profile applies (`pcns.<namespace label>`).
pub const NAMESPACE_LABEL_PREFIX: &str = "pcns.";
/// Prefix of the labels a service account profile applies (`pcsa.<account label>`).
pub const SERVICE_ACCOUNT_LABEL_PREFIX: &str = "pcsa.";
/// The label carrying the namespace's (or service account's) own name, after its prefix.
pub const NAME_LABEL: &str = "projectcalico.org/name";

/// `kns.<namespace>`.
pub fn namespace_profile_name(namespace: &str) -> String {
    format!("{NAMESPACE_PROFILE_PREFIX}{namespace}")
}

/// `ksa.<namespace>.<service account>`.
pub fn service_account_profile_name(namespace: &str, service_account: &str) -> String {
    format!("{SERVICE_ACCOUNT_PROFILE_PREFIX}{namespace}.{service_account}")
}

/// The labels a profile made from a namespace (prefix `pcns.`) or a service account
/// (prefix `pcsa.`) applies to its endpoints: its name and each of its own labels.
pub fn profile_labels(
    prefix: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
        .collect();
    out.insert(format!("{prefix}{NAME_LABEL}"), name.to_string());
    out
}

/// A pod's endpoint labels: the pod's own, then Calico's namespace, orchestrator and
/// service account labels, which win over a pod label of the same key.
pub fn pod_endpoint_labels(
    namespace: &str,
    service_account: Option<&str>,
    pod_labels: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels = pod_labels.clone();
    labels.insert(LABEL_NAMESPACE.into(), namespace.into());
    labels.insert(LABEL_ORCHESTRATOR.into(), ORCHESTRATOR_K8S.into());
    match service_account.filter(|sa| !sa.is_empty()) {
        Some(sa) => labels.insert(LABEL_SERVICE_ACCOUNT.into(), sa.into()),
        None => labels.remove(LABEL_SERVICE_ACCOUNT),
    };
    labels
}

/// A pod's endpoint profiles: its namespace's, then its service account's if it has one.
pub fn pod_endpoint_profiles(namespace: &str, service_account: Option<&str>) -> Vec<String> {
    let mut profiles = vec![namespace_profile_name(namespace)];
    if let Some(sa) = service_account.filter(|sa| !sa.is_empty()) {
        profiles.push(service_account_profile_name(namespace, sa));
    }
    profiles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pod_labels_keep_the_pods_own_and_calicos_win() {
        let pod = map(&[("app", "web"), (LABEL_NAMESPACE, "spoofed")]);
        let labels = pod_endpoint_labels("prod", Some("api"), &pod);
        assert_eq!(
            labels,
            map(&[
                ("app", "web"),
                (LABEL_NAMESPACE, "prod"),
                (LABEL_ORCHESTRATOR, "k8s"),
                (LABEL_SERVICE_ACCOUNT, "api"),
            ])
        );
    }

    #[test]
    fn no_service_account_means_no_label_and_no_profile() {
        let pod = map(&[(LABEL_SERVICE_ACCOUNT, "spoofed")]);
        let labels = pod_endpoint_labels("prod", Some(""), &pod);
        assert!(!labels.contains_key(LABEL_SERVICE_ACCOUNT));
        assert_eq!(pod_endpoint_profiles("prod", None), ["kns.prod"]);
        assert_eq!(
            pod_endpoint_profiles("prod", Some("api")),
            ["kns.prod", "ksa.prod.api"]
        );
    }

    #[test]
    fn profile_labels_are_prefixed_and_carry_the_name() {
        let labels = profile_labels(NAMESPACE_LABEL_PREFIX, "prod", &map(&[("team", "a")]));
        assert_eq!(
            labels,
            map(&[("pcns.team", "a"), ("pcns.projectcalico.org/name", "prod")])
        );
    }
}
