//! bgpd: see shared/DESIGN.md.
