//! Bounded retry of optimistic (CAS) operations with jittered exponential backoff, and the
//! failpoints fault tests use to kill an allocator between two writes.

use std::future::Future;
#[cfg(feature = "failpoints")]
use std::sync::OnceLock;
use std::time::Duration;

use rand::Rng;

use crate::error::{IpamError, Result};

/// A conflicting operation gives up only after this many attempts AND `MIN_PERSISTENCE`:
/// counting alone would let a burst of contention (or a slow, loaded machine) starve one
/// writer within a few seconds while others keep winning the CAS race.
pub const MAX_ATTEMPTS: u32 = 100;
pub const MIN_PERSISTENCE: Duration = Duration::from_secs(15);

/// The retry budget of one optimistic operation:
/// `let mut r = Retries::new(); while r.next().await { ... }`.
pub struct Retries {
    attempt: u32,
    started: tokio::time::Instant,
}

impl Retries {
    pub fn new() -> Retries {
        Retries {
            attempt: 0,
            started: tokio::time::Instant::now(),
        }
    }

    /// Backs off before every retry; false once the budget is spent.
    pub async fn next(&mut self) -> bool {
        if self.attempt > 0 {
            if self.attempt >= MAX_ATTEMPTS && self.started.elapsed() >= MIN_PERSISTENCE {
                return false;
            }
            backoff(self.attempt).await;
        }
        self.attempt += 1;
        true
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

impl Default for Retries {
    fn default() -> Self {
        Retries::new()
    }
}

/// Whether an error means "someone else wrote first: re-read and try again".
pub fn is_conflict(e: &IpamError) -> bool {
    matches!(e, IpamError::Datastore(d) if d.is_conflict())
}

/// Sleeps before attempt `attempt` (1-based retries): random in [0, min(2^attempt, 64)) ms,
/// so that contending writers spread out instead of colliding again in lockstep.
pub async fn backoff(attempt: u32) {
    let cap_ms = 1u64 << attempt.min(6);
    let us = rand::rng().random_range(0..cap_ms * 1000);
    tokio::time::sleep(Duration::from_micros(us)).await;
}

/// Runs `op` until it succeeds or fails with something other than a conflict.
pub async fn with_retries<T, F, Fut>(what: &str, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut retries = Retries::new();
    while retries.next().await {
        match op().await {
            Err(e) if is_conflict(&e) => {
                tracing::debug!(what, attempt = retries.attempts(), "conflict, retrying");
            }
            other => return other,
        }
    }
    Err(IpamError::TooManyConflicts {
        what: what.to_string(),
        attempts: retries.attempts(),
    })
}

/// Environment variable naming the failpoint at which the process aborts (only in builds
/// with the `failpoints` feature, which ipam's own tests turn on).
#[cfg(feature = "failpoints")]
pub const FAILPOINT_ENV: &str = "CALICO_IPAM_FAILPOINT";

/// Without the `failpoints` feature (release binaries): nothing, whatever the environment.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn failpoint(_name: &str) {}

/// Aborts the process when `CALICO_IPAM_FAILPOINT` equals `name`. Abort (not panic) so that
/// nothing after this point runs, exactly like a crash or SIGKILL.
#[cfg(feature = "failpoints")]
pub fn failpoint(name: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    if ARMED
        .get_or_init(|| std::env::var(FAILPOINT_ENV).ok())
        .as_deref()
        == Some(name)
    {
        eprintln!("ipam: failpoint {name} reached, aborting");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The budget outlasts both 100 attempts and 15 s, and still ends.
    #[tokio::test(start_paused = true)]
    async fn retries_persist_for_attempts_and_time_then_stop() {
        let start = tokio::time::Instant::now();
        let mut r = Retries::new();
        let mut n = 0;
        while r.next().await {
            n += 1;
            assert!(n < 10_000, "the budget never ends");
        }
        assert!(n >= MAX_ATTEMPTS, "gave up after {n} attempts");
        assert!(
            start.elapsed() >= MIN_PERSISTENCE,
            "gave up after {:?}",
            start.elapsed()
        );
        assert_eq!(r.attempts(), n);
    }
}
