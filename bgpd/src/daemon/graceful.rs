//! Graceful Restart (RFC 4724) in the daemon: as Receiving Speaker ("helper") a peer's
//! routes outlive its session while it restarts; as Restarting Speaker we leave without a
//! NOTIFICATION and keep our kernel routes (see `Daemon::shutdown` and the FIB's
//! mark-and-sweep at start).

use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

use super::Daemon;
use crate::fsm::{DownReason, NegotiatedSession};
use crate::peer::{PeerCommand, encode_updates};
use crate::rib::PeerId;
use crate::wire::{Family, Update};

/// How long a peer that went down may take to come back with its routes kept (the Restart
/// Time it advertised, RFC 4724 4.2), or `None` when its routes go now: GR not in effect on
/// the session, a restart time of 0, or a session that ended with a NOTIFICATION (without
/// the RFC 8538 N bit, which we do not offer, a NOTIFICATION ends Graceful Restart) or by
/// our own decision.
pub(super) fn helper_time(n: &NegotiatedSession, reason: &DownReason) -> Option<Duration> {
    if !n.graceful_restart() {
        return None;
    }
    let cap = n.peer_graceful_restart.as_ref()?;
    if cap.restart_time == 0 {
        return None;
    }
    match reason {
        // The TCP session ended without a NOTIFICATION: the peer restarts.
        DownReason::ConnectionFailed => Some(Duration::from_secs(cap.restart_time.into())),
        // BFD down (RFC 5882 4.3 leaves the choice to the operator): we choose to withdraw
        // at once. BFD says the forwarding path is broken, so routes through the peer
        // would blackhole traffic; Graceful Restart is for a control plane restarting
        // while forwarding goes on, which is not what BFD saw.
        DownReason::BfdDown => None,
        _ => None,
    }
}

