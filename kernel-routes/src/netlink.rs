//! The thin I/O edge: one rtnetlink connection, link lookups, route dumps and
//! pipelined writes (many requests in flight on one socket).
//!
//! The connection's socket is created in the network namespace of the calling
//! thread, so a test that `unshare`s a thread gets a connection into its own
//! namespace.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::RouteMessage;
use rtnetlink::Handle;
use tokio::task::JoinHandle;

use crate::errno::{ENODEV, Outcome, RouteOp, errno};
use crate::message::{parse_route, route_message};
use crate::route::KernelRoute;

/// An rtnetlink connection whose I/O task lives as long as any clone of this value.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Netlink {
    /// Opens a NETLINK_ROUTE socket and spawns its I/O task on the current
    /// tokio runtime (panics outside a runtime, as `tokio::spawn` does).
    pub fn connect() -> io::Result<Self> {
        let (connection, handle, _messages) = rtnetlink::new_connection()?;
        let task = tokio::spawn(connection);
        Ok(Self {
            handle,
            _task: Arc::new(AbortOnDrop(task)),
        })
    }

    /// The request handle (cheap to clone; all clones share the socket).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Every interface name -> ifindex, from one RTM_GETLINK dump. One dump is
    /// cheaper than one lookup per route when thousands of routes are resolved.
    pub async fn link_indexes(&self) -> Result<HashMap<String, u32>, rtnetlink::Error> {
        let links: Vec<LinkMessage> = self.handle.link().get().execute().try_collect().await?;
        Ok(links
            .into_iter()
            .filter_map(|link| {
                let index = link.header.index;
                link.attributes.into_iter().find_map(|attr| match attr {
                    LinkAttribute::IfName(name) => Some((name, index)),
                    _ => None,
                })
            })
            .collect())
    }

    /// The ifindex of one interface, `None` when it does not exist.
    pub async fn link_index(&self, name: &str) -> Result<Option<u32>, rtnetlink::Error> {
        let mut links = self.handle.link().get().match_name(name).execute();
        match links.try_next().await {
            Ok(link) => Ok(link.map(|l| l.header.index)),
            Err(e) if matches!(errno(&e), Some(ENODEV)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A route dump (RTM_GETROUTE) that failed.
#[derive(Debug)]
pub struct DumpError {
    /// `IPv4` or `IPv6`.
    pub family: &'static str,
    pub source: rtnetlink::Error,
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dumping {} routes (RTM_GETROUTE) failed: {}",
            self.family, self.source
        )
    }
}

impl std::error::Error for DumpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Every main-table route, IPv4 then IPv6, all protocols (an owner needs the
/// foreign ones to spot conflicts; [`crate::Owner::owns`] picks its own).
pub async fn dump_routes(handle: &Handle) -> Result<Vec<KernelRoute>, DumpError> {
    // One dump at a time: a netlink socket runs a single dump, and a second
    // request while the first still has messages to send fails with EBUSY
    // (netlink_dump_start), which happens once a table outgrows one read.
    let mut routes = dump_family(handle, AddressFamily::Inet, "IPv4").await?;
    routes.extend(dump_family(handle, AddressFamily::Inet6, "IPv6").await?);
    Ok(routes)
}

async fn dump_family(
    handle: &Handle,
    family: AddressFamily,
    name: &'static str,
) -> Result<Vec<KernelRoute>, DumpError> {
    let mut query = RouteMessage::default();
    query.header.address_family = family;
    let msgs: Vec<RouteMessage> = handle
        .route()
        .get(query)
        .execute()
        .try_collect()
        .await
        .map_err(|source| DumpError {
            family: name,
            source,
        })?;
    Ok(msgs.iter().filter_map(parse_route).collect())
}

/// One write and how it went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub op: RouteOp,
    pub route: KernelRoute,
    pub outcome: Outcome,
}

/// Runs the writes with up to `in_flight` (at least 1) outstanding on the
/// socket, in no particular order; every write comes back with its outcome.
pub async fn execute(
    handle: &Handle,
    writes: impl IntoIterator<Item = (RouteOp, KernelRoute)>,
    in_flight: usize,
) -> Vec<Written> {
    futures::stream::iter(writes)
        .map(|(op, route)| {
            let routes = handle.route();
            async move {
                let msg = route_message(&route);
                let result = match op {
                    RouteOp::Add => routes.add(msg).execute().await,
                    RouteOp::Replace => routes.add(msg).replace().execute().await,
                    RouteOp::Delete => routes.del(msg).execute().await,
                };
                Written {
                    op,
                    route,
                    outcome: Outcome::of(op, result),
                }
            }
        })
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await
}
