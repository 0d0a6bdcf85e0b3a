//! [`KernelRoute`]s as rtnetlink messages and dumped messages back. Pure (no
//! socket), so the field choices are unit-tested.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteProtocol, RouteScope, RouteType,
};

use crate::route::{KernelRoute, RouteTarget};

/// The table the owners write to.
pub const RT_TABLE_MAIN: u32 = RouteHeader::RT_TABLE_MAIN as u32;

/// The message for `RTM_NEWROUTE` or `RTM_DELROUTE`.
///
/// Deletes carry every field given (type, protocol, oif, gateway, metric) so
/// the kernel only removes the route that matches: IPv4 `fib_table_delete()`
/// matches type, protocol and next hop when given, IPv6 `ip6_route_del()`
/// matches oif, gateway, metric and protocol. A [`RouteTarget::Via`] without
/// next hops names just the slot and protocol.
pub fn route_message(route: &KernelRoute) -> RouteMessage {
    let mut msg = RouteMessage::default();
    let header = &mut msg.header;
    header.address_family = match route.dst {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    header.destination_prefix_length = route.dst.prefix_len();
    header.tos = route.tos;
    header.table = RouteHeader::RT_TABLE_MAIN;
    header.protocol = RouteProtocol::from(route.protocol);
    header.scope = RouteScope::from(route.scope);
    header.kind = match route.target {
        RouteTarget::Blackhole => RouteType::BlackHole,
        RouteTarget::Dev(_)
        | RouteTarget::Via(_)
        | RouteTarget::OnlinkVia { .. }
        | RouteTarget::Other => RouteType::Unicast,
    };
    msg.attributes
        .push(RouteAttribute::Destination(RouteAddress::from(
            route.dst.addr(),
        )));
    match &route.target {
        RouteTarget::Dev(index) => msg.attributes.push(RouteAttribute::Oif(*index)),
        RouteTarget::Via(hops) => match hops.as_slice() {
            [] => {}
            [one] => msg
                .attributes
                .push(RouteAttribute::Gateway(RouteAddress::from(*one))),
            many => msg.attributes.push(RouteAttribute::MultiPath(
                many.iter()
                    .map(|hop| {
                        let mut nh = RouteNextHop::default();
                        nh.attributes = vec![RouteAttribute::Gateway(RouteAddress::from(*hop))];
                        nh
                    })
                    .collect(),
            )),
        },
        RouteTarget::OnlinkVia { gateway, dev } => {
            msg.header.flags |= RouteFlags::Onlink;
            msg.attributes
                .push(RouteAttribute::Gateway(RouteAddress::from(*gateway)));
            msg.attributes.push(RouteAttribute::Oif(*dev));
        }
        RouteTarget::Blackhole | RouteTarget::Other => {}
    }
    // IPv4's default metric is 0 and then the attribute is left out, as `ip` does.
    if route.metric != 0 {
        msg.attributes.push(RouteAttribute::Priority(route.metric));
    }
    msg
}

fn gateway(attrs: &[RouteAttribute]) -> Option<IpAddr> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(a)) => Some(IpAddr::V4(*a)),
        RouteAttribute::Gateway(RouteAddress::Inet6(a)) => Some(IpAddr::V6(*a)),
        _ => None,
    })
}

