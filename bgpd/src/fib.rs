//! Kernel FIB install of Loc-RIB best routes over rtnetlink:
//! `<prefix> via <next hop> proto bgp` (186), multipath for ECMP, written
//! with NLM_F_REPLACE (idempotent), removed on withdraw. Routes of any other
//! protocol are never touched: deletes carry protocol 186, and the kernel
//! only deletes a route whose protocol matches.
//!
//! Stale routes (proto 186 left by an earlier run) are handled by mark and
//! sweep: the ones present at start are marked; routes written since are
//! unmarked; [`Fib::sweep`] deletes what is still marked once the sessions
//! had their chance to re-announce them.
//!
//! Requests are pipelined (many in flight on one socket), the way
//! felix/src/dataplane/routes/syncer.rs drives rtnetlink.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::IpAddr;

use futures::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteNextHop, RouteProtocol,
    RouteScope, RouteType,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// `RTPROT_BGP`: shows as `proto bgp` in `ip route`.
pub const RTPROT_BGP: u8 = 186;
/// Requests kept in flight on the netlink socket.
const IN_FLIGHT: usize = 256;
/// `ESRCH`: the route to delete is not there (already the goal).
const ESRCH: i32 = 3;

/// One change to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FibOp {
    /// Install `prefix` via these next hops (one: a plain gateway route;
    /// several: one multipath route).
    Replace {
        prefix: IpNet,
        next_hops: Vec<IpAddr>,
    },
    Delete(IpNet),
}

impl FibOp {
    fn prefix(&self) -> IpNet {
        match self {
            FibOp::Replace { prefix, .. } | FibOp::Delete(prefix) => *prefix,
        }
    }
}

enum Msg {
    Ops(Vec<FibOp>),
    Sweep,
    RemoveAll(oneshot::Sender<()>),
    Flush(oneshot::Sender<()>),
}

/// Handle on the FIB task (cheap to clone).
#[derive(Clone)]
pub struct Fib {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Fib {
    /// Connect to rtnetlink in the current network namespace, mark our
    /// stale routes, and start the writer task.
    pub async fn start() -> io::Result<Fib> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        let stale: HashSet<IpNet> = dump_ours(&handle)
            .await
            .map_err(|e| io::Error::other(format!("dumping proto {RTPROT_BGP} routes: {e}")))?
            .into_iter()
            .collect();
        if !stale.is_empty() {
            info!(
                routes = stale.len(),
                "stale bgp routes in the kernel marked for sweep"
            );
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(handle, rx, stale));
        Ok(Fib { tx })
    }

    pub fn apply(&self, ops: Vec<FibOp>) {
        if !ops.is_empty() {
            let _ = self.tx.send(Msg::Ops(ops));
        }
    }

    /// Delete the stale routes nobody re-announced.
    pub fn sweep(&self) {
        let _ = self.tx.send(Msg::Sweep);
    }

    /// Wait until everything sent so far is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Delete every proto-186 route (at exit).
    pub async fn remove_all(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::RemoveAll(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(
    handle: rtnetlink::Handle,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    mut stale: HashSet<IpNet>,
) {
    while let Some(first) = rx.recv().await {
        // Coalesce everything queued: the last op per prefix wins.
        let mut latest: HashMap<IpNet, FibOp> = HashMap::new();
        let mut acks = Vec::new();
        let mut next = Some(first);
        let mut sweep = false;
        let mut remove_all = None;
        while let Some(m) = next.take() {
            match m {
                Msg::Ops(ops) => {
                    for op in ops {
                        latest.insert(op.prefix(), op);
                    }
                }
                Msg::Sweep => sweep = true,
                Msg::Flush(tx) => acks.push(tx),
                Msg::RemoveAll(tx) => remove_all = Some(tx),
            }
            if remove_all.is_none() {
                next = rx.try_recv().ok();
            }
        }
        for p in latest.keys() {
            stale.remove(p);
        }
        execute(&handle, latest.into_values().collect()).await;
        if sweep && !stale.is_empty() {
            info!(routes = stale.len(), "sweeping stale bgp routes");
            let ops = stale.drain().map(FibOp::Delete).collect();
            execute(&handle, ops).await;
        }
        for tx in acks {
            let _ = tx.send(());
        }
        if let Some(tx) = remove_all {
            match dump_ours(&handle).await {
                Ok(ours) => {
                    info!(routes = ours.len(), "removing bgp routes from the kernel");
                    execute(&handle, ours.into_iter().map(FibOp::Delete).collect()).await;
                }
                Err(e) => warn!(error = %e, "dumping routes to remove failed"),
            }
            let _ = tx.send(());
        }
    }
}

async fn execute(handle: &rtnetlink::Handle, ops: Vec<FibOp>) {
    let n = ops.len();
    let failures: Vec<(FibOp, String)> = futures::stream::iter(ops)
        .map(|op| {
            let routes = handle.route();
            async move {
                let msg = route_message(&op);
                let r = match &op {
                    FibOp::Replace { .. } => routes.add(msg).replace().execute().await,
                    FibOp::Delete(_) => routes.del(msg).execute().await,
                };
                match r {
                    Ok(()) => None,
                    Err(e) if matches!(op, FibOp::Delete(_)) && errno(&e) == Some(ESRCH) => None,
                    Err(e) => Some((op, e.to_string())),
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .filter_map(futures::future::ready)
        .collect()
        .await;
    for (op, e) in &failures {
        warn!(?op, error = %e, "kernel route write failed");
    }
    debug!(ops = n, failed = failures.len(), "fib batch written");
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

/// The netlink message for `op` (pure; unit-tested).
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

/// Prefixes of our routes (proto 186, main table) now in the kernel.
async fn dump_ours(handle: &rtnetlink::Handle) -> Result<Vec<IpNet>, rtnetlink::Error> {
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
            if let Ok(n) = IpNet::new(dst, m.header.destination_prefix_length) {
                out.push(n);
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
