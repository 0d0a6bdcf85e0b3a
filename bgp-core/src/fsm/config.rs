//! Per-session configuration the FSM needs.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::wire::{Capability, Family};

/// Which AS the peer must be in (RFC 4271 6.2 "Bad Peer AS").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAs {
    /// Exactly this AS.
    Exact(u32),
    /// Any AS equal to ours (iBGP only).
    Internal,
    /// Any AS other than ours (eBGP only).
    External,
    /// Any AS.
    Any,
}

/// Damping of peer oscillations (RFC 4271 8.1.1 DampPeerOscillations): the
/// first failure after a stable session restarts at once; each further one in a
/// row waits in Idle for the IdleHoldTimer, `initial_secs` doubling up to
/// `max_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleHold {
    pub initial_secs: u32,
    pub max_secs: u32,
    /// KEEPALIVEs to receive in Established before the session counts as
    /// stable and the backoff starts over (a clock-free stability test).
    pub stable_keepalives: u32,
}

impl Default for IdleHold {
    fn default() -> Self {
        IdleHold {
            initial_secs: 5,
            max_secs: 120,
            stable_keepalives: 3,
        }
    }
}

/// Retrying our own connection after it failed before a BGP connection existed (refused:
/// the peer is not listening yet; unreachable: it is rebooting; or closed by the peer before
/// its OPEN: it does not know us yet). Such a failure is no
/// session failure, so DampPeerOscillations does not count it: the session waits in Active,
/// where it also takes the peer's own connection (RFC 4271 8.2.2, as BIRD and FRR do), and
/// tries again after `initial`, doubling up to `max`. With `max` under a second a session is
/// up within a second of the peer listening, however long it was away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            initial: Duration::from_millis(200),
            max: Duration::from_millis(800),
        }
    }
}

impl Reconnect {
    /// The wait before retry number `failures + 1`.
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    pub peer_as: PeerAs,
    /// Hold time we propose (0 disables keepalives, else >= 3).
    pub hold_time: u16,
    /// Keepalive interval; `None` means a third of the negotiated hold time.
    pub keepalive: Option<u16>,
    /// Large hold time used while waiting for the peer's OPEN (RFC 4271
    /// 8.2.2 suggests 4 minutes).
    pub open_hold_time: u16,
    /// ConnectRetryTimer: how long one connection attempt may take.
    pub connect_retry_secs: u32,
    /// When to try again after an attempt failed.
    pub reconnect: Reconnect,
    /// Never initiate the TCP connection; wait in Active.
    pub passive: bool,
    /// Capabilities advertised in our OPEN.
    pub capabilities: Vec<Capability>,
    /// Capability codes the peer must advertise, else the OPEN is refused
    /// with Unsupported Capability (RFC 5492 5).
    pub required_capabilities: Vec<u8>,
    /// Max accepted prefixes (all families) before Cease/1 (RFC 4486).
    pub max_prefixes: Option<u32>,
    pub idle_hold: IdleHold,
}

impl Config {
    /// Defaults Calico users know (REFERENCE.md 5): hold 240 s, connect
    /// retry 5 s; IPv4 and IPv6 unicast, route refresh (plain and
    /// enhanced), 4-octet AS and extended messages offered.
    pub fn new(local_as: u32, router_id: Ipv4Addr, peer_as: PeerAs) -> Self {
        Config {
            local_as,
            router_id,
            peer_as,
            hold_time: 240,
            keepalive: None,
            open_hold_time: 240,
            connect_retry_secs: 5,
            reconnect: Reconnect::default(),
            passive: false,
            capabilities: vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::Multiprotocol(Family::IPV6_UNICAST),
                Capability::RouteRefresh,
                Capability::EnhancedRouteRefresh,
                Capability::FourOctetAs(local_as),
                Capability::ExtendedMessage,
            ],
            required_capabilities: Vec::new(),
            max_prefixes: None,
            idle_hold: IdleHold::default(),
        }
    }

    /// Set or clear the Restart State (R) bit of our Graceful Restart capability for the
    /// OPENs sent from now on: set while we restart (RFC 4724 4.1), never otherwise (4.2).
    /// Without the capability there is nothing to set.
    pub fn set_restart_state(&mut self, restarting: bool) {
        for c in &mut self.capabilities {
            if let Capability::GracefulRestart(gr) = c {
                gr.restarting = restarting;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{GrFamily, GracefulRestart};

    fn restart_bits(c: &Config) -> Vec<bool> {
        c.capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::GracefulRestart(gr) => Some(gr.restarting),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn restart_state_bit_follows_the_restart_and_needs_the_capability() {
        let mut c = Config::new(64512, Ipv4Addr::new(192, 0, 2, 1), PeerAs::Exact(64512));
        c.set_restart_state(true);
        assert!(restart_bits(&c).is_empty(), "no capability, nothing set");
        c.capabilities
            .push(Capability::GracefulRestart(GracefulRestart {
                restarting: false,
                notification: false,
                restart_time: 120,
                families: vec![GrFamily {
                    family: Family::IPV4_UNICAST,
                    forwarding_preserved: true,
                }],
            }));
        c.set_restart_state(true);
        assert_eq!(restart_bits(&c), [true]);
        c.set_restart_state(false);
        assert_eq!(restart_bits(&c), [false]);
    }
}
