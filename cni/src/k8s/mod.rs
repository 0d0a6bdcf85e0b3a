//! What the plugin reads from the Kubernetes API at ADD when the configuration names a
//! kubeconfig (`"kubernetes": {"kubeconfig": ...}`, `"policy": {"type": "k8s"}`), as
//! Calico's plugin does: the pod's labels, service account and named container ports
//! go into its WorkloadEndpoint; the `cni.projectcalico.org/ipv4pools` annotation (the
//! pod's, else its namespace's) and the pod's `cni.projectcalico.org/ipAddrs` go into
//! the IPAM request. The pod is read before anything is allocated, so an unreachable
//! API server fails the ADD with nothing to undo.

mod client;
mod pod_info;

pub use client::read_pod;
pub use pod_info::{
    ANNOTATION_IP_ADDRS, ANNOTATION_IP_ADDRS_NO_IPAM, ANNOTATION_IPV4_POOLS, ANNOTATION_IPV6_POOLS,
    PodInfo, ipam_stdin, pod_info,
};
