//! testnet: whole virtual clusters in network namespaces, built from the project's real
//! binaries (etcd, calicoctl, the CNI plugins, felix, bgpd), for end-to-end tests, the
//! demo and system benchmarks. Needs root (it creates namespaces); everything it creates
//! carries a per-run prefix and is removed on drop.

pub mod cluster;
pub mod daemon;
pub mod kube;
pub mod kube_scenario;
pub mod netns;
pub mod overlay;
pub mod route_watch;
pub mod scale;
pub mod scenario;

pub use cluster::{Cluster, Node, Pod};
