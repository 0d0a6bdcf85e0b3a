//! Best path (every 9.1.2.2 step), ECMP, withdraw, implicit withdraw and
//! interning, through the public [`Rib`] API.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use super::*;
use crate::wire::{AsPath, NextHop, Origin, PathAttributes};

const LOCAL_AS: u32 = 64512;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Base attributes: ORIGIN IGP, AS_PATH [path], next hop `nh`.
fn attrs(path: &[u32], nh: &str) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(path.to_vec())),
        ..Default::default()
    }
    .with_nh(nh)
}

trait WithNh {
    fn with_nh(self, nh: &str) -> PathAttributes;
}
impl WithNh for PathAttributes {
    fn with_nh(mut self, nh: &str) -> PathAttributes {
        self.next_hop = Some(ip4(nh));
        self
    }
}

struct T {
    rib: Rib,
}

impl T {
    fn new() -> Self {
        T {
            rib: Rib::new(LOCAL_AS, ip4("10.0.0.100")),
        }
    }

    /// Peer `n`: address 192.0.2.n, router id `rid`, AS `asn`.
    fn peer(&mut self, n: u32, rid: &str, asn: u32) -> PeerId {
        let id = PeerId(n);
        self.rib.set_peer(
            id,
            PeerInfo {
                address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, n as u8)),
                router_id: ip4(rid),
                asn,
                internal: asn == LOCAL_AS,
            },
        );
        id
    }

    fn announce(&mut self, peer: PeerId, prefix: &str, a: PathAttributes) -> Option<Change> {
        let nh = NextHop::V4(a.next_hop.unwrap());
        let h = self.rib.intern(RouteAttrs::new(a, nh));
        self.rib.announce(peer, net(prefix), 0, h)
    }

    fn best_peer(&self, prefix: &str) -> PeerId {
        self.rib.best(&net(prefix)).expect("a best path").path.peer
    }
}

/// Two peers, the second's path differs by `tweak`; the winner is checked
/// both ways round (insertion order must not matter).
fn duel(a: (u32, &str, u32, PathAttributes), b: (u32, &str, u32, PathAttributes), winner: u32) {
    for flip in [false, true] {
        let mut t = T::new();
        let pa = t.peer(a.0, a.1, a.2);
        let pb = t.peer(b.0, b.1, b.2);
        let mut order = vec![(pa, a.3.clone()), (pb, b.3.clone())];
        if flip {
            order.reverse();
        }
        for (p, at) in order {
            t.announce(p, "10.1.0.0/24", at);
        }
        assert_eq!(t.best_peer("10.1.0.0/24"), PeerId(winner), "flip={flip}");
    }
}

#[test]
fn higher_local_pref_wins_over_shorter_path() {
    let mut long = attrs(&[64512], "10.0.0.1");
    long.local_pref = Some(200);
    let mut short = attrs(&[], "10.0.0.2");
    short.local_pref = Some(100);
    duel(
        (1, "1.1.1.1", LOCAL_AS, long),
        (2, "1.1.1.0", LOCAL_AS, short),
        1,
    );
}

#[test]
fn shorter_as_path_wins() {
    duel(
        (1, "1.1.1.1", 65001, attrs(&[65001, 65003], "10.0.0.1")),
        (2, "1.1.1.2", 65002, attrs(&[65002], "10.0.0.2")),
        2,
    );
}

#[test]
fn as_set_counts_as_one() {
    let mut set = attrs(&[65001], "10.0.0.1");
    set.as_path
        .as_mut()
        .unwrap()
        .segments
        .push(crate::wire::AsSegment {
            kind: crate::wire::SegmentType::Set,
            asns: vec![1, 2, 3, 4],
        });
    // [65001 {1 2 3 4}] has length 2, shorter than a 3-AS sequence.
    duel(
        (1, "1.1.1.9", 65001, set),
        (2, "1.1.1.2", 65002, attrs(&[65002, 7, 8], "10.0.0.2")),
        1,
    );
}

