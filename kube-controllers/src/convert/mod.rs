//! The pure core: Kubernetes objects -> the Calico resources kube-controllers writes,
//! as libcalico-go's `conversion` package maps them. No I/O here.
//!
//! * [`profile`]: Namespace -> `kns.<ns>`, ServiceAccount -> `ksa.<ns>.<sa>`.
//! * [`endpoint`]: Pod -> the labels, profiles and service account of its endpoints.
//! * [`networkpolicy`]: NetworkPolicy -> `knp.default.<name>` (Calico's converter).
//! * [`policy`]: what is written for a NetworkPolicy, failing closed when the
//!   converter cannot express it.

pub mod endpoint;
pub mod networkpolicy;
pub mod policy;
pub mod profile;
