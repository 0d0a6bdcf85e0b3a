//! Encoding [`KernelRoute`]s as rtnetlink messages and decoding dumps back.
//! Pure (no socket), so the field choices are unit-tested.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};

use super::{KernelRoute, RouteTarget};

/// The table felix writes to.
pub const RT_TABLE_MAIN: u32 = RouteHeader::RT_TABLE_MAIN as u32;

/// The message for `RTM_NEWROUTE` (with `NLM_F_REPLACE`) or `RTM_DELROUTE`.
///
/// Deletes carry every field (type, protocol, oif, metric) so the kernel only
/// removes the route that exactly matches: IPv4 `fib_table_delete()` matches
/// type, protocol and next hop when given, IPv6 `ip6_route_del()` matches oif,
/// metric and protocol.
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
        RouteTarget::Dev(_) | RouteTarget::Other => RouteType::Unicast,
    };
    msg.attributes
        .push(RouteAttribute::Destination(RouteAddress::from(
            route.dst.addr(),
        )));
    if let RouteTarget::Dev(index) = route.target {
        msg.attributes.push(RouteAttribute::Oif(index));
    }
    // IPv4's default metric is 0 and then the attribute is left out, as `ip` does.
    if route.metric != 0 {
        msg.attributes.push(RouteAttribute::Priority(route.metric));
    }
    msg
}

/// Decodes one dumped route. Returns `None` for routes outside the main table
/// and for families other than IPv4/IPv6 (the dump includes local, MPLS ...).
pub fn parse_route(msg: &RouteMessage) -> Option<KernelRoute> {
    let mut table = u32::from(msg.header.table);
    let mut dst_addr = None;
    let mut oif = None;
    let mut metric = 0;
    let mut has_gateway = false;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(a)) => dst_addr = Some(IpAddr::V4(*a)),
            RouteAttribute::Destination(RouteAddress::Inet6(a)) => dst_addr = Some(IpAddr::V6(*a)),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::Gateway(_) | RouteAttribute::Via(_) | RouteAttribute::MultiPath(_) => {
                has_gateway = true
            }
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
    let target = match (msg.header.kind, oif, has_gateway) {
        // IPv6 blackholes are reported with oif = lo; the type is what matters.
        (RouteType::BlackHole, _, _) => RouteTarget::Blackhole,
        (RouteType::Unicast, Some(index), false) => RouteTarget::Dev(index),
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

/// `ip route` syntax, with `dev #<index>` since names are resolved elsewhere.
impl fmt::Display for KernelRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.target {
            RouteTarget::Dev(index) => write!(f, "{} dev #{index}", self.dst)?,
            RouteTarget::Blackhole => write!(f, "blackhole {}", self.dst)?,
            RouteTarget::Other => write!(f, "{} (other)", self.dst)?,
        }
        if self.tos != 0 {
            write!(f, " tos {:#x}", self.tos)?;
        }
        match self.scope {
            super::SCOPE_UNIVERSE => {}
            super::SCOPE_LINK => write!(f, " scope link")?,
            s => write!(f, " scope {s}")?,
        }
        write!(f, " proto {} metric {}", self.protocol, self.metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::routes::{IPV6_DEFAULT_METRIC, RTPROT_FELIX, SCOPE_LINK};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn workload_v4_message_fields() {
        let r = KernelRoute::felix(net("10.244.1.5/32"), RouteTarget::Dev(7));
        let m = route_message(&r);
        assert_eq!(m.header.address_family, AddressFamily::Inet);
        assert_eq!(m.header.destination_prefix_length, 32);
        assert_eq!(m.header.protocol, RouteProtocol::Other(RTPROT_FELIX));
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
        let r = KernelRoute::felix(net("fd00:1::/122"), RouteTarget::Blackhole);
        let m = route_message(&r);
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
    fn parse_round_trips_what_we_write() {
        for r in [
            KernelRoute::felix(net("10.244.1.5/32"), RouteTarget::Dev(7)),
            KernelRoute::felix(net("10.244.1.0/26"), RouteTarget::Blackhole),
            KernelRoute::felix(net("fd00::5/128"), RouteTarget::Dev(9)),
        ] {
            assert_eq!(parse_route(&route_message(&r)), Some(r));
        }
    }

    #[test]
    fn parse_classifies_foreign_shapes() {
        // A gateway route of bgpd in the main table.
        let mut m = route_message(&KernelRoute::felix(
            net("10.244.2.0/26"),
            RouteTarget::Dev(2),
        ));
        m.header.protocol = RouteProtocol::Other(186);
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(
                "192.0.2.1".parse().unwrap(),
            )));
        let r = parse_route(&m).unwrap();
        assert_eq!(
            (r.target, r.protocol, r.scope),
            (RouteTarget::Other, 186, SCOPE_LINK)
        );
        // IPv6 blackhole reported with oif = lo.
        let mut m = route_message(&KernelRoute::felix(
            net("fd00::/64"),
            RouteTarget::Blackhole,
        ));
        m.attributes.push(RouteAttribute::Oif(1));
        assert_eq!(parse_route(&m).unwrap().target, RouteTarget::Blackhole);
        // The local table is not ours to look at.
        let mut m = route_message(&KernelRoute::felix(net("10.0.0.1/32"), RouteTarget::Dev(2)));
        m.header.table = 255;
        assert_eq!(parse_route(&m), None);
        // Table ids above 255 come as RTA_TABLE with header.table = RT_TABLE_UNSPEC.
        let mut m = route_message(&KernelRoute::felix(net("10.0.0.1/32"), RouteTarget::Dev(2)));
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

    #[test]
    fn display_is_ip_route_like() {
        let r = KernelRoute::felix(net("10.244.1.5/32"), RouteTarget::Dev(7));
        assert_eq!(
            r.to_string(),
            "10.244.1.5/32 dev #7 scope link proto 80 metric 0"
        );
        let b = KernelRoute::felix(net("fd00::/122"), RouteTarget::Blackhole);
        assert_eq!(b.to_string(), "blackhole fd00::/122 proto 80 metric 1024");
    }
}
