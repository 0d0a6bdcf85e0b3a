//! This node's host endpoints: which policies each one has, per stage and
//! direction, and the plans its chains run ([`HostPlans`]).
//!
//! Redone whole when a host endpoint, a policy, a tier or a profile changes: a
//! node has a handful of host endpoints, so matching every policy selector
//! against them costs microseconds even with thousands of policies.

use std::collections::{BTreeMap, BTreeSet};

use super::Calculator;
use super::tiers::{Selected, evaluation_order};
use crate::calc::error::CalcError;
use crate::calc::model::{PolicyKey, PolicyStage};
use crate::calc::names::{Direction, policy_chain};
use crate::calc::policy::endpoint::{EndpointPlan, TierPlan};
use crate::calc::policy::host::HostPlans;

/// The host endpoint part of the calculation.
#[derive(Clone, Debug, Default)]
pub(super) struct HostState {
    /// One per policed interface, sorted by interface.
    pub plans: Vec<HostPlans>,
    /// Policies that apply to at least one local host endpoint, with their stage.
    pub policies: BTreeMap<PolicyKey, PolicyStage>,
    /// Profiles local host endpoints use.
    pub profiles: BTreeSet<String>,
    pub errors: Vec<CalcError>,
}

impl Calculator {
    pub(super) fn host_state(&self) -> HostState {
        let mut out = HostState::default();
        let mut by_interface: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, hep) in self.input.local_host_endpoints() {
            let iface = hep.spec.interface_name.as_str();
            let problem = if iface.is_empty() {
                Some(
                    "no interfaceName: matching an interface by expectedIPs is not supported"
                        .to_string(),
                )
            } else if iface != "*" && !crate::dataplane::netlink::valid_ifname(iface) {
                Some(format!(
                    "interfaceName {iface:?} is not a valid interface name"
                ))
            } else if iface.starts_with("cali") {
                Some(format!("interfaceName {iface:?} is a workload interface"))
            } else {
                by_interface.get(iface).map(|first| {
                    format!("interface {iface} is already used by host endpoint {first}")
                })
            };
            if let Some(reason) = problem {
                out.errors.push(CalcError::HostEndpoint {
                    endpoint: name.clone(),
                    reason,
                });
                continue;
            }
            by_interface.insert(iface, name);
            let labels = self.input.host_endpoint_labels(hep);
            let mut selecting: Vec<Selected> = self
                .policies
                .iter()
                .filter(|(key, p)| {
                    // Host endpoints have no namespace: namespaced policies and
                    // those limited by a namespaceSelector never select them.
                    key.namespace().is_none()
                        && p.namespace_selector.is_none()
                        && p.selector.as_ref().is_some_and(|s| s.matches(&labels))
                })
                .map(|(key, p)| {
                    out.policies.insert(key.clone(), p.stage);
                    Selected::new(&self.input, key, p)
                })
                .collect();
            selecting.sort_by(evaluation_order);
            let in_stage = |want: fn(PolicyStage) -> bool| -> Vec<&Selected> {
                selecting.iter().filter(|s| want(s.policy.stage)).collect()
            };
            let normal = in_stage(|s| matches!(s, PolicyStage::Normal { .. }));
            let forward = in_stage(|s| {
                matches!(
                    s,
                    PolicyStage::Normal {
                        apply_on_forward: true
                    }
                )
            });
            let pre_dnat = in_stage(|s| s == PolicyStage::PreDnat);
            let untracked = in_stage(|s| s == PolicyStage::Untracked);
            let profiles: Vec<String> = hep
                .spec
                .profiles
                .iter()
                .filter(|p| self.input.profile(p).is_some())
                .cloned()
                .collect();
            out.profiles.extend(profiles.iter().cloned());
            let plan = |dir: Direction, policies: &[&Selected], profiles: &[String]| EndpointPlan {
                direction: dir,
                tiers: tiers(dir, policies),
                profiles: profiles.to_vec(),
            };
            let both = |policies: &[&Selected], profiles: &[String]| {
                [
                    plan(Direction::Ingress, policies, profiles),
                    plan(Direction::Egress, policies, profiles),
                ]
            };
            out.plans.push(HostPlans {
                interface: iface.to_string(),
                normal: both(&normal, &profiles),
                forward: both(&forward, &[]),
                pre_dnat: plan(Direction::Ingress, &pre_dnat, &[]),
                untracked: both(&untracked, &[]),
            });
        }
        out.plans.sort_by(|a, b| a.interface.cmp(&b.interface));
        out
    }
}

/// The tiers of `policies` (in evaluation order) for one direction, each policy
/// jumped to directly: host endpoints are few, so group chains would save nothing.
fn tiers(dir: Direction, policies: &[&Selected]) -> Vec<TierPlan> {
    let applies = |s: &&&Selected| match dir {
        Direction::Ingress => s.policy.applies.0,
        Direction::Egress => s.policy.applies.1,
    };
    let mine: Vec<&Selected> = policies.iter().filter(applies).copied().collect();
    mine.chunk_by(|a, b| a.policy.tier == b.policy.tier)
        .map(|run| TierPlan {
            name: run[0].policy.tier.clone(),
            targets: run.iter().map(|s| policy_chain(dir, &s.id)).collect(),
            default_pass: run[0].tier.default_pass,
        })
        .collect()
}
