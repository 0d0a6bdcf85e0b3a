//! `ClusterInformation`: cluster-wide identity, written once at install (`default`).

use serde::{Deserialize, Serialize};

use super::meta::ObjectMeta;
use super::object::impl_resource;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterInformation {
    pub metadata: ObjectMeta,
    pub spec: ClusterInformationSpec,
}
impl_resource!(
    ClusterInformation,
    ClusterInformationSpec,
    "ClusterInformation",
    "clusterinformations",
    false
);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterInformationSpec {
    #[serde(
        default,
        rename = "clusterGUID",
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster_guid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub calico_version: String,
    /// Components wait while this is false (e.g. during a datastore migration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datastore_ready: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}
