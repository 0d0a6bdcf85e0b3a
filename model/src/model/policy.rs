//! `NetworkPolicy`, `GlobalNetworkPolicy` and `Profile`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::meta::ObjectMeta;
use super::object::{impl_resource, is_false, order_format};
use super::rule::{PolicyType, Rule, effective_types};

/// A namespaced policy: applies to workloads of its namespace matching `selector`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetworkPolicy {
    pub metadata: ObjectMeta,
    pub spec: NetworkPolicySpec,
}
impl_resource!(
    NetworkPolicy,
    NetworkPolicySpec,
    "NetworkPolicy",
    "networkpolicies",
    true
);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicySpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tier: String,
    /// Lower orders apply first; unset orders apply after all set ones.
    #[serde(
        default,
        serialize_with = "order_format::serialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub order: Option<f64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<PolicyType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<Rule>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_selector: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performance_hints: Vec<String>,
}

/// The defaults Calico applies to both policy kinds.
macro_rules! policy_defaults {
    ($($spec:ty),*) => {$(
        impl $spec {
            /// `types`, or Calico's default from the rule lists present (none -> Ingress).
            pub fn effective_types(&self) -> Vec<PolicyType> {
                effective_types(&self.types, &self.ingress, &self.egress)
            }

            /// `selector`, with the default `all()` when empty.
            pub fn effective_selector(&self) -> &str {
                if self.selector.is_empty() {
                    "all()"
                } else {
                    &self.selector
                }
            }

            /// The order used for sorting; unset sorts last.
            pub fn effective_order(&self) -> f64 {
                self.order.unwrap_or(f64::INFINITY)
            }
        }
    )*};
}
policy_defaults!(NetworkPolicySpec, GlobalNetworkPolicySpec);

/// A cluster-wide policy; applies to workload and host endpoints.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GlobalNetworkPolicy {
    pub metadata: ObjectMeta,
    pub spec: GlobalNetworkPolicySpec,
}
impl_resource!(
    GlobalNetworkPolicy,
    GlobalNetworkPolicySpec,
    "GlobalNetworkPolicy",
    "globalnetworkpolicies",
    false
);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GlobalNetworkPolicySpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tier: String,
    #[serde(
        default,
        serialize_with = "order_format::serialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub order: Option<f64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<PolicyType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<Rule>,
    /// Untracked (raw table) policy for host endpoints; needs `applyOnForward`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub do_not_track: bool,
    /// Applied before DNAT (mangle PREROUTING); ingress only; needs `applyOnForward`.
    #[serde(default, rename = "preDNAT", skip_serializing_if = "is_false")]
    pub pre_dnat: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub apply_on_forward: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_selector: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_selector: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performance_hints: Vec<String>,
}

/// Labels applied to endpoints that reference the profile, plus legacy rules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    pub metadata: ObjectMeta,
    pub spec: ProfileSpec,
}
impl_resource!(Profile, ProfileSpec, "Profile", "profiles", false);

/// The profile Calico creates so that endpoints without policy allow all traffic.
pub const DEFAULT_ALLOW_PROFILE: &str = "projectcalico-default-allow";

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<Rule>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels_to_apply: BTreeMap<String, String>,
}

impl Profile {
    /// Calico's built-in `projectcalico-default-allow`: allow everything both ways.
    pub fn default_allow() -> Profile {
        let allow = || vec![Rule::default()];
        Profile::named(
            DEFAULT_ALLOW_PROFILE,
            ProfileSpec {
                ingress: allow(),
                egress: allow(),
                ..Default::default()
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_default_from_rules() {
        let r = || vec![Rule::default()];
        let mut s = NetworkPolicySpec::default();
        assert_eq!(s.effective_types(), vec![PolicyType::Ingress]);
        s.egress = r();
        assert_eq!(s.effective_types(), vec![PolicyType::Egress]);
        s.ingress = r();
        assert_eq!(
            s.effective_types(),
            vec![PolicyType::Ingress, PolicyType::Egress]
        );
        s.types = vec![PolicyType::Egress];
        assert_eq!(s.effective_types(), vec![PolicyType::Egress]);
    }
}
