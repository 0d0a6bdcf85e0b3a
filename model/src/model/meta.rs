//! Object metadata and the trait every stored resource kind implements.

use std::collections::BTreeMap;
use std::fmt::Debug;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// The API group and version of every Calico resource.
pub const API_VERSION: &str = "projectcalico.org/v3";

/// Kubernetes-style object metadata, as Calico stores it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The etcd mod revision the object was read at; the CAS guard for updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A resource kind the datastore can store under
/// `/calico/resources/v3/projectcalico.org/<PLURAL>/[<namespace>/]<name>`.
pub trait Resource: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static {
    /// The `kind` field, e.g. `IPPool`.
    const KIND: &'static str;
    /// The lower-case plural used in etcd keys, e.g. `ippools`.
    const PLURAL: &'static str;
    /// Whether objects live in a namespace (NetworkPolicy, WorkloadEndpoint).
    const NAMESPACED: bool;

    fn meta(&self) -> &ObjectMeta;
    fn meta_mut(&mut self) -> &mut ObjectMeta;
}
