//! The order in which an endpoint's policies are evaluated: by tier (tier order, then
//! name), inside a tier by policy order then name, as Calico's calculation graph sorts
//! them; and each tier's part of the endpoint chain.

use std::cmp::Ordering;

use config::model::Action;

use super::PolicyState;
use crate::calc::model::{CalcInput, PolicyKey};
use crate::calc::names::Direction;
use crate::calc::policy::endpoint::TierPlan;
use crate::calc::policy::group::{PolicyRef, Steps, group_policies};

/// What the endpoint chain needs of a tier.
#[derive(Clone, Copy, Debug)]
pub(super) struct TierInfo {
    /// Unset orders sort last.
    pub order: f64,
    pub default_pass: bool,
}

impl TierInfo {
    /// A tier that does not exist (a policy names it, but it was not created or was
    /// deleted): last, with the Deny default, so its policies still fail closed
    /// rather than being skipped. The error is reported with the policy.
    pub fn of(input: &CalcInput, name: &str) -> TierInfo {
        match input.tier(name) {
            Some(t) => TierInfo {
                order: t.spec.effective_order(),
                default_pass: t.spec.effective_default_action() == Action::Pass,
            },
            None => TierInfo {
                order: f64::INFINITY,
                default_pass: false,
            },
        }
    }
}

/// One selecting policy with what sorting needs.
pub(super) struct Selected<'a> {
    pub id: String,
    pub policy: &'a PolicyState,
    pub tier: TierInfo,
}

impl<'a> Selected<'a> {
    pub fn new(input: &CalcInput, key: &PolicyKey, policy: &'a PolicyState) -> Self {
        Self {
            id: key.id(),
            tier: TierInfo::of(input, &policy.tier),
            policy,
        }
    }
}

/// Tier order, tier name, policy order, policy id.
pub(super) fn evaluation_order(a: &Selected, b: &Selected) -> Ordering {
    a.tier
        .order
        .total_cmp(&b.tier.order)
        .then_with(|| a.policy.tier.cmp(&b.policy.tier))
        .then_with(|| a.policy.order.total_cmp(&b.policy.order))
        .then_with(|| a.id.cmp(&b.id))
}

/// The tiers of one direction (policies sorted by [`evaluation_order`]), with the
/// group chains they use.
pub(super) fn tier_plans(dir: Direction, sorted: &[Selected]) -> (Vec<TierPlan>, Steps) {
    let applies = |s: &&Selected| match dir {
        Direction::Ingress => s.policy.applies.0,
        Direction::Egress => s.policy.applies.1,
    };
    let mine: Vec<&Selected> = sorted.iter().filter(applies).collect();
    let mut plans = Vec::new();
    let mut all = Steps::default();
    for run in mine.chunk_by(|a, b| a.policy.tier == b.policy.tier) {
        let refs: Vec<PolicyRef> = run
            .iter()
            .map(|s| PolicyRef {
                tier: &s.policy.tier,
                id: &s.id,
                selector_key: &s.policy.selector_key,
            })
            .collect();
        let steps = group_policies(dir, &refs);
        plans.push(TierPlan {
            name: run[0].policy.tier.clone(),
            targets: steps.targets,
            default_pass: run[0].tier.default_pass,
        });
        all.groups.extend(steps.groups);
    }
    (plans, all)
}
