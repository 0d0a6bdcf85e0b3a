//! Pure decoding of datastore keys and values into calculation [`Update`]s.
//!
//! The key is the truth about an object's identity (as in Calico's etcdv3 backend):
//! `metadata.name`/`namespace` are taken from it, so that the deletion of a key
//! always removes exactly what its puts created. `metadata.resourceVersion` is
//! dropped, so that a re-listed but unchanged object compares equal to the one the
//! calculation holds and costs nothing.

use config::datastore::{RESOURCE_ROOT, resource_prefix};
use config::model::{
    AnyResource, GlobalNetworkPolicy, GlobalNetworkPolicySpec, IPPool, NetworkPolicy,
    NetworkPolicySpec, Profile, ResourceKind, WorkloadEndpoint,
};
use ipam::{AffinityState, BlockAffinity};
use thiserror::Error;

use crate::calc::{NetSetKey, PolicyDef, PolicyKey, Update, WepKey};

/// One prefix felix watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watched {
    /// All objects of one resource kind.
    Resource(ResourceKind),
    /// This node's IPAM block affinities (`/calico/ipam/v2/host/<node>/`).
    Affinities { node: String },
    /// Every other node's block affinities (`/calico/ipam/v2/host/`): the overlay
    /// routes each remote block to its node without BGP, as Calico's felix does.
    RemoteAffinities { local: String },
}

impl Watched {
    /// Every prefix felix needs for its model: all workload endpoints (remote ones
    /// feed ipsets), pools, both policy kinds, profiles, both network set kinds (their
    /// nets feed ipsets), tiers, host endpoints, nodes and every node's affinities
    /// (the overlay).
    pub fn all(node: &str) -> Vec<Watched> {
        [
            ResourceKind::WorkloadEndpoint,
            ResourceKind::IPPool,
            ResourceKind::NetworkPolicy,
            ResourceKind::GlobalNetworkPolicy,
            ResourceKind::Profile,
            ResourceKind::NetworkSet,
            ResourceKind::GlobalNetworkSet,
            ResourceKind::Tier,
            ResourceKind::HostEndpoint,
            ResourceKind::Node,
        ]
        .into_iter()
        .map(Watched::Resource)
        .chain([
            Watched::Affinities { node: node.into() },
            Watched::RemoteAffinities { local: node.into() },
        ])
        .collect()
    }

    /// The etcd key prefix (ends with `/`).
    pub fn prefix(&self) -> String {
        match self {
            Watched::Resource(kind) => match kind {
                ResourceKind::WorkloadEndpoint => resource_prefix::<WorkloadEndpoint>(None),
                ResourceKind::IPPool => resource_prefix::<IPPool>(None),
                ResourceKind::NetworkPolicy => resource_prefix::<NetworkPolicy>(None),
                ResourceKind::GlobalNetworkPolicy => resource_prefix::<GlobalNetworkPolicy>(None),
                ResourceKind::Profile => resource_prefix::<Profile>(None),
                other => format!("{RESOURCE_ROOT}{}/", other.plural()),
            },
            // Both families: `.../host/<node>/ipv4/block/...` and `.../ipv6/...`.
            Watched::Affinities { node } => {
                let v4 = ipam::keys::host_affinity_prefix(node, 4);
                v4.strip_suffix("ipv4/block/").unwrap_or(&v4).to_string()
            }
            Watched::RemoteAffinities { .. } => ipam::keys::HOST_PREFIX.to_string(),
        }
    }

    /// A short label for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Watched::Resource(kind) => kind.plural(),
            Watched::Affinities { .. } => "blockaffinities",
            Watched::RemoteAffinities { .. } => "remoteblockaffinities",
        }
    }
}

/// Why a key or value was not turned into an update.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("key {key}: not of the form {expected}")]
    BadKey { key: String, expected: &'static str },
    #[error("key {key}: value is not JSON: {reason}")]
    NotJson { key: String, reason: String },
    #[error("key {key}: value is not a valid {kind}: {reason}")]
    Undecodable {
        key: String,
        kind: &'static str,
        reason: String,
    },
    #[error("key {key}: {kind} fails validation: {reason}")]
    Invalid {
        key: String,
        kind: &'static str,
        reason: String,
    },
}

