//! [`KernelTable`]: what felix believes one table holds, indexed by chain name.
//!
//! It starts from an `iptables-save` read-back and is then kept up to date by
//! recording every successful restore, so an apply plans against memory instead
//! of re-reading the kernel (Calico's felix does the same: it re-reads only on
//! the periodic refresh and after a failure). Planning a change costs one hash
//! lookup and one rule-list comparison per desired chain; only chains that
//! differ are hashed and written.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write;
use std::sync::Arc;

use super::render::TablePlan;
use super::{
    Chain, DesiredTable, JumpPosition, JumpRule, SavedTable, hash_of, jump_hash, rule_hashes,
    with_hash,
};

/// One felix chain as the kernel holds it.
#[derive(Clone, Debug)]
struct OurChain {
    /// The felix hash of each rule (`None`: a rule without one, i.e. tampering).
    hashes: Vec<Option<String>>,
    /// The rule bodies, once known to match `hashes` (felix wrote them, or a
    /// plan found them equal): an identical desired chain needs no hashing.
    rules: Option<Arc<Vec<String>>>,
    /// Position in `iptables-save` order, then creation order: chains to
    /// delete are listed in this order.
    seq: u64,
}

/// A chain felix does not own (base chains, other software's chains).
#[derive(Clone, Debug, Default)]
struct OtherChain {
    /// Rules as saved (or as felix wrote its jumps), in order.
    rules: Vec<String>,
    /// How many of them carry a felix hash.
    felix_rules: usize,
}

impl OtherChain {
    fn new(rules: Vec<String>) -> Self {
        let felix_rules = rules.iter().filter(|r| hash_of(r).is_some()).count();
        Self { rules, felix_rules }
    }
}

/// See the module doc.
#[derive(Clone, Debug, Default)]
pub struct KernelTable {
    ours: HashMap<String, OurChain>,
    others: HashMap<String, OtherChain>,
    next_seq: u64,
    /// Some chain's `rules` is unknown (after a read-back).
    unverified: bool,
}

impl KernelTable {
    /// The table as `iptables-save` printed it.
    pub fn from_saved(saved: &SavedTable) -> Self {
        let mut out = KernelTable::default();
        for chain in &saved.chains {
            if chain.is_ours() {
                let hashes = chain
                    .rules
                    .iter()
                    .map(|r| hash_of(r).map(str::to_string))
                    .collect();
                out.insert_ours(&chain.name, hashes, None);
                out.unverified = true;
            } else {
                out.others
                    .insert(chain.name.clone(), OtherChain::new(chain.rules.clone()));
            }
        }
        out
    }

    fn insert_ours(
        &mut self,
        name: &str,
        hashes: Vec<Option<String>>,
        rules: Option<Arc<Vec<String>>>,
    ) {
        let seq = match self.ours.get(name) {
            Some(old) => old.seq,
            None => {
                self.next_seq += 1;
                self.next_seq
            }
        };
        self.ours
            .insert(name.to_string(), OurChain { hashes, rules, seq });
    }

    /// Compares `desired` with this table: what has to be written, deleted and fixed.
    pub fn plan(&self, desired: &DesiredTable) -> TablePlan {
        let mut out = TablePlan::default();
        let mut wanted: HashSet<&str> = HashSet::with_capacity(desired.chains.len());
        for chain in &desired.chains {
            wanted.insert(&chain.name);
            if !self.chain_in_sync(chain) {
                out.write_chains.push(chain.name.clone());
            }
        }
        let mut stale: Vec<(&String, u64)> = self
            .ours
            .iter()
            .filter(|(name, _)| !wanted.contains(name.as_str()))
            .map(|(name, c)| (name, c.seq))
            .collect();
        stale.sort_by_key(|(_, seq)| *seq);
        out.delete_chains = stale.into_iter().map(|(n, _)| n.clone()).collect();

        // Base chains to check: those with desired jumps and those holding any
        // felix rule (a stale jump must go even when no jump is wanted there).
        let mut bases: BTreeSet<&str> = desired
            .jumps
            .iter()
            .map(|j| j.base_chain.as_str())
            .collect();
        bases.extend(
            self.others
                .iter()
                .filter(|(_, c)| c.felix_rules > 0)
                .map(|(n, _)| n.as_str()),
        );
        out.fix_base_chains = bases
            .into_iter()
            .filter(|base| !self.base_chain_in_sync(desired, base))
            .map(str::to_string)
            .collect();
        out
    }

    fn chain_in_sync(&self, chain: &Chain) -> bool {
        let Some(have) = self.ours.get(&chain.name) else {
            return false;
        };
        if let Some(rules) = &have.rules {
            // Pointer-equal (the usual case: the same rendering) or equal.
            return *rules == chain.rules;
        }
        let want = rule_hashes(&chain.name, &chain.rules);
        have.hashes.len() == want.len()
            && have
                .hashes
                .iter()
                .zip(&want)
                .all(|(have, want)| have.as_deref() == Some(want.as_str()))
    }

