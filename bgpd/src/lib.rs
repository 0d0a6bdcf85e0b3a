//! bgpd: the BGP-4 speaker of the project (see shared/DESIGN.md).
//!
//! The pure protocol core lives here: [`wire`] (message codec) and [`fsm`]
//! (the per-session state machine of RFC 4271 section 8). Neither touches
//! sockets, clocks or async runtimes.

pub mod calico;
pub mod config;
pub mod control;
pub mod daemon;
pub mod fib;
pub mod fsm;
pub mod metrics;
pub mod peer;
pub mod policy;
pub mod rib;
pub mod wire;
