//! felix: the per-node agent (see shared/DESIGN.md).

pub mod calc;
pub mod daemon;
pub mod dataplane;
pub mod health;
pub mod metrics;
pub mod syncer;
