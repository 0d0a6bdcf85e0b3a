//! Policy groups (Calico felix >= 3.28, `rules.PolicyGroup`): a run of two or more
//! consecutive policies of an endpoint that share one selector becomes one
//! `cali-gi-`/`cali-go-` chain, and every endpoint the selector picks jumps to that
//! chain instead of to each policy.
//!
//! Why: with per-policy jumps every endpoint chain grows with the number of
//! policies that select it, and nf_tables re-validates every rule reachable from
//! the base chains on each commit, so even a one-chain change costs time in
//! proportion to all of those jumps. Grouping keeps endpoint chains short and
//! makes adding a policy to a shared selector a one-chain change. Sharing a
//! selector guarantees that an endpoint matching one policy of the run matches
//! all of them, so the group chain is the same for every endpoint that uses it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha224};

use crate::calc::desired::iptables::{Chain, MAX_CHAIN_NAME};
use crate::calc::names::{Direction, MARK_ACCEPT, MARK_PASS, policy_chain};

/// After this many policies a group chain returns if one of them reached a
/// verdict (as Calico does), so a long group is not walked to its end.
const RETURN_STRIDE: usize = 5;

/// One policy in an endpoint's ordered list for one direction.
#[derive(Clone, Copy, Debug)]
pub struct PolicyRef<'a> {
    /// The policy's tier: part of a group chain's identity, as in Calico.
    pub tier: &'a str,
    /// The policy id (`<namespace>/<name>` or `<name>`).
    pub id: &'a str,
    /// Identity of the set of endpoints the policy selects: equal keys select the
    /// same endpoints.
    pub selector_key: &'a str,
}

/// What an endpoint chain jumps to, in order: policy chains and group chains,
/// with the group chains to emit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Steps {
    pub targets: Vec<String>,
    pub groups: Vec<Chain>,
}

/// Splits `policies` (one tier's, already in evaluation order) into runs with equal
/// selector keys; a run of one is jumped to directly, a longer run through its
/// group chain.
pub fn group_policies(dir: Direction, policies: &[PolicyRef]) -> Steps {
    let mut out = Steps::default();
    for run in policies.chunk_by(|a, b| a.selector_key == b.selector_key && a.tier == b.tier) {
        if let [single] = run {
            out.targets.push(policy_chain(dir, single.id));
            continue;
        }
        let chain = group_chain(dir, run);
        out.targets.push(chain.name.clone());
        out.groups.push(chain);
    }
    out
}

/// `cali-gi-<hash>`/`cali-go-<hash>`: the hash covers everything the chain's
/// rules depend on, so one name always means one content.
pub fn group_chain_name(dir: Direction, run: &[PolicyRef]) -> String {
    let mut h = Sha224::new();
    let mut write = |s: &str| {
        h.update(s.as_bytes());
        h.update(b"\n");
    };
    write(run[0].tier);
    write(run[0].selector_key);
    write(dir.name());
    write(&run.len().to_string());
    for p in run {
        write(p.id);
    }
    let prefix = match dir {
        Direction::Ingress => "cali-gi-",
        Direction::Egress => "cali-go-",
    };
    let hash = URL_SAFE_NO_PAD.encode(h.finalize());
    format!("{prefix}{}", &hash[..MAX_CHAIN_NAME - prefix.len()])
}

