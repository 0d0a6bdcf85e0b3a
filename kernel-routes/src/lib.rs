//! The one implementation of "the routes protocol P owns at metric M" in the
//! kernel's main table, and of the permanent neighbour entries a daemon owns.
//! felix (workload routes, blackholes, neighbour entries) and bgpd (routes learnt
//! over BGP) are both thin users of it.
//!
//! # The ownership contract
//!
//! Several daemons write routes into the same table. The kernel keys a route by
//! its slot (table, destination, tos, metric), and `NLM_F_REPLACE` overwrites
//! whatever holds the slot, whatever its protocol. So every writer is an
//! [`Owner`], and the rules are:
//!
//! 1. **Own protocol.** Every route an owner writes carries its protocol
//!    ([`FELIX`]: 80, [`BGPD`]: 186), also on deletes, so that the kernel deletes
//!    nothing but a route of that protocol. Routes of any other protocol are
//!    never replaced or deleted: [`diff()`] only ever deletes routes the owner
//!    [owns](Owner::owns), and reports a desired route whose slot holds a foreign
//!    route as a conflict instead of writing it.
//! 2. **Own metric slot.** Owners use metrics that never meet
//!    ([`Owner::metric`]: felix 0 for IPv4 and the kernel's default 1024 for
//!    IPv6, bgpd 1536 for both), so two owners never compete for one slot, and
//!    felix's local route wins over bgpd's route for the same prefix by its lower
//!    metric. A compile-time check keeps the slots apart.
//! 3. **Exclusive adds.** A write goes with `NLM_F_REPLACE` ([`RouteOp::Replace`])
//!    only when the slot is known to hold the owner's own route; into an empty
//!    slot it goes with `NLM_F_EXCL` ([`RouteOp::Add`]), so a foreign route that
//!    appeared since the last look is refused by the kernel ([`Outcome::SlotTaken`])
//!    instead of overwritten.
//!
//! # Layout
//!
//! The pure part, unit-tested without a kernel: [`route`] (the route as the
//! kernel keys it), [`owner`] (the contract above), [`diff`](mod@diff) (desired
//! against a dump, mark and sweep, the fast path's delta), [`message`] (rtnetlink
//! encode and decode), [`errno`](mod@errno) (how a kernel answer is classified) and the pure
//! half of [`neigh`]. The thin edge that does I/O is [`netlink`] (connection,
//! link lookups, dumps, pipelined writes) and the I/O half of [`neigh`].
//!
//! Kernel-touching code works in the network namespace of the calling thread;
//! `tests/netns_owners.rs` relies on that.

pub mod diff;
pub mod errno;
pub mod message;
pub mod neigh;
pub mod netlink;
pub mod owner;
pub mod route;

pub use diff::{RouteDiff, Sweep, diff, few_changes};
pub use errno::{Outcome, RouteOp, errno};
pub use message::{parse_route, route_message};
pub use netlink::{DumpError, Netlink, Written, dump_routes, execute};
pub use owner::{BGPD, FELIX, Owner};
pub use route::{KernelRoute, RouteTarget, SCOPE_LINK, SCOPE_UNIVERSE, SlotKey};

/// Requests kept in flight on one netlink socket. The kernel handles route
/// requests one by one; pipelining hides the per-request round trip. 256 acks
/// (~36 bytes each) fit the socket's default receive buffer many times over.
pub const DEFAULT_IN_FLIGHT: usize = 256;
