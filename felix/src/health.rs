//! Health endpoints (`:9099/liveness`, `/readiness`), as Calico's felix serves
//! them to kubelet probes: 200 when healthy, 503 otherwise.
//!
//! * liveness: the owner loop has reported within [`LIVENESS_TIMEOUT`] (it
//!   reports on every iteration and at least every few seconds while idle);
//! * readiness: the datastore is in sync AND the first dataplane apply after it
//!   succeeded (so a node is never "ready" with an unprogrammed kernel).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

/// How stale the loop's last report may be before liveness fails. Generous:
/// an apply with iptables retries can take seconds on a loaded node.
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(60);

/// Shared health state; cheap to clone.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    started: Instant,
    /// Milliseconds since `started` of the loop's last report; `None` when stopped.
    last_beat: std::sync::Mutex<Option<Duration>>,
    in_sync: AtomicBool,
    applied: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                started: Instant::now(),
                last_beat: std::sync::Mutex::new(None),
                in_sync: AtomicBool::new(false),
                applied: AtomicBool::new(false),
            }),
        }
    }

    /// The owner loop is alive (called on every iteration).
    pub fn beat(&self) {
        *self.inner.last_beat.lock().expect("health lock") = Some(self.inner.started.elapsed());
    }

    /// The owner loop stopped.
    pub fn stopped(&self) {
        *self.inner.last_beat.lock().expect("health lock") = None;
    }

    pub fn set_in_sync(&self, v: bool) {
        self.inner.in_sync.store(v, Ordering::Relaxed);
    }

    pub fn set_applied(&self, v: bool) {
        self.inner.applied.store(v, Ordering::Relaxed);
    }

    pub fn live(&self) -> bool {
        let beat = *self.inner.last_beat.lock().expect("health lock");
        beat.is_some_and(|b| self.inner.started.elapsed().saturating_sub(b) < LIVENESS_TIMEOUT)
    }

    pub fn ready(&self) -> bool {
        self.live()
            && self.inner.in_sync.load(Ordering::Relaxed)
            && self.inner.applied.load(Ordering::Relaxed)
    }

    /// `GET /liveness`, `GET /readiness`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/liveness", get(liveness))
            .route("/readiness", get(readiness))
            .with_state(self.clone())
    }
}

fn status(ok: bool) -> (StatusCode, &'static str) {
    if ok {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ok\n")
    }
}

async fn liveness(State(h): State<Health>) -> (StatusCode, &'static str) {
    status(h.live())
}

async fn readiness(State(h): State<Health>) -> (StatusCode, &'static str) {
    status(h.ready())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_sync_and_a_first_apply() {
        let h = Health::new();
        assert!(!h.live() && !h.ready());
        h.beat();
        assert!(h.live() && !h.ready());
        h.set_in_sync(true);
        assert!(!h.ready(), "in sync but nothing applied yet");
        h.set_applied(true);
        assert!(h.ready());
        h.stopped();
        assert!(!h.live() && !h.ready());
    }
}
