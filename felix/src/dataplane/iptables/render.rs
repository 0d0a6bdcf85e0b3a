//! (desired, saved) -> the smallest `iptables-restore --noflush` input that makes
//! the table match, touching only felix's chains and felix's rules.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{
    DesiredTable, JumpPosition, SavedTable, Table, hash_of, jump_hash, rule_hashes, with_hash,
};

/// What has to change in one table, before it is turned into text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TablePlan {
    /// New or changed felix chains: declared (which creates or flushes them in
    /// `--noflush` mode) and written in full.
    pub write_chains: Vec<String>,
    /// felix chains no longer wanted: flushed, then deleted.
    pub delete_chains: Vec<String>,
    /// Base chains whose felix rules are rewritten: every felix rule (one with a
    /// `cali:` hash) in them is deleted and the jumps are put back in place.
    pub fix_base_chains: Vec<String>,
}

impl TablePlan {
    pub fn is_empty(&self) -> bool {
        self.write_chains.is_empty()
            && self.delete_chains.is_empty()
            && self.fix_base_chains.is_empty()
    }
}

/// Compares desired and saved state of one table.
pub fn plan(desired: &DesiredTable, actual: &SavedTable) -> TablePlan {
    let mut out = TablePlan::default();
    for chain in &desired.chains {
        let want = rule_hashes(&chain.name, &chain.rules);
        let in_sync = actual.chain(&chain.name).is_some_and(|saved| {
            saved.rules.len() == want.len()
                && saved
                    .hashes()
                    .iter()
                    .zip(&want)
                    .all(|(have, want)| *have == Some(want.as_str()))
        });
        if !in_sync {
            out.write_chains.push(chain.name.clone());
        }
    }
    let wanted: BTreeSet<&str> = desired.chains.iter().map(|c| c.name.as_str()).collect();
    out.delete_chains = actual
        .our_chains()
        .filter(|c| !wanted.contains(c.name.as_str()))
        .map(|c| c.name.clone())
        .collect();

    // Base chains to check: those with desired jumps and those holding any
    // felix rule (a stale jump must go even when no jump is wanted there).
    let mut bases: BTreeSet<&str> = desired
        .jumps
        .iter()
        .map(|j| j.base_chain.as_str())
        .collect();
    for chain in actual.chains.iter().filter(|c| !c.is_ours()) {
        if chain.rules.iter().any(|r| hash_of(r).is_some()) {
            bases.insert(&chain.name);
        }
    }
    for base in bases {
        if !base_chain_in_sync(desired, actual, base) {
            out.fix_base_chains.push(base.to_string());
        }
    }
    out
}

/// True when `base` holds exactly felix's jumps: the Top ones first, in order,
/// each Append one exactly once, and no other felix rule.
fn base_chain_in_sync(desired: &DesiredTable, actual: &SavedTable, base: &str) -> bool {
    let saved: Vec<Option<&str>> = actual.chain(base).map(|c| c.hashes()).unwrap_or_default();
    let tops: Vec<String> = jumps_of(desired, base, JumpPosition::Top)
        .map(jump_hash)
        .collect();
    let appends: Vec<String> = jumps_of(desired, base, JumpPosition::Append)
        .map(jump_hash)
        .collect();
    let top_ok = saved.len() >= tops.len()
        && saved
            .iter()
            .zip(&tops)
            .all(|(have, want)| *have == Some(want.as_str()));
    let ours_below: Vec<&str> = saved.iter().skip(tops.len()).flatten().copied().collect();
    let mut expected_below: Vec<&str> = appends.iter().map(String::as_str).collect();
    let mut found_below = ours_below.clone();
    expected_below.sort_unstable();
    found_below.sort_unstable();
    top_ok && expected_below == found_below
}

fn jumps_of<'a>(
    desired: &'a DesiredTable,
    base: &'a str,
    position: JumpPosition,
) -> impl Iterator<Item = &'a super::JumpRule> {
    desired
        .jumps
        .iter()
        .filter(move |j| j.base_chain == base && j.position == position)
}

/// The `iptables-restore --noflush` input for [`plan`]; empty when the table is
/// already in sync. Order matters inside the one transaction:
///
/// 1. declare new/changed chains (creates them, or flushes them in `--noflush` mode);
/// 2. delete felix's rules in the base chains being fixed (drops references);
/// 3. flush chains to delete (drops their references to each other);
/// 4. write the rules of new/changed chains;
/// 5. put the jumps back (`-I <base> <n>` for Top, `-A` for Append);
/// 6. delete the flushed chains: nothing of ours references them any more.
pub fn render_restore(desired: &DesiredTable, actual: &SavedTable) -> String {
    let plan = plan(desired, actual);
    if plan.is_empty() {
        return String::new();
    }
    render_plan(desired, actual, &plan)
}

fn render_plan(desired: &DesiredTable, actual: &SavedTable, plan: &TablePlan) -> String {
    let table: Table = desired.table;
    let mut s = String::new();
    writeln!(s, "*{table}").unwrap();
    for name in &plan.write_chains {
        writeln!(s, ":{name} - [0:0]").unwrap();
    }
    for base in &plan.fix_base_chains {
        let Some(saved) = actual.chain(base) else {
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
    for chain in desired
        .chains
        .iter()
        .filter(|c| plan.write_chains.contains(&c.name))
    {
        for (rule, hash) in chain
            .rules
            .iter()
            .zip(rule_hashes(&chain.name, &chain.rules))
        {
            writeln!(s, "-A {} {}", chain.name, with_hash(&hash, rule)).unwrap();
        }
    }
    for base in &plan.fix_base_chains {
        for (i, jump) in jumps_of(desired, base, JumpPosition::Top).enumerate() {
            let rule = with_hash(&jump_hash(jump), &jump.body());
            writeln!(s, "-I {base} {} {rule}", i + 1).unwrap();
        }
        for jump in jumps_of(desired, base, JumpPosition::Append) {
            writeln!(s, "-A {base} {}", with_hash(&jump_hash(jump), &jump.body())).unwrap();
        }
    }
    for name in &plan.delete_chains {
        writeln!(s, "-X {name}").unwrap();
    }
    writeln!(s, "COMMIT").unwrap();
    s
}