/// Families whose stale routes go at once when `peer` comes back: those the new session
/// does not carry with the F bit set (forwarding state lost in its restart, RFC 4724 4.2).
fn families_not_preserved(n: &NegotiatedSession) -> Vec<Family> {
    [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
        .into_iter()
        .filter(|f| {
            let kept = n.graceful_restart()
                && n.peer_graceful_restart.as_ref().is_some_and(|g| {
                    g.families
                        .iter()
                        .any(|gf| gf.family == *f && gf.forwarding_preserved)
                });
            !kept
        })
        .collect()
}

/// Whether a Restarting Speaker defers its route selection for this peer's End-of-RIB:
/// RFC 4724 4.1 excludes "the ones with the "Restart State" bit set in the received
/// capability" (they restart too and wait for ours: waiting for theirs would deadlock)
/// "and the ones that do not advertise the graceful restart capability".
fn defers_for(n: &NegotiatedSession) -> bool {
    n.graceful_restart()
        && n.peer_graceful_restart
            .as_ref()
            .is_some_and(|g| !g.restarting)
}

impl Daemon {
    /// End the route selection deferral once every peer it waits for sent End-of-RIB
    /// for all its families. A peer without a session counts as not done: the deferral
    /// timer bounds the wait for peers that do not come back.
    pub(super) fn maybe_end_deferral(&mut self) {
        if !self.deferring {
            return;
        }
        let done = self.peers.values().all(|p| match &p.negotiated {
            Some(n) => !defers_for(n) || n.families.iter().all(|f| p.eor.contains(f)),
            None => false,
        });
        if done {
            self.end_deferral("End-of-RIB from every peer");
        }
    }

    /// Selection is done: clear the Restart State bit for the OPENs to come and send the
    /// End-of-RIB held back from every session that is up (RFC 4724 4.1).
    pub(super) fn end_deferral(&mut self, why: &str) {
        self.deferring = false;
        let mut sent = 0;
        for p in self.peers.values_mut() {
            let _ = p.tx.send(PeerCommand::RestartState(false));
            let Some(n) = p.negotiated.as_ref().filter(|_| !p.eor_sent) else {
                continue;
            };
            let ctx = n.encode_context();
            let mut updates = p.adj_out.take_updates(&ctx);
            updates.extend(n.families.iter().map(|f| Update::end_of_rib(*f)));
            p.stats.updates_out += updates.len() as u64;
            p.eor_sent = true;
            let _ =
                p.tx.send(PeerCommand::Send(encode_updates(updates, &ctx, &p.name)));
            sent += 1;
        }
        info!(
            reason = why,
            peers = sent,
            "route selection deferral over: End-of-RIB sent"
        );
    }

    /// The peer's session went down gracefully: keep its paths, stale, for `time`.
    pub(super) fn keep_stale(&mut self, id: PeerId, name: &str, time: Duration) {
        let n = self.stale.mark(id, &self.rib);
        self.stale_deadlines.insert(id, Instant::now() + time);
        info!(peer = %name, routes = n, restart_time = ?time, "peer restarting gracefully: its routes are kept, stale");
    }

    /// The peer is back: drop at once what it did not preserve, and give the rest until its
    /// End-of-RIB (at most its restart time again).
    pub(super) fn peer_back(&mut self, id: PeerId, n: &NegotiatedSession) {
        if !self.stale.has(id) {
            return;
        }
        for f in families_not_preserved(n) {
            self.withdraw_stale(id, Some(f));
        }
        if self.stale.has(id) {
            let time = n
                .peer_graceful_restart
                .as_ref()
                .map_or(0, |g| g.restart_time);
            self.stale_deadlines
                .insert(id, Instant::now() + Duration::from_secs(time.into()));
        }
    }

    /// Withdraw `id`'s stale paths of `family` (all of them with `None`).
    pub(super) fn withdraw_stale(&mut self, id: PeerId, family: Option<Family>) {
        let gone = match family {
            Some(f) => self.stale.take_family(id, f),
            None => self.stale.take_all(id),
        };
        if !self.stale.has(id) {
            self.stale_deadlines.remove(&id);
        }
        if gone.is_empty() {
            return;
        }
        info!(
            peer = id.0,
            routes = gone.len(),
            ?family,
            "stale routes withdrawn"
        );
        let mut changes = Vec::new();
        for (prefix, path_id) in gone {
            changes.extend(self.rib.withdraw(id, prefix, path_id));
        }
        self.apply_changes(changes);
    }

    /// The earliest restart time that runs out, if any.
    pub(super) fn next_stale_deadline(&self) -> Option<(PeerId, Instant)> {
        self.stale_deadlines
            .iter()
            .min_by_key(|(_, t)| **t)
            .map(|(id, t)| (*id, *t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{GrFamily, GracefulRestart};

    fn session(gr: Option<GracefulRestart>) -> NegotiatedSession {
        let id = std::net::Ipv4Addr::new(10, 0, 0, 1);
        NegotiatedSession {
            local_as: 64512,
            local_id: id,
            peer_as: 64512,
            peer_id: id,
            internal: true,
            hold_time: 90,
            keepalive: 30,
            four_octet_as: true,
            families: vec![Family::IPV4_UNICAST],
            add_path_receive: Vec::new(),
            add_path_send: Vec::new(),
            route_refresh: true,
            enhanced_route_refresh: false,
            extended_message: false,
            peer_graceful_restart: gr,
            local_graceful_restart: true,
            peer_capabilities: Vec::new(),
        }
    }

    fn gr(restart_time: u16, v4_forwarding: bool) -> GracefulRestart {
        GracefulRestart {
            restarting: false,
            notification: false,
            restart_time,
            families: vec![GrFamily {
                family: Family::IPV4_UNICAST,
                forwarding_preserved: v4_forwarding,
            }],
        }
    }

    #[test]
    fn only_a_bare_tcp_close_of_a_gr_session_keeps_routes() {
        let n = session(Some(gr(120, true)));
        assert_eq!(
            helper_time(&n, &DownReason::ConnectionFailed),
            Some(Duration::from_secs(120))
        );
        assert_eq!(helper_time(&n, &DownReason::HoldTimerExpired), None);
        // BFD down: the forwarding path is broken, so the routes go (RFC 5882 4.3).
        assert_eq!(helper_time(&n, &DownReason::BfdDown), None);
        let cease = crate::wire::Notification::cease(2);
        assert_eq!(helper_time(&n, &DownReason::PeerNotification(cease)), None);
        assert_eq!(
            helper_time(&session(None), &DownReason::ConnectionFailed),
            None
        );
        assert_eq!(
            helper_time(&session(Some(gr(0, true))), &DownReason::ConnectionFailed),
            None
        );
    }

    #[test]
    fn deferral_waits_for_gr_peers_that_are_not_restarting_themselves() {
        assert!(defers_for(&session(Some(gr(120, true)))));
        let mut restarting = gr(120, true);
        restarting.restarting = true;
        assert!(
            !defers_for(&session(Some(restarting))),
            "R bit: would deadlock"
        );
        assert!(
            !defers_for(&session(None)),
            "no GR: sends no End-of-RIB to wait for"
        );
        let mut not_ours = session(Some(gr(120, true)));
        not_ours.local_graceful_restart = false;
        assert!(!defers_for(&not_ours), "GR not in effect on the session");
    }

    #[test]
    fn families_without_the_f_bit_are_not_preserved() {
        assert_eq!(
            families_not_preserved(&session(Some(gr(120, true)))),
            vec![Family::IPV6_UNICAST]
        );
        assert_eq!(
            families_not_preserved(&session(Some(gr(120, false)))),
            vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
        );
    }
}
