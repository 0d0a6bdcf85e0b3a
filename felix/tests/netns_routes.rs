//! RouteSyncer against a real kernel, each test in its own network namespace.
//! NEEDS ROOT (see `support`).

mod support;

use felix::calc::routes::RouteSpec;
use felix::dataplane::netlink::Netlink;
use felix::dataplane::routes::{DesiredRoutes, RouteSyncer};
use ipnet::IpNet;
use support::{in_netns, ip, routes, routes6, veth};

fn wl(dst: &str, ifname: &str) -> RouteSpec {
    RouteSpec::Workload {
        dst: dst.parse().unwrap(),
        ifname: ifname.into(),
    }
}

fn bh(dst: &str) -> RouteSpec {
    RouteSpec::Blackhole {
        dst: dst.parse().unwrap(),
    }
}

fn syncer() -> RouteSyncer {
    RouteSyncer::new(Netlink::connect().expect("netlink socket"))
}

#[test]
fn add_replace_remove_with_proto_80() {
    in_netns(|| async {
        veth("caliaaaa");
        veth("calibbbb");
        let mut s = syncer();
        s.set_desired(
            DesiredRoutes::new([
                wl("10.65.0.1/32", "caliaaaa"),
                wl("10.65.0.2/32", "calibbbb"),
                bh("10.65.0.0/26"),
            ])
            .unwrap(),
        );
        let r = s.apply().await.unwrap();
        assert_eq!((r.replaced, r.deleted), (3, 0), "{r:?}");
        assert!(r.failures.is_empty() && r.pending.is_empty(), "{r:?}");
        assert_eq!(
            routes("proto 80"),
            vec![
                "10.65.0.1 dev caliaaaa scope link",
                "10.65.0.2 dev calibbbb scope link",
                "blackhole 10.65.0.0/26",
            ]
        );
        assert_eq!(s.dump().await.unwrap().len(), 3);

        // Second apply with nothing changed writes nothing.
        let r = s.apply().await.unwrap();
        assert_eq!((r.replaced, r.deleted), (0, 0), "{r:?}");

        // Move .1 to the other interface, drop .2 and the blackhole.
        s.set_desired(DesiredRoutes::new([wl("10.65.0.1/32", "calibbbb")]).unwrap());
        let r = s.apply().await.unwrap();
        assert_eq!((r.replaced, r.deleted), (1, 2), "{r:?}");
        assert_eq!(
            routes("proto 80"),
            vec!["10.65.0.1 dev calibbbb scope link"]
        );
    });
}

#[test]
fn ipv6_workload_and_blackhole() {
    in_netns(|| async {
        veth("cali6666");
        let mut s = syncer();
        s.set_desired(
            DesiredRoutes::new([wl("fd00:65::5/128", "cali6666"), bh("fd00:65::/122")]).unwrap(),
        );
        let r = s.apply().await.unwrap();
        assert_eq!(r.replaced, 2, "{r:?}");
        let got = routes6("proto 80");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("blackhole fd00:65::/122"), "{got:?}");
        assert!(got[1].starts_with("fd00:65::5 dev cali6666"), "{got:?}");
        // Dumped back in the form we wrote: nothing to do.
        let r = s.apply().await.unwrap();
        assert_eq!((r.replaced, r.deleted), (0, 0), "{r:?}");
    });
}

#[test]
fn sweep_removes_stale_proto_80_and_keeps_foreign_routes() {
    in_netns(|| async {
        veth("caliaaaa");
        // Left by an earlier felix run.
        ip("route add 10.66.0.7/32 dev caliaaaa proto 80 scope link");
        ip("route add blackhole 10.66.1.0/26 proto 80");
        // Not ours.
        ip("route add 10.66.2.0/24 dev caliaaaa proto static");
        ip("route add 10.66.3.0/26 dev caliaaaa proto bgp");
        ip("route add blackhole 10.66.4.0/26");
        let before_foreign = routes("");
        let mut s = syncer();
        s.set_desired(DesiredRoutes::new([wl("10.66.0.8/32", "caliaaaa")]).unwrap());
        let r = s.apply().await.unwrap();
        assert_eq!((r.replaced, r.deleted), (1, 2), "{r:?}");
        assert_eq!(
            routes("proto 80"),
            vec!["10.66.0.8 dev caliaaaa scope link"]
        );
        for line in before_foreign.iter().filter(|l| !l.contains("proto 80")) {
            assert!(
                routes("").contains(line),
                "foreign route {line:?} was touched"
            );
        }
        assert!(routes("proto bgp").contains(&"10.66.3.0/26 dev caliaaaa scope link".to_string()));
    });
}

