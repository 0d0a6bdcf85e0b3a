//! calicoctl: see shared/DESIGN.md.
