//! Kubernetes API -> Calico datastore controllers (etcd datastore mode), Calico's
//! calico-kube-controllers.
//!
//! Pure cores, tested without servers: [`convert`] (Kubernetes objects -> Calico
//! resources), [`reconcile`] (desired vs stored -> writes), [`nodes::stale`] and
//! [`nodes::leaks`] (which nodes and addresses to clean up), [`leader::election`]
//! (the Lease state machine). The I/O around them is thin: [`controllers`] (watch the
//! API with `kube::runtime::watcher`, batch, write etcd with CAS), [`leader::lease`],
//! [`health`], [`metrics`], [`run`] (wiring) and the binary's `main`.
//!
//! Behaviour choices (where Calico leaves room, or where this differs):
//! * Only spec is compared and written for profiles and policies; metadata a user
//!   added (labels, annotations) stays. Stale `kns.*`, `ksa.*` and `knp.default.*`
//!   objects are removed at every full resync (first list, relist after 410 Gone,
//!   gaining leadership), as Calico's controllers do at start.
//! * A NetworkPolicy the converter cannot express is written fail-closed (same
//!   selector and types, no rules), logged with namespace/name/field and counted
//!   (`kube_controllers_policy_conversion_failures`, gauge
//!   `kube_controllers_policies_failed_closed`), never skipped.
//! * Node deletion follows Calico's node controller: only a Calico Node with an orchRef
//!   `{orchestrator: k8s, nodeName: n}` is removed, when Kubernetes node `n` is gone
//!   (checked again with a GET just before); nodes without that reference are never
//!   touched. Removal mirrors libcalico-go's `Nodes().Delete`: endpoint and tunnel
//!   addresses released, endpoints deleted, block affinities released, node-specific
//!   BGPPeers, the `node.<name>` BGPConfiguration and HostEndpoints deleted, the Node
//!   last (so an interrupted removal is retried).
//! * IPAM garbage collection (every 5 min, `--ipam-gc-interval`): addresses whose
//!   `node` attribute names a Kubernetes node that is gone are released at once;
//!   `k8s-pod-network.*` addresses whose pod is gone (or runs elsewhere, or lists
//!   other addresses) after a 15 min grace period (`--ipam-leak-grace-period`, 0 turns
//!   that part off), as Calico's `leakGracePeriod`; a handle only when all of its
//!   addresses are leaked. Releases carry handle and sequence number, so an address
//!   re-allocated meanwhile is kept.
//! * Leader election on a Lease (`kube-system/calico-kube-controllers`; 15 s lease,
//!   10 s renew deadline, 2 s retry, as client-go): a leader writes only until its renew
//!   deadline after its last successful renewal, checked before every write. Calico's
//!   kube-controllers has no election (it relies on `replicas: 1`).

pub mod controllers;
pub mod convert;
pub mod health;
pub mod leader;
pub mod metrics;
pub mod nodes;
pub mod reconcile;
pub mod run;
