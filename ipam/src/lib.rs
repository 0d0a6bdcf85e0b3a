//! ipam: see shared/DESIGN.md.
