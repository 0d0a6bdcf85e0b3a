//! bgpd: the BGP-4 speaker of the project (see shared/DESIGN.md).
//!
//! The pure protocol core lives in the `bgp-core` crate: [`wire`] (message
//! codec), [`fsm`] (the per-session state machine of RFC 4271 section 8),
//! [`rib`] and [`policy`]. That crate has no tokio, socket, netlink or clock
//! dependency, so none of them can touch I/O; they are re-exported here so
//! `bgpd::wire::...` and `crate::rib::...` paths work unchanged. This crate
//! adds the I/O around them: peers, the daemon loop, the FIB, Calico config.

pub use bgp_core::{fsm, policy, rib, wire};

pub mod bfd;
pub mod calico;
pub mod config;
pub mod control;
pub mod daemon;
pub mod fib;
pub mod metrics;
pub mod peer;
