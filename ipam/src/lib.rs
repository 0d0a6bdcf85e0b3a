//! Block-based IP address management on etcd, with Calico's keys and JSON
//! (`/calico/ipam/v2/...`, see REFERENCE.md section 3).
//!
//! Pure parts: [`block`] (allocation inside a block), [`claim`] (the candidate walk),
//! [`keys`], [`pool`]. The [`Ipam`] client builds on `config::datastore` and writes every
//! change of a block together with the handles it affects in one etcd transaction.

pub mod affinity;
pub mod assign;
pub mod block;
pub mod check;
pub mod claim;
mod claim_alloc;
mod claimtime;
pub mod config;
mod context;
pub mod error;
pub mod handle;
mod hint;
mod hint_alloc;
pub mod keys;
pub mod pool;
pub mod release;
pub mod retry;
mod store;
pub mod usage;

pub use affinity::{AffinityState, BlockAffinity, ClaimResult};
pub use assign::{Assigned, AutoAssignArgs};
pub use block::AllocationBlock;
pub use check::{CheckReport, InUse, Problem};
pub use config::IpamConfig;
pub use error::{Exhaustion, IpamError, Result};
pub use handle::IpamHandle;
pub use pool::PoolSpec;
pub use release::ReleaseOptions;
pub use store::{Ipam, PoolSource};
pub use usage::{BlockUsage, PoolUsage, Usage};
