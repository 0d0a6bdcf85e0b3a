//! Idle hold backoff (RFC 4271 8.1.1 DampPeerOscillations): exponential,
//! capped, reset by a stable session or a ManualStart.

use super::config::IdleHold;

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    cfg: IdleHold,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(cfg: IdleHold) -> Self {
        Backoff { cfg, failures: 0 }
    }

    /// Delay before the next automatic restart: none for the first failure after a
    /// stable session, then `initial_secs`, doubling with each further failure.
    pub(crate) fn next_delay(&mut self) -> u32 {
        let failures = self.failures;
        self.failures = self.failures.saturating_add(1);
        if failures == 0 {
            return 0;
        }
        let factor = 1u32.checked_shl((failures - 1).min(31)).unwrap_or(u32::MAX);
        self.cfg
            .initial_secs
            .saturating_mul(factor)
            .min(self.cfg.max_secs)
            .max(1)
    }

    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }
}
