use std::net::Ipv4Addr;

use super::*;
use crate::wire::AsPath;

fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn policy(rr: bool) -> Policy {
    Policy {
        local_as: 64512,
        router_id: ip4("10.0.0.1"),
        cluster_id: rr.then(|| ip4("10.0.0.1")),
    }
}

fn target(peer: u32, internal: bool, rr_client: bool) -> Target {
    Target {
        peer: PeerId(peer),
        internal,
        rr_client,
        local_v4: Some(ip4("192.0.2.1")),
        local_v6: None,
        families: vec![Family::IPV4_UNICAST],
    }
}

fn source(peer: u32, internal: bool, rr_client: bool) -> Source {
    Source {
        peer: PeerId(peer),
        router_id: ip4(&format!("10.0.0.{}", peer + 10)),
        internal,
        rr_client,
    }
}

fn learned(path: &[u32], nh: &str) -> RouteAttrs {
    let a = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(path.to_vec())),
        med: Some(5),
        local_pref: Some(150),
        ..Default::default()
    };
    RouteAttrs::new(a, NextHop::V4(ip4(nh)))
}

fn prefix() -> IpNet {
    "10.244.1.0/26".parse().unwrap()
}

#[test]
fn import_rejects_loops() {
    let p = policy(true);
    let mut a = learned(&[65001, 64512], "192.0.2.9").attrs;
    assert_eq!(
        p.import(&source(1, false, false), &a),
        Err(Rejected::AsLoop(64512))
    );
    a.as_path = Some(AsPath::default());
    a.originator_id = Some(ip4("10.0.0.1"));
    assert!(matches!(
        p.import(&source(1, true, false), &a),
        Err(Rejected::OriginatorLoop(_))
    ));
    a.originator_id = None;
    a.cluster_list = vec![ip4("10.0.0.1")];
    assert!(matches!(
        p.import(&source(1, true, false), &a),
        Err(Rejected::ClusterLoop(_))
    ));
    a.cluster_list.clear();
    assert_eq!(p.import(&source(1, true, false), &a), Ok(()));
}

#[test]
fn originated_to_ibgp_gets_next_hop_self_and_local_pref() {
    let p = policy(false);
    let o = p.originate(&prefix());
    let out = p
        .export(&prefix(), &o, None, &target(1, true, false))
        .unwrap();
    assert_eq!(out.next_hop, NextHop::V4(ip4("192.0.2.1")));
    assert_eq!(out.attrs.local_pref, Some(100));
    assert_eq!(out.attrs.as_path, Some(AsPath::default()));
}

#[test]
fn ebgp_export_prepends_and_strips() {
    let p = policy(false);
    let out = p
        .export(
            &prefix(),
            &learned(&[65001], "192.0.2.9"),
            Some(&source(2, false, false)),
            &target(1, false, false),
        )
        .unwrap();
    assert_eq!(
        out.attrs.as_path,
        Some(AsPath::sequence(vec![64512, 65001]))
    );
    assert_eq!(out.attrs.local_pref, None);
    assert_eq!(out.attrs.med, None);
    assert_eq!(out.next_hop, NextHop::V4(ip4("192.0.2.1")));
}

#[test]
fn ibgp_split_horizon_without_reflection() {
    let p = policy(false);
    let r = learned(&[], "192.0.2.9");
    assert!(
        p.export(
            &prefix(),
            &r,
            Some(&source(2, true, false)),
            &target(1, true, false)
        )
        .is_none()
    );
    // Never back to the source.
    assert!(
        p.export(
            &prefix(),
            &r,
            Some(&source(1, false, false)),
            &target(1, false, false)
        )
        .is_none()
    );
}

#[test]
fn reflector_rules_rfc4456() {
    let p = policy(true);
    let r = learned(&[], "192.0.2.9");
    // Non-client to non-client: no.
    assert!(
        p.export(
            &prefix(),
            &r,
            Some(&source(2, true, false)),
            &target(1, true, false)
        )
        .is_none()
    );
    // Non-client to client: yes, with ORIGINATOR_ID and CLUSTER_LIST, next hop kept.
    let out = p
        .export(
            &prefix(),
            &r,
            Some(&source(2, true, false)),
            &target(1, true, true),
        )
        .unwrap();
    assert_eq!(out.attrs.originator_id, Some(ip4("10.0.0.12")));
    assert_eq!(out.attrs.cluster_list, vec![ip4("10.0.0.1")]);
    assert_eq!(out.next_hop, NextHop::V4(ip4("192.0.2.9")));
    // Client to non-client: yes.
    assert!(
        p.export(
            &prefix(),
            &r,
            Some(&source(2, true, true)),
            &target(1, true, false)
        )
        .is_some()
    );
}

#[test]
fn well_known_communities() {
    let p = policy(false);
    let mut r = learned(&[65001], "192.0.2.9");
    r.attrs.communities = vec![Community::NO_EXPORT];
    let from = source(2, false, false);
    assert!(
        p.export(&prefix(), &r, Some(&from), &target(1, false, false))
            .is_none()
    );
    assert!(
        p.export(&prefix(), &r, Some(&from), &target(1, true, false))
            .is_some()
    );
    r.attrs.communities = vec![Community::NO_ADVERTISE];
    assert!(
        p.export(&prefix(), &r, Some(&from), &target(1, true, false))
            .is_none()
    );
}

#[test]
fn family_not_negotiated_is_not_exported() {
    let p = policy(false);
    let v6: IpNet = "fd00::/64".parse().unwrap();
    let o = p.originate(&v6);
    let mut t = target(1, true, false);
    assert!(p.export(&v6, &o, None, &t).is_none());
    t.families.push(Family::IPV6_UNICAST);
    // Negotiated but no IPv6 address on the session: no usable next hop.
    assert!(p.export(&v6, &o, None, &t).is_none());
    t.local_v6 = Some("fd00::1".parse().unwrap());
    assert!(p.export(&v6, &o, None, &t).is_some());
}
