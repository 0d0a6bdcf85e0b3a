//! felix: see shared/DESIGN.md.
