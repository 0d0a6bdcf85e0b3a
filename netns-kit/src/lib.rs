//! Test networks in network namespaces, shared by the bgpd, cni and felix tests and by
//! testnet's clusters. NEEDS ROOT.
//!
//! The rules it keeps (DESIGN.md, "Test network rules"):
//! - traffic only inside namespaces the caller creates: a [`Netns`] runs commands with
//!   `ip netns exec` / `ip -n`, and [`in_ns`] / [`in_new_netns`] move a thread (and what it
//!   spawns) into a namespace; nothing here configures the root namespace;
//! - names carry a per-run prefix ([`unique`], [`short_unique`]), so parallel runs and
//!   leftovers never collide;
//! - what a run makes is removed also when it fails: a [`Netns`] is deleted on drop (also
//!   while a test panics), after killing what still runs inside; [`cleanup_on_signal`]
//!   covers SIGINT/SIGTERM/SIGHUP and [`sweep_stale`] what a SIGKILLed run left.

mod cmd;
mod name;
mod netns;
mod proc;
mod thread;
mod wait;

pub use cmd::{Error, Result, output, run, sh, stdout, try_sh};
pub use name::{short_unique, sweep_stale, unique};
pub use netns::{Netns, cleanup_on_signal, remove_netns};
pub use proc::Proc;
pub use thread::{enter, in_new_netns, in_ns, on_thread_after};
pub use wait::{eventually, poll, wait_for, wait_output};
