//! The rtnetlink side of the FIB: messages, pipelined writes, dumps.

use std::net::IpAddr;

use futures::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteNextHop, RouteProtocol,
    RouteScope, RouteType,
};
use tracing::debug;

use super::diff::KernelRoute;
use super::{FibOp, ROUTE_METRIC, RTPROT_BGP};

// Distinct from felix's slots: IPv4 metric 0, IPv6 default 1024.
const _: () = assert!(ROUTE_METRIC > 1024);

/// Requests kept in flight on the netlink socket.
const IN_FLIGHT: usize = 256;
/// `ESRCH`: the route to delete is not there (already the goal).
const ESRCH: i32 = 3;
/// `EEXIST`: an exclusive add found the slot held.
const EEXIST: i32 = 17;

/// How one write went.
#[derive(Debug)]
pub(super) enum Outcome {
    Written,
    /// An exclusive add found (prefix, metric) held by a route we did not
    /// write: not replaced.
    SlotTaken,
    Failed(String),
}

/// Write `ops`; `true` next to an op means the slot is known to hold our
/// route and may be replaced, `false` that the add must be exclusive.
pub(super) async fn execute(
    handle: &rtnetlink::Handle,
    ops: Vec<(FibOp, bool)>,
) -> Vec<(FibOp, Outcome)> {
    let n = ops.len();
    let out: Vec<(FibOp, Outcome)> = futures::stream::iter(ops)
        .map(|(op, replace)| {
            let routes = handle.route();
            async move {
                let msg = route_message(&op);
                let r = match &op {
                    FibOp::Replace { .. } if replace => routes.add(msg).replace().execute().await,
                    FibOp::Replace { .. } => routes.add(msg).execute().await,
                    FibOp::Delete(_) => routes.del(msg).execute().await,
                };
                let outcome = match r {
                    Ok(()) => Outcome::Written,
                    Err(e) if matches!(op, FibOp::Delete(_)) && errno(&e) == Some(ESRCH) => {
                        Outcome::Written
                    }
                    Err(e) if errno(&e) == Some(EEXIST) => Outcome::SlotTaken,
                    Err(e) => Outcome::Failed(e.to_string()),
                };
                (op, outcome)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    debug!(ops = n, "fib batch written");
    out
}

/// Delete these (prefix, metric) routes of protocol 186; the failures.
pub(super) async fn delete_exact(
    handle: &rtnetlink::Handle,
    routes: &[(IpNet, u32)],
) -> Vec<(IpNet, String)> {
    futures::stream::iter(routes.iter().copied())
        .map(|(p, metric)| {
            let routes = handle.route();
            async move {
                let mut msg = route_message(&FibOp::Delete(p));
                set_metric(&mut msg, metric);
                match routes.del(msg).execute().await {
                    Ok(()) => None,
                    Err(e) if errno(&e) == Some(ESRCH) => None,
                    Err(e) => Some((p, e.to_string())),
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .filter_map(futures::future::ready)
        .collect()
        .await
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| c.get().abs()),
        _ => None,
    }
}

fn route_address(a: IpAddr) -> RouteAddress {
    match a {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

fn set_metric(msg: &mut RouteMessage, metric: u32) {
    msg.attributes
        .retain(|a| !matches!(a, RouteAttribute::Priority(_)));
    if metric != 0 {
        msg.attributes.push(RouteAttribute::Priority(metric));
    }
}

/// The netlink message for `op` (pure; unit-tested): protocol 186 and
/// metric [`ROUTE_METRIC`] also on deletes, so that the kernel deletes
/// nothing but our route.
pub fn route_message(op: &FibOp) -> RouteMessage {
    let prefix = op.prefix();
    let mut msg = RouteMessage::default();
    let h = &mut msg.header;
    h.address_family = match prefix {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    h.destination_prefix_length = prefix.prefix_len();
    h.table = RouteHeader::RT_TABLE_MAIN;
    h.protocol = RouteProtocol::from(RTPROT_BGP);
    h.scope = RouteScope::Universe;
    h.kind = RouteType::Unicast;
    msg.attributes
        .push(RouteAttribute::Destination(route_address(prefix.addr())));
    set_metric(&mut msg, ROUTE_METRIC);
    if let FibOp::Replace { next_hops, .. } = op {
        match next_hops.as_slice() {
            [one] => msg
                .attributes
                .push(RouteAttribute::Gateway(route_address(*one))),
            many => msg.attributes.push(RouteAttribute::MultiPath(
                many.iter()
                    .map(|nh| {
                        let mut hop = RouteNextHop::default();
                        hop.attributes = vec![RouteAttribute::Gateway(route_address(*nh))];
                        hop
                    })
                    .collect(),
            )),
        }
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

/// Our routes (proto 186, main table) now in the kernel.
pub(super) async fn dump_ours(
    handle: &rtnetlink::Handle,
) -> Result<Vec<KernelRoute>, rtnetlink::Error> {
    let mut out = Vec::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut q = RouteMessage::default();
        q.header.address_family = family;
        let msgs: Vec<RouteMessage> = handle.route().get(q).execute().try_collect().await?;
        for m in msgs {
            if u8::from(m.header.protocol) != RTPROT_BGP {
                continue;
            }
            let table = m
                .attributes
                .iter()
                .find_map(|a| match a {
                    RouteAttribute::Table(t) => Some(*t),
                    _ => None,
                })
                .unwrap_or(m.header.table as u32);
            if table != RouteHeader::RT_TABLE_MAIN as u32 {
                continue;
            }
            let dst = m.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(a)) => Some(IpAddr::V4(*a)),
                RouteAttribute::Destination(RouteAddress::Inet6(a)) => Some(IpAddr::V6(*a)),
                _ => None,
            });
            let dst = dst.unwrap_or(match family {
                AddressFamily::Inet6 => IpAddr::V6(0.into()),
                _ => IpAddr::V4(0.into()),
            });
            let metric = m
                .attributes
                .iter()
                .find_map(|a| match a {
                    RouteAttribute::Priority(p) => Some(*p),
                    _ => None,
                })
                .unwrap_or(0);
            let mut next_hops: Vec<IpAddr> = gateway(&m.attributes).into_iter().collect();
            for a in &m.attributes {
                if let RouteAttribute::MultiPath(hops) = a {
                    next_hops.extend(hops.iter().filter_map(|h| gateway(&h.attributes)));
                }
            }
            if let Ok(prefix) = IpNet::new(dst, m.header.destination_prefix_length) {
                out.push(KernelRoute {
                    prefix,
                    metric,
                    next_hops,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_next_hop_is_a_gateway_route() {
        let m = route_message(&FibOp::Replace {
            prefix: "10.244.1.0/26".parse().unwrap(),
            next_hops: vec!["192.0.2.2".parse().unwrap()],
        });
        assert_eq!(u8::from(m.header.protocol), RTPROT_BGP);
        assert_eq!(m.header.destination_prefix_length, 26);
        assert!(
            m.attributes
                .contains(&RouteAttribute::Gateway(RouteAddress::Inet(
                    "192.0.2.2".parse().unwrap()
                )))
        );
    }

    #[test]
    fn ecmp_is_one_multipath_route() {
        let m = route_message(&FibOp::Replace {
            prefix: "fd00:1::/64".parse().unwrap(),
            next_hops: vec!["fd00::2".parse().unwrap(), "fd00::3".parse().unwrap()],
        });
        assert_eq!(m.header.address_family, AddressFamily::Inet6);
        let mp = m.attributes.iter().find_map(|a| match a {
            RouteAttribute::MultiPath(v) => Some(v.len()),
            _ => None,
        });
        assert_eq!(mp, Some(2));
    }

    #[test]
    fn every_message_carries_our_metric() {
        let m = route_message(&FibOp::Replace {
            prefix: "10.244.1.0/26".parse().unwrap(),
            next_hops: vec!["192.0.2.2".parse().unwrap()],
        });
        assert!(
            m.attributes
                .contains(&RouteAttribute::Priority(ROUTE_METRIC))
        );
        let d = route_message(&FibOp::Delete("10.244.1.0/26".parse().unwrap()));
        assert!(
            d.attributes
                .contains(&RouteAttribute::Priority(ROUTE_METRIC))
        );
    }

    #[test]
    fn delete_names_our_protocol() {
        let m = route_message(&FibOp::Delete("10.0.0.0/8".parse().unwrap()));
        assert_eq!(u8::from(m.header.protocol), RTPROT_BGP);
        assert!(
            !m.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Gateway(_)))
        );
    }
}
