//! What this speaker accepts, originates and advertises: the import checks
//! (loop detection, RFC 4271 9.1.2 and RFC 4456 8), the attributes of
//! originated routes, and the export rules (iBGP split horizon, route
//! reflection per RFC 4456, eBGP AS prepending and next hop self, the
//! well-known communities of RFC 1997). Pure functions over plain data.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::rib::{PeerId, RouteAttrs};
use crate::wire::{AsPath, Community, Family, NextHop, Origin, PathAttributes};

/// Speaker-wide settings the rules depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// RFC 4456 7: the cluster id when this speaker reflects routes
    /// (defaults to the router id); `None` when it is not a reflector.
    pub cluster_id: Option<Ipv4Addr>,
}

/// The peer a route was learned from, as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub peer: PeerId,
    pub router_id: Ipv4Addr,
    pub internal: bool,
    pub rr_client: bool,
}

/// The peer a route may be advertised to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub peer: PeerId,
    pub internal: bool,
    pub rr_client: bool,
    /// Our addresses on this session, for next hop self.
    pub local_v4: Option<Ipv4Addr>,
    pub local_v6: Option<Ipv6Addr>,
    /// Families negotiated with the peer.
    pub families: Vec<Family>,
}

impl Target {
    /// Whether [`Policy::export`] treats `self` and `other` alike: all it
    /// reads of a target but its identity (which only keeps a route from
    /// going back to the peer it came from).
    pub fn exports_like(&self, other: &Target) -> bool {
        self.internal == other.internal
            && self.rr_client == other.rr_client
            && self.local_v4 == other.local_v4
            && self.local_v6 == other.local_v6
            && self.families == other.families
    }
}

/// Why a received route was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("AS_PATH contains our AS {0} (loop, RFC 4271 9.1.2)")]
    AsLoop(u32),
    #[error("ORIGINATOR_ID is our router id {0} (RFC 4456 8)")]
    OriginatorLoop(Ipv4Addr),
    #[error("CLUSTER_LIST contains our cluster id {0} (RFC 4456 8)")]
    ClusterLoop(Ipv4Addr),
}

impl Policy {
    /// Import checks for a route from `from`.
    pub fn import(&self, from: &Source, attrs: &PathAttributes) -> Result<(), Rejected> {
        if !from.internal
            && let Some(p) = &attrs.as_path
            && p.contains(self.local_as)
        {
            return Err(Rejected::AsLoop(self.local_as));
        }
        if from.internal {
            if attrs.originator_id == Some(self.router_id) {
                return Err(Rejected::OriginatorLoop(self.router_id));
            }
            let cluster = self.cluster_id.unwrap_or(self.router_id);
            if attrs.cluster_list.contains(&cluster) {
                return Err(Rejected::ClusterLoop(cluster));
            }
        }
        Ok(())
    }

    /// Attributes of a route this speaker originates: ORIGIN IGP, empty
    /// AS_PATH (RFC 4271 5.1.2 a); the next hop is set per session on export.
    pub fn originate(&self, prefix: &IpNet) -> RouteAttrs {
        let attrs = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            ..Default::default()
        };
        let nh = match prefix {
            IpNet::V4(_) => NextHop::V4(Ipv4Addr::UNSPECIFIED),
            IpNet::V6(_) => NextHop::V6 {
                global: Ipv6Addr::UNSPECIFIED,
                link_local: None,
            },
        };
        RouteAttrs::new(attrs, nh)
    }

    /// The attributes to advertise the best route `best` (learned from
    /// `from`, `None` when originated here) to `to`, or `None` if `to`
    /// must not get it.
    pub fn export(
        &self,
        prefix: &IpNet,
        best: &RouteAttrs,
        from: Option<&Source>,
        to: &Target,
    ) -> Option<RouteAttrs> {
        if !to.families.contains(&Family::of(prefix)) {
            return None;
        }
        // Never back to the peer it came from.
        if from.is_some_and(|f| f.peer == to.peer) {
            return None;
        }
        let comms = &best.attrs.communities;
        // RFC 1997: NO_ADVERTISE to nobody, NO_EXPORT not outside the AS.
        if comms.contains(&Community::NO_ADVERTISE)
            || (!to.internal && comms.contains(&Community::NO_EXPORT))
        {
            return None;
        }
        let mut reflect = false;
        if let Some(f) = from
            && f.internal
            && to.internal
        {
            // RFC 4271 9.2: iBGP-learned routes are not sent to iBGP peers,
            // unless we reflect (RFC 4456 6): from a client to everyone,
            // from a non-client to clients only.
            let may = self.cluster_id.is_some() && (f.rr_client || to.rr_client);
            if !may {
                return None;
            }
            reflect = true;
        }
        let mut a = best.attrs.for_propagation();
        let mut next_hop = best.next_hop;
        if to.internal {
            // RFC 4271 5.1.5: LOCAL_PREF is included in every iBGP UPDATE.
            a.local_pref = Some(best.local_pref());
            if reflect {
                // RFC 4456 8: ORIGINATOR_ID set once, our cluster id prepended.
                let f = from.expect("reflect implies a source");
                a.originator_id.get_or_insert(f.router_id);
                let cluster = self.cluster_id.expect("reflect implies a cluster id");
                a.cluster_list.insert(0, cluster);
            } else {
                // Originated or eBGP-learned: next hop self, as Calico runs
                // BIRD (`next hop self`) so that the receiving node can route
                // to us directly.
                next_hop = self_next_hop(prefix, to)?;
            }
        } else {
            // RFC 4271 5.1.2 b: prepend our AS; 5.1.3: next hop self;
            // 5.1.5: no LOCAL_PREF to eBGP; 5.1.4: a MED received from
            // another AS is not passed on; RFC 4456: ORIGINATOR_ID and
            // CLUSTER_LIST stay inside the AS.
            a.as_path
                .get_or_insert_with(AsPath::default)
                .prepend(self.local_as);
            a.local_pref = None;
            if from.is_some() {
                a.med = None;
            }
            a.originator_id = None;
            a.cluster_list.clear();
            next_hop = self_next_hop(prefix, to)?;
        }
        if next_hop_unusable(&next_hop) {
            next_hop = self_next_hop(prefix, to)?;
        }
        Some(RouteAttrs::new(a, next_hop))
    }
}

fn next_hop_unusable(nh: &NextHop) -> bool {
    match nh {
        NextHop::V4(a) => a.is_unspecified(),
        NextHop::V6 { global, .. } => global.is_unspecified(),
    }
}

/// Our address on the session in the prefix's family.
fn self_next_hop(prefix: &IpNet, to: &Target) -> Option<NextHop> {
    match prefix {
        IpNet::V4(_) => to.local_v4.map(NextHop::V4),
        IpNet::V6(_) => to.local_v6.map(|global| NextHop::V6 {
            global,
            link_local: None,
        }),
    }
}

/// The local address of a session in each family (for [`Target`]).
pub fn local_addresses(local: IpAddr) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
    match local {
        IpAddr::V4(a) => (Some(a), None),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => (Some(v4), None),
            None => (None, Some(a)),
        },
    }
}

#[cfg(test)]
mod tests;
