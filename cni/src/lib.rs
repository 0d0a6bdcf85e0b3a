//! cni: see shared/DESIGN.md.
