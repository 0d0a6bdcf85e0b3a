//! (desired, saved) -> the smallest `iptables-restore --noflush` input that makes
//! the table match, touching only felix's chains and felix's rules.
//!
//! A pure function, yet it lives here and not beside [`DesiredTable`] in
//! `calc::desired`: its output is a diff against the kernel's side (what
//! `iptables-save` printed, or what [`KernelTable`] remembers), written with
//! the `cali:` hash comments by which felix finds its rules again. The
//! calculation only says what it wants; how to get the kernel there is the
//! dataplane's.

use super::kernel::KernelTable;
use super::{DesiredTable, SavedTable};

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

/// Compares desired and saved state of one table (see [`KernelTable::plan`]).
pub fn plan(desired: &DesiredTable, actual: &SavedTable) -> TablePlan {
    KernelTable::from_saved(actual).plan(desired)
}

/// The `iptables-restore --noflush` input that makes the saved table match
/// `desired` (see [`KernelTable::render`]); empty when it already does.
pub fn render_restore(desired: &DesiredTable, actual: &SavedTable) -> String {
    let kernel = KernelTable::from_saved(actual);
    kernel.render(desired, &kernel.plan(desired))
}
