//! The diff and the ownership contract, without a kernel.

use std::net::IpAddr;

use super::*;
use crate::route::RouteTarget;
use crate::{BGPD, FELIX};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn felix(dst: &str, target: RouteTarget) -> KernelRoute {
    FELIX.route(net(dst), target)
}

fn bgp(dst: &str, hops: &[&str]) -> KernelRoute {
    BGPD.route(
        net(dst),
        RouteTarget::via(hops.iter().map(|h| ip(h)).collect()),
    )
}

fn foreign(dst: &str, protocol: u8) -> KernelRoute {
    KernelRoute {
        protocol,
        ..felix(dst, RouteTarget::Dev(2))
    }
}

#[test]
fn in_sync_is_empty() {
    let want = vec![
        felix("10.0.0.1/32", RouteTarget::Dev(5)),
        felix("10.0.0.0/26", RouteTarget::Blackhole),
    ];
    let mut actual = want.clone();
    actual.push(foreign("0.0.0.0/0", 4));
    let d = diff(&FELIX, &want, &actual);
    assert!(d.is_empty() && d.conflicts.is_empty(), "{d:?}");
}

#[test]
fn empty_slot_is_an_exclusive_add_our_slot_a_replace() {
    let new = felix("10.0.0.1/32", RouteTarget::Dev(5));
    let moved = felix("10.0.0.2/32", RouteTarget::Dev(7));
    let was = felix("10.0.0.2/32", RouteTarget::Dev(6));
    let d = diff(&FELIX, &[new.clone(), moved.clone()], &[was]);
    assert_eq!(d.add, vec![new]);
    assert_eq!(d.replace, vec![moved]);
    assert!(d.delete.is_empty());
}

#[test]
fn foreign_route_in_the_slot_is_a_conflict() {
    let want = felix("10.0.0.3/32", RouteTarget::Dev(5));
    let held = foreign("10.0.0.3/32", 4);
    let d = diff(
        &FELIX,
        std::slice::from_ref(&want),
        std::slice::from_ref(&held),
    );
    assert!(d.is_empty());
    assert_eq!(d.conflicts, vec![(want, held)]);
}

#[test]
fn duplicates_in_one_slot() {
    let want = felix("10.0.0.1/32", RouteTarget::Dev(5));
    // Two of ours in the slot, one of them right: delete the other.
    let a = felix("10.0.0.1/32", RouteTarget::Dev(6));
    let d = diff(
        &FELIX,
        std::slice::from_ref(&want),
        &[a.clone(), want.clone()],
    );
    assert!(d.replace.is_empty() && d.add.is_empty());
    assert_eq!(d.delete, vec![a.clone()]);
    // Two wrong ones: the replace overwrites the first, the second is deleted.
    let b = felix("10.0.0.1/32", RouteTarget::Dev(8));
    let d = diff(&FELIX, std::slice::from_ref(&want), &[a, b.clone()]);
    assert_eq!(d.replace, vec![want]);
    assert_eq!(d.delete, vec![b]);
}

#[test]
fn multipath_next_hops_compare_as_a_set() {
    let want = bgp("10.0.1.0/26", &["192.0.2.3", "192.0.2.2"]);
    let found = bgp("10.0.1.0/26", &["192.0.2.2", "192.0.2.3"]);
    assert!(diff(&BGPD, &[want], &[found]).is_empty());
}

#[test]
fn bgpd_repairs_missing_and_changed_and_removes_extras() {
    let want = vec![
        bgp("10.0.1.0/26", &["192.0.2.2"]),
        bgp("10.0.2.0/26", &["192.0.2.2"]),
    ];
    let stray = KernelRoute {
        metric: 0,
        ..bgp("10.0.1.0/26", &["192.0.2.2"])
    };
    let found = vec![
        bgp("10.0.2.0/26", &["192.0.2.9"]),
        bgp("10.0.3.0/26", &["192.0.2.2"]),
        // Ours by protocol but not at our metric: an extra too.
        stray.clone(),
    ];
    let d = diff(&BGPD, &want, &found);
    assert_eq!(d.add, vec![want[0].clone()]);
    assert_eq!(d.replace, vec![want[1].clone()]);
    assert_eq!(d.delete, vec![stray, found[1].clone()]);
}

/// The contract: two owners on one table. Each one's diff over the same dump
/// leaves the other's routes alone, also for the same destination.
#[test]
fn two_owners_on_one_table_do_not_disturb_each_other() {
    let f = vec![
        felix("10.0.1.5/32", RouteTarget::Dev(5)),
        felix("10.0.1.0/26", RouteTarget::Blackhole),
        felix("fd00:1::/122", RouteTarget::Blackhole),
    ];
    // bgpd has a route for felix's block too (another node announced it) and
    // one of its own.
    let b = vec![
        bgp("10.0.1.0/26", &["192.0.2.2"]),
        bgp("10.0.2.0/26", &["192.0.2.3", "192.0.2.4"]),
        bgp("fd00:1::/122", &["fd00::2"]),
    ];
    let table: Vec<KernelRoute> = f.iter().chain(&b).cloned().collect();
    // Both in step: neither writes.
    assert!(diff(&FELIX, &f, &table).is_empty());
    assert!(diff(&BGPD, &b, &table).is_empty());
    // Each wanting nothing deletes exactly its own routes.
    assert_eq!(diff(&FELIX, &[], &table).delete, {
        let mut v = f.clone();
        v.sort();
        v
    });
    assert_eq!(diff(&BGPD, &[], &table).delete, {
        let mut v = b.clone();
        v.sort();
        v
    });
    // Starting from the other's routes only: all adds, no conflict, no delete.
    let d = diff(&FELIX, &f, &b);
    assert_eq!((d.add.len(), d.replace.len(), d.delete.len()), (3, 0, 0));
    assert!(d.conflicts.is_empty());
    let d = diff(&BGPD, &b, &f);
    assert_eq!((d.add.len(), d.replace.len(), d.delete.len()), (3, 0, 0));
    assert!(d.conflicts.is_empty());
}

#[test]
fn sweep_marks_only_ours_and_forgets_what_is_wanted_again() {
    let old = bgp("10.0.3.0/26", &["192.0.2.2"]);
    let kept = bgp("10.0.4.0/26", &["192.0.2.2"]);
    let theirs = felix("10.0.5.0/26", RouteTarget::Blackhole);
    let mut s = Sweep::mark(&BGPD, &[old.clone(), kept.clone(), theirs.clone()]);
    assert_eq!(s.len(), 2);
    assert!(s.is_marked(&old) && !s.is_marked(&theirs));
    // A marked route is not an extra of a reconcile before the sweep.
    let mut d = diff(&BGPD, &[], std::slice::from_ref(&old));
    d.delete.retain(|r| !s.is_marked(r));
    assert!(d.is_empty());
    s.unmark(&kept.dst);
    assert_eq!(s.take(), vec![old]);
    assert!(s.is_empty());
}

#[test]
fn few_changes_counts_both_ways() {
    let (added, removed) = few_changes(&[1, 2, 3], &[2, 3, 4], 2).unwrap();
    assert_eq!((added, removed), (vec![&4], vec![&1]));
    assert!(few_changes(&[1, 2, 3], &[4, 5, 6], 5).is_none());
}