/// `<namespace>/<name>` or `<name>` after the kind's prefix.
fn key_identity(
    kind: ResourceKind,
    key: &str,
    prefix: &str,
) -> Result<(Option<String>, String), DecodeError> {
    let bad = || DecodeError::BadKey {
        key: key.into(),
        expected: if kind.namespaced() {
            "<prefix><namespace>/<name>"
        } else {
            "<prefix><name>"
        },
    };
    let rest = key.strip_prefix(prefix).ok_or_else(bad)?;
    let parts: Vec<&str> = rest.split('/').collect();
    match (kind.namespaced(), parts.as_slice()) {
        (true, [ns, name]) if !ns.is_empty() && !name.is_empty() => {
            Ok((Some(ns.to_string()), name.to_string()))
        }
        (false, [name]) if !name.is_empty() => Ok((None, name.to_string())),
        _ => Err(bad()),
    }
}

impl Watched {
    /// The update for a put of `value` at `key`. `Ok(None)` for objects the
    /// calculation does not use.
    pub fn decode_put(&self, key: &str, value: &[u8]) -> Result<Option<Update>, DecodeError> {
        match self {
            Watched::Resource(kind) => decode_resource(*kind, &self.prefix(), key, value),
            Watched::Affinities { node } => decode_affinity(node, key, value).map(Some),
            Watched::RemoteAffinities { local } => decode_remote_affinity(local, key, value),
        }
    }

    /// The update for the deletion of `key`.
    pub fn decode_delete(&self, key: &str) -> Result<Option<Update>, DecodeError> {
        match self {
            Watched::Resource(kind) => {
                let (ns, name) = key_identity(*kind, key, &self.prefix())?;
                let ns = ns.unwrap_or_default();
                Ok(match kind {
                    ResourceKind::WorkloadEndpoint => {
                        Some(Update::WepDeleted(WepKey::new(&ns, &name)))
                    }
                    ResourceKind::NetworkPolicy => {
                        Some(Update::PolicyDeleted(PolicyKey::namespaced(&ns, &name)))
                    }
                    ResourceKind::GlobalNetworkPolicy => {
                        Some(Update::PolicyDeleted(PolicyKey::Global(name)))
                    }
                    ResourceKind::Profile => Some(Update::ProfileDeleted(name)),
                    ResourceKind::IPPool => Some(Update::PoolDeleted(name)),
                    ResourceKind::NetworkSet => {
                        Some(Update::NetworkSetDeleted(NetSetKey::namespaced(&ns, &name)))
                    }
                    ResourceKind::GlobalNetworkSet => {
                        Some(Update::NetworkSetDeleted(NetSetKey::global(&name)))
                    }
                    ResourceKind::Tier => Some(Update::TierDeleted(name)),
                    ResourceKind::HostEndpoint => Some(Update::HostEndpointDeleted(name)),
                    ResourceKind::Node => Some(Update::NodeDeleted(name)),
                    _ => None,
                })
            }
            Watched::Affinities { node } => {
                let (_, block) = affinity_key(node, key)?;
                Ok(Some(Update::BlockAffinityRemoved(block)))
            }
            Watched::RemoteAffinities { local } => {
                let (node, block) = any_affinity_key(key)?;
                Ok((node != *local).then_some(Update::RemoteBlockRemoved { node, block }))
            }
        }
    }
}

fn decode_resource(
    kind: ResourceKind,
    prefix: &str,
    key: &str,
    value: &[u8],
) -> Result<Option<Update>, DecodeError> {
    let (namespace, name) = key_identity(kind, key, prefix)?;
    let json: serde_json::Value =
        serde_json::from_slice(value).map_err(|e| DecodeError::NotJson {
            key: key.into(),
            reason: e.to_string(),
        })?;
    let mut resource = match AnyResource::from_value(kind, json.clone()) {
        Ok(r) => r,
        Err(reason) => {
            // A policy whose rules do not even decode still names the endpoints it is
            // meant for: close them (see below) rather than skip it.
            if let Some(def) = policy_outline(kind, namespace.as_deref(), &name, &json) {
                return Ok(Some(Update::PolicyRefused { def, reason }));
            }
            return Err(DecodeError::Undecodable {
                key: key.into(),
                kind: kind.kind_name(),
                reason,
            });
        }
    };
    let meta = resource.meta_mut();
    meta.name = name;
    meta.namespace = namespace;
    meta.resource_version = None;
    if let Err(errors) = config::validate::validate(&resource) {
        // An invalid policy still selects endpoints: skipping it would leave them
        // open (or under the policy's previous version). The calculation closes
        // them instead and reports the policy with the failing field.
        let def = match resource {
            AnyResource::NetworkPolicy(p) => Some(PolicyDef::Namespaced(p)),
            AnyResource::GlobalNetworkPolicy(p) => Some(PolicyDef::Global(p)),
            _ => None,
        };
        let reason = errors.to_string();
        return match def {
            Some(def) => Ok(Some(Update::PolicyRefused { def, reason })),
            None => Err(DecodeError::Invalid {
                key: key.into(),
                kind: kind.kind_name(),
                reason,
            }),
        };
    }
    Ok(Update::from_resource(resource))
}