#[test]
fn lower_origin_wins() {
    let mut egp = attrs(&[65001], "10.0.0.1");
    egp.origin = Some(Origin::Egp);
    let mut incomplete = attrs(&[65002], "10.0.0.2");
    incomplete.origin = Some(Origin::Incomplete);
    duel(
        (1, "1.1.1.9", 65001, egp),
        (2, "1.1.1.2", 65002, incomplete),
        1,
    );
}

#[test]
fn lower_med_wins_within_same_neighbour_as() {
    let mut a = attrs(&[65001, 65100], "10.0.0.1");
    a.med = Some(50);
    let mut b = attrs(&[65001, 65200], "10.0.0.2");
    b.med = Some(10);
    duel((1, "1.1.1.1", 65001, a), (2, "1.1.1.2", 65001, b), 2);
}

#[test]
fn missing_med_counts_as_zero() {
    let a = attrs(&[65001], "10.0.0.1");
    let mut b = attrs(&[65001], "10.0.0.2");
    b.med = Some(1);
    duel((1, "1.1.1.9", 65001, a), (2, "1.1.1.2", 65001, b), 1);
}

#[test]
fn med_not_compared_across_neighbour_ases() {
    // Different neighbour AS: MED is ignored, the router id decides.
    let mut a = attrs(&[65001], "10.0.0.1");
    a.med = Some(500);
    let mut b = attrs(&[65002], "10.0.0.2");
    b.med = Some(1);
    duel((1, "1.1.1.1", 65001, a), (2, "1.1.1.2", 65002, b), 1);
}

#[test]
fn med_elimination_is_order_independent() {
    // The classic intransitive triple: A(AS1, MED 10) loses to B(AS1, MED 5)
    // on MED; C(AS2) is not compared on MED. Survivors B and C; B has the
    // lower router id. A pairwise walk in some orders would pick C.
    let mut a = attrs(&[65001], "10.0.0.1");
    a.med = Some(10);
    let mut b = attrs(&[65001], "10.0.0.2");
    b.med = Some(5);
    let c = attrs(&[65002], "10.0.0.3");
    let items = [
        (1, "1.1.1.1", 65001, a),
        (2, "1.1.1.2", 65001, b),
        (3, "1.1.1.3", 65002, c),
    ];
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        let mut t = T::new();
        for &i in &order {
            let (n, rid, asn, at) = &items[i];
            let p = t.peer(*n, rid, *asn);
            t.announce(p, "10.1.0.0/24", at.clone());
        }
        assert_eq!(t.best_peer("10.1.0.0/24"), PeerId(2), "order {order:?}");
        let best = t.rib.best(&net("10.1.0.0/24")).unwrap();
        let mp: Vec<PeerId> = best.multipath.iter().map(|p| p.peer).collect();
        assert_eq!(mp, vec![PeerId(2), PeerId(3)], "order {order:?}");
    }
}

#[test]
fn ebgp_preferred_over_ibgp() {
    duel(
        (1, "1.1.1.1", LOCAL_AS, attrs(&[65001], "10.0.0.1")),
        (2, "1.1.1.2", 65001, attrs(&[65001], "10.0.0.2")),
        2,
    );
}

#[test]
fn lower_router_id_wins() {
    duel(
        (1, "9.9.9.9", 65001, attrs(&[65001], "10.0.0.1")),
        (2, "1.1.1.1", 65002, attrs(&[65002], "10.0.0.2")),
        2,
    );
}

#[test]
fn originator_id_replaces_router_id() {
    // RFC 4456 9: peer 1 has the higher router id but reflects a route whose
    // ORIGINATOR_ID is lower than peer 2's router id.
    let mut reflected = attrs(&[], "10.0.0.1");
    reflected.originator_id = Some(ip4("1.0.0.1"));
    reflected.cluster_list = vec![ip4("5.5.5.5")];
    duel(
        (1, "9.9.9.9", LOCAL_AS, reflected),
        (2, "2.2.2.2", LOCAL_AS, attrs(&[], "10.0.0.2")),
        1,
    );
}

