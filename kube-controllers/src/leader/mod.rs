//! Leader election, so that of several replicas exactly one writes: [`election`] is
//! the pure state machine, [`lease`] reads and writes the Lease object.

pub mod election;
pub mod lease;

pub use election::{Decision, ElectionConfig, Elector, LeaseView};
pub use lease::{Leadership, run_election};
