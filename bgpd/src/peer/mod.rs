//! The I/O edge of a session: one tokio task per configured peer drives the
//! pure [`crate::fsm::Session`] over a real TCP connection (active and
//! passive open, collision detection, TCP MD5, GTSM, source address), and a
//! listener hands inbound connections to the task of the peer they come from.
//!
//! The daemon talks to a peer task with [`PeerCommand`]s (unbounded, so the
//! owner never waits on a session) and hears back [`PeerEvent`]s (bounded, so
//! a fast sender is slowed down instead of filling memory).

mod conn;
mod listen;
pub mod sockopt;
mod task;

use std::net::{IpAddr, SocketAddr};

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

pub use listen::{Listener, PeerDirectory};
pub use task::spawn;

use crate::fsm::{DownReason, NegotiatedSession, State, StopReason};
use crate::rib::PeerId;
use crate::wire::{self, EncodeContext, Family, Message, RouteRefresh, Update};

/// `updates` as they go on the wire of a session with `ctx`; one that cannot
/// be encoded is logged (for `peer`) and left out.
pub fn encode_updates(updates: Vec<Update>, ctx: &EncodeContext, peer: &str) -> Bytes {
    let mut out = BytesMut::new();
    for mut u in updates {
        if !ctx.four_octet_as {
            // RFC 6793 4.2.2: AS_TRANS plus AS4_PATH for an OLD speaker.
            u.attributes = wire::attribute::as4::to_two_octet(&u.attributes);
        }
        if let Err(e) = wire::encode(&Message::Update(Box::new(u)), ctx, &mut out) {
            warn!(peer = %peer, error = %e, "UPDATE not encodable; not sent");
        }
    }
    out.freeze()
}

/// Orders for a peer task.
#[derive(Debug)]
pub enum PeerCommand {
    /// ManualStart.
    Start,
    /// ManualStop with a Cease subcode; the task keeps running (Idle).
    Stop(StopReason),
    /// UPDATEs to send, encoded with the session's context by
    /// [`encode_updates`] (dropped unless Established). The bytes may be
    /// shared with other peers' commands.
    Send(Bytes),
    /// The peer's Adj-RIB-In size after an UPDATE (max-prefix check).
    PrefixCount { family: Family, count: u32 },
    /// An accepted TCP connection from this peer's address.
    Inbound(TcpStream),
    /// The peer's BFD session went from Up to Down: drop the session now.
    BfdDown,
    /// The Restart State bit of the OPENs sent from now on (RFC 4724 4.1): cleared when
    /// our restart is over.
    RestartState(bool),
    /// The peer's Node changed in the datastore (it may be back): a session waiting to
    /// retry its connection tries now instead of at the end of its ConnectRetry wait.
    RetryNow,
    /// Stop with this Cease subcode, flush, end the task, then answer.
    Exit(StopReason, oneshot::Sender<()>),
}

/// What a peer task reports to the daemon.
#[derive(Debug)]
pub enum PeerEvent {
    StateChanged {
        from: State,
        to: State,
    },
    Established {
        negotiated: Box<NegotiatedSession>,
        local: SocketAddr,
        remote: SocketAddr,
    },
    Down(DownReason),
    Update(Box<Update>),
    RouteRefresh(RouteRefresh),
}

/// How the task reaches its peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    pub address: IpAddr,
    pub port: u16,
    pub password: Option<String>,
    pub ttl_security: Option<u8>,
    pub source_address: Option<IpAddr>,
    /// Most bytes queued for sending before the session is reset.
    pub send_queue_limit: usize,
}

/// Sending side of a peer task, kept by the daemon.
pub type CommandSender = mpsc::UnboundedSender<PeerCommand>;
/// Where peer tasks send their events.
pub type EventSender = mpsc::Sender<(PeerId, PeerEvent)>;

/// An IPv4-mapped IPv6 address (as a dual-stack listener reports IPv4
/// clients) as the IPv4 address it stands for.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
