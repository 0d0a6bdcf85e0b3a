//! Policy and profile chains (`cali-pi-`/`cali-po-`/`cali-pri-`/`cali-pro-`) and the
//! per-endpoint chains that call them.

pub mod endpoint;
pub mod group;
pub mod host;
pub mod rule;

use config::model::{Profile, Rule};

use super::error::CalcError;
use super::ipsets::SetSpec;
use super::model::{PolicyDef, PolicyKey};
use super::names::{Direction, policy_chain, profile_chain};
use crate::calc::desired::iptables::Chain;
use rule::{RuleContext, render_rule};

/// The chains of one policy or profile and what they need.
#[derive(Clone, Debug, Default)]
pub struct RenderedChains {
    pub chains: Vec<Chain>,
    pub sets: Vec<SetSpec>,
    pub errors: Vec<CalcError>,
}

impl RenderedChains {
    fn add(
        &mut self,
        name: String,
        owner: &str,
        dir: Direction,
        rules: &[Rule],
        ctx: &RuleContext,
    ) {
        let mut bodies = Vec::new();
        let mut failed = false;
        for (index, rule) in rules.iter().enumerate() {
            match render_rule(rule, ctx) {
                Ok(r) => {
                    bodies.extend(r.bodies);
                    self.sets.extend(r.sets);
                }
                Err(source) => {
                    failed = true;
                    self.errors.push(CalcError::Rule {
                        owner: owner.into(),
                        direction: dir,
                        index,
                        source,
                    });
                }
            }
        }
        if failed {
            // Fail closed: a rule we cannot express might have been a Deny.
            bodies = vec![
                "-m comment --comment \"Invalid rule in policy; failing closed\" -j DROP".into(),
            ];
        }
        self.chains.push(Chain {
            name,
            rules: bodies.into(),
        });
    }
}

/// Both chains of a policy that failed validation: each drops everything, so the
/// endpoints its selector picks are closed in both directions (whatever its `types`
/// said, since they may be what is wrong), and the error names the policy and field.
pub fn render_refused(key: &PolicyKey, reason: &str) -> RenderedChains {
    let id = key.id();
    let drop = || {
        std::sync::Arc::new(vec![
            "-m comment --comment \"Invalid policy; failing closed\" -j DROP".to_string(),
        ])
    };
    RenderedChains {
        chains: [Direction::Ingress, Direction::Egress]
            .map(|dir| Chain {
                name: policy_chain(dir, &id),
                rules: drop(),
            })
            .to_vec(),
        sets: Vec::new(),
        errors: vec![CalcError::PolicyRefused {
            policy: id,
            reason: reason.to_string(),
        }],
    }
}

/// `cali-pi-<id>` for an ingress policy and `cali-po-<id>` for an egress one.
pub fn render_policy(key: &PolicyKey, def: &PolicyDef) -> RenderedChains {
    let ctx = RuleContext {
        namespace: key.namespace(),
    };
    let id = key.id();
    let owner = format!("policy {id}");
    let (ingress, egress) = def.applies();
    let mut out = RenderedChains::default();
    if ingress {
        let name = policy_chain(Direction::Ingress, &id);
        out.add(name, &owner, Direction::Ingress, def.ingress(), &ctx);
    }
    if egress {
        let name = policy_chain(Direction::Egress, &id);
        out.add(name, &owner, Direction::Egress, def.egress(), &ctx);
    }
    out
}

/// `cali-pri-<name>` and `cali-pro-<name>` of a profile (both always exist: every
/// endpoint chain ends in its profiles).
pub fn render_profile(profile: &Profile) -> RenderedChains {
    let ctx = RuleContext { namespace: None };
    let name = &profile.metadata.name;
    let owner = format!("profile {name}");
    let mut out = RenderedChains::default();
    let ingress = profile_chain(Direction::Ingress, name);
    out.add(
        ingress,
        &owner,
        Direction::Ingress,
        &profile.spec.ingress,
        &ctx,
    );
    let egress = profile_chain(Direction::Egress, name);
    out.add(
        egress,
        &owner,
        Direction::Egress,
        &profile.spec.egress,
        &ctx,
    );
    out
}
