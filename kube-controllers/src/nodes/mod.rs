//! Deleted Kubernetes nodes: [`stale`] says which Calico nodes go and what they free,
//! [`leaks`] which IPAM allocations are garbage; [`cleanup`] does the etcd writes.

pub mod cleanup;
pub mod leaks;
pub mod stale;
