//! What the policy controller writes for a Kubernetes NetworkPolicy. A policy the
//! converter cannot express FAILS CLOSED: `knp.default.<name>` is written with the same
//! selector and types and no rules, so the pods it selects are denied what the policy
//! would have allowed instead of being left open (skipping the policy would allow
//! everything a selected pod had no other policy for).

use config::model::{NetworkPolicy, NetworkPolicySpec, ObjectMeta, PolicyType};
use k8s_openapi::api::networking::v1 as knet;

use super::networkpolicy::{
    K8S_POLICY_ORDER, K8S_POLICY_PREFIX, K8sConvertError, ORCHESTRATOR_K8S, convert_network_policy,
    policy_selector, policy_types,
};

/// The policy to write, and why it lost its rules when it did.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredPolicy {
    pub policy: NetworkPolicy,
    /// Set when the converter failed and `policy` is the fail-closed stand-in.
    pub failure: Option<K8sConvertError>,
}

/// The Calico policy for `np`; `None` for an object without name or namespace.
pub fn desired_policy(np: &knet::NetworkPolicy) -> Option<DesiredPolicy> {
    let name = np.metadata.name.as_deref().filter(|n| !n.is_empty())?;
    let namespace = np.metadata.namespace.as_deref().filter(|n| !n.is_empty())?;
    match convert_network_policy(np) {
        Ok(policy) => Some(DesiredPolicy {
            policy,
            failure: None,
        }),
        Err(failure) => {
            let empty = knet::NetworkPolicySpec::default();
            let spec = np.spec.as_ref().unwrap_or(&empty);
            // When even the selector or the types cannot be read, close more rather
            // than less: every pod of the namespace, both directions.
            let selector = policy_selector(spec).unwrap_or_else(|_| ORCHESTRATOR_K8S.into());
            let types = policy_types(spec)
                .unwrap_or_else(|_| vec![PolicyType::Ingress, PolicyType::Egress]);
            Some(DesiredPolicy {
                policy: NetworkPolicy {
                    metadata: ObjectMeta {
                        name: policy_name(name),
                        namespace: Some(namespace.to_string()),
                        ..ObjectMeta::default()
                    },
                    spec: NetworkPolicySpec {
                        order: Some(K8S_POLICY_ORDER),
                        selector,
                        types,
                        ..NetworkPolicySpec::default()
                    },
                },
                failure: Some(failure),
            })
        }
    }
}

/// `knp.default.<name>`.
pub fn policy_name(k8s_name: &str) -> String {
    format!("{K8S_POLICY_PREFIX}{k8s_name}")
}

/// Whether a Calico policy name is one the policy controller owns.
pub fn is_k8s_policy(name: &str) -> bool {
    name.starts_with(K8S_POLICY_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> knet::NetworkPolicy {
        serde_yaml_ng::from_str(yaml).expect("test input parses")
    }

    #[test]
    fn a_convertible_policy_is_written_as_converted() {
        let np = parse(
            r#"
metadata: {name: web, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{ports: [{port: 80}]}]
"#,
        );
        let d = desired_policy(&np).unwrap();
        assert_eq!(d.failure, None);
        assert_eq!(d.policy, convert_network_policy(&np).unwrap());
        assert_eq!(d.policy.spec.ingress.len(), 1);
    }

    #[test]
    fn an_inexpressible_rule_keeps_selector_and_types_and_drops_every_rule() {
        // A label value with a quote cannot be written in Calico's selector grammar.
        let np = parse(
            r#"
metadata: {name: web, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress, Egress]
  ingress:
  - ports: [{port: 80}]
  - from: [{podSelector: {matchLabels: {role: "it's"}}}]
  egress: [{}]
"#,
        );
        let d = desired_policy(&np).unwrap();
        let failure = d.failure.expect("the conversion failed");
        assert_eq!(
            (failure.namespace.as_str(), failure.name.as_str()),
            ("prod", "web")
        );
        assert_eq!(failure.field, "ingress[1].from[0].podSelector");
        let p = d.policy;
        assert_eq!(p.metadata.name, "knp.default.web");
        assert_eq!(p.metadata.namespace.as_deref(), Some("prod"));
        assert_eq!(
            p.spec.selector,
            "projectcalico.org/orchestrator == 'k8s' && app == 'web'"
        );
        assert_eq!(p.spec.types, [PolicyType::Ingress, PolicyType::Egress]);
        assert!(p.spec.ingress.is_empty() && p.spec.egress.is_empty());
        assert_eq!(p.spec.order, Some(K8S_POLICY_ORDER));
    }

    #[test]
    fn an_inexpressible_pod_selector_closes_the_whole_namespace() {
        let np = parse(
            r#"
metadata: {name: odd, namespace: prod}
spec:
  podSelector: {matchLabels: {app: "it's"}}
  policyTypes: [Egress]
"#,
        );
        let d = desired_policy(&np).unwrap();
        assert_eq!(d.failure.unwrap().field, "podSelector");
        assert_eq!(d.policy.spec.selector, ORCHESTRATOR_K8S);
        assert_eq!(d.policy.spec.types, [PolicyType::Egress]);
    }

    #[test]
    fn names_and_ownership() {
        assert_eq!(policy_name("a"), "knp.default.a");
        assert!(is_k8s_policy("knp.default.a"));
        assert!(!is_k8s_policy("default.a"));
        assert!(desired_policy(&knet::NetworkPolicy::default()).is_none());
    }
}
