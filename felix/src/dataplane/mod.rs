//! The dataplane edge of felix: makes the kernel match a desired state given as
//! plain data (routes, neighbours, sysctls, iptables chains, ipsets).
//!
//! Each concern has a pure part (types, validation, diff/render, unit- and
//! golden-tested without root) and a thin apply part that talks to the kernel
//! (rtnetlink) or to the standard tools (`iptables-restore`, `ipset restore`).
//! Everything felix writes is marked as its own (route protocol 80, `cali-`
//! chains, `cali40` sets) and nothing else is ever changed. Routes and
//! neighbour entries go through the `kernel_routes` crate, which holds that
//! contract for every daemon writing kernel routes (felix and bgpd).
//!
//! Kernel-touching code works in the network namespace of the calling thread;
//! the namespace tests in `felix/tests/` rely on that.

pub mod ipsets;
pub mod iptables;
pub mod neighbors;
pub mod netlink;
pub mod process;
pub mod routes;
pub mod sysctl;
pub mod vxlan;

#[cfg(test)]
mod golden;
