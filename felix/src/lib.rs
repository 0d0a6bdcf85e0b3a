//! felix: the per-node agent (see shared/DESIGN.md).

pub mod calc;
pub mod dataplane;