/// The group chain: each policy in turn while none has reached a verdict. The
/// endpoint chain enters it only when the pass mark is clear, and the accept
/// mark is clear on entry (the endpoint chain returns as soon as it is set).
fn group_chain(dir: Direction, run: &[PolicyRef]) -> Chain {
    let verdict = MARK_ACCEPT | MARK_PASS;
    let mut rules = Vec::with_capacity(run.len() + run.len() / RETURN_STRIDE);
    for (i, p) in run.iter().enumerate() {
        let target = policy_chain(dir, p.id);
        if i % RETURN_STRIDE == 0 {
            if i > 0 {
                rules.push(format!(
                    "-m comment --comment \"Return on verdict\" -m mark ! --mark 0x0/{verdict:#x} -j RETURN"
                ));
            }
            // First of a block: no verdict yet (start of chain or just checked).
            rules.push(format!("-j {target}"));
        } else {
            rules.push(format!("-m mark --mark 0x0/{verdict:#x} -j {target}"));
        }
    }
    Chain {
        name: group_chain_name(dir, run),
        rules: rules.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs<'a>(list: &[(&'a str, &'a str)]) -> Vec<PolicyRef<'a>> {
        list.iter()
            .map(|(id, selector_key)| PolicyRef {
                tier: "default",
                id,
                selector_key,
            })
            .collect()
    }

    #[test]
    fn single_policies_are_jumped_to_directly() {
        let s = group_policies(Direction::Ingress, &refs(&[("a", "x"), ("b", "y")]));
        assert_eq!(s.targets, ["cali-pi-a", "cali-pi-b"]);
        assert!(s.groups.is_empty());
    }

    #[test]
    fn runs_with_one_selector_share_a_group_chain() {
        let list = refs(&[("a", "x"), ("b", "x"), ("c", "y"), ("d", "x"), ("e", "x")]);
        let s = group_policies(Direction::Egress, &list);
        assert_eq!(s.groups.len(), 2);
        assert_eq!(s.targets[0], s.groups[0].name);
        assert_eq!(s.targets[1], "cali-po-c");
        assert_eq!(s.targets[2], s.groups[1].name);
        assert!(s.groups.iter().all(|g| g.name.starts_with("cali-go-")));
        assert!(s.groups.iter().all(|g| g.name.len() == MAX_CHAIN_NAME));
        assert_ne!(s.groups[0].name, s.groups[1].name);
        assert_eq!(
            *s.groups[0].rules,
            ["-j cali-po-a", "-m mark --mark 0x0/0x30000 -j cali-po-b"]
        );
    }

    #[test]
    fn long_groups_return_on_verdict_every_five_policies() {
        let ids: Vec<String> = (0..7).map(|i| format!("p{i}")).collect();
        let list: Vec<PolicyRef> = ids
            .iter()
            .map(|id| PolicyRef {
                tier: "default",
                id,
                selector_key: "k",
            })
            .collect();
        let s = group_policies(Direction::Ingress, &list);
        assert_eq!(
            *s.groups[0].rules,
            [
                "-j cali-pi-p0",
                "-m mark --mark 0x0/0x30000 -j cali-pi-p1",
                "-m mark --mark 0x0/0x30000 -j cali-pi-p2",
                "-m mark --mark 0x0/0x30000 -j cali-pi-p3",
                "-m mark --mark 0x0/0x30000 -j cali-pi-p4",
                "-m comment --comment \"Return on verdict\" -m mark ! --mark 0x0/0x30000 -j RETURN",
                "-j cali-pi-p5",
                "-m mark --mark 0x0/0x30000 -j cali-pi-p6",
            ]
        );
    }

    #[test]
    fn the_name_changes_with_members_direction_and_selector() {
        let base = group_chain_name(Direction::Ingress, &refs(&[("a", "x"), ("b", "x")]));
        for other in [
            group_chain_name(Direction::Egress, &refs(&[("a", "x"), ("b", "x")])),
            group_chain_name(Direction::Ingress, &refs(&[("b", "x"), ("a", "x")])),
            group_chain_name(Direction::Ingress, &refs(&[("a", "z"), ("b", "z")])),
            group_chain_name(
                Direction::Ingress,
                &refs(&[("a", "x"), ("b", "x"), ("c", "x")]),
            ),
        ] {
            assert_ne!(base, other);
        }
        assert_eq!(
            base,
            group_chain_name(Direction::Ingress, &refs(&[("a", "x"), ("b", "x")]))
        );
    }
}
