//! The pod side, run inside the pod's namespace (see [`crate::netns`]): `eth0` up with
//! `<ip>/32`, `169.254.1.1 dev eth0 scope link`, `default via 169.254.1.1`, and a permanent
//! neighbour entry for the gateway; plus the read-back CHECK compares against.
//!
//! Every pod reaches the same fake gateway 169.254.1.1: the host side answers ARP for it
//! (proxy_arp on caliX) and routes the pod's traffic. IPv6 pods route via the link-local
//! address the host side derives from its fixed MAC.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::neighbour::NeighbourState;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope,
};
use rtnetlink::{Handle, RouteMessageBuilder};

use crate::error::{CniError, NETLINK_FAILURE, Result};
use crate::link::{self, HOST_MAC, Link, netlink_error};

/// The IPv4 gateway every pod uses.
pub const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The host side's IPv6 link-local address: EUI-64 of [`HOST_MAC`] (RFC 4291 appendix A:
/// insert ff:fe in the middle, invert the universal/local bit, so ee -> ec).
pub const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee);

/// The pod interface after configuration.
#[derive(Clone, Debug)]
pub struct PodInterface {
    pub index: u32,
    pub mac: String,
}

/// Configures `ifname` (already moved into this namespace) with `addresses` (host prefixes).
pub async fn configure(h: Handle, ifname: String, addresses: Vec<IpNet>) -> Result<PodInterface> {
    let link = require(&h, &ifname).await?;
    link::set_up(&h, link.index, &ifname).await?;
    let idx = link.index;
    for addr in &addresses {
        let mut req = h.address().add(idx, addr.addr(), addr.prefix_len());
        if addr.addr().is_ipv6() {
            // A /128 on a point-to-point veth cannot collide; DAD would only delay use.
            req.message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        req.execute()
            .await
            .map_err(|e| netlink_error(format!("adding {addr} to {ifname}"), e))?;
    }
    if addresses.iter().any(|a| a.addr().is_ipv4()) {
        // The gateway is on the link; then the default route can use it.
        let onlink = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(GATEWAY_V4, 32)
            .output_interface(idx)
            .scope(RouteScope::Link)
            .build();
        add_route(
            &h,
            onlink,
            &format!("{GATEWAY_V4}/32 dev {ifname} scope link"),
        )
        .await?;
        let default = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(GATEWAY_V4)
            .output_interface(idx)
            .build();
        add_route(
            &h,
            default,
            &format!("default via {GATEWAY_V4} dev {ifname}"),
        )
        .await?;
        // Saves the first ARP round trip; the host would answer it by proxy ARP anyway.
        h.neighbours()
            .add(idx, IpAddr::V4(GATEWAY_V4))
            .link_layer_address(&HOST_MAC)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(|e| netlink_error(format!("adding neighbour {GATEWAY_V4} on {ifname}"), e))?;
    }
    if addresses.iter().any(|a| a.addr().is_ipv6()) {
        let default = RouteMessageBuilder::<Ipv6Addr>::new()
            .gateway(GATEWAY_V6)
            .output_interface(idx)
            .build();
        add_route(
            &h,
            default,
            &format!("default via {GATEWAY_V6} dev {ifname}"),
        )
        .await?;
    }
    Ok(PodInterface {
        index: idx,
        mac: link::format_mac(&link.mac),
    })
}

async fn add_route(h: &Handle, msg: RouteMessage, what: &str) -> Result<()> {
    h.route()
        .add(msg)
        .execute()
        .await
        .map_err(|e| netlink_error(format!("adding route {what}"), e))
}

async fn require(h: &Handle, ifname: &str) -> Result<Link> {
    link::by_name(h, ifname).await?.ok_or_else(|| {
        CniError::new(
            NETLINK_FAILURE,
            format!("interface {ifname} is not in the pod namespace"),
            "the veth peer did not arrive",
        )
    })
}

/// What CHECK compares: the pod interface, its addresses and the main-table routes through it.
#[derive(Clone, Debug, Default)]
pub struct PodState {
    pub link: Option<Link>,
    pub addresses: Vec<IpNet>,
    /// (destination, gateway) of main-table routes whose output interface is the pod's.
    pub routes: Vec<(IpNet, Option<IpAddr>)>,
}

pub async fn inspect(h: Handle, ifname: String) -> Result<PodState> {
    let Some(link) = link::by_name(&h, &ifname).await? else {
        return Ok(PodState::default());
    };
    let idx = link.index;
    let mut state = PodState {
        link: Some(link),
        ..PodState::default()
    };
    let mut addrs = h.address().get().set_link_index_filter(idx).execute();
    while let Some(msg) = addrs
        .try_next()
        .await
        .map_err(|e| netlink_error(format!("listing addresses of {ifname}"), e))?
    {
        for attr in msg.attributes {
            if let AddressAttribute::Address(ip) = attr
                && let Ok(net) = IpNet::new(ip, msg.header.prefix_len)
            {
                state.addresses.push(net);
            }
        }
    }
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut query = RouteMessage::default();
        query.header.address_family = family;
        let mut routes = h.route().get(query).execute();
        while let Some(msg) = routes
            .try_next()
            .await
            .map_err(|e| netlink_error(format!("listing routes of {ifname}"), e))?
        {
            if let Some(route) = route_via(&msg, idx) {
                state.routes.push(route);
            }
        }
    }
    Ok(state)
}

