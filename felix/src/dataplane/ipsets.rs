//! IP sets felix owns: names start with [`SET_PREFIX`] (`cali40`), temporaries
//! used for atomic rewrites with [`TEMP_PREFIX`] (`cali4t`). Sets with other names
//! are never touched.
//!
//! The input, [`IpSet`] and its members, is the calculation's output type
//! (`calc::desired::ipsets`). Pure part here: [`parse_save`] (`ipset save`
//! output), [`render_update`] / [`render_remove_stale`] (`ipset restore` input,
//! a diff against what was saved, so it stays with the kernel's side). I/O
//! part: [`apply::Ipsets`].
//!
//! Updates never delete a set: a set still referenced by an iptables rule
//! cannot be destroyed, so the caller removes stale sets with
//! [`apply::Ipsets::remove_stale`] only after the rules stopped using them.

pub mod apply;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use thiserror::Error;

use crate::calc::desired::Family;
use crate::calc::desired::ipsets::{
    IpSet, IpSetSpecError, MAX_SET_NAME, SET_PREFIX, SetMember, SetType, validate_all,
};

pub use apply::{IpsetError, IpsetOutcome, Ipsets};

pub const TEMP_PREFIX: &str = "cali4t";
/// Sets are created with room for this many members (ipset's default, 65536,
/// is too small for large clusters).
pub const MAX_ELEM: usize = 1_048_576;
/// A change bigger than this share of the desired size is done by filling a
/// temporary set and swapping it in, instead of one add/del per member.
const REWRITE_RATIO: usize = 2;
/// Deltas up to this size always go as add/del.
const SMALL_DELTA: usize = 64;

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "inet",
        Family::V6 => "inet6",
    }
}

/// `ipset restore` spellings of a desired set.
impl IpSet {
    fn header(&self, name: &str) -> String {
        format!(
            "create {name} {} family {} maxelem {MAX_ELEM}",
            self.kind.name(),
            family_name(self.family)
        )
    }
}

/// The temporary twin of a set name (`cali40x` -> `cali4tx`), same length.
/// The stand-in for a set that has to be recreated while rules reference it
/// (see [`IpsetPlan::recreate`]): owned (`cali40` prefix), never a desired name.
pub fn stand_in_name(name: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha224};
    let prefix = format!("{SET_PREFIX}d:");
    let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha224::digest(name));
    format!("{prefix}{}", &hash[..MAX_SET_NAME - prefix.len()])
}

pub fn temp_name(name: &str) -> String {
    format!(
        "{TEMP_PREFIX}{}",
        name.strip_prefix(SET_PREFIX).unwrap_or(name)
    )
}

/// One of our sets as `ipset save` printed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedSet {
    pub name: String,
    /// `None` for a type felix never creates.
    pub kind: Option<SetType>,
    pub family: Option<Family>,
    pub members: BTreeSet<SetMember>,
    /// Some member carried options (timeout, nomatch, ...) felix never sets.
    pub has_extras: bool,
}

/// Our sets (both prefixes) by name.
pub type SavedSets = BTreeMap<String, SavedSet>;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("ipset save output, line {line}: {reason}: {text:?}")]
pub struct IpsetParseError {
    pub line: usize,
    pub text: String,
    pub reason: &'static str,
}

fn is_ours(name: &str) -> bool {
    name.starts_with(SET_PREFIX) || name.starts_with(TEMP_PREFIX)
}

/// Parses `ipset save` output, keeping only `cali40`/`cali4t` sets.
pub fn parse_save(text: &str) -> Result<SavedSets, IpsetParseError> {
    let mut sets = SavedSets::new();
    for (i, line) in text.lines().enumerate() {
        let err = |reason| IpsetParseError {
            line: i + 1,
            text: line.to_string(),
            reason,
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            ["create", name, kind, rest @ ..] if is_ours(name) => {
                let family = rest
                    .windows(2)
                    .find(|w| w[0] == "family")
                    .and_then(|w| match w[1] {
                        "inet" => Some(Family::V4),
                        "inet6" => Some(Family::V6),
                        _ => None,
                    });
                sets.insert(
                    name.to_string(),
                    SavedSet {
                        name: name.to_string(),
                        kind: SetType::parse(kind),
                        family,
                        members: BTreeSet::new(),
                        has_extras: false,
                    },
                );
            }
            ["add", name, member, rest @ ..] if is_ours(name) => {
                let set = sets
                    .get_mut(*name)
                    .ok_or_else(|| err("member of a set not created before"))?;
                let member = SetMember::parse(member)
                    .ok_or_else(|| err("member is not an address, CIDR or address,proto:port"))?;
                set.members.insert(member);
                set.has_extras |= !rest.is_empty();
            }
            ["create" | "add", ..] => {}
            _ => return Err(err("expected a create or add line")),
        }
    }
    Ok(sets)
}

