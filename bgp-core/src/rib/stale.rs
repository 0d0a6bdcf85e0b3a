//! The Receiving Speaker's side of Graceful Restart (RFC 4724 4.2): when a peer that
//! advertised the capability loses its session, its paths stay in the RIB (and so in the
//! FIB), marked stale, instead of being withdrawn. Paths it announces or withdraws again are
//! no longer stale; what is still stale when it sends End-of-RIB for a family, or when its
//! restart time runs out, is withdrawn then. A second loss before that marks everything
//! of the peer stale again, so forwarding survives restarts in a row.
//!
//! Pure bookkeeping: the daemon feeds events and applies the withdrawals it is handed.

use std::collections::{HashMap, HashSet};

use ipnet::IpNet;

use super::{PeerId, Rib};
use crate::wire::Family;

/// One path of a peer: prefix and RFC 7911 path identifier.
pub type PathKey = (IpNet, u32);

/// Stale paths, per peer.
#[derive(Debug, Default)]
pub struct StalePaths {
    by_peer: HashMap<PeerId, HashSet<PathKey>>,
}

fn family_of(prefix: &IpNet) -> Family {
    match prefix {
        IpNet::V4(_) => Family::IPV4_UNICAST,
        IpNet::V6(_) => Family::IPV6_UNICAST,
    }
}

impl StalePaths {
    /// The peer's session went down gracefully: every path it has in `rib` is stale.
    /// Returns how many.
    pub fn mark(&mut self, peer: PeerId, rib: &Rib) -> usize {
        let mut paths = HashSet::new();
        rib.for_each(|prefix, ps| {
            for p in ps.iter().filter(|p| p.peer == peer) {
                paths.insert((prefix, p.path_id));
            }
        });
        let n = paths.len();
        self.by_peer.insert(peer, paths);
        n
    }

    /// Whether `peer` has stale paths.
    pub fn has(&self, peer: PeerId) -> bool {
        self.by_peer.get(&peer).is_some_and(|s| !s.is_empty())
    }

    /// How many paths of `peer` are stale.
    pub fn count(&self, peer: PeerId) -> usize {
        self.by_peer.get(&peer).map_or(0, HashSet::len)
    }

    /// The peer announced or withdrew this path again: it is current (or gone) now.
    pub fn refreshed(&mut self, peer: PeerId, key: PathKey) {
        if let Some(s) = self.by_peer.get_mut(&peer) {
            s.remove(&key);
        }
    }

    /// End-of-RIB from `peer` for `family` (or a family it no longer preserves): the paths of
    /// that family still stale, for the caller to withdraw.
    pub fn take_family(&mut self, peer: PeerId, family: Family) -> Vec<PathKey> {
        let Some(s) = self.by_peer.get_mut(&peer) else {
            return Vec::new();
        };
        let gone: Vec<PathKey> = s
            .iter()
            .filter(|(prefix, _)| family_of(prefix) == family)
            .copied()
            .collect();
        for k in &gone {
            s.remove(k);
        }
        if s.is_empty() {
            self.by_peer.remove(&peer);
        }
        gone
    }

    /// The restart time ran out, or the peer is gone for good: all its stale paths.
    pub fn take_all(&mut self, peer: PeerId) -> Vec<PathKey> {
        self.by_peer
            .remove(&peer)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::rib::RouteAttrs;
    use crate::wire::{NextHop, PathAttributes};

    fn rib_with(peer: PeerId, prefixes: &[&str]) -> Rib {
        let mut rib = Rib::new(64512, Ipv4Addr::new(10, 0, 0, 1));
        for p in prefixes {
            let nh = NextHop::V4(Ipv4Addr::new(10, 0, 0, 2));
            let attrs = rib.intern(RouteAttrs::new(PathAttributes::default(), nh));
            rib.announce(peer, p.parse().unwrap(), 0, attrs);
        }
        rib
    }

    fn key(p: &str) -> PathKey {
        (p.parse().unwrap(), 0)
    }

    #[test]
    fn end_of_rib_withdraws_what_was_not_announced_again() {
        let peer = PeerId(3);
        let rib = rib_with(peer, &["10.0.0.0/26", "10.0.1.0/26", "fd00::/64"]);
        let mut stale = StalePaths::default();
        assert_eq!(stale.mark(peer, &rib), 3);
        assert_eq!(stale.mark(PeerId(4), &rib), 0);
        stale.refreshed(peer, key("10.0.0.0/26"));
        assert_eq!(
            stale.take_family(peer, Family::IPV4_UNICAST),
            vec![key("10.0.1.0/26")]
        );
        assert!(
            stale.has(peer),
            "the IPv6 path waits for its own End-of-RIB"
        );
        assert_eq!(stale.take_all(peer), vec![key("fd00::/64")]);
        assert!(!stale.has(peer));
        assert!(stale.take_all(peer).is_empty());
    }

    #[test]
    fn a_second_loss_marks_everything_again() {
        let peer = PeerId(3);
        let rib = rib_with(peer, &["10.0.0.0/26", "10.0.1.0/26"]);
        let mut stale = StalePaths::default();
        stale.mark(peer, &rib);
        stale.refreshed(peer, key("10.0.0.0/26"));
        // Down again before End-of-RIB: both are stale, the refreshed one too.
        assert_eq!(stale.mark(peer, &rib), 2);
        assert_eq!(stale.count(peer), 2);
    }
}
