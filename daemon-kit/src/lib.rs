//! Plumbing shared by the daemons (felix, bgpd, kube-controllers, the datastore
//! clients), so each concern has one copy:
//!
//! * [`backoff`]: exponential backoff with jitter for retry loops. Pure (no tokio,
//!   no clock): the caller sleeps for what [`backoff::Backoff::next_delay`] returns.
//! * `http` (cargo feature `http`): the axum helper that serves `/metrics` from a
//!   Prometheus registry and the `/liveness` / `/readiness` probes.

pub mod backoff;
#[cfg(feature = "http")]
pub mod http;
