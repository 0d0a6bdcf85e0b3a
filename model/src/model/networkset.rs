//! `NetworkSet` (namespaced) and `GlobalNetworkSet`: labelled lists of networks that
//! rule selectors match like endpoints (Calico's "network sets", typically external
//! ranges given a name and labels).

use serde::{Deserialize, Serialize};

use super::meta::ObjectMeta;
use super::object::impl_resource;

/// A namespaced network set: rule selectors of policies in its namespace (or with a
/// namespaceSelector picking it) match its `nets`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkSet {
    pub metadata: ObjectMeta,
    pub spec: NetworkSetSpec,
}
impl_resource!(
    NetworkSet,
    NetworkSetSpec,
    "NetworkSet",
    "networksets",
    true
);

/// A cluster-wide network set: matched by selectors of GlobalNetworkPolicy rules (and
/// of NetworkPolicy rules whose namespaceSelector is `global()`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlobalNetworkSet {
    pub metadata: ObjectMeta,
    pub spec: NetworkSetSpec,
}
impl_resource!(
    GlobalNetworkSet,
    NetworkSetSpec,
    "GlobalNetworkSet",
    "globalnetworksets",
    false
);

/// Both kinds' spec: IP networks (CIDRs or bare addresses), IPv4 and IPv6 mixed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkSetSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<String>,
}
