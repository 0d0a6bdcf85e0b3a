//! The iptables state felix wants, as the calculation produces it: whole
//! `cali-` chains of rules (each rule as the text after `-A <chain> `), the
//! jump rules that hook them into the kernel's base chains, and the limits a
//! name must respect. Plain data with its checks; nothing here runs a tool.
//!
//! Turning a [`DesiredTable`] into `iptables-restore` text stays in the
//! dataplane (`dataplane/iptables/{render,kernel}.rs`), although it is a pure
//! function too: the text is a diff against what the kernel holds (`--noflush`,
//! only changed chains, `cali:` hash comments matched against `iptables-save`
//! output), so it needs the kernel's side as much as this one, and the hash
//! scheme is how felix recognises its rules in the kernel, not part of what it
//! wants there.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use thiserror::Error;

/// Prefix of every chain felix owns.
pub const CHAIN_PREFIX: &str = "cali-";
/// iptables limit for a chain name (`XT_EXTENSION_MAXNAMELEN` - 1).
pub const MAX_CHAIN_NAME: usize = 28;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Filter,
    Nat,
    Mangle,
    Raw,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Filter => "filter",
            Table::Nat => "nat",
            Table::Mangle => "mangle",
            Table::Raw => "raw",
        }
    }

    /// The kernel's built-in chains of this table.
    pub fn base_chains(self) -> &'static [&'static str] {
        match self {
            Table::Filter => &["INPUT", "FORWARD", "OUTPUT"],
            Table::Nat => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
            Table::Mangle => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
            Table::Raw => &["PREROUTING", "OUTPUT"],
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One felix chain: its name (`cali-...`) and its rules, each the part after
/// `-A <chain> ` (for example `-i cali+ -j cali-from-wl-dispatch`).
///
/// The rules are shared: the calculation keeps every chain it rendered and
/// hands the same list to each desired state, and the iptables syncer keeps
/// the list it wrote, so an unchanged chain costs a pointer copy and a pointer
/// comparison instead of a copy and a comparison of every rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub rules: Arc<Vec<String>>,
}

/// Where a jump rule sits in its base chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JumpPosition {
    /// At the top, before anyone else's rules (`-I <chain> <n>`), in the order given.
    Top,
    /// Anywhere, exactly once (`-A <chain>` when missing): for nat POSTROUTING,
    /// where rules of others may legitimately come first.
    Append,
}

/// `-A <base_chain> -j <target>`, felix's hook from a kernel chain into its own.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JumpRule {
    pub base_chain: String,
    pub target: String,
    pub position: JumpPosition,
}

impl JumpRule {
    pub fn new(base_chain: &str, target: &str, position: JumpPosition) -> Self {
        Self {
            base_chain: base_chain.into(),
            target: target.into(),
            position,
        }
    }

    /// The rule body (without the hash comment).
    pub fn body(&self) -> String {
        format!("-j {}", self.target)
    }
}

/// The jump rules Calico installs (REFERENCE.md section 4): filter INPUT/FORWARD/
/// OUTPUT at the top, nat POSTROUTING appended; for host endpoint policy, raw
/// PREROUTING/OUTPUT (untracked) and mangle PREROUTING (pre-DNAT) at the top.
pub fn standard_jumps(table: Table) -> Vec<JumpRule> {
    match table {
        Table::Filter => ["INPUT", "FORWARD", "OUTPUT"]
            .iter()
            .map(|c| JumpRule::new(c, &format!("cali-{c}"), JumpPosition::Top))
            .collect(),
        Table::Nat => vec![JumpRule::new(
            "POSTROUTING",
            "cali-POSTROUTING",
            JumpPosition::Append,
        )],
        Table::Mangle => vec![JumpRule::new(
            "PREROUTING",
            "cali-PREROUTING",
            JumpPosition::Top,
        )],
        Table::Raw => ["PREROUTING", "OUTPUT"]
            .iter()
            .map(|c| JumpRule::new(c, &format!("cali-{c}"), JumpPosition::Top))
            .collect(),
    }
}

/// Everything felix wants in one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredTable {
    pub table: Table,
    pub chains: Vec<Chain>,
    pub jumps: Vec<JumpRule>,
}

