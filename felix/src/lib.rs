//! felix: the per-node agent (see shared/DESIGN.md).

pub mod dataplane;
