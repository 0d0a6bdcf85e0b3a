//! The CNI plugins kubelet calls (REFERENCE.md section 6): `calico` creates the pod's veth
//! (`caliXXXXXXXXXXX` on the host, `eth0` with `<ip>/32` and a default route via
//! 169.254.1.1 in the pod), delegates addresses to the IPAM plugin of `ipam.type`, and
//! writes the WorkloadEndpoint felix programs the host from; `calico-ipam` assigns addresses
//! from Calico's block IPAM in etcd.
//!
//! Pure parts (env, netconf, result, version, error) are unit-tested; the kernel and etcd
//! parts are exercised by `tests/` (root), which run the binaries as a runtime does.

pub mod calico;
pub mod delegate;
pub mod env;
pub mod error;
pub mod host_route;
pub mod install;
pub mod ipam_plugin;
pub mod k8s;
pub mod link;
pub mod netconf;
pub mod netns;
pub mod pod;
pub mod result;
pub mod skel;
pub mod sysctl;
pub mod undo;
pub mod version;
pub mod wep;
