//! Best path selection, RFC 4271 9.1.2 (phase 2) with the tie-breaking rules
//! of 9.1.2.2 and RFC 4456 9, and the multipath (ECMP) set.
//!
//! The RFC describes 9.1.2.2 as successive elimination over all candidates,
//! not as a pairwise order: MED is only compared among routes from the same
//! neighbouring AS, which is not transitive. [`select`] follows the RFC
//! literally, so the result does not depend on the order paths arrived in.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr};

use super::attrs::RouteAttrs;
use super::{PeerId, PeerInfo};

/// One path competing for a destination.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub peer: PeerId,
    pub info: &'a PeerInfo,
    pub path_id: u32,
    pub attrs: &'a RouteAttrs,
}

impl Candidate<'_> {
    /// RFC 4271 9.1.2.2 c: neighborAS is the first AS of the AS_PATH; a path
    /// originated inside our AS (empty path) counts as from our own AS.
    fn neighbour_as(&self, local_as: u32) -> u32 {
        self.attrs
            .attrs
            .as_path
            .as_ref()
            .and_then(|p| p.first_as())
            .unwrap_or(local_as)
    }

    fn path_len(&self) -> usize {
        self.attrs
            .attrs
            .as_path
            .as_ref()
            .map_or(0, |p| p.path_len())
    }

    fn origin(&self) -> u8 {
        self.attrs.attrs.origin.map_or(2, |o| o as u8)
    }

    /// RFC 4456 9: the ORIGINATOR_ID takes the place of the BGP Identifier of
    /// the advertising peer when it is present.
    fn identifier(&self) -> Ipv4Addr {
        self.attrs
            .attrs
            .originator_id
            .unwrap_or(self.info.router_id)
    }

    fn peer_address(&self) -> IpAddr {
        self.info.address
    }
}

/// The outcome for one destination: the best path and the paths equal to it
/// for multipath, as indexes into the candidate slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub best: usize,
    /// Every path equal to the best up to (not including) the router-id
    /// step, the best first then in tie-break order. Empty when the best is
    /// the only one (the common case; no allocation).
    pub multipath: Vec<usize>,
}

/// Run the decision process over `cands`; `None` if there are none.
///
/// Order (RFC 4271 9.1.2.2, preceded by the degree of preference of 9.1.1):
/// 0. locally originated paths first (they have no peer to lose to);
/// 1. highest LOCAL_PREF (9.1.1);
/// 2. (a) shortest AS_PATH;
/// 3. (b) lowest ORIGIN;
/// 4. (c) lowest MED among paths from the same neighbouring AS;
/// 5. (d) paths from eBGP peers over paths from iBGP peers;
/// 6. (e) lowest IGP cost to the next hop: not applicable (no IGP);
///
///    the survivors here are the multipath set; then
/// 7. (f) lowest BGP Identifier (ORIGINATOR_ID if present, RFC 4456 9);
/// 8. shortest CLUSTER_LIST (RFC 4456 9);
/// 9. (g) lowest peer address;
/// 10. lowest peer id and path id, so the choice is total and stable.
pub fn select(cands: &[Candidate<'_>], local_as: u32) -> Option<Selection> {
    match cands.len() {
        0 => None,
        1 => Some(Selection {
            best: 0,
            multipath: Vec::new(),
        }),
        _ => Some(select_many(cands, local_as)),
    }
}

fn select_many(cands: &[Candidate<'_>], local_as: u32) -> Selection {
    let mut live: Vec<usize> = (0..cands.len()).collect();
    keep_best_by(&mut live, |i| {
        (
            std::cmp::Reverse(cands[i].peer == PeerId::LOCAL),
            std::cmp::Reverse(cands[i].attrs.local_pref()),
            cands[i].path_len(),
            cands[i].origin(),
        )
    });
    // (c) MED: drop a path if another survivor from the same neighbouring AS
    // has a lower MED.
    if live.len() > 1 {
        let snapshot = live.clone();
        live.retain(|&i| {
            let nas = cands[i].neighbour_as(local_as);
            let med = cands[i].attrs.med();
            !snapshot
                .iter()
                .any(|&j| cands[j].neighbour_as(local_as) == nas && cands[j].attrs.med() < med)
        });
    }
    // (d) eBGP over iBGP.
    keep_best_by(&mut live, |i| cands[i].info.internal);
    // (f), RFC 4456 cluster list, (g), then the stable final key.
    live.sort_by(|&a, &b| tie_break(&cands[a], &cands[b]));
    let best = live[0];
    let multipath = if live.len() > 1 { live } else { Vec::new() };
    Selection { best, multipath }
}

/// Keep only the indexes whose key is minimal.
fn keep_best_by<K: Ord>(live: &mut Vec<usize>, key: impl Fn(usize) -> K) {
    if live.len() < 2 {
        return;
    }
    let min = live.iter().map(|&i| key(i)).min().expect("non-empty");
    live.retain(|&i| key(i) == min);
}

/// Steps f, RFC 4456 9 and g of 9.1.2.2 (plus a final stable key).
pub fn tie_break(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    a.identifier()
        .cmp(&b.identifier())
        .then(
            a.attrs
                .attrs
                .cluster_list
                .len()
                .cmp(&b.attrs.attrs.cluster_list.len()),
        )
        .then(a.peer_address().cmp(&b.peer_address()))
        .then(a.peer.cmp(&b.peer))
        .then(a.path_id.cmp(&b.path_id))
}
