//! projectcalico.org/v3 resource kinds as serde types.
//!
//! Every kind is `{metadata, spec}` (Node also `status`) and (de)serializes as
//! `{apiVersion, kind, metadata, spec}`; unknown fields are refused. Selector, CIDR
//! and address fields keep Calico's text; [`crate::validate`] checks them.

mod any;
mod bgp;
mod cluster;
mod endpoint;
mod ippool;
pub mod k8s;
mod meta;
mod networkset;
mod node;
mod numorstring;
pub(crate) mod object;
mod parse;
mod policy;
mod rule;
mod tier;

pub use any::{AnyResource, ResourceKind};
pub use bgp::{
    BGPConfiguration, BGPConfigurationSpec, BGPPassword, BGPPeer, BGPPeerSpec, Community,
    DEFAULT_BGP_PORT, PrefixAdvertisement, SecretKeySelector, ServiceIPBlock, parse_go_duration,
    parse_peer_ip,
};
pub use cluster::{ClusterInformation, ClusterInformationSpec};
pub use endpoint::{
    EndpointPort, HostEndpoint, HostEndpointSpec, IpNat, LABEL_NAMESPACE, LABEL_ORCHESTRATOR,
    LABEL_SERVICE_ACCOUNT, WepNameParts, WorkloadEndpoint, WorkloadEndpointPort,
    WorkloadEndpointSpec, parse_wep_name, wep_name,
};
pub use ippool::{
    AllowedUse, AssignmentMode, DEFAULT_BLOCK_SIZE_V4, DEFAULT_BLOCK_SIZE_V6,
    DEFAULT_MAX_BLOCKS_PER_HOST, EncapMode, IPAMConfiguration, IPAMConfigurationSpec, IPPool,
    IPPoolSpec,
};
pub use meta::{API_VERSION, ObjectMeta, Resource};
pub use networkset::{GlobalNetworkSet, NetworkSet, NetworkSetSpec};
pub use node::{Node, NodeAddress, NodeBgpSpec, NodeSpec, NodeStatus, NodeWireguardSpec, OrchRef};
pub use numorstring::{AsNumber, Port, Protocol};
pub use parse::{
    ParseError, ResourceList, SerializeError, parse_documents, parse_one, to_json, to_yaml,
};
pub use policy::{
    DEFAULT_ALLOW_PROFILE, GlobalNetworkPolicy, GlobalNetworkPolicySpec, NetworkPolicy,
    NetworkPolicySpec, Profile, ProfileSpec,
};
pub use rule::{
    Action, EntityRule, HttpMatch, HttpPath, IcmpFields, PolicyType, Rule, RuleMetadata,
    ServiceAccountMatch, ServiceMatch,
};
pub use tier::{DEFAULT_TIER, DEFAULT_TIER_ORDER, Tier, TierSpec};
