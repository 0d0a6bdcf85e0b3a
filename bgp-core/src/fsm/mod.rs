//! The BGP session finite state machine (RFC 4271 section 8), pure:
//! [`Session::handle`] takes one [`Input`] (an RFC 4271 8.1 event) and
//! returns the [`Output`]s the I/O layer performs (connect, send, close,
//! arm/stop timers). Timers are data; nothing here reads a clock.

mod backoff;
pub mod collision;
pub mod config;
pub mod negotiate;
mod session;

pub use collision::{Direction, collision_relevant, collision_winner};
pub use config::{Config, IdleHold, PeerAs, Reconnect};
pub use negotiate::{NegotiatedSession, negotiate_timers, validate_open};
pub use session::Session;

use std::time::Duration;

use crate::wire::{DecodeError, Family, Message, Notification, RouteRefresh, Update};

/// RFC 4271 8.2.2 states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// Timers the FSM asks the I/O layer to run (RFC 4271 8 and 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    ConnectRetry,
    Hold,
    Keepalive,
    /// RFC 4271 8.1.1 IdleHoldTimer (DampPeerOscillations).
    IdleHold,
}

impl Timer {
    /// Every timer, in [`Timer::index`] order, for an I/O layer that keeps
    /// one deadline slot per timer.
    pub const ALL: [Timer; 4] = [
        Timer::ConnectRetry,
        Timer::Hold,
        Timer::Keepalive,
        Timer::IdleHold,
    ];

    /// This timer's slot in an array of `Timer::ALL.len()` deadlines.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Cease reasons an operator can stop a session with (RFC 4486 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// Subcode 2: the session is disabled; it stays down.
    AdminShutdown,
    /// Subcode 3: the peer was removed from the configuration.
    PeerDeconfigured,
    /// Subcode 4: restart the session now.
    AdminReset,
    /// Subcode 6: configuration changed in a way that needs a new session.
    OtherConfigChange,
    /// No NOTIFICATION at all: the speaker is restarting with its forwarding state kept,
    /// and a bare TCP close is what tells a Graceful Restart peer to keep our routes
    /// (RFC 4724 4.1; any NOTIFICATION would end that unless both sides set the N bit,
    /// RFC 8538).
    GracefulRestart,
}

impl StopReason {
    pub fn cease_subcode(self) -> u8 {
        use crate::wire::notification::cease_subcode as c;
        match self {
            StopReason::AdminShutdown => c::ADMIN_SHUTDOWN,
            StopReason::PeerDeconfigured => c::PEER_DECONFIGURED,
            StopReason::AdminReset => c::ADMIN_RESET,
            StopReason::OtherConfigChange => c::OTHER_CONFIG_CHANGE,
            // Never sent (see the variant); the code a peer would see for a plain stop.
            StopReason::GracefulRestart => c::ADMIN_SHUTDOWN,
        }
    }

    /// Whether the session comes back up by itself afterwards.
    fn restarts(self) -> bool {
        matches!(self, StopReason::AdminReset | StopReason::OtherConfigChange)
    }
}

/// Events fed to the FSM; RFC 4271 8.1 names in the docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Event 1: ManualStart (also resets the oscillation backoff).
    ManualStart,
    /// Event 2: ManualStop, with the Cease subcode to send (RFC 4486).
    ManualStop(StopReason),
    /// Event 3: AutomaticStart (ignored while the IdleHoldTimer runs).
    AutomaticStart,
    /// Events 9, 10, 11, 13: ConnectRetryTimer_Expires, HoldTimer_Expires,
    /// KeepaliveTimer_Expires, IdleHoldTimer_Expires.
    TimerExpired(Timer),
    /// Event 16: Tcp_CR_Acked (our outbound connection completed).
    TcpCrAcked,
    /// Event 17: TcpConnectionConfirmed (an inbound connection was accepted
    /// for this session).
    TcpConnectionConfirmed,
    /// Event 18: TcpConnectionFails (a connection that carried, or was about to carry, the
    /// session broke).
    TcpConnectionFails,
    /// Event 18 for our own connection attempt, before any BGP connection existed: refused,
    /// unreachable, or timed out. Not a session failure: retried from Active on the
    /// [`Reconnect`] schedule, not counted by DampPeerOscillations. (A connection the peer
    /// closes in OpenSent, before its OPEN, is retried on that schedule too.)
    TcpConnectFailed,
    /// Events 19 (BGPOpen), 25 (NotifMsg), 26 (KeepAliveMsg), 27 (UpdateMsg)
    /// and ROUTE-REFRESH (RFC 2918).
    Message(Message),
    /// Events 21, 22, 28: BGPHeaderErr, BGPOpenMsgErr, UpdateMsgErr — a
    /// received message that failed to decode.
    DecodeError(DecodeError),
    /// Event 23: OpenCollisionDump (the peer layer resolved a collision
    /// against this connection, see [`collision_winner`]).
    OpenCollisionDump,
    /// Max-prefix hook: the RIB reports how many prefixes it holds from
    /// this peer after processing an UPDATE.
    PrefixCount { family: Family, count: u32 },
    /// We sent an UPDATE: RFC 4271 8.2.2 restarts the KeepaliveTimer.
    UpdateSent,
    /// The peer does not take what we send (our send queue is full): Cease
    /// "Out of Resources" (RFC 4486 subcode 8) and restart.
    OutOfResources,
    /// The peer's BFD session went from Up to Down (RFC 5882 3.2): the forwarding path
    /// is gone, so the session drops at once like a TCP failure (no NOTIFICATION: it
    /// could not get through) and restarts.
    BfdDown,
}

/// Why a session left its non-Idle states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    Stopped(StopReason),
    HoldTimerExpired,
    /// TCP failed or was closed by the peer without NOTIFICATION.
    ConnectionFailed,
    /// The peer sent this NOTIFICATION.
    PeerNotification(Notification),
    /// We sent this NOTIFICATION (decode error, OPEN refused, FSM error).
    LocalNotification(Notification),
    MaxPrefixes {
        family: Family,
        count: u32,
        limit: u32,
    },
    /// Lost collision resolution (Cease/7 sent).
    Collision,
    /// A message that makes no sense before a BGP connection exists.
    UnexpectedEvent,
    /// BFD detected the forwarding path to the peer down ([`Input::BfdDown`]).
    BfdDown,
}

/// Actions for the I/O layer, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Initiate the TCP connection to the peer.
    Connect,
    SendMessage(Message),
    /// Close the TCP connection (after sending what was queued).
    CloseConnection,
    /// Run this timer for this long (the I/O layer applies the RFC 4271 10 jitter to the
    /// ConnectRetryTimer).
    ArmTimer(Timer, Duration),
    StopTimer(Timer),
    StateChanged {
        from: State,
        to: State,
    },
    /// The session reached Established; switch the codec to these contexts.
    Established(Box<NegotiatedSession>),
    SessionDown(DownReason),
    /// A received UPDATE (with its RFC 7606 errors) for the RIB.
    DeliverUpdate(Box<Update>),
    /// The peer asked for a route refresh / sent BoRR or EoRR (RFC 7313).
    RouteRefreshReceived(RouteRefresh),
}

/// The NOTIFICATION to send on a connection that is refused outright
/// (RFC 4486 4, subcode 5: e.g. from an unconfigured address, or a second
/// connection while the session is Established).
pub fn reject_connection() -> Message {
    Message::Notification(Notification::cease(
        crate::wire::notification::cease_subcode::CONNECTION_REJECTED,
    ))
}
