//! Bounded retry of optimistic (CAS) operations with jittered exponential backoff, and the
//! failpoints fault tests use to kill an allocator between two writes.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use rand::Rng;

use crate::error::{IpamError, Result};

/// Attempts before a conflicting operation gives up.
pub const MAX_ATTEMPTS: u32 = 100;

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
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            backoff(attempt).await;
        }
        match op().await {
            Err(e) if is_conflict(&e) => {
                tracing::debug!(what, attempt, "conflict, retrying");
            }
            other => return other,
        }
    }
    Err(IpamError::TooManyConflicts {
        what: what.to_string(),
        attempts: MAX_ATTEMPTS,
    })
}

/// Environment variable naming the failpoint at which the process aborts.
pub const FAILPOINT_ENV: &str = "CALICO_IPAM_FAILPOINT";

/// Aborts the process when `CALICO_IPAM_FAILPOINT` equals `name`. Abort (not panic) so that
/// nothing after this point runs, exactly like a crash or SIGKILL.
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