/// What [`render_update`] will do per set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpsetPlan {
    /// Leftover temporaries (a crash mid-rewrite) to destroy first.
    pub destroy_temps: Vec<String>,
    /// Sets that do not exist: created and filled.
    pub create: Vec<String>,
    /// Existing sets of another type/family: destroyed and created again.
    /// The kernel refuses while an iptables rule references the set, and
    /// `ipset swap` refuses sets of different types, so the daemon first
    /// points its rules at a stand-in ([`stand_in_name`]).
    pub recreate: Vec<String>,
    /// Sets rewritten through a temporary and `swap` (atomic for the rules).
    pub swap: Vec<String>,
    /// Sets updated in place: (name, members to add, members to delete).
    pub delta: Vec<(String, Vec<SetMember>, Vec<SetMember>)>,
}

impl IpsetPlan {
    pub fn is_empty(&self) -> bool {
        self.destroy_temps.is_empty()
            && self.create.is_empty()
            && self.recreate.is_empty()
            && self.swap.is_empty()
            && self.delta.is_empty()
    }
}

impl IpSet {
    /// Whether the existing set `have` has this set's type and family (else
    /// only destroying and creating it again gets there).
    pub fn compatible_with(&self, have: &SavedSet) -> bool {
        have.kind == Some(self.kind) && have.family == Some(self.family)
    }
}

pub fn plan_update(desired: &[IpSet], actual: &SavedSets) -> IpsetPlan {
    let mut out = IpsetPlan {
        destroy_temps: actual
            .keys()
            .filter(|n| n.starts_with(TEMP_PREFIX))
            .cloned()
            .collect(),
        ..IpsetPlan::default()
    };
    for set in desired {
        let Some(have) = actual.get(&set.name) else {
            out.create.push(set.name.clone());
            continue;
        };
        if !set.compatible_with(have) {
            out.recreate.push(set.name.clone());
            continue;
        }
        let adds: Vec<SetMember> = set.members.difference(&have.members).copied().collect();
        let dels: Vec<SetMember> = have.members.difference(&set.members).copied().collect();
        let delta = adds.len() + dels.len();
        if have.has_extras || (delta > SMALL_DELTA && delta * REWRITE_RATIO > set.members.len()) {
            out.swap.push(set.name.clone());
        } else if delta > 0 {
            out.delta.push((set.name.clone(), adds, dels));
        }
    }
    out
}

/// `ipset restore` input that brings every desired set to its members; empty
/// when all are in sync. Never destroys a `cali40` set that is not desired.
pub fn render_update(desired: &[IpSet], actual: &SavedSets) -> String {
    let plan = plan_update(desired, actual);
    let mut s = String::new();
    for name in &plan.destroy_temps {
        writeln!(s, "destroy {name}").unwrap();
    }
    let fill = |s: &mut String, set: &IpSet, name: &str| {
        writeln!(s, "{}", set.header(name)).unwrap();
        for m in &set.members {
            writeln!(s, "add {name} {m}").unwrap();
        }
    };
    for set in desired {
        let name = set.name.as_str();
        if plan.create.iter().any(|n| n == name) {
            fill(&mut s, set, name);
        } else if plan.recreate.iter().any(|n| n == name) {
            writeln!(s, "destroy {name}").unwrap();
            fill(&mut s, set, name);
        } else if plan.swap.iter().any(|n| n == name) {
            let tmp = temp_name(name);
            fill(&mut s, set, &tmp);
            writeln!(s, "swap {tmp} {name}").unwrap();
            writeln!(s, "destroy {tmp}").unwrap();
        } else if let Some((_, adds, dels)) = plan.delta.iter().find(|(n, _, _)| n == name) {
            for m in dels {
                writeln!(s, "del {name} {m}").unwrap();
            }
            for m in adds {
                writeln!(s, "add {name} {m}").unwrap();
            }
        }
    }
    s
}

/// `destroy` lines for our sets that are not desired (run only once no rule
/// references them any more).
pub fn render_remove_stale(desired: &[IpSet], actual: &SavedSets) -> String {
    let wanted: BTreeSet<&str> = desired.iter().map(|s| s.name.as_str()).collect();
    actual
        .keys()
        .filter(|n| n.starts_with(SET_PREFIX) && !wanted.contains(n.as_str()))
        .map(|n| format!("destroy {n}\n"))
        .collect()
}

#[cfg(test)]
mod tests;
