//! iptables as felix owns it: whole `cali-` chains, plus a few jump rules felix
//! keeps in the kernel's base chains. Everything else (other chains, other
//! rules in base chains) belongs to someone else and is never touched.
//!
//! The input, [`DesiredTable`] and its chains and jumps, is the calculation's
//! output type (`calc::desired::iptables`); this side keeps what touches the
//! kernel and how felix recognises its own rules there (the hashes).
//!
//! * [`parse`]: `iptables-save` output -> [`SavedTable`].
//! * [`render`]: (desired, saved) -> `iptables-restore --noflush` input.
//! * [`kernel`]: what felix believes a table holds, kept from the last
//!   read-back plus every restore since; changes are planned against it.
//! * [`apply`]: backend detection, one restore process per table, read-back
//!   at startup, on refresh and after a failure.
//!
//! Every rule felix writes carries `-m comment --comment "cali:<hash>"`, where the
//! hash covers the chain name, the previous rule's hash and the rule text (as
//! Calico does). Comparing hashes instead of rule text makes the read-back
//! immune to the way `iptables-save` reorders and respells matches.

pub mod apply;
pub mod kernel;
pub mod parse;
pub mod render;
pub mod session;

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};

use crate::calc::desired::iptables::{
    CHAIN_PREFIX, Chain, DesiredTable, DesiredTableError, JumpPosition, JumpRule, Table,
};

pub use apply::{
    Backend, Iptables, IptablesError, SyncOutcome, choose_backend, detect_backend, failed_line,
    offending_line,
};
pub use kernel::KernelTable;
pub use parse::{ParseError, SavedChain, SavedTable, parse_save};
pub use render::{TablePlan, plan, render_restore};

/// Prefix of the comment that marks (and hashes) every rule felix writes.
pub const HASH_PREFIX: &str = "cali:";
/// Length of the rule hash in the comment (64 bits, hex).
const HASH_LEN: usize = 16;

/// The hashes are the dataplane's: how felix marks and recognises its rules
/// in the kernel, not part of what the calculation asks for.
impl DesiredTable {
    /// Each chain's rule hashes, in order (see [`rule_hashes`]).
    pub fn hashes(&self) -> BTreeMap<&str, Vec<String>> {
        self.chains
            .iter()
            .map(|c| (c.name.as_str(), rule_hashes(&c.name, &c.rules)))
            .collect()
    }
}

/// Hashes of a chain's rules: each covers the chain name, the previous hash and
/// the rule, so a rule's hash also pins its position.
pub fn rule_hashes(chain: &str, rules: &[String]) -> Vec<String> {
    let mut prev = String::new();
    rules
        .iter()
        .map(|rule| {
            let mut h = Sha1::new();
            h.update(chain.as_bytes());
            h.update([0]);
            h.update(prev.as_bytes());
            h.update([0]);
            h.update(rule.as_bytes());
            let digest = hex::encode(h.finalize());
            prev = digest[..HASH_LEN].to_string();
            prev.clone()
        })
        .collect()
}

/// The hash of a jump rule in a base chain (position-independent: Top jumps
/// are compared by order separately).
pub fn jump_hash(jump: &JumpRule) -> String {
    rule_hashes(&jump.base_chain, &[jump.body()]).remove(0)
}

/// The felix hash in a rule as `iptables-save` prints it, if it has one.
pub fn hash_of(rule: &str) -> Option<&str> {
    let start = rule.find(HASH_PREFIX)? + HASH_PREFIX.len();
    // The comment must be the `--comment` value, quoted or not.
    let before = rule[..start - HASH_PREFIX.len()].trim_end_matches('"');
    if !before.trim_end().ends_with("--comment") {
        return None;
    }
    let rest = &rule[start..];
    let end = rest
        .find(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-')
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|h| !h.is_empty())
}

/// A rule as felix writes it: hash comment first, then the body.
pub fn with_hash(hash: &str, body: &str) -> String {
    format!("-m comment --comment \"{HASH_PREFIX}{hash}\" {body}")
}

#[cfg(test)]
mod tests;
