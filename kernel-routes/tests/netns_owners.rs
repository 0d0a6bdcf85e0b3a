//! The ownership contract against a real kernel: felix's and bgpd's routes on one
//! main table, written through this crate, never disturb each other.
//!
//! NEEDS ROOT (CAP_SYS_ADMIN for `unshare(CLONE_NEWNET)`). Each test runs on a
//! thread that first moves itself into a new, anonymous network namespace; the
//! kernel destroys it with everything inside when the thread ends, also on a
//! panic. Nothing is created in the root namespace.

use std::net::IpAddr;

use ipnet::IpNet;
use kernel_routes::{
    BGPD, FELIX, KernelRoute, Netlink, Outcome, Owner, RouteOp, RouteTarget, Sweep, diff,
    dump_routes, execute,
};
use netns_kit::{in_new_netns as in_netns, sh};

/// `ip <args>` split on whitespace; its stdout.
fn ip(args: &str) -> String {
    let argv: Vec<&str> = std::iter::once("ip")
        .chain(args.split_whitespace())
        .collect();
    sh(&argv)
}

/// `ip route show <selector>` as trimmed, sorted lines, a multipath route's
/// `nexthop` lines folded into its own; IPv6 too unless the selector is an IPv4
/// address.
fn routes(selector: &str) -> Vec<String> {
    let mut text = ip(&format!("route show {selector}"));
    if !selector.contains('.') {
        text += &ip(&format!("-6 route show {selector}"));
    }
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        match lines.last_mut() {
            Some(last) if line.starts_with("nexthop") => {
                last.push(' ');
                last.push_str(&line);
            }
            _ if line.is_empty() => {}
            _ => lines.push(line),
        }
    }
    lines.sort();
    lines
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A veth `d0` (up, peer `pd0`) with 192.0.2.1/24 and fd00:2::1/64, so the bgp next
/// hops 192.0.2.2/.3 and fd00:2::2 are on link. Returns its ifindex.
async fn link(nl: &Netlink) -> u32 {
    ip("link add d0 type veth peer name pd0");
    ip("link set pd0 up");
    ip("link set d0 up");
    ip("addr add 192.0.2.1/24 dev d0");
    ip("addr add fd00:2::1/64 dev d0 nodad");
    nl.link_index("d0").await.unwrap().expect("d0 exists")
}

/// One sync of `owner` to `desired`, the way felix and bgpd do it: dump, diff,
/// write. Returns the outcomes that were not [`Outcome::Done`].
async fn sync(nl: &Netlink, owner: &Owner, desired: &[KernelRoute]) -> Vec<(RouteOp, Outcome)> {
    let actual = dump_routes(nl.handle()).await.unwrap();
    let d = diff(owner, desired, &actual);
    assert!(d.conflicts.is_empty(), "{:?}", d.conflicts);
    let writes = d
        .add
        .into_iter()
        .map(|r| (RouteOp::Add, r))
        .chain(d.replace.into_iter().map(|r| (RouteOp::Replace, r)))
        .chain(d.delete.into_iter().map(|r| (RouteOp::Delete, r)));
    execute(nl.handle(), writes, 8)
        .await
        .into_iter()
        .filter(|w| !w.outcome.is_done())
        .map(|w| (w.op, w.outcome))
        .collect()
}

fn felix_routes(dev: u32) -> Vec<KernelRoute> {
    vec![
        FELIX.route(net("10.0.1.5/32"), RouteTarget::Dev(dev)),
        FELIX.route(net("10.0.1.0/26"), RouteTarget::Blackhole),
        FELIX.route(net("fd00:1::5/128"), RouteTarget::Dev(dev)),
    ]
}

fn bgpd_routes() -> Vec<KernelRoute> {
    vec![
        // The same block felix holds a blackhole for (another node announced
        // it): its own slot, behind felix's route.
        BGPD.route(
            net("10.0.1.0/26"),
            RouteTarget::via(vec![addr("192.0.2.2")]),
        ),
        BGPD.route(
            net("10.0.2.0/26"),
            RouteTarget::via(vec![addr("192.0.2.3"), addr("192.0.2.2")]),
        ),
        BGPD.route(
            net("fd00:1::5/128"),
            RouteTarget::via(vec![addr("fd00:2::2")]),
        ),
    ]
}

