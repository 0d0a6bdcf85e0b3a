//! Health endpoints (`:9099/liveness`, `/readiness`), as Calico's felix serves
//! them to kubelet probes: 200 when healthy, 503 otherwise.
//!
//! * liveness: the owner loop has reported within [`LIVENESS_TIMEOUT`] (it
//!   reports on every iteration and at least every few seconds while idle);
//! * readiness: the datastore is in sync AND the dataplane is programmed: an
//!   apply succeeded and applies have not been failing since for too long or
//!   too many times in a row ([`ApplyTracker`]), so a node whose kernel cannot
//!   be programmed stops being "ready".

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;

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

    /// `GET /liveness`, `GET /readiness`: 200 `ok` or 503 `not ok`.
    pub fn router(&self) -> Router {
        daemon_kit::http::health_router(self.clone())
    }
}

impl daemon_kit::http::Probe for Health {
    fn live(&self) -> bool {
        Health::live(self)
    }

    fn ready(&self) -> bool {
        Health::ready(self)
    }
}

/// Whether the dataplane counts as programmed, from the outcomes of applies:
/// not before the first success; no longer after `max_failures` consecutive
/// failures or when failures have lasted `timeout` (each a limit only when
/// set: 0 / `None` disables it); again at the next success. Pure: the owner
/// feeds it outcomes and times and copies [`applied`](Self::applied) into
/// [`Health::set_applied`].
#[derive(Clone, Debug)]
pub struct ApplyTracker {
    max_failures: u32,
    timeout: Option<Duration>,
    succeeded_once: bool,
    consecutive_failures: u32,
    failing_since: Option<Instant>,
}

impl ApplyTracker {
    pub fn new(max_failures: u32, timeout: Option<Duration>) -> Self {
        Self {
            max_failures,
            timeout,
            succeeded_once: false,
            consecutive_failures: 0,
            failing_since: None,
        }
    }

    pub fn success(&mut self) {
        self.succeeded_once = true;
        self.consecutive_failures = 0;
        self.failing_since = None;
    }

    pub fn failure(&mut self, now: Instant) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.failing_since.get_or_insert(now);
    }

    /// Programmed as of `now` (the timeout also runs out between applies).
    pub fn applied(&self, now: Instant) -> bool {
        let too_many = self.max_failures > 0 && self.consecutive_failures >= self.max_failures;
        let too_long = match (self.timeout, self.failing_since) {
            (Some(limit), Some(since)) => now.saturating_duration_since(since) >= limit,
            _ => false,
        };
        self.succeeded_once && !too_many && !too_long
    }
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
        h.set_applied(false);
        assert!(!h.ready(), "no longer programmed");
        h.stopped();
        assert!(!h.live() && !h.ready());
    }

    #[test]
    fn tracker_fails_after_n_consecutive_failures_and_recovers() {
        let t0 = Instant::now();
        let mut t = ApplyTracker::new(3, None);
        assert!(!t.applied(t0), "nothing applied yet");
        t.failure(t0);
        assert!(!t.applied(t0), "a failure is not a first success");
        t.success();
        assert!(t.applied(t0));
        t.failure(t0);
        t.failure(t0);
        assert!(t.applied(t0), "2 of 3 failures");
        t.failure(t0);
        assert!(!t.applied(t0), "3 consecutive failures");
        t.failure(t0);
        assert!(!t.applied(t0));
        t.success();
        assert!(t.applied(t0), "a success restores readiness");
        t.failure(t0);
        t.failure(t0);
        assert!(t.applied(t0), "the count restarted at the success");
    }

    #[test]
    fn tracker_fails_when_failures_last_too_long() {
        let t0 = Instant::now();
        let limit = Duration::from_secs(30);
        let mut t = ApplyTracker::new(0, Some(limit));
        t.success();
        t.failure(t0);
        for _ in 0..100 {
            t.failure(t0 + Duration::from_secs(1));
        }
        assert!(t.applied(t0 + Duration::from_secs(29)), "count disabled");
        assert!(!t.applied(t0 + limit), "failing since t0 for the timeout");
        t.success();
        assert!(t.applied(t0 + Duration::from_secs(60)));
        t.failure(t0 + Duration::from_secs(60));
        assert!(
            t.applied(t0 + Duration::from_secs(89)),
            "the clock restarts at the first failure after a success"
        );
        assert!(!t.applied(t0 + Duration::from_secs(90)));
    }
}
