//! testnet: see shared/DESIGN.md.