    /// True when `base` holds exactly felix's jumps: the Top ones first, in
    /// order, each Append one exactly once, and no other felix rule.
    fn base_chain_in_sync(&self, desired: &DesiredTable, base: &str) -> bool {
        let saved: Vec<Option<&str>> = self
            .others
            .get(base)
            .map(|c| c.rules.iter().map(|r| hash_of(r)).collect())
            .unwrap_or_default();
        let tops: Vec<String> = jumps_of(desired, base, JumpPosition::Top)
            .map(jump_hash)
            .collect();
        let mut expected_below: Vec<String> = jumps_of(desired, base, JumpPosition::Append)
            .map(jump_hash)
            .collect();
        let top_ok = saved.len() >= tops.len()
            && saved
                .iter()
                .zip(&tops)
                .all(|(have, want)| *have == Some(want.as_str()));
        let mut found_below: Vec<&str> = saved.iter().skip(tops.len()).flatten().copied().collect();
        expected_below.sort_unstable();
        found_below.sort_unstable();
        top_ok && expected_below == found_below
    }

    /// The `iptables-restore --noflush` input for `plan` (from [`plan`](Self::plan));
    /// empty when the plan is. Order matters inside the one transaction:
    ///
    /// 1. declare new/changed chains (creates them, or flushes them in `--noflush` mode);
    /// 2. delete felix's rules in the base chains being fixed (drops references);
    /// 3. flush chains to delete (drops their references to each other);
    /// 4. write the rules of new/changed chains;
    /// 5. put the jumps back (`-I <base> <n>` for Top, `-A` for Append);
    /// 6. delete the flushed chains: nothing of ours references them any more.
    pub fn render(&self, desired: &DesiredTable, plan: &TablePlan) -> String {
        if plan.is_empty() {
            return String::new();
        }
        let mut s = String::new();
        writeln!(s, "*{}", desired.table).unwrap();
        for name in &plan.write_chains {
            writeln!(s, ":{name} - [0:0]").unwrap();
        }
        for base in &plan.fix_base_chains {
            let Some(saved) = self.others.get(base) else {
                continue;
            };
            // One -D per occurrence: each removes the first rule matching the spec.
            for rule in saved.rules.iter().filter(|r| hash_of(r).is_some()) {
                writeln!(s, "-D {base} {rule}").unwrap();
            }
        }
        for name in &plan.delete_chains {
            writeln!(s, "-F {name}").unwrap();
        }
        for chain in written(desired, plan) {
            for (rule, hash) in chain
                .rules
                .iter()
                .zip(rule_hashes(&chain.name, &chain.rules))
            {
                writeln!(s, "-A {} {}", chain.name, with_hash(&hash, rule)).unwrap();
            }
        }
        for base in &plan.fix_base_chains {
            for rule in base_rules(desired, base) {
                match rule {
                    (Some(position), rule) => writeln!(s, "-I {base} {position} {rule}").unwrap(),
                    (None, rule) => writeln!(s, "-A {base} {rule}").unwrap(),
                }
            }
        }
        for name in &plan.delete_chains {
            writeln!(s, "-X {name}").unwrap();
        }
        writeln!(s, "COMMIT").unwrap();
        s
    }

    /// Records that `plan` was applied successfully for `desired`, so the next
    /// plan starts from what the kernel now holds.
    pub fn record(&mut self, desired: &DesiredTable, plan: &TablePlan) {
        for chain in written(desired, plan) {
            let hashes = rule_hashes(&chain.name, &chain.rules)
                .into_iter()
                .map(Some)
                .collect();
            self.insert_ours(&chain.name, hashes, Some(chain.rules.clone()));
        }
        for name in &plan.delete_chains {
            self.ours.remove(name);
        }
        for base in &plan.fix_base_chains {
            let old = self.others.remove(base).unwrap_or_default();
            let foreign = old.rules.into_iter().filter(|r| hash_of(r).is_none());
            let (tops, appends): (Vec<_>, Vec<_>) = base_rules(desired, base)
                .into_iter()
                .partition(|(position, _)| position.is_some());
            let rules = tops
                .into_iter()
                .map(|(_, r)| r)
                .chain(foreign)
                .chain(appends.into_iter().map(|(_, r)| r))
                .collect();
            self.others.insert(base.clone(), OtherChain::new(rules));
        }
        if self.unverified {
            // Every desired chain not written was found in sync by hash: its
            // rules are now known, and later plans compare them directly.
            for chain in &desired.chains {
                if let Some(have) = self.ours.get_mut(&chain.name)
                    && have.rules.is_none()
                {
                    have.rules = Some(chain.rules.clone());
                }
            }
            self.unverified = false;
        }
    }
}

/// The desired chains the plan writes, in desired order.
fn written<'a>(desired: &'a DesiredTable, plan: &'a TablePlan) -> impl Iterator<Item = &'a Chain> {
    let names: HashSet<&str> = plan.write_chains.iter().map(String::as_str).collect();
    desired
        .chains
        .iter()
        .filter(move |c| names.contains(c.name.as_str()))
}

/// felix's rules in `base`, as written: `(Some(n), rule)` for a Top jump
/// inserted at position n, `(None, rule)` for an appended one.
fn base_rules(desired: &DesiredTable, base: &str) -> Vec<(Option<usize>, String)> {
    let tops = jumps_of(desired, base, JumpPosition::Top)
        .enumerate()
        .map(|(i, j)| (Some(i + 1), with_hash(&jump_hash(j), &j.body())));
    let appends = jumps_of(desired, base, JumpPosition::Append)
        .map(|j| (None, with_hash(&jump_hash(j), &j.body())));
    tops.chain(appends).collect()
}

fn jumps_of<'a>(
    desired: &'a DesiredTable,
    base: &'a str,
    position: JumpPosition,
) -> impl Iterator<Item = &'a JumpRule> {
    desired
        .jumps
        .iter()
        .filter(move |j| j.base_chain == base && j.position == position)
}
