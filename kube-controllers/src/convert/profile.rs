//! Namespaces and service accounts -> Calico profiles, as libcalico-go's
//! `NamespaceToProfile` / `ServiceAccountToProfile` write them:
//!
//! * `kns.<ns>`: ingress and egress `[{action: Allow}]` (a namespace's profile allows
//!   everything; Kubernetes policy restricts), `labelsToApply` = `pcns.<label>` per
//!   namespace label plus `pcns.projectcalico.org/name: <ns>`;
//! * `ksa.<ns>.<sa>`: no rules, `labelsToApply` = `pcsa.<label>` plus
//!   `pcsa.projectcalico.org/name: <sa>`.

use std::collections::BTreeMap;

use config::model::k8s::{
    NAMESPACE_LABEL_PREFIX, NAMESPACE_PROFILE_PREFIX, SERVICE_ACCOUNT_LABEL_PREFIX,
    SERVICE_ACCOUNT_PROFILE_PREFIX, namespace_profile_name, profile_labels,
    service_account_profile_name,
};
use config::model::{Profile, ProfileSpec, Rule};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The profile of a namespace; `None` for an object without a name (never stored).
pub fn namespace_profile(ns: &Namespace) -> Option<Profile> {
    let name = ns.metadata.name.as_deref().filter(|n| !n.is_empty())?;
    let labels = labels_of(ns.metadata.labels.as_ref());
    let allow = || vec![Rule::default()];
    let mut p = Profile::named(
        namespace_profile_name(name),
        ProfileSpec {
            ingress: allow(),
            egress: allow(),
            labels_to_apply: profile_labels(NAMESPACE_LABEL_PREFIX, name, &labels),
        },
    );
    carry_identity(&mut p, &ns.metadata);
    Some(p)
}

/// The profile of a service account; `None` without a name or namespace.
pub fn service_account_profile(sa: &ServiceAccount) -> Option<Profile> {
    let name = sa.metadata.name.as_deref().filter(|n| !n.is_empty())?;
    let ns = sa.metadata.namespace.as_deref().filter(|n| !n.is_empty())?;
    let labels = labels_of(sa.metadata.labels.as_ref());
    let mut p = Profile::named(
        service_account_profile_name(ns, name),
        ProfileSpec {
            labels_to_apply: profile_labels(SERVICE_ACCOUNT_LABEL_PREFIX, name, &labels),
            ..ProfileSpec::default()
        },
    );
    carry_identity(&mut p, &sa.metadata);
    Some(p)
}

/// The source object's UID and creation time on the profile, as Calico's converters
/// set them (informational: only the spec is compared).
fn carry_identity(p: &mut Profile, meta: &ObjectMeta) {
    p.metadata.uid = meta.uid.clone();
    p.metadata.creation_timestamp = meta.creation_timestamp.as_ref().map(|t| t.0.to_string());
}

/// Whether a profile name is one the namespace controller owns.
pub fn is_namespace_profile(name: &str) -> bool {
    name.starts_with(NAMESPACE_PROFILE_PREFIX)
}

/// Whether a profile name is one the service account controller owns.
pub fn is_service_account_profile(name: &str) -> bool {
    name.starts_with(SERVICE_ACCOUNT_PROFILE_PREFIX)
}

pub(crate) fn labels_of(labels: Option<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
    labels.cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::model::{Action, to_yaml};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn meta(ns: Option<&str>, name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: ns.map(str::to_string),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn namespace_profile_allows_all_and_applies_prefixed_labels() {
        let ns = Namespace {
            metadata: meta(None, "prod", &[("team", "a")]),
            ..Namespace::default()
        };
        let p = namespace_profile(&ns).unwrap();
        assert_eq!(
            to_yaml(&p).unwrap().trim(),
            r#"apiVersion: projectcalico.org/v3
kind: Profile
metadata:
  name: kns.prod
spec:
  ingress:
  - action: Allow
  egress:
  - action: Allow
  labelsToApply:
    pcns.projectcalico.org/name: prod
    pcns.team: a"#
        );
        assert_eq!(p.spec.ingress[0].action, Action::Allow);
    }

    #[test]
    fn service_account_profile_has_labels_only() {
        let sa = ServiceAccount {
            metadata: meta(Some("prod"), "api", &[("tier", "web")]),
            ..ServiceAccount::default()
        };
        let p = service_account_profile(&sa).unwrap();
        assert_eq!(p.metadata.name, "ksa.prod.api");
        assert_eq!(p.metadata.uid, None);
        assert!(p.spec.ingress.is_empty() && p.spec.egress.is_empty());
        assert_eq!(
            p.spec.labels_to_apply.into_iter().collect::<Vec<_>>(),
            [
                ("pcsa.projectcalico.org/name".to_string(), "api".to_string()),
                ("pcsa.tier".to_string(), "web".to_string()),
            ]
        );
    }

    #[test]
    fn uid_and_creation_time_are_carried_over() {
        let mut ns = Namespace {
            metadata: meta(None, "prod", &[]),
            ..Namespace::default()
        };
        ns.metadata.uid = Some("5a1f".into());
        ns.metadata.creation_timestamp = Some(Time("2026-12-03T14:00:00Z".parse().unwrap()));
        let p = namespace_profile(&ns).unwrap();
        assert_eq!(p.metadata.uid.as_deref(), Some("5a1f"));
        assert_eq!(
            p.metadata.creation_timestamp.as_deref(),
            Some("2026-12-03T14:00:00Z")
        );
    }

    #[test]
    fn nameless_objects_map_to_nothing() {
        assert!(namespace_profile(&Namespace::default()).is_none());
        let sa = ServiceAccount {
            metadata: meta(None, "api", &[]),
            ..ServiceAccount::default()
        };
        assert!(service_account_profile(&sa).is_none());
    }

    #[test]
    fn ownership_by_prefix() {
        assert!(is_namespace_profile("kns.prod"));
        assert!(!is_namespace_profile("ksa.prod.api"));
        assert!(is_service_account_profile("ksa.prod.api"));
        assert!(!is_service_account_profile("projectcalico-default-allow"));
    }
}
