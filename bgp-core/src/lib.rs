//! bgp-core: the pure protocol core of bgpd (see shared/DESIGN.md).
//!
//! [`wire`] (message codec), [`fsm`] (the per-session state machine of
//! RFC 4271 section 8), [`bfd`] (RFC 5880 BFD packets and sessions), [`rib`] (Adj-RIBs-In, Loc-RIB, Adj-RIBs-Out, best
//! path) and [`policy`] (import, origination and export rules). None of them
//! touches sockets, clocks or async runtimes, and this crate's dependencies
//! keep it that way: the caller passes time in as data and performs the
//! outputs.

pub mod bfd;
pub mod fsm;
pub mod policy;
pub mod rib;
pub mod wire;
