//! Link events (rtnetlink multicast group `RTNLGRP_LINK`): tells the owner loop
//! when an interface appears, changes (e.g. goes up) or disappears, so a workload
//! whose veth shows up after its endpoint was programmed gets its route, neighbour
//! and sysctls at once instead of at the next refresh.

use daemon_kit::backoff::Backoff;
use futures::StreamExt;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::MulticastGroup;
use rtnetlink::packet_core::NetlinkPayload;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// One interface change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// Created or changed (`RTM_NEWLINK`).
    Up(String),
    /// Deleted (`RTM_DELLINK`).
    Gone(String),
    /// The subscription was re-established: events may have been missed.
    Resync,
}

fn name_of(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

/// First wait before resubscribing after the subscription ended; doubles up
/// to [`RESUBSCRIBE_MAX`], back to the first after a subscription that lived
/// longer than the maximum.
const RESUBSCRIBE_MIN: Duration = Duration::from_millis(100);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(10);

/// The wait before the next resubscription, given how long the subscription
/// lived: a long-lived one starts the backoff over.
fn next_backoff(backoff: &mut Backoff, lived: Duration) -> Duration {
    if lived > RESUBSCRIBE_MAX {
        backoff.reset();
    }
    backoff.next_delay()
}

type Messages = futures::channel::mpsc::UnboundedReceiver<(
    rtnetlink::packet_core::NetlinkMessage<RouteNetlinkMessage>,
    rtnetlink::sys::SocketAddr,
)>;

fn subscribe() -> std::io::Result<(tokio::task::JoinHandle<()>, Messages)> {
    let (connection, _handle, messages) =
        rtnetlink::new_multicast_connection(&[MulticastGroup::Link])?;
    Ok((tokio::spawn(connection), messages))
}

/// Subscribes to link events (in the calling thread's network namespace) and
/// forwards them until `tx` closes. Must run inside a tokio runtime. If the
/// subscription ends (socket error, buffer overrun), it is re-established with
/// backoff, each loss counted in `felix_link_watch_failures`, and a
/// [`LinkEvent::Resync`] tells the owner that events may have been missed.
pub fn spawn(
    tx: mpsc::Sender<LinkEvent>,
    metrics: Arc<Metrics>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let first = subscribe()?;
    Ok(tokio::spawn(async move {
        let mut current = Some(first);
        let mut backoff = Backoff::new(RESUBSCRIBE_MIN, RESUBSCRIBE_MAX);
        loop {
            let started = Instant::now();
            if let Some((conn_task, messages)) = current.take() {
                let open = forward(messages, &tx).await;
                conn_task.abort();
                if !open {
                    return;
                }
            }
            metrics.link_watch_failures.inc();
            let delay = next_backoff(&mut backoff, started.elapsed());
            warn!(retry_in = ?delay, "link event subscription lost; resubscribing");
            tokio::time::sleep(delay).await;
            match subscribe() {
                Ok(sub) => {
                    current = Some(sub);
                    // Whatever happened while unsubscribed is found by a full sync.
                    if tx.send(LinkEvent::Resync).await.is_err() {
                        return;
                    }
                }
                Err(error) => warn!(%error, "link event subscription failed"),
            }
        }
    }))
}

/// Forwards events until the subscription ends; false when `tx` closed.
async fn forward(mut messages: Messages, tx: &mpsc::Sender<LinkEvent>) -> bool {
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
            return false;
        }
    }
    !tx.is_closed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_after_a_long_life() {
        let short = Duration::from_millis(1);
        let mut b = Backoff::new(RESUBSCRIBE_MIN, RESUBSCRIBE_MAX);
        let seen: Vec<_> = (0..10).map(|_| next_backoff(&mut b, short)).collect();
        assert_eq!(seen[..2], [RESUBSCRIBE_MIN, RESUBSCRIBE_MIN * 2]);
        assert!(seen.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*seen.last().unwrap(), RESUBSCRIBE_MAX);
        assert_eq!(next_backoff(&mut b, RESUBSCRIBE_MAX * 2), RESUBSCRIBE_MIN);
    }
}
