//! Shared rtnetlink plumbing: one connection per dataplane, link name lookups and
//! the errno helpers the syncers use to classify kernel answers.
//!
//! The connection's socket is created in the network namespace of the calling
//! thread, so a test that `unshare`s a thread gets a connection into its own
//! namespace.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use futures::TryStreamExt;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::Handle;
use tokio::task::JoinHandle;

/// `ESRCH`: "no such process", what the kernel answers for a missing route.
pub const ESRCH: i32 = 3;
/// `ENOENT`: missing neighbour entry (and missing route on some paths).
pub const ENOENT: i32 = 2;
/// `ENODEV`: the interface index no longer exists.
pub const ENODEV: i32 = 19;
/// `ENETDOWN`: IPv4 refuses a device route through an interface that is down.
pub const ENETDOWN: i32 = 100;

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

/// The positive errno of a kernel NACK, `None` for other failures.
pub fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| c.get().abs()),
        _ => None,
    }
}

pub use config::validate::valid_ifname;
