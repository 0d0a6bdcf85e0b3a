//! Bounded retry of optimistic (CAS) operations with jittered exponential backoff, and the
//! failpoints fault tests use to kill an allocator between two writes.

use std::future::Future;
#[cfg(feature = "failpoints")]
use std::sync::OnceLock;
use std::time::Duration;

use daemon_kit::backoff::Backoff;

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
    backoff: Backoff,
}

impl Retries {
    pub fn new() -> Retries {
        Retries {
            attempt: 0,
            started: tokio::time::Instant::now(),
            backoff: contention_backoff(),
        }
    }

    /// Backs off before every retry; false once the budget is spent.
    pub async fn next(&mut self) -> bool {
        if self.attempt > 0 {
            if self.attempt >= MAX_ATTEMPTS && self.started.elapsed() >= MIN_PERSISTENCE {
                return false;
            }
            tokio::time::sleep(self.backoff.next_delay()).await;
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

/// The delays between conflicting attempts: before retry `n` (1-based), random in
/// [0, min(2^n, 64)] ms (steps of 1 ms doubling to 32 ms, jittered by ±100 %), so that
/// contending writers spread out instead of colliding again in lockstep.
fn contention_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(1), Duration::from_millis(32)).jitter(1.0)
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

    #[test]
    fn contention_delays_stay_under_two_to_the_retry_ms_capped_at_64() {
        for _ in 0..20 {
            let mut b = contention_backoff();
            for n in 1..=10u32 {
                let cap = Duration::from_millis(1 << n.min(6));
                let d = b.next_delay();
                assert!(d <= cap, "retry {n}: {d:?} > {cap:?}");
            }
        }
    }

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
