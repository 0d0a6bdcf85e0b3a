//! Validation of resources before they are written, as Calico's validator does.
//!
//! [`validate`] checks one object on its own and reports every problem found, each
//! naming the field path and the rule (`spec.cidr: invalid CIDR "10.0.0.0/33"`).
//! [`check_pool_overlaps`] is the cross-object check calicoctl runs before writing a pool.

mod endpoint;
mod network;
mod networkset;
mod policy;
mod primitives;

use std::fmt;

use crate::model::{AnyResource, IPPool, ObjectMeta, Resource};

pub use primitives::{
    is_dns1123_label, is_dns1123_subdomain, label_key_error, label_value_error, parse_cidr,
    valid_ifname, validate_mac,
};

/// One problem: where (a field path such as `spec.ingress[0].protocol`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in one object (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors {
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ValidationErrors {
    /// Whether some error concerns `path` exactly.
    pub fn has_path(&self, path: &str) -> bool {
        self.errors.iter().any(|e| e.path == path)
    }
}

/// Accumulates errors while walking an object.
#[derive(Default)]
pub(crate) struct Errors(Vec<FieldError>);

impl Errors {
    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors { errors: self.0 })
        }
    }
}

/// Checks one object of any kind.
pub fn validate(resource: &AnyResource) -> Result<(), ValidationErrors> {
    let mut e = Errors::default();
    match resource {
        AnyResource::Node(r) => {
            check_meta::<crate::model::Node>(r.meta(), &mut e, NameRule::Subdomain);
            network::node(&r.spec, &mut e);
        }
        AnyResource::BGPConfiguration(r) => {
            check_meta::<crate::model::BGPConfiguration>(
                r.meta(),
                &mut e,
                NameRule::BgpConfiguration,
            );
            network::bgp_configuration(&r.metadata.name, &r.spec, &mut e);
        }
        AnyResource::BGPPeer(r) => {
            check_meta::<crate::model::BGPPeer>(r.meta(), &mut e, NameRule::Subdomain);
            network::bgp_peer(&r.spec, &mut e);
        }
        AnyResource::IPPool(r) => {
            check_meta::<IPPool>(r.meta(), &mut e, NameRule::Subdomain);
            network::ip_pool(&r.spec, &mut e);
        }
        AnyResource::IPAMConfiguration(r) => {
            check_meta::<crate::model::IPAMConfiguration>(r.meta(), &mut e, NameRule::Default);
            network::ipam_configuration(&r.spec, &mut e);
        }
        AnyResource::ClusterInformation(r) => {
            check_meta::<crate::model::ClusterInformation>(r.meta(), &mut e, NameRule::Default);
        }
        AnyResource::NetworkPolicy(r) => {
            check_meta::<crate::model::NetworkPolicy>(
                r.meta(),
                &mut e,
                NameRule::Policy(&r.spec.tier),
            );
            policy::network_policy(&r.spec, &mut e);
        }
        AnyResource::GlobalNetworkPolicy(r) => {
            check_meta::<crate::model::GlobalNetworkPolicy>(
                r.meta(),
                &mut e,
                NameRule::Policy(&r.spec.tier),
            );
            policy::global_network_policy(&r.spec, &mut e);
        }
        AnyResource::NetworkSet(r) => {
            check_meta::<crate::model::NetworkSet>(r.meta(), &mut e, NameRule::Subdomain);
            networkset::network_set(&r.spec, &mut e);
        }
        AnyResource::GlobalNetworkSet(r) => {
            check_meta::<crate::model::GlobalNetworkSet>(r.meta(), &mut e, NameRule::Subdomain);
            networkset::network_set(&r.spec, &mut e);
        }
        AnyResource::Tier(r) => {
            check_meta::<crate::model::Tier>(r.meta(), &mut e, NameRule::Tier);
            policy::tier(&r.spec, &mut e);
        }
        AnyResource::Profile(r) => {
            check_meta::<crate::model::Profile>(r.meta(), &mut e, NameRule::Subdomain);
            policy::profile(&r.spec, &mut e);
        }
        AnyResource::WorkloadEndpoint(r) => {
            check_meta::<crate::model::WorkloadEndpoint>(r.meta(), &mut e, NameRule::Subdomain);
            endpoint::workload_endpoint(&r.spec, &mut e);
        }
        AnyResource::HostEndpoint(r) => {
            check_meta::<crate::model::HostEndpoint>(r.meta(), &mut e, NameRule::Subdomain);
            endpoint::host_endpoint(&r.spec, &mut e);
        }
    }
    e.finish()
}