#[test]
fn shorter_cluster_list_wins_on_equal_identifier() {
    let mut a = attrs(&[], "10.0.0.1");
    a.originator_id = Some(ip4("3.3.3.3"));
    a.cluster_list = vec![ip4("5.5.5.5"), ip4("6.6.6.6")];
    let mut b = attrs(&[], "10.0.0.2");
    b.originator_id = Some(ip4("3.3.3.3"));
    b.cluster_list = vec![ip4("7.7.7.7")];
    duel((1, "1.1.1.1", LOCAL_AS, a), (2, "1.1.1.2", LOCAL_AS, b), 2);
}

#[test]
fn lower_peer_address_breaks_the_last_tie() {
    // Same router id (one speaker, two sessions): 192.0.2.3 < 192.0.2.4.
    duel(
        (4, "1.1.1.1", 65001, attrs(&[65001], "10.0.0.1")),
        (3, "1.1.1.1", 65001, attrs(&[65001], "10.0.0.2")),
        3,
    );
}

#[test]
fn local_route_beats_learned() {
    let mut t = T::new();
    let p = t.peer(1, "1.1.1.1", LOCAL_AS);
    let mut learned = attrs(&[], "10.0.0.1");
    learned.local_pref = Some(1000);
    t.announce(p, "10.1.0.0/24", learned);
    t.announce(PeerId::LOCAL, "10.1.0.0/24", attrs(&[], "0.0.0.0"));
    assert_eq!(t.best_peer("10.1.0.0/24"), PeerId::LOCAL);
}

#[test]
fn ecmp_set_is_equal_up_to_router_id() {
    let mut t = T::new();
    let p1 = t.peer(1, "1.1.1.3", 65001);
    let p2 = t.peer(2, "1.1.1.1", 65002);
    let p3 = t.peer(3, "1.1.1.2", 65003);
    let p4 = t.peer(4, "1.1.1.0", 65004);
    t.announce(p1, "10.1.0.0/24", attrs(&[65001], "10.0.0.1"));
    t.announce(p2, "10.1.0.0/24", attrs(&[65002], "10.0.0.2"));
    t.announce(p3, "10.1.0.0/24", attrs(&[65003], "10.0.0.3"));
    // Longer path: not part of the set even with the lowest router id.
    t.announce(p4, "10.1.0.0/24", attrs(&[65004, 1], "10.0.0.4"));
    let best = t.rib.best(&net("10.1.0.0/24")).unwrap();
    assert_eq!(best.path.peer, p2);
    let order: Vec<PeerId> = best.multipath.iter().map(|p| p.peer).collect();
    assert_eq!(order, vec![p2, p3, p1]);
    let hops: Vec<String> = best.next_hops().iter().map(|a| a.to_string()).collect();
    assert_eq!(hops, ["10.0.0.2", "10.0.0.3", "10.0.0.1"]);
}

#[test]
fn ecmp_change_is_reported_when_a_member_leaves() {
    let mut t = T::new();
    let p1 = t.peer(1, "1.1.1.1", 65001);
    let p2 = t.peer(2, "1.1.1.2", 65002);
    t.announce(p1, "10.1.0.0/24", attrs(&[65001], "10.0.0.1"));
    let c = t.announce(p2, "10.1.0.0/24", attrs(&[65002], "10.0.0.2"));
    // The best (p1) did not change, but the multipath set did.
    let c = c.expect("multipath grew");
    assert_eq!(c.best.as_ref().unwrap().path.peer, p1);
    assert_eq!(c.best.unwrap().multipath.len(), 2);
    let c = t.rib.withdraw(p2, net("10.1.0.0/24"), 0).expect("shrank");
    let b = c.best.unwrap();
    assert_eq!((b.path.peer, b.multipath.len()), (p1, 0));
}

#[test]
fn withdraw_falls_back_then_removes() {
    let mut t = T::new();
    let p1 = t.peer(1, "1.1.1.1", 65001);
    let p2 = t.peer(2, "1.1.1.2", 65002);
    t.announce(p1, "10.1.0.0/24", attrs(&[65001], "10.0.0.1"));
    t.announce(p2, "10.1.0.0/24", attrs(&[65002, 3], "10.0.0.2"));
    assert_eq!(t.best_peer("10.1.0.0/24"), p1);
    let c = t.rib.withdraw(p1, net("10.1.0.0/24"), 0).unwrap();
    assert_eq!(c.best.unwrap().path.peer, p2);
    assert_eq!(t.rib.path_count(p1), 0);
    let c = t.rib.withdraw(p2, net("10.1.0.0/24"), 0).unwrap();
    assert!(c.best.is_none());
    assert!(t.rib.is_empty());
    // Withdrawing what is not there changes nothing.
    assert!(t.rib.withdraw(p2, net("10.1.0.0/24"), 0).is_none());
}

