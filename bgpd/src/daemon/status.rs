//! Snapshots answered to queries (control socket, metrics).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::SystemTime;

use ipnet::IpNet;

use super::{Daemon, PeerStats, Query};
use crate::fsm::State;
use crate::rib::Path;
use crate::wire::{Family, Origin};

#[derive(Debug, Clone)]
pub struct StatusReport {
    pub router_id: Ipv4Addr,
    pub local_as: u32,
    pub started: SystemTime,
    pub peers: Vec<PeerStatus>,
    /// Destinations per family.
    pub networks_v4: usize,
    pub networks_v6: usize,
    /// Paths per family.
    pub paths_v4: usize,
    pub paths_v6: usize,
    /// BFD sessions, by peer address.
    pub bfd: Vec<crate::bfd::SessionView>,
}

#[derive(Debug, Clone)]
pub struct PeerStatus {
    pub name: String,
    pub address: IpAddr,
    pub asn: u32,
    pub state: State,
    pub since: SystemTime,
    pub last_error: Option<String>,
    pub neighbor_id: Option<Ipv4Addr>,
    pub local: Option<SocketAddr>,
    pub internal: Option<bool>,
    pub hold_time: Option<u16>,
    pub keepalive: Option<u16>,
    pub families: Vec<Family>,
    pub passive: bool,
    /// Paths held from the peer (Adj-RIB-In after import policy).
    pub imported: u32,
    /// Prefixes advertised to the peer (Adj-RIB-Out).
    pub exported: usize,
    /// Loc-RIB entries whose best path is from the peer.
    pub preferred: usize,
    pub stats: PeerStats,
}

/// One destination for `show route`.
#[derive(Debug, Clone)]
pub struct RouteView {
    pub prefix: IpNet,
    pub paths: Vec<PathView>,
}

#[derive(Debug, Clone)]
pub struct PathView {
    /// Peer name, or `static` for routes this speaker originates.
    pub from: String,
    pub best: bool,
    pub next_hop: IpAddr,
    pub as_path: Vec<u32>,
    pub origin: Origin,
    pub local_pref: u32,
    pub med: Option<u32>,
    pub internal: bool,
    /// When the path's session came up (BIRD shows the route's age).
    pub since: SystemTime,
}

impl Daemon {
    pub(super) fn on_query(&self, q: Query) {
        match q {
            Query::Status(tx) => {
                let _ = tx.send(self.status());
            }
            Query::Routes { for_ip, reply } => {
                let _ = reply.send(self.routes(for_ip));
            }
        }
    }

    fn status(&self) -> StatusReport {
        // Counters kept by the RIB: a status query costs O(peers), not a
        // walk of the table (it is polled while tables are large).
        let (paths_v4, paths_v6) = self.rib.paths_by_family();
        let (networks_v4, networks_v6) = self.rib.len_by_family();
        let peers = self
            .peers
            .iter()
            .map(|(id, p)| {
                let n = p.negotiated.as_deref();
                PeerStatus {
                    name: p.name.clone(),
                    address: p.cfg.address,
                    asn: p.cfg.as_number,
                    state: p.state,
                    since: p.since,
                    last_error: p.last_error.as_ref().map(describe_down),
                    neighbor_id: n.map(|n| n.peer_id),
                    local: p.local,
                    internal: n.map(|n| n.internal),
                    hold_time: n.map(|n| n.hold_time),
                    keepalive: n.map(|n| n.keepalive),
                    families: n.map_or_else(|| p.cfg.families(), |n| n.families.clone()),
                    passive: p.cfg.passive,
                    imported: self.rib.path_count(*id),
                    exported: p.adj_out.advertised(),
                    preferred: self.rib.preferred_count(*id) as usize,
                    stats: p.stats.clone(),
                }
            })
            .collect();
        StatusReport {
            router_id: self.policy.router_id,
            local_as: self.policy.local_as,
            started: self.started,
            peers,
            networks_v4,
            networks_v6,
            paths_v4,
            paths_v6,
            bfd: self.bfd.as_ref().map(|b| b.sessions()).unwrap_or_default(),
        }
    }

    fn routes(&self, for_ip: Option<IpAddr>) -> Vec<RouteView> {
        let mut out = Vec::new();
        match for_ip {
            Some(ip) => {
                if let Some(prefix) = self.rib.longest_match(ip) {
                    out.push(self.route_view(prefix, self.rib.paths(&prefix)));
                }
            }
            None => self
                .rib
                .for_each(|prefix, paths| out.push(self.route_view(prefix, paths))),
        }
        out
    }

    fn route_view(&self, prefix: IpNet, paths: &[Path]) -> RouteView {
        let best = self.rib.select(paths);
        let mut views: Vec<PathView> = paths
            .iter()
            .map(|p| {
                let a = &p.attrs.attrs;
                PathView {
                    from: match self.peers.get(&p.peer) {
                        Some(peer) => peer.name.clone(),
                        None => "static".to_string(),
                    },
                    best: best.as_ref().is_some_and(|b| b.path.same(p)),
                    next_hop: p.attrs.next_hop_addr(),
                    as_path: a
                        .as_path
                        .as_ref()
                        .map(|ap| ap.segments.iter().flat_map(|s| s.asns.clone()).collect())
                        .unwrap_or_default(),
                    origin: a.origin.unwrap_or(Origin::Incomplete),
                    local_pref: p.attrs.local_pref(),
                    med: a.med,
                    internal: self.rib.peer(p.peer).is_some_and(|i| i.internal),
                    since: self
                        .peers
                        .get(&p.peer)
                        .map_or(self.started, |peer| peer.since),
                }
            })
            .collect();
        // Best first, as BIRD lists it.
        views.sort_by_key(|v| !v.best);
        RouteView {
            prefix,
            paths: views,
        }
    }
}

/// A down reason as the `Info` column / `Last error` line shows it.
pub fn describe_down(r: &crate::fsm::DownReason) -> String {
    use crate::fsm::DownReason as D;
    match r {
        D::Stopped(s) => format!("Shutdown: {s:?}"),
        D::HoldTimerExpired => "Error: Hold timer expired".into(),
        D::ConnectionFailed => "Error: Connection closed".into(),
        D::PeerNotification(n) => format!("Received: {}", n.describe()),
        D::LocalNotification(n) => format!("Error: {}", n.describe()),
        D::MaxPrefixes { limit, .. } => format!("Error: Route limit exceeded ({limit})"),
        D::Collision => "Connection collision".into(),
        D::UnexpectedEvent => "Error: Unexpected event".into(),
        D::BfdDown => "Error: BFD session down".into(),
    }
}
