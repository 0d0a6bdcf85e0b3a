//! Kubernetes API -> Calico datastore controllers (etcd datastore mode), Calico's
//! calico-kube-controllers.
//!
//! Pure cores, tested without servers: [`convert`] (Kubernetes objects -> Calico
//! resources), [`reconcile`] (desired vs stored -> writes), [`nodes::stale`] and
//! [`nodes::leaks`] (which nodes and addresses to clean up), [`leader::election`]
//! (the Lease state machine). The I/O around them is thin: [`controllers`] (watch the
//! API with `kube::runtime::watcher`, batch, write etcd with CAS), [`leader::lease`],
//! [`health`], [`metrics`], [`run`] (wiring) and the binary's `main`.

pub mod controllers;
pub mod convert;
pub mod health;
pub mod leader;
pub mod metrics;
pub mod nodes;
pub mod reconcile;
pub mod run;