#[test]
fn losing_path_withdrawn_reports_no_change() {
    let mut t = T::new();
    let p1 = t.peer(1, "1.1.1.1", 65001);
    let p2 = t.peer(2, "1.1.1.2", 65002);
    t.announce(p1, "10.1.0.0/24", attrs(&[65001], "10.0.0.1"));
    assert!(
        t.announce(p2, "10.1.0.0/24", attrs(&[65002, 3], "10.0.0.2"))
            .is_none()
    );
    assert!(t.rib.withdraw(p2, net("10.1.0.0/24"), 0).is_none());
    assert_eq!(t.rib.path_count(p2), 0);
}

#[test]
fn implicit_withdraw_replaces_the_path() {
    let mut t = T::new();
    let p1 = t.peer(1, "1.1.1.1", 65001);
    t.announce(p1, "10.1.0.0/24", attrs(&[65001], "10.0.0.1"));
    let c = t
        .announce(p1, "10.1.0.0/24", attrs(&[65001], "10.0.0.9"))
        .expect("next hop changed");
    assert_eq!(
        c.best.unwrap().path.attrs.next_hop_addr(),
        "10.0.0.9".parse::<IpAddr>().unwrap()
    );
    assert_eq!(t.rib.paths(&net("10.1.0.0/24")).len(), 1);
    assert_eq!(t.rib.path_count(p1), 1);
    // The very same attributes again: no change at all.
    assert!(
        t.announce(p1, "10.1.0.0/24", attrs(&[65001], "10.0.0.9"))
            .is_none()
    );
}

#[test]
fn add_path_ids_are_distinct_paths() {
    let mut t = T::new();
    let p1 = t.peer(1, "1.1.1.1", LOCAL_AS);
    for (id, nh) in [(1, "10.0.0.1"), (2, "10.0.0.2")] {
        let a = attrs(&[], nh);
        let h = t.rib.intern(RouteAttrs::new(a, NextHop::V4(ip4(nh))));
        t.rib.announce(p1, net("10.1.0.0/24"), id, h);
    }
    assert_eq!(t.rib.paths(&net("10.1.0.0/24")).len(), 2);
    assert_eq!(t.rib.path_count(p1), 2);
    let best = t.rib.best(&net("10.1.0.0/24")).unwrap();
    assert_eq!(best.multipath.len(), 2);
}

#[test]
fn attributes_are_interned_once() {
    let mut t = T::new();
    let p1 = t.peer(1, "1.1.1.1", 65001);
    for i in 0..100u8 {
        t.announce(p1, &format!("10.2.{i}.0/24"), attrs(&[65001], "10.0.0.1"));
    }
    let a = &t.rib.paths(&net("10.2.0.0/24"))[0].attrs;
    let b = &t.rib.paths(&net("10.2.99.0/24"))[0].attrs;
    assert!(a.same(b), "one allocation for equal attributes");
    // 100 paths + the interner's own handle.
    assert_eq!(a.share_count(), 101);
    assert_eq!(t.rib.interner().len(), 1);
    // Different MED: a second set.
    let mut other = attrs(&[65001], "10.0.0.1");
    other.med = Some(7);
    t.announce(p1, "10.3.0.0/24", other);
    assert_eq!(t.rib.interner().len(), 2);
}