/// What decides which endpoints an undecodable policy selects (selector, namespace
/// selector, tier, order), read leniently from its JSON; no rules. `None` for other
/// kinds.
fn policy_outline(
    kind: ResourceKind,
    namespace: Option<&str>,
    name: &str,
    json: &serde_json::Value,
) -> Option<PolicyDef> {
    let spec = &json["spec"];
    let text = |field: &str| spec[field].as_str().unwrap_or_default().to_string();
    let order = spec["order"].as_f64();
    match kind {
        ResourceKind::NetworkPolicy => {
            let mut p = NetworkPolicy::named(
                name,
                NetworkPolicySpec {
                    tier: text("tier"),
                    order,
                    selector: text("selector"),
                    ..Default::default()
                },
            );
            p.metadata.namespace = namespace.map(str::to_string);
            Some(PolicyDef::Namespaced(p))
        }
        ResourceKind::GlobalNetworkPolicy => Some(PolicyDef::Global(GlobalNetworkPolicy::named(
            name,
            GlobalNetworkPolicySpec {
                tier: text("tier"),
                order,
                selector: text("selector"),
                namespace_selector: text("namespaceSelector"),
                ..Default::default()
            },
        ))),
        _ => None,
    }
}

fn affinity_key(node: &str, key: &str) -> Result<(String, ipnet::IpNet), DecodeError> {
    match ipam::keys::parse_affinity_key(key) {
        Some((host, block)) if host == node => Ok((host, block)),
        _ => Err(DecodeError::BadKey {
            key: key.into(),
            expected: "/calico/ipam/v2/host/<this node>/ipv<4|6>/block/<cidr with - for />",
        }),
    }
}

fn any_affinity_key(key: &str) -> Result<(String, ipnet::IpNet), DecodeError> {
    ipam::keys::parse_affinity_key(key).ok_or_else(|| DecodeError::BadKey {
        key: key.into(),
        expected: "/calico/ipam/v2/host/<node>/ipv<4|6>/block/<cidr with - for />",
    })
}

/// Only a confirmed, not deleted affinity makes a block a node's (REFERENCE.md
/// section 3: a pending affinity does not count as ownership).
fn confirmed(key: &str, value: &[u8]) -> Result<bool, DecodeError> {
    let affinity: BlockAffinity =
        serde_json::from_slice(value).map_err(|e| DecodeError::Undecodable {
            key: key.into(),
            kind: "BlockAffinity",
            reason: e.to_string(),
        })?;
    Ok(affinity.state == AffinityState::Confirmed && !affinity.deleted)
}

fn decode_affinity(node: &str, key: &str, value: &[u8]) -> Result<Update, DecodeError> {
    let (_, block) = affinity_key(node, key)?;
    Ok(match confirmed(key, value)? {
        true => Update::BlockAffinityConfirmed(block),
        false => Update::BlockAffinityRemoved(block),
    })
}

/// Another node's affinity; this node's own keys (also under the prefix) are the
/// [`Watched::Affinities`] watch's.
fn decode_remote_affinity(
    local: &str,
    key: &str,
    value: &[u8],
) -> Result<Option<Update>, DecodeError> {
    let (node, block) = any_affinity_key(key)?;
    if node == local {
        return Ok(None);
    }
    Ok(Some(match confirmed(key, value)? {
        true => Update::RemoteBlockConfirmed { node, block },
        false => Update::RemoteBlockRemoved { node, block },
    }))
}

#[cfg(test)]
mod tests;