/// (dst, gateway) of a main-table route out of `index`.
fn route_via(msg: &RouteMessage, index: u32) -> Option<(IpNet, Option<IpAddr>)> {
    let mut table = u32::from(msg.header.table);
    let (mut dst, mut gw, mut oif) = (None, None, None);
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(a) => dst = addr(a),
            RouteAttribute::Gateway(a) => gw = addr(a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) || oif != Some(index) {
        return None;
    }
    // No RTA_DST: the family's default route.
    let dst = dst.unwrap_or(match msg.header.address_family {
        AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    });
    Some((
        IpNet::new(dst, msg.header.destination_prefix_length).ok()?,
        gw,
    ))
}

fn addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// The routes [`configure`] installs for `addresses`, as (dst, gateway).
pub fn expected_routes(addresses: &[IpNet]) -> Vec<(IpNet, Option<IpAddr>)> {
    let mut out = Vec::new();
    if addresses.iter().any(|a| a.addr().is_ipv4()) {
        out.push((IpNet::from(IpAddr::V4(GATEWAY_V4)), None));
        out.push((
            IpNet::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0).expect("/0 is valid"),
            Some(IpAddr::V4(GATEWAY_V4)),
        ));
    }
    if addresses.iter().any(|a| a.addr().is_ipv6()) {
        out.push((
            IpNet::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0).expect("/0 is valid"),
            Some(IpAddr::V6(GATEWAY_V6)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_gateway_is_the_eui64_of_the_host_mac() {
        // RFC 4291 appendix A: ee:ee:ee:ee:ee:ee -> ecee:eeff:feee:eeee.
        let mut eui = [0u8; 8];
        eui[..3].copy_from_slice(&HOST_MAC[..3]);
        eui[3] = 0xff;
        eui[4] = 0xfe;
        eui[5..].copy_from_slice(&HOST_MAC[3..]);
        eui[0] ^= 0x02;
        assert_eq!(&GATEWAY_V6.octets()[8..], &eui);
    }

    #[test]
    fn expected_routes_per_family() {
        let v4: IpNet = "10.0.0.5/32".parse().unwrap();
        let r = expected_routes(&[v4]);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].0.to_string(), "0.0.0.0/0");
        assert_eq!(r[1].1, Some(IpAddr::V4(GATEWAY_V4)));
        assert!(expected_routes(&[]).is_empty());
    }
}