#[test]
fn remove_peer_drops_its_paths_and_unused_attributes() {
    let mut t = T::new();
    let p1 = t.peer(1, "1.1.1.1", 65001);
    let p2 = t.peer(2, "1.1.1.2", 65002);
    for i in 0..10u8 {
        t.announce(p1, &format!("10.2.{i}.0/24"), attrs(&[65001], "10.0.0.1"));
    }
    t.announce(p2, "10.2.0.0/24", attrs(&[65002, 5], "10.0.0.2"));
    let changes = t.rib.remove_peer(p1);
    assert_eq!(changes.len(), 10);
    let fallback: Vec<_> = changes.iter().filter(|c| c.best.is_some()).collect();
    assert_eq!(fallback.len(), 1);
    assert_eq!(fallback[0].best.as_ref().unwrap().path.peer, p2);
    assert_eq!(t.rib.len(), 1);
    assert_eq!(t.rib.path_count(p1), 0);
    // The changes hold the replaced paths' attributes until they are handled.
    drop(changes);
    assert_eq!(t.rib.sweep_attributes(), 1);
    assert_eq!(t.rib.interner().len(), 1, "p1's attributes swept");
}

#[test]
fn longest_match_finds_most_specific() {
    let mut t = T::new();
    let p1 = t.peer(1, "1.1.1.1", 65001);
    t.announce(p1, "10.0.0.0/8", attrs(&[65001], "10.0.0.1"));
    t.announce(p1, "10.1.0.0/16", attrs(&[65001], "10.0.0.1"));
    assert_eq!(
        t.rib.longest_match("10.1.2.3".parse().unwrap()),
        Some(net("10.1.0.0/16"))
    );
    assert_eq!(
        t.rib.longest_match("10.9.2.3".parse().unwrap()),
        Some(net("10.0.0.0/8"))
    );
    assert_eq!(t.rib.longest_match("11.0.0.1".parse().unwrap()), None);
}

