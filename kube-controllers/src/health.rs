//! Health endpoints (`/liveness`, `/readiness`, port 9440 by default), 200 when
//! healthy and 503 otherwise:
//!
//! * liveness: the controllers' loops reported within [`LIVENESS_TIMEOUT`];
//! * readiness: a leader that has synced every enabled controller since it started
//!   leading, or a healthy follower (its watches are running; it stands by).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;

/// How stale the loops' last report may be before liveness fails.
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(60);

/// Shared health state; cheap to clone.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Mutex<Reports>>,
}

#[derive(Default)]
struct Reports {
    /// Per controller: when its loop last reported, and whether it is in sync.
    controllers: BTreeMap<&'static str, (Instant, bool)>,
    leading: bool,
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    /// The loop of `controller` is alive; `synced`: etcd matches the API for it.
    pub fn report(&self, controller: &'static str, synced: bool) {
        let mut s = self.inner.lock().expect("health lock");
        s.controllers.insert(controller, (Instant::now(), synced));
    }

    pub fn set_leading(&self, leading: bool) {
        self.inner.lock().expect("health lock").leading = leading;
    }

    /// Every controller's loop reported within the timeout.
    pub fn live(&self) -> bool {
        let s = self.inner.lock().expect("health lock");
        !s.controllers.is_empty()
            && s.controllers
                .values()
                .all(|(at, _)| at.elapsed() < LIVENESS_TIMEOUT)
    }

    /// Live, and: leading with every controller synced, or following.
    pub fn ready(&self) -> bool {
        if !self.live() {
            return false;
        }
        let s = self.inner.lock().expect("health lock");
        !s.leading || s.controllers.values().all(|(_, synced)| *synced)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_is_ready_once_every_controller_synced_a_follower_when_alive() {
        let h = Health::new();
        assert!(!h.live() && !h.ready(), "nothing reported yet");
        h.report("namespace", false);
        h.report("policy", false);
        assert!(h.live());
        assert!(h.ready(), "a live follower stands by");
        h.set_leading(true);
        assert!(!h.ready(), "leading, not synced");
        h.report("namespace", true);
        assert!(!h.ready(), "one controller still syncing");
        h.report("policy", true);
        assert!(h.ready());
    }
}