/// Decodes one dumped route. Returns `None` for routes outside the main table
/// and for families other than IPv4/IPv6 (the dump includes local, MPLS ...).
pub fn parse_route(msg: &RouteMessage) -> Option<KernelRoute> {
    let mut table = u32::from(msg.header.table);
    let mut dst_addr = None;
    let mut oif = None;
    let mut metric = 0;
    let mut gateways = Vec::new();
    let mut odd_hop = false;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(a)) => dst_addr = Some(IpAddr::V4(*a)),
            RouteAttribute::Destination(RouteAddress::Inet6(a)) => dst_addr = Some(IpAddr::V6(*a)),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::Gateway(RouteAddress::Inet(a)) => gateways.push(IpAddr::V4(*a)),
            RouteAttribute::Gateway(RouteAddress::Inet6(a)) => gateways.push(IpAddr::V6(*a)),
            RouteAttribute::MultiPath(hops) => {
                for hop in hops {
                    match gateway(&hop.attributes) {
                        Some(g) => gateways.push(g),
                        None => odd_hop = true,
                    }
                }
            }
            RouteAttribute::Gateway(_) | RouteAttribute::Via(_) => odd_hop = true,
            _ => {}
        }
    }
    if table != RT_TABLE_MAIN {
        return None;
    }
    let plen = msg.header.destination_prefix_length;
    // No RTA_DST means the default route of the family.
    let dst = match (msg.header.address_family, dst_addr) {
        (AddressFamily::Inet, Some(a @ IpAddr::V4(_)))
        | (AddressFamily::Inet6, Some(a @ IpAddr::V6(_))) => IpNet::new(a, plen).ok()?,
        (AddressFamily::Inet, None) => IpNet::new(IpAddr::V4(0.into()), plen).ok()?,
        (AddressFamily::Inet6, None) => IpNet::new(IpAddr::V6(0.into()), plen).ok()?,
        _ => return None,
    };
    let onlink = msg.header.flags.contains(RouteFlags::Onlink);
    let target = match (msg.header.kind, oif, gateways.is_empty(), odd_hop) {
        // IPv6 blackholes are reported with oif = lo; the type is what matters.
        (RouteType::BlackHole, ..) => RouteTarget::Blackhole,
        // An onlink gateway route: its device is part of the route.
        (RouteType::Unicast, Some(dev), false, false) if onlink && gateways.len() == 1 => {
            RouteTarget::OnlinkVia {
                gateway: gateways[0],
                dev,
            }
        }
        (RouteType::Unicast, Some(index), true, false) => RouteTarget::Dev(index),
        // A gateway route's oif is the kernel's choice, not part of the route.
        (RouteType::Unicast, _, false, false) => RouteTarget::via(gateways),
        _ => RouteTarget::Other,
    };
    Some(KernelRoute {
        dst,
        tos: msg.header.tos,
        metric,
        protocol: u8::from(msg.header.protocol),
        scope: u8::from(msg.header.scope),
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner::IPV6_DEFAULT_METRIC;
    use crate::route::SCOPE_LINK;
    use crate::{BGPD, FELIX};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn workload_v4_message_fields() {
        let m = route_message(&FELIX.route(net("10.244.1.5/32"), RouteTarget::Dev(7)));
        assert_eq!(m.header.address_family, AddressFamily::Inet);
        assert_eq!(m.header.destination_prefix_length, 32);
        assert_eq!(m.header.protocol, RouteProtocol::Other(FELIX.protocol));
        assert_eq!(m.header.scope, RouteScope::Link);
        assert_eq!(m.header.kind, RouteType::Unicast);
        assert_eq!(m.header.table, RouteHeader::RT_TABLE_MAIN);
        assert!(m.attributes.contains(&RouteAttribute::Oif(7)));
        assert!(
            !m.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Priority(_)))
        );
    }

    #[test]
    fn blackhole_v6_message_fields() {
        let m = route_message(&FELIX.route(net("fd00:1::/122"), RouteTarget::Blackhole));
        assert_eq!(m.header.address_family, AddressFamily::Inet6);
        assert_eq!(m.header.kind, RouteType::BlackHole);
        assert_eq!(m.header.scope, RouteScope::Universe);
        assert!(
            m.attributes
                .contains(&RouteAttribute::Priority(IPV6_DEFAULT_METRIC))
        );
        assert!(
            !m.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Oif(_)))
        );
    }

    #[test]
    fn single_next_hop_is_a_gateway_route_at_bgpds_metric() {
        let m = route_message(&BGPD.route(
            net("10.244.1.0/26"),
            RouteTarget::via(vec![ip("192.0.2.2")]),
        ));
        assert_eq!(u8::from(m.header.protocol), BGPD.protocol);
        assert_eq!(m.header.destination_prefix_length, 26);
        assert!(
            m.attributes
                .contains(&RouteAttribute::Gateway(RouteAddress::Inet(
                    "192.0.2.2".parse().unwrap()
                )))
        );
        assert!(
            m.attributes
                .contains(&RouteAttribute::Priority(BGPD.metric_v4))
        );
    }

    #[test]
    fn ecmp_is_one_multipath_route() {
        let m = route_message(&BGPD.route(
            net("fd00:1::/64"),
            RouteTarget::via(vec![ip("fd00::2"), ip("fd00::3")]),
        ));
        assert_eq!(m.header.address_family, AddressFamily::Inet6);
        let mp = m.attributes.iter().find_map(|a| match a {
            RouteAttribute::MultiPath(v) => Some(v.len()),
            _ => None,
        });
        assert_eq!(mp, Some(2));
    }

    #[test]
    fn slot_delete_names_protocol_and_metric_only() {
        let m = route_message(&BGPD.slot(net("10.0.0.0/8")));
        assert_eq!(u8::from(m.header.protocol), BGPD.protocol);
        assert!(
            m.attributes
                .contains(&RouteAttribute::Priority(BGPD.metric_v4))
        );
        assert!(!m.attributes.iter().any(|a| matches!(
            a,
            RouteAttribute::Gateway(_) | RouteAttribute::MultiPath(_) | RouteAttribute::Oif(_)
        )));
    }

    #[test]
    fn parse_round_trips_what_we_write() {
        for r in [
            FELIX.route(net("10.244.1.5/32"), RouteTarget::Dev(7)),
            FELIX.route(net("10.244.1.0/26"), RouteTarget::Blackhole),
            FELIX.route(net("fd00::5/128"), RouteTarget::Dev(9)),
            BGPD.route(
                net("10.244.2.0/26"),
                RouteTarget::via(vec![ip("192.0.2.1")]),
            ),
            BGPD.route(
                net("fd00:2::/64"),
                RouteTarget::via(vec![ip("fd00::3"), ip("fd00::2")]),
            ),
            FELIX.route(
                net("10.65.0.64/26"),
                RouteTarget::OnlinkVia {
                    gateway: ip("10.65.0.65"),
                    dev: 12,
                },
            ),
        ] {
            assert_eq!(parse_route(&route_message(&r)), Some(r));
        }
    }

    #[test]
    fn onlink_route_carries_the_flag_gateway_and_device() {
        let m = route_message(&FELIX.route(
            net("10.65.0.64/26"),
            RouteTarget::OnlinkVia {
                gateway: ip("10.65.0.65"),
                dev: 12,
            },
        ));
        assert!(m.header.flags.contains(RouteFlags::Onlink));
        assert_eq!(m.header.scope, RouteScope::Universe);
        assert!(m.attributes.contains(&RouteAttribute::Oif(12)));
        assert!(
            m.attributes
                .contains(&RouteAttribute::Gateway(RouteAddress::Inet(
                    "10.65.0.65".parse().unwrap()
                )))
        );
        // The same route without the flag is a plain gateway route.
        let mut plain = m.clone();
        plain.header.flags = RouteFlags::empty();
        assert_eq!(
            parse_route(&plain).unwrap().target,
            RouteTarget::via(vec![ip("10.65.0.65")])
        );
    }

    #[test]
    fn parse_gateway_route_ignores_the_kernels_oif() {
        let r = BGPD.route(
            net("10.244.2.0/26"),
            RouteTarget::via(vec![ip("192.0.2.1")]),
        );
        let mut m = route_message(&r);
        m.attributes.push(RouteAttribute::Oif(3));
        assert_eq!(parse_route(&m), Some(r));
    }

    #[test]
    fn parse_classifies_foreign_shapes() {
        // IPv6 blackhole reported with oif = lo.
        let mut m = route_message(&FELIX.route(net("fd00::/64"), RouteTarget::Blackhole));
        m.attributes.push(RouteAttribute::Oif(1));
        assert_eq!(parse_route(&m).unwrap().target, RouteTarget::Blackhole);
        // Unreachable: neither of the shapes the owners write.
        let mut m = route_message(&FELIX.route(net("10.0.0.0/8"), RouteTarget::Blackhole));
        m.header.kind = RouteType::Unreachable;
        let r = parse_route(&m).unwrap();
        assert_eq!((r.target, r.scope), (RouteTarget::Other, 0));
        // A device route with scope link kept as reported.
        let mut m = route_message(&FELIX.route(net("10.0.0.1/32"), RouteTarget::Dev(2)));
        m.header.protocol = RouteProtocol::Other(186);
        let r = parse_route(&m).unwrap();
        assert_eq!((r.protocol, r.scope), (186, SCOPE_LINK));
        // The local table is not ours to look at.
        let mut m = route_message(&FELIX.route(net("10.0.0.1/32"), RouteTarget::Dev(2)));
        m.header.table = 255;
        assert_eq!(parse_route(&m), None);
        // Table ids above 255 come as RTA_TABLE with header.table = RT_TABLE_UNSPEC.
        let mut m = route_message(&FELIX.route(net("10.0.0.1/32"), RouteTarget::Dev(2)));
        m.header.table = 0;
        m.attributes.push(RouteAttribute::Table(1000));
        assert_eq!(parse_route(&m), None);
    }

    #[test]
    fn parse_default_route_without_destination() {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.kind = RouteType::Unicast;
        m.attributes.push(RouteAttribute::Oif(2));
        assert_eq!(parse_route(&m).unwrap().dst, net("0.0.0.0/0"));
    }
}