#[test]
fn two_owners_on_one_table_do_not_disturb_each_other() {
    in_netns(|| async {
        let nl = Netlink::connect().unwrap();
        let dev = link(&nl).await;
        let (f, b) = (felix_routes(dev), bgpd_routes());

        assert_eq!(sync(&nl, &FELIX, &f).await, vec![]);
        assert_eq!(sync(&nl, &BGPD, &b).await, vec![]);
        let felix_lines = routes("proto 80");
        let bgp_lines = routes("proto bgp");
        assert_eq!(felix_lines.len(), 3, "{felix_lines:?}");
        assert_eq!(bgp_lines.len(), 3, "{bgp_lines:?}");
        assert!(
            bgp_lines.contains(&"10.0.1.0/26 via 192.0.2.2 dev d0 metric 1536".to_string()),
            "{bgp_lines:?}"
        );

        // Read back: each owner finds its routes exactly as it wrote them.
        let table = dump_routes(nl.handle()).await.unwrap();
        assert!(diff(&FELIX, &f, &table).is_empty());
        assert!(diff(&BGPD, &b, &table).is_empty());

        // bgpd changes its mind (another next hop, one route gone): felix's
        // routes stay as they are, and the other way round.
        let b2 = vec![BGPD.route(
            net("10.0.1.0/26"),
            RouteTarget::via(vec![addr("192.0.2.3")]),
        )];
        assert_eq!(sync(&nl, &BGPD, &b2).await, vec![]);
        assert_eq!(routes("proto 80"), felix_lines);
        assert_eq!(
            routes("proto bgp"),
            vec!["10.0.1.0/26 via 192.0.2.3 dev d0 metric 1536"]
        );
        assert_eq!(sync(&nl, &FELIX, &[]).await, vec![]);
        assert_eq!(routes("proto 80"), Vec::<String>::new());
        assert_eq!(
            routes("proto bgp"),
            vec!["10.0.1.0/26 via 192.0.2.3 dev d0 metric 1536"]
        );
    });
}

#[test]
fn exclusive_add_leaves_a_foreign_route_in_the_slot() {
    in_netns(|| async {
        let nl = Netlink::connect().unwrap();
        let dev = link(&nl).await;
        // A route that appeared after the dump, in felix's slot.
        ip("route add 10.0.3.7/32 dev d0 proto static");
        let mine = FELIX.route(net("10.0.3.7/32"), RouteTarget::Dev(dev));
        let out = execute(nl.handle(), [(RouteOp::Add, mine.clone())], 1).await;
        assert_eq!(out[0].outcome, Outcome::SlotTaken);
        assert_eq!(
            routes("10.0.3.7"),
            vec!["10.0.3.7 dev d0 proto static scope link"]
        );
        // The next diff sees it and calls it a conflict instead of writing.
        let table = dump_routes(nl.handle()).await.unwrap();
        let d = diff(&FELIX, &[mine], &table);
        assert!(d.is_empty());
        assert_eq!(d.conflicts.len(), 1);
        // A delete of ours in that slot does not touch it either.
        let out = execute(
            nl.handle(),
            [(RouteOp::Delete, FELIX.slot(net("10.0.3.7/32")))],
            1,
        )
        .await;
        assert_eq!(out[0].outcome, Outcome::Done);
        assert_eq!(routes("10.0.3.7").len(), 1);
    });
}

#[test]
fn sweep_at_start_removes_only_the_owners_stale_routes() {
    in_netns(|| async {
        let nl = Netlink::connect().unwrap();
        let dev = link(&nl).await;
        assert_eq!(sync(&nl, &FELIX, &felix_routes(dev)).await, vec![]);
        // Left by an earlier bgpd run: one at its metric, one at an old one.
        ip("route add 10.0.4.0/26 via 192.0.2.2 proto bgp metric 1536");
        ip("route add 10.0.5.0/26 via 192.0.2.2 proto bgp");
        let found = dump_routes(nl.handle()).await.unwrap();
        let mut sweep = Sweep::mark(&BGPD, &found);
        assert_eq!(sweep.len(), 2);
        // Re-announced before the sweep: kept.
        sweep.unmark(&net("10.0.4.0/26"));
        let stale = sweep.take();
        let out = execute(
            nl.handle(),
            stale.into_iter().map(|r| (RouteOp::Delete, r)),
            4,
        )
        .await;
        assert!(out.iter().all(|w| w.outcome.is_done()), "{out:?}");
        assert_eq!(
            routes("proto bgp"),
            vec!["10.0.4.0/26 via 192.0.2.2 dev d0 metric 1536"]
        );
        assert_eq!(routes("proto 80").len(), 3);
    });
}
