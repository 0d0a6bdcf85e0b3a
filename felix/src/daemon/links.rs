//! Link events (rtnetlink multicast group `RTNLGRP_LINK`): tells the owner loop
//! when an interface appears, changes (e.g. goes up) or disappears, so a workload
//! whose veth shows up after its endpoint was programmed gets its route, neighbour
//! and sysctls at once instead of at the next refresh.

use futures::StreamExt;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::MulticastGroup;
use rtnetlink::packet_core::NetlinkPayload;
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// One interface change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// Created or changed (`RTM_NEWLINK`).
    Up(String),
    /// Deleted (`RTM_DELLINK`).
    Gone(String),
}

fn name_of(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

/// Subscribes to link events (in the calling thread's network namespace) and
/// forwards them until `tx` closes. Must run inside a tokio runtime.
pub fn spawn(tx: mpsc::Sender<LinkEvent>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let (connection, _handle, mut messages) =
        rtnetlink::new_multicast_connection(&[MulticastGroup::Link])?;
    let conn_task = tokio::spawn(connection);
    Ok(tokio::spawn(async move {
        while let Some((msg, _)) = messages.next().await {
            let event = match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    name_of(&link).map(LinkEvent::Up)
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                    name_of(&link).map(LinkEvent::Gone)
                }
                _ => None,
            };
            let Some(event) = event else { continue };
            debug!(?event, "link event");
            if tx.send(event).await.is_err() {
                break;
            }
        }
        if !tx.is_closed() {
            warn!("link event subscription ended; relying on periodic refresh");
        }
        conn_task.abort();
    }))
}