#[test]
fn ipv6_routes_live_in_their_own_table() {
    let mut t = T::new();
    let p1 = t.peer(1, "1.1.1.1", 65001);
    let a = RouteAttrs::new(
        attrs(&[65001], "0.0.0.0"),
        NextHop::V6 {
            global: "fd00::1".parse().unwrap(),
            link_local: None,
        },
    );
    let h = t.rib.intern(a);
    assert!(t.rib.announce(p1, net("fd00:1::/64"), 0, h).is_some());
    assert_eq!(t.rib.len_by_family(), (0, 1));
    assert_eq!(
        t.rib.best(&net("fd00:1::/64")).unwrap().next_hops(),
        vec!["fd00::1".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn one_path_destination_is_small() {
    // The inline single-path representation: no bigger than two words.
    assert!(std::mem::size_of::<table::Paths>() <= 16);
}

/// The counters status queries read (preferred per peer, paths per
/// family) must equal a walk of the table after any mix of announce,
/// replace, withdraw and peer removal.
#[test]
fn counters_match_a_table_walk() {
    let mut t = T::new();
    let p1 = t.peer(1, "1.1.1.1", 64513);
    let p2 = t.peer(2, "2.2.2.2", 64514);
    let walk = |rib: &Rib| {
        let (mut pref, mut v4, mut v6) = ([0u32; 3], 0, 0);
        rib.for_each(|prefix, paths| {
            if prefix.addr().is_ipv4() {
                v4 += paths.len();
            } else {
                v6 += paths.len();
            }
            pref[rib.select(paths).unwrap().path.peer.0 as usize] += 1;
        });
        (pref, (v4, v6))
    };
    let check = |rib: &Rib, step: &str| {
        let (pref, paths) = walk(rib);
        assert_eq!(rib.paths_by_family(), paths, "paths after {step}");
        for id in 0..3 {
            assert_eq!(
                rib.preferred_count(PeerId(id)),
                pref[id as usize],
                "preferred of peer {id} after {step}"
            );
        }
    };
    // Deterministic pseudo-random walk over 40 prefixes (v4 and v6).
    let mut x: u32 = 12345;
    for step in 0..3000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let r = x >> 8;
        let peer = if r & 1 == 0 { p1 } else { p2 };
        let n = (r >> 1) % 40;
        let prefix = if n < 30 {
            format!("10.{n}.0.0/16")
        } else {
            format!("2001:db8:{n}::/48")
        };
        match (r >> 7) % 7 {
            0..=2 => {
                // Path length varies so that the best path moves between peers.
                let len = ((r >> 10) % 3) as usize;
                let mut a = attrs(&vec![64513; len], "10.0.0.1");
                if n >= 30 {
                    a.mp_reach = None;
                }
                let nh = NextHop::V4(ip4("10.0.0.1"));
                let h = t.rib.intern(RouteAttrs::new(a, nh));
                t.rib.announce(peer, net(&prefix), 0, h);
            }
            3..=5 => {
                t.rib.withdraw(peer, net(&prefix), 0);
            }
            _ if step % 50 == 0 => {
                t.rib.remove_peer(peer);
            }
            _ => {}
        }
        check(&t.rib, &format!("step {step}"));
    }
    assert!(!t.rib.is_empty(), "the walk must leave routes to check");
}

/// The table is hashed; `for_each` (what `show route` prints) must still
/// come out IPv4 first, then in prefix order, whatever the insert order.
#[test]
fn for_each_walks_in_prefix_order() {
    let mut t = T::new();
    let p1 = t.peer(1, "1.1.1.1", 65001);
    let v4 = ["10.0.0.0/8", "10.0.0.0/16", "9.9.9.9/32", "10.1.0.0/16"];
    for p in v4.iter().rev() {
        t.announce(p1, p, attrs(&[65001], "10.0.0.1"));
    }
    let a = RouteAttrs::new(
        attrs(&[65001], "0.0.0.0"),
        NextHop::V6 {
            global: "fd00::1".parse().unwrap(),
            link_local: None,
        },
    );
    let h = t.rib.intern(a);
    for p in ["fd00:2::/64", "fd00:1::/64", "fd00::/16"] {
        t.rib.announce(p1, net(p), 0, h.clone());
    }
    let mut seen = Vec::new();
    t.rib.for_each(|prefix, _| seen.push(prefix));
    let mut want: Vec<IpNet> = v4.iter().map(|p| net(p)).collect();
    want.sort();
    want.extend(["fd00::/16", "fd00:1::/64", "fd00:2::/64"].map(net));
    assert_eq!(seen, want);
}

/// Enough prefixes, in scrambled order, that every shard of the hash table
/// grows several times; then a peer's removal empties most of it (shards
/// shrink). Checked against a plain set after each phase.
#[test]
fn table_matches_a_model_through_growth_and_shrink() {
    use std::collections::BTreeSet;
    let mut t = T::new();
    let p1 = t.peer(1, "1.1.1.1", 65001);
    let p2 = t.peer(2, "2.2.2.2", 65002);
    let a1 = t.rib.intern(RouteAttrs::new(
        attrs(&[65001], "10.0.0.1"),
        NextHop::V4(ip4("10.0.0.1")),
    ));
    let a2 = t.rib.intern(RouteAttrs::new(
        attrs(&[65002], "10.0.0.2"),
        NextHop::V4(ip4("10.0.0.2")),
    ));
    // Odd multiplier: a bijection on the low 16 bits, so all distinct.
    let host = |i: u32| -> IpNet {
        let a = Ipv4Addr::from(0x0a00_0000 | (i.wrapping_mul(0x9E37_79B1) & 0xffff));
        IpNet::V4(ipnet::Ipv4Net::new(a, 32).unwrap())
    };
    let mut model = BTreeSet::new();
    for i in 0..20_000u32 {
        assert!(t.rib.announce(p1, host(i), 0, a1.clone()).is_some());
        if i % 10 == 0 {
            t.rib.announce(p2, host(i), 0, a2.clone());
            model.insert(host(i));
        }
    }
    assert_eq!(t.rib.len(), 20_000);
    assert_eq!(t.rib.paths_by_family(), (22_000, 0));
    for i in 0..20_000u32 {
        let want = if i % 10 == 0 { 2 } else { 1 };
        assert_eq!(t.rib.paths(&host(i)).len(), want, "paths of {}", host(i));
    }
    assert_eq!(t.rib.remove_peer(p1).len(), 20_000);
    assert_eq!(t.rib.len(), model.len());
    for i in 0..20_000u32 {
        let held = t.rib.paths(&host(i));
        assert_eq!(held.len(), usize::from(model.contains(&host(i))));
        assert!(held.iter().all(|p| p.peer == p2));
    }
    let mut walked = Vec::new();
    t.rib.for_each(|prefix, _| walked.push(prefix));
    assert_eq!(walked, model.iter().copied().collect::<Vec<_>>());
    let probe = host(0).addr();
    assert_eq!(t.rib.longest_match(probe), Some(host(0)));
    assert_eq!(
        t.rib.withdraw(p2, host(0), 0).map(|c| c.best.is_none()),
        Some(true)
    );
    assert_eq!(t.rib.longest_match(probe), None);
}

/// What a change says, comparable: prefix, best (peer, path id, attributes,
/// multipath size) and the path it replaces.
type ChangeView = (
    IpNet,
    Option<(PeerId, u32, usize, usize)>,
    Option<(PeerId, u32, usize)>,
);

fn view(c: &Change) -> ChangeView {
    (
        c.prefix,
        c.best.as_ref().map(|b| {
            (
                b.path.peer,
                b.path.path_id,
                b.path.attrs.id(),
                b.multipath.len(),
            )
        }),
        c.before.as_ref().map(|p| (p.peer, p.path_id, p.attrs.id())),
    )
}

#[test]
fn announce_all_matches_one_announce_after_the_other() {
    let mut one = T::new();
    let mut all = T::new();
    for t in [&mut one, &mut all] {
        t.peer(1, "10.0.0.1", 65001);
        t.peer(2, "10.0.0.2", 65002);
    }
    let shared = |a: PathAttributes| {
        let nh = NextHop::V4(a.next_hop.unwrap());
        Attrs::unshared(RouteAttrs::new(a, nh))
    };
    let short = shared(attrs(&[65001], "192.0.2.1"));
    let long = shared(attrs(&[65002, 65003], "192.0.2.2"));
    // Peer 2 already holds some of the prefixes, peer 1 one of them with the
    // attributes it sends again.
    for t in [&mut one, &mut all] {
        for p in ["10.1.0.0/24", "10.2.0.0/24", "2001:db8::/48"] {
            t.rib.announce(PeerId(2), net(p), 0, long.clone());
        }
        t.rib
            .announce(PeerId(1), net("10.3.0.0/24"), 0, short.clone());
    }
    // New destinations, existing ones, the same path twice, one prefix with
    // two ADD-PATH ids, a path peer 1 already has, and IPv6.
    let nlri: Vec<(IpNet, u32)> = [
        ("10.9.0.0/24", 0),
        ("10.1.0.0/24", 0),
        ("10.8.0.0/24", 0),
        ("10.8.0.0/24", 0),
        ("10.7.0.0/24", 1),
        ("10.7.0.0/24", 2),
        ("10.3.0.0/24", 0),
        ("10.2.0.0/24", 0),
        ("2001:db8::/48", 0),
        ("2001:db8:1::/48", 0),
    ]
    .iter()
    .map(|(p, id)| (net(p), *id))
    .collect();

    let mut expected = Vec::new();
    for &(p, id) in &nlri {
        expected.extend(one.rib.announce(PeerId(1), p, id, short.clone()));
    }
    let mut got = Changes::new();
    all.rib
        .announce_all(PeerId(1), &short, nlri.iter().copied(), &mut got);
    // The new destinations came as runs sharing the one handle.
    assert!(got.iter().any(|c| matches!(c, ChangeRef::Added { .. })));
    let got = got.into_vec();

    let (expected, got): (Vec<_>, Vec<_>) = (
        expected.iter().map(view).collect(),
        got.iter().map(view).collect(),
    );
    assert_eq!(got, expected);
    // 10 routes, 8 changes: the repeated path and the one peer 1 had change
    // nothing.
    assert_eq!(got.len(), 8, "{got:?}");
    for peer in [PeerId(1), PeerId(2)] {
        assert_eq!(all.rib.path_count(peer), one.rib.path_count(peer));
        assert_eq!(all.rib.preferred_count(peer), one.rib.preferred_count(peer));
    }
    assert_eq!(all.rib.preferred_count(PeerId(1)), 8);
    assert_eq!(all.rib.paths_by_family(), one.rib.paths_by_family());
    assert_eq!(all.rib.len_by_family(), one.rib.len_by_family());
}
