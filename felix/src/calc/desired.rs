//! The iptables and ipset state felix wants, as plain data: what the
//! calculation produces and the dataplane takes as input. The types and their
//! checks (names, limits, members) live here, so the calculation depends on
//! nothing that touches the kernel; the dataplane imports them.
//!
//! * [`iptables`]: tables of `cali-` chains and the jumps into them.
//! * [`ipsets`]: `cali40` sets and their members.

pub mod ipsets;
pub mod iptables;

/// The IP family a table or a set is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}