#[test]
fn foreign_route_in_our_slot_is_a_conflict_not_overwritten() {
    in_netns(|| async {
        veth("caliaaaa");
        veth("calibbbb");
        ip("route add 10.67.0.1/32 dev calibbbb proto static");
        let mut s = syncer();
        s.set_desired(DesiredRoutes::new([wl("10.67.0.1/32", "caliaaaa")]).unwrap());
        let r = s.apply().await.unwrap();
        assert_eq!(r.replaced, 0, "{r:?}");
        assert_eq!(r.conflicts.len(), 1, "{r:?}");
        assert_eq!(
            routes("10.67.0.1"),
            vec!["10.67.0.1 dev calibbbb proto static scope link"]
        );
    });
}

#[test]
fn missing_interface_is_pending_until_it_appears() {
    in_netns(|| async {
        let mut s = syncer();
        let dst: IpNet = "10.68.0.3/32".parse().unwrap();
        s.set_desired(
            DesiredRoutes::new([wl("10.68.0.3/32", "calipppp"), bh("10.68.0.0/26")]).unwrap(),
        );
        let r = s.apply().await.unwrap();
        assert_eq!(r.pending, vec![(dst, "calipppp".to_string())], "{r:?}");
        assert!(r.failures.is_empty(), "{r:?}");
        assert_eq!(routes("proto 80"), vec!["blackhole 10.68.0.0/26"]);
        assert!(s.on_link_added("calipppp"));
        assert!(!s.on_link_added("caliother"));

        veth("calipppp");
        let r = s.apply().await.unwrap();
        assert!(r.pending.is_empty(), "{r:?}");
        assert_eq!(r.replaced, 1);
        assert!(!s.on_link_added("calipppp"));
        assert_eq!(
            routes("proto 80"),
            vec![
                "10.68.0.3 dev calipppp scope link",
                "blackhole 10.68.0.0/26"
            ]
        );
    });
}

#[test]
fn interface_down_is_pending_not_failure() {
    in_netns(|| async {
        ip("link add calidddd type veth peer name pcalidddd");
        let mut s = syncer();
        s.set_desired(DesiredRoutes::new([wl("10.69.0.3/32", "calidddd")]).unwrap());
        let r = s.apply().await.unwrap();
        assert_eq!(r.pending.len(), 1, "{r:?}");
        assert!(r.failures.is_empty(), "{r:?}");
        ip("link set calidddd up");
        let r = s.apply().await.unwrap();
        assert_eq!((r.replaced, r.pending.len()), (1, 0), "{r:?}");
    });
}

#[test]
fn routes_deleted_behind_our_back_are_repaired() {
    in_netns(|| async {
        veth("caliaaaa");
        veth("calibbbb");
        let mut s = syncer();
        s.set_desired(
            DesiredRoutes::new([
                wl("10.70.0.1/32", "caliaaaa"),
                wl("10.70.0.2/32", "caliaaaa"),
                bh("10.70.0.0/26"),
            ])
            .unwrap(),
        );
        s.apply().await.unwrap();
        ip("route del 10.70.0.1/32");
        ip("route del blackhole 10.70.0.0/26");
        // A hand edit pointing our route elsewhere is put back too.
        ip("route replace 10.70.0.2/32 dev calibbbb proto 80 scope link");
        let r = s.apply().await.unwrap();
        assert_eq!((r.replaced, r.deleted), (3, 0), "{r:?}");
        assert_eq!(
            routes("proto 80"),
            vec![
                "10.70.0.1 dev caliaaaa scope link",
                "10.70.0.2 dev caliaaaa scope link",
                "blackhole 10.70.0.0/26"
            ]
        );
    });
}