/// Why a [`DesiredTable`] cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DesiredTableError {
    #[error(
        "table {table}: chain {name:?} does not start with {CHAIN_PREFIX:?}, so felix would not own it"
    )]
    NotOurChain { table: Table, name: String },
    #[error("table {table}: chain name {name:?} is longer than {MAX_CHAIN_NAME} characters")]
    ChainNameTooLong { table: Table, name: String },
    #[error("table {table}: chain {name:?} is defined twice")]
    DuplicateChain { table: Table, name: String },
    #[error("table {table}, chain {chain}, rule {index}: {reason}: {rule:?}")]
    BadRule {
        table: Table,
        chain: String,
        index: usize,
        rule: String,
        reason: &'static str,
    },
    #[error("table {table}, chain {chain}: jumps to {target:?}, which is not a desired chain")]
    DanglingJump {
        table: Table,
        chain: String,
        target: String,
    },
    #[error("table {table}: jump rule from {base:?}: not a built-in chain of this table")]
    NotBaseChain { table: Table, base: String },
}

impl DesiredTable {
    pub fn new(table: Table, chains: Vec<Chain>, jumps: Vec<JumpRule>) -> Self {
        Self {
            table,
            chains,
            jumps,
        }
    }

    /// Checks ownership (names), limits, and that every `-j`/`-g` to a `cali-`
    /// chain points at a chain of this table: a dangling jump would make the
    /// whole restore fail.
    pub fn validate(&self) -> Result<(), DesiredTableError> {
        self.validate_chains(|_| true)
    }

    /// [`validate`](Self::validate), looking at the rules of only the chains
    /// `check` picks (every name and jump rule is still checked): an apply
    /// checks the chains it writes, the others were checked when written.
    pub fn validate_chains(&self, check: impl Fn(&Chain) -> bool) -> Result<(), DesiredTableError> {
        let table = self.table;
        let mut names = HashSet::with_capacity(self.chains.len());
        for chain in &self.chains {
            let name = chain.name.as_str();
            if !name.starts_with(CHAIN_PREFIX) {
                let name = name.into();
                return Err(DesiredTableError::NotOurChain { table, name });
            }
            if name.len() > MAX_CHAIN_NAME {
                let name = name.into();
                return Err(DesiredTableError::ChainNameTooLong { table, name });
            }
            if !names.insert(name) {
                let name = name.into();
                return Err(DesiredTableError::DuplicateChain { table, name });
            }
        }
        for chain in self.chains.iter().filter(|c| check(c)) {
            for (index, rule) in chain.rules.iter().enumerate() {
                let bad = |reason| DesiredTableError::BadRule {
                    table,
                    chain: chain.name.clone(),
                    index,
                    rule: rule.clone(),
                    reason,
                };
                if rule.trim().is_empty() {
                    return Err(bad("empty rule"));
                }
                if rule.contains(['\n', '\r']) {
                    return Err(bad("a rule is one line of iptables-restore input"));
                }
                let first = rule.split_whitespace().next().unwrap_or("");
                if matches!(first, "-A" | "-I" | "-D" | "-R" | "-N" | "-X" | "-F" | "-P") {
                    return Err(bad("a rule is the part after `-A <chain>`, not a command"));
                }
                if let Some(target) = jump_target(rule)
                    && target.starts_with(CHAIN_PREFIX)
                    && !names.contains(target)
                {
                    return Err(DesiredTableError::DanglingJump {
                        table,
                        chain: chain.name.clone(),
                        target: target.into(),
                    });
                }
            }
        }
        for jump in &self.jumps {
            if !table.base_chains().contains(&jump.base_chain.as_str()) {
                return Err(DesiredTableError::NotBaseChain {
                    table,
                    base: jump.base_chain.clone(),
                });
            }
            if !names.contains(jump.target.as_str()) {
                return Err(DesiredTableError::DanglingJump {
                    table,
                    chain: jump.base_chain.clone(),
                    target: jump.target.clone(),
                });
            }
        }
        Ok(())
    }

    /// The same table with rules matching set `from` matching set `to`
    /// instead (for each pair); other chains keep sharing their rules.
    pub fn with_sets_renamed(&self, renames: &[(String, String)]) -> DesiredTable {
        let rename = |rule: &String| {
            renames.iter().fold(rule.clone(), |r, (from, to)| {
                r.replace(
                    &format!("--match-set {from} "),
                    &format!("--match-set {to} "),
                )
            })
        };
        let chains = self
            .chains
            .iter()
            .map(|c| {
                let renamed: Vec<String> = c.rules.iter().map(rename).collect();
                if *renamed == **c.rules {
                    c.clone()
                } else {
                    Chain {
                        name: c.name.clone(),
                        rules: Arc::new(renamed),
                    }
                }
            })
            .collect();
        DesiredTable::new(self.table, chains, self.jumps.clone())
    }
}

/// The target of a rule's `-j`/`-g`, if any.
pub fn jump_target(rule: &str) -> Option<&str> {
    let mut words = rule.split_whitespace();
    while let Some(w) = words.next() {
        if w == "-j" || w == "-g" || w == "--jump" || w == "--goto" {
            return words.next();
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests;