/// Refuses a pool whose CIDR overlaps another pool's (a pool being updated, i.e. with
/// the same name, is not compared with itself). Pools whose CIDR does not parse are
/// skipped here: [`validate`] reports them.
pub fn check_pool_overlaps(new: &IPPool, existing: &[IPPool]) -> Result<(), ValidationErrors> {
    let mut e = Errors::default();
    if let Some(net) = new.spec.network() {
        for other in existing
            .iter()
            .filter(|p| p.metadata.name != new.metadata.name)
        {
            let Some(other_net) = other.spec.network() else {
                continue;
            };
            if net.contains(&other_net.network()) || other_net.contains(&net.network()) {
                e.add(
                    "spec.cidr",
                    format!(
                        "{net} overlaps IP pool {:?} ({other_net})",
                        other.metadata.name
                    ),
                );
            }
        }
    }
    e.finish()
}

/// Per-kind naming rules on top of the generic metadata checks.
enum NameRule<'a> {
    /// Any DNS-1123 subdomain.
    Subdomain,
    /// Singletons: only `default`.
    Default,
    /// `default` or `node.<nodename>`.
    BgpConfiguration,
    /// A subdomain; in a tier other than `default`, prefixed `<tier>.`.
    Policy(&'a str),
    /// A DNS-1123 label: no `.`, since a tiered policy's name is `<tier>.<name>` and
    /// Calico finds the tier before the first dot.
    Tier,
}

fn check_meta<T: Resource>(meta: &ObjectMeta, e: &mut Errors, rule: NameRule<'_>) {
    let name = meta.name.as_str();
    if name.is_empty() {
        e.add("metadata.name", "name is required");
    } else if !is_dns1123_subdomain(name) {
        e.add(
            "metadata.name",
            format!(
                "invalid name {name:?}: must be a DNS-1123 subdomain (lower-case alphanumerics, '-' and '.', \
                 starting and ending alphanumeric, at most 253 characters)"
            ),
        );
    } else {
        match rule {
            NameRule::Subdomain => {}
            NameRule::Default if name != "default" => {
                e.add(
                    "metadata.name",
                    format!("{} must be named \"default\", not {name:?}", T::KIND),
                );
            }
            NameRule::Default => {}
            NameRule::BgpConfiguration => {
                let node_ok = name.strip_prefix("node.").is_some_and(is_dns1123_subdomain);
                if name != "default" && !node_ok {
                    e.add(
                        "metadata.name",
                        format!("BGPConfiguration must be named \"default\" or \"node.<nodename>\", not {name:?}"),
                    );
                }
            }
            NameRule::Tier if !is_dns1123_label(name) => {
                e.add(
                    "metadata.name",
                    format!("invalid tier name {name:?}: must be a DNS-1123 label (no '.')"),
                );
            }
            NameRule::Tier => {}
            NameRule::Policy(tier) => {
                if !tier.is_empty() && tier != "default" && !name.starts_with(&format!("{tier}.")) {
                    e.add(
                        "metadata.name",
                        format!("policy {name:?} in tier {tier:?} must be named \"{tier}.<name>\""),
                    );
                }
            }
        }
    }
    match (&meta.namespace, T::NAMESPACED) {
        (Some(ns), true) if !is_dns1123_label(ns) => {
            e.add(
                "metadata.namespace",
                format!("invalid namespace {ns:?}: must be a DNS-1123 label"),
            );
        }
        (Some(ns), false) if !ns.is_empty() => {
            e.add(
                "metadata.namespace",
                format!("{} is not namespaced; remove namespace {ns:?}", T::KIND),
            );
        }
        _ => {}
    }
    for (k, v) in &meta.labels {
        if let Some(why) = label_key_error(k) {
            e.add(format!("metadata.labels[{k}]"), why);
        }
        if let Some(why) = label_value_error(v) {
            e.add(format!("metadata.labels[{k}]"), why);
        }
    }
    for k in meta.annotations.keys() {
        if let Some(why) = label_key_error(k) {
            e.add(format!("metadata.annotations[{k}]"), why);
        }
    }
}

/// Validation as a method, for callers holding a concrete kind.
pub trait Validate {
    fn validate(&self) -> Result<(), ValidationErrors>;
}

impl<T: Resource + Into<AnyResource>> Validate for T {
    fn validate(&self) -> Result<(), ValidationErrors> {
        validate(&self.clone().into())
    }
}

impl Validate for AnyResource {
    fn validate(&self) -> Result<(), ValidationErrors> {
        validate(self)
    }
}
