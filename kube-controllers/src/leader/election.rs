//! Leader election on a coordination.k8s.io/v1 Lease, as a pure state machine (the
//! algorithm of client-go's `leaderelection`): the caller reads the Lease, asks
//! [`Elector::observe`] what to do, performs the write and reports the outcome. Time
//! is passed in (`now`), so tests drive it without a server or a clock.
//!
//! Safety rests on three durations, `renew_deadline < lease_duration`:
//! * a follower claims the lease only when the record it saw has not changed for
//!   `lease_duration` of its own (monotonic) time, never trusting the writer's clock;
//! * the leader writes the lease every `retry_period` and counts as leader only until
//!   `renew_deadline` after its last successful write; so when it cannot renew (API
//!   server unreachable, lease taken), it stops before anyone else may start.

use std::time::{Duration, Instant};

/// The timings of an election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionConfig {
    /// This replica's name in `holderIdentity`.
    pub identity: String,
    /// How long a lease is valid after its last renewal (`leaseDurationSeconds`).
    pub lease_duration: Duration,
    /// How long after its last successful renewal the leader stops acting as one.
    pub renew_deadline: Duration,
    /// How often the lease is read and (when leading) renewed.
    pub retry_period: Duration,
}

impl ElectionConfig {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period.
    pub fn new(identity: impl Into<String>) -> Self {
        ElectionConfig {
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Refuses timings under which two replicas could both lead.
    pub fn validate(&self) -> Result<(), String> {
        if self.identity.is_empty() {
            return Err("the leader election identity is empty".into());
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(format!(
                "renew deadline {:?} must be shorter than the lease duration {:?}",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.retry_period >= self.renew_deadline {
            return Err(format!(
                "retry period {:?} must be shorter than the renew deadline {:?}",
                self.retry_period, self.renew_deadline
            ));
        }
        Ok(())
    }
}

/// The Lease as read from the API server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseView {
    /// `spec.holderIdentity`; `None` or empty when released.
    pub holder: Option<String>,
    /// `spec.leaseDurationSeconds`.
    pub duration: Duration,
    /// `spec.leaseTransitions`.
    pub transitions: i32,
    /// `metadata.resourceVersion`: changes with every write (renewals included).
    pub resource_version: String,
}

/// What to do after reading the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write the lease naming this replica: create it (`resource_version` `None`) or
    /// replace it at that version (so a concurrent writer makes the write fail).
    /// `acquire` is true when taking it over (set acquireTime), false when renewing.
    Claim {
        resource_version: Option<String>,
        transitions: i32,
        acquire: bool,
    },
    /// Another replica holds a valid lease.
    Follow { holder: String },
}

/// The election state of one replica.
#[derive(Clone, Debug)]
pub struct Elector {
    cfg: ElectionConfig,
    /// The last record seen and when it was first seen in that version.
    observed: Option<(LeaseView, Instant)>,
    /// When this replica's last write of the lease succeeded (while it holds it).
    renewed: Option<Instant>,
}

impl Elector {
    pub fn new(cfg: ElectionConfig) -> Self {
        Elector {
            cfg,
            observed: None,
            renewed: None,
        }
    }

    pub fn config(&self) -> &ElectionConfig {
        &self.cfg
    }

    /// Takes in the lease as read at `now` (`None`: it does not exist).
    pub fn observe(&mut self, now: Instant, lease: Option<LeaseView>) -> Decision {
        let Some(lease) = lease else {
            return Decision::Claim {
                resource_version: None,
                transitions: 0,
                acquire: true,
            };
        };
        let changed = self
            .observed
            .as_ref()
            .is_none_or(|(seen, _)| seen.resource_version != lease.resource_version);
        if changed {
            self.observed = Some((lease.clone(), now));
        }
        let seen_at = self.observed.as_ref().map_or(now, |(_, at)| *at);
        let holder = lease.holder.clone().filter(|h| !h.is_empty());
        match holder {
            Some(h) if h != self.cfg.identity => {
                if now.saturating_duration_since(seen_at) < lease.duration {
                    // Someone else leads: if that was us a moment ago, not any more.
                    self.renewed = None;
                    return Decision::Follow { holder: h };
                }
                Decision::Claim {
                    resource_version: Some(lease.resource_version),
                    transitions: lease.transitions.saturating_add(1),
                    acquire: true,
                }
            }
            Some(_) => Decision::Claim {
                resource_version: Some(lease.resource_version),
                transitions: lease.transitions,
                // Ours on record but not leading here (a restart): take it over anew.
                acquire: self.renewed.is_none(),
            },
            None => Decision::Claim {
                resource_version: Some(lease.resource_version),
                transitions: lease.transitions.saturating_add(1),
                acquire: true,
            },
        }
    }

    /// The claim written at `now` succeeded.
    pub fn claimed(&mut self, now: Instant) {
        self.renewed = Some(now);
        // Our own write changed the version; the next read records it afresh.
        self.observed = None;
    }

    /// The claim failed (conflict, or the API server did not answer). Nothing changes:
    /// leadership simply runs out `renew_deadline` after the last success.
    pub fn claim_failed(&mut self, _now: Instant) {}

    /// This replica gave the lease up.
    pub fn released(&mut self) {
        self.renewed = None;
    }

    /// Until when this replica may act as leader; `None` when it does not lead.
    pub fn leading_until(&self) -> Option<Instant> {
        self.renewed.map(|t| t + self.cfg.renew_deadline)
    }

    /// Whether this replica leads at `now`.
    pub fn is_leader(&self, now: Instant) -> bool {
        self.leading_until().is_some_and(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(id: &str) -> ElectionConfig {
        ElectionConfig {
            identity: id.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    fn lease(holder: &str, version: &str) -> LeaseView {
        LeaseView {
            holder: Some(holder.into()).filter(|h: &String| !h.is_empty()),
            duration: Duration::from_secs(15),
            transitions: 3,
            resource_version: version.into(),
        }
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_missing_lease_is_created() {
        let mut e = Elector::new(cfg("a"));
        let t0 = Instant::now();
        assert_eq!(
            e.observe(t0, None),
            Decision::Claim {
                resource_version: None,
                transitions: 0,
                acquire: true
            }
        );
        assert!(!e.is_leader(t0));
        e.claimed(t0);
        assert!(e.is_leader(t0));
    }

    #[test]
    fn a_held_lease_is_taken_only_after_it_stayed_unchanged_for_its_duration() {
        let mut b = Elector::new(cfg("b"));
        let t0 = Instant::now();
        let held = lease("a", "10");
        assert_eq!(
            b.observe(t0, Some(held.clone())),
            Decision::Follow { holder: "a".into() }
        );
        // The holder renewed at t0+10: the clock starts again from when b saw that.
        let renewed = lease("a", "11");
        assert!(matches!(
            b.observe(t0 + S(10), Some(renewed.clone())),
            Decision::Follow { .. }
        ));
        assert!(matches!(
            b.observe(t0 + S(24), Some(renewed.clone())),
            Decision::Follow { .. }
        ));
        assert_eq!(
            b.observe(t0 + S(25), Some(renewed)),
            Decision::Claim {
                resource_version: Some("11".into()),
                transitions: 4,
                acquire: true
            }
        );
        assert!(
            !b.is_leader(t0 + S(25)),
            "leads only once the write succeeded"
        );
        b.claimed(t0 + S(25));
        assert!(b.is_leader(t0 + S(25)));
    }

    #[test]
    fn the_leader_renews_and_stops_at_the_renew_deadline_without_success() {
        let mut a = Elector::new(cfg("a"));
        let t0 = Instant::now();
        a.claimed(t0);
        assert_eq!(
            a.observe(t0 + S(2), Some(lease("a", "12"))),
            Decision::Claim {
                resource_version: Some("12".into()),
                transitions: 3,
                acquire: false
            }
        );
        a.claimed(t0 + S(2));
        // The API server stops answering: every renewal fails.
        for s in [4, 6, 8, 10] {
            a.claim_failed(t0 + S(s));
        }
        assert!(a.is_leader(t0 + S(11)));
        assert!(
            !a.is_leader(t0 + S(12)),
            "stopped 10 s after the last renewal"
        );
        // ...which is before a follower that saw the last renewal may take over (15 s).
    }

    #[test]
    fn a_leader_that_sees_another_holder_stops_at_once() {
        let mut a = Elector::new(cfg("a"));
        let t0 = Instant::now();
        a.claimed(t0);
        assert!(a.is_leader(t0 + S(1)));
        assert_eq!(
            a.observe(t0 + S(1), Some(lease("b", "20"))),
            Decision::Follow { holder: "b".into() }
        );
        assert!(!a.is_leader(t0 + S(1)));
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let mut b = Elector::new(cfg("b"));
        let t0 = Instant::now();
        assert_eq!(
            b.observe(t0, Some(lease("", "30"))),
            Decision::Claim {
                resource_version: Some("30".into()),
                transitions: 4,
                acquire: true
            }
        );
    }

    #[test]
    fn our_own_record_after_a_restart_is_acquired_again() {
        let mut a = Elector::new(cfg("a"));
        let t0 = Instant::now();
        assert_eq!(
            a.observe(t0, Some(lease("a", "40"))),
            Decision::Claim {
                resource_version: Some("40".into()),
                transitions: 3,
                acquire: true
            }
        );
        a.released();
        assert!(!a.is_leader(t0));
    }

    #[test]
    fn unsafe_timings_are_refused() {
        assert!(cfg("a").validate().is_ok());
        let mut c = cfg("a");
        c.renew_deadline = c.lease_duration;
        assert!(c.validate().is_err());
        let mut c = cfg("a");
        c.retry_period = c.renew_deadline;
        assert!(c.validate().is_err());
        assert!(cfg("").validate().is_err());
    }
}
