//! The session task: owns one [`Session`], its TCP connection and timers,
//! and turns FSM outputs into socket operations and daemon events.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::conn::{self, Conn};
use super::{CommandSender, EventSender, PeerCommand, PeerEvent, Transport};
use crate::fsm::{
    self, Direction, Input, Output, Session, State, StopReason, Timer, collision_relevant,
    collision_winner,
};
use crate::rib::PeerId;
use crate::wire::{
    self, DecodeContext, EncodeContext, MAX_MESSAGE_LEN, Message, Notification, Open, peek_header,
};

/// Longest a second connection may take to send its OPEN during collision
/// detection before it is dropped.
const COLLISION_OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of an offending message written to the log.
const LOG_BYTES: usize = 4096;

/// Start the task of one peer. It waits in Idle for [`PeerCommand::Start`].
pub fn spawn(
    id: PeerId,
    name: String,
    transport: Transport,
    config: fsm::Config,
    events: EventSender,
) -> (CommandSender, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = Task {
        id,
        name,
        transport,
        session: Session::new(config),
        events,
        timers: [None; 4],
        conn: None,
        buf: BytesMut::new(),
        read_room: SMALL_READ,
        connecting: None,
        collision: None,
        dctx: DecodeContext::default(),
        ectx: EncodeContext::default(),
        adopting: false,
        closing: Vec::new(),
        overflow: false,
    };
    let h = tokio::spawn(task.run(rx));
    (tx, h)
}

type PreRead = Option<(TcpStream, Open, BytesMut)>;

struct Task {
    id: PeerId,
    name: String,
    transport: Transport,
    session: Session,
    events: EventSender,
    timers: [Option<Instant>; 4],
    conn: Option<Conn>,
    /// Received bytes not yet decoded; allocated while the session has data
    /// in flight, released when it is idle (see [`read_some`]).
    buf: BytesMut,
    /// Room made in `buf` before the next read.
    read_room: usize,
    connecting: Option<JoinHandle<io::Result<TcpStream>>>,
    /// A second connection whose OPEN is awaited (RFC 4271 6.8).
    collision: Option<JoinHandle<PreRead>>,
    dctx: DecodeContext,
    ectx: EncodeContext,
    /// Set while restarting the FSM to take over an inbound connection: its
    /// Connect output must not open another one.
    adopting: bool,
    /// Writer tasks of closed connections still flushing (a final
    /// NOTIFICATION, most often); awaited before the task exits.
    closing: Vec<JoinHandle<()>>,
    /// A send found the connection's queue full (the peer is not reading).
    overflow: bool,
}

/// Room for a read while the peer sends little (keepalives): an idle session
/// holds no buffer at all between reads, so a reflector's thousand clients
/// cost next to nothing.
const SMALL_READ: usize = 4 << 10;
/// Room for a read once one filled what it had: a table is coming.
const LARGE_READ: usize = 64 << 10;

/// Read what the connection has into `buf`, with at least `room` free first;
/// `room` follows what the read showed ([`SMALL_READ`] or [`LARGE_READ`]).
async fn read_some(
    conn: &mut Option<Conn>,
    buf: &mut BytesMut,
    room: &mut usize,
) -> io::Result<usize> {
    match conn {
        Some(c) => {
            if buf.capacity() - buf.len() < *room {
                buf.reserve(*room);
            }
            let spare = buf.capacity() - buf.len();
            let n = c.reader.read_buf(buf).await?;
            *room = if n == spare { LARGE_READ } else { SMALL_READ };
            Ok(n)
        }
        None => std::future::pending().await,
    }
}

async fn join<T>(h: &mut Option<JoinHandle<T>>) -> Option<T> {
    match h {
        Some(h) => h.await.ok(),
        None => std::future::pending().await,
    }
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<PeerCommand>) {
        let mut exit: Option<oneshot::Sender<()>> = None;
        // The handlers' futures are boxed: inline, this task's future kept room
        // for the largest of them for as long as the peer lives (3.5 KiB
        // against 2.0 KiB boxed; a route reflector has a task per client). A
        // handler's box lives while the handler runs.
        while exit.is_none() {
            let deadline = self.timers.iter().flatten().min().copied();
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(PeerCommand::Exit(reason, tx)) => {
                        Box::pin(self.input(Input::ManualStop(reason))).await;
                        exit = Some(tx);
                    }
                    Some(c) => Box::pin(self.command(c)).await,
                    None => {
                        // The daemon is gone: leave as an admin shutdown would.
                        Box::pin(self.input(Input::ManualStop(StopReason::AdminShutdown))).await;
                        break;
                    }
                },
                r = read_some(&mut self.conn, &mut self.buf, &mut self.read_room), if self.conn.is_some() => {
                    Box::pin(self.on_read(r)).await
                }
                r = join(&mut self.connecting), if self.connecting.is_some() => {
                    self.connecting = None;
                    Box::pin(self.on_connected(r)).await
                }
                r = join(&mut self.collision), if self.collision.is_some() => {
                    self.collision = None;
                    if let Some(Some(pre)) = r {
                        Box::pin(self.on_collision_open(pre)).await
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    Box::pin(self.fire_timers()).await
                }
            }
        }
        self.close();
        // The writers end by themselves within their flush timeout.
        let writers = futures::future::join_all(self.closing.drain(..));
        let _ = tokio::time::timeout(Duration::from_secs(4), writers).await;
        if let Some(tx) = exit {
            let _ = tx.send(());
        }
    }

    async fn command(&mut self, c: PeerCommand) {
        match c {
            PeerCommand::Start => self.input(Input::ManualStart).await,
            PeerCommand::Stop(r) => self.input(Input::ManualStop(r)).await,
            PeerCommand::Send(updates) => self.send_updates(updates).await,
            PeerCommand::PrefixCount { family, count } => {
                self.input(Input::PrefixCount { family, count }).await
            }
            PeerCommand::Inbound(stream) => self.on_inbound(stream).await,
            PeerCommand::BfdDown => self.input(Input::BfdDown).await,
            PeerCommand::RestartState(r) => self.session.set_restart_state(r),
            PeerCommand::RetryNow => {
                // Only a session waiting on its ConnectRetry timer (Connect or Active) is
                // retried: its expiry drops an attempt in flight and connects again (RFC
                // 4271 8.2.2). An established session is left alone, and the IdleHold of
                // DampPeerOscillations is not cut short.
                let slot = Timer::ConnectRetry.index();
                if matches!(self.session.state(), State::Connect | State::Active)
                    && self.timers[slot].is_some()
                {
                    debug!(peer = %self.name, "peer's node changed: connecting now");
                    self.timers[slot] = None;
                    self.input(Input::TimerExpired(Timer::ConnectRetry)).await;
                }
            }
            PeerCommand::Exit(..) => unreachable!("handled in run"),
        }
    }

    async fn input(&mut self, i: Input) {
        let mut next = Some(i);
        while let Some(i) = next.take() {
            let outs = self.session.handle(i);
            self.apply(outs).await;
            if std::mem::take(&mut self.overflow) {
                next = Some(Input::OutOfResources);
            }
        }
    }

    async fn send_updates(&mut self, out: Bytes) {
        if self.session.state() != State::Established {
            return;
        }
        let Some(conn) = &self.conn else { return };
        if !out.is_empty() {
            match conn.send(out) {
                Ok(()) => self.input(Input::UpdateSent).await,
                Err(e) => {
                    warn!(peer = %self.name, error = %e, "peer not reading; session reset");
                    self.input(Input::OutOfResources).await
                }
            }
        }
    }

    async fn apply(&mut self, outs: Vec<Output>) {
        let down = outs.iter().find_map(|o| match o {
            Output::SessionDown(r) => Some(r.clone()),
            _ => None,
        });
        for o in outs {
            match o {
                Output::Connect => {
                    if !self.adopting {
                        self.start_connect();
                    }
                }
                Output::SendMessage(m) => self.send_message(&m),
                Output::CloseConnection => self.close(),
                Output::ArmTimer(t, d) => {
                    // RFC 4271 10: jitter the ConnectRetryTimer by a factor from 0.75 to 1,
                    // so that nodes that lost the same peer do not retry in lockstep.
                    let d = match t {
                        Timer::ConnectRetry => d.mul_f64(rand::random_range(0.75..=1.0)),
                        _ => d,
                    };
                    self.timers[t.index()] = Some(Instant::now() + d)
                }
                Output::StopTimer(t) => self.timers[t.index()] = None,
                Output::StateChanged { from, to } => {
                    match &down {
                        // Retrying a peer that is not up yet: twice a second, not news.
                        _ if matches!(from, State::Connect | State::Active)
                            && matches!(to, State::Connect | State::Active) =>
                        {
                            debug!(peer = %self.name, ?from, ?to, "session state changed")
                        }
                        Some(reason) if to == State::Idle => {
                            info!(peer = %self.name, address = %self.transport.address, ?from, ?to, ?reason, "session state changed")
                        }
                        _ => {
                            info!(peer = %self.name, address = %self.transport.address, ?from, ?to, "session state changed")
                        }
                    }
                    self.event(PeerEvent::StateChanged { from, to }).await;
                }
                Output::Established(n) => {
                    self.dctx = n.decode_context();
                    self.ectx = n.encode_context();
                    let Some(c) = &self.conn else { continue };
                    let (local, remote) = (c.local, c.remote);
                    self.event(PeerEvent::Established {
                        negotiated: n,
                        local,
                        remote,
                    })
                    .await;
                }
                Output::SessionDown(r) => self.event(PeerEvent::Down(r)).await,
                Output::DeliverUpdate(u) => self.event(PeerEvent::Update(u)).await,
                Output::RouteRefreshReceived(r) => self.event(PeerEvent::RouteRefresh(r)).await,
            }
        }
    }

    async fn event(&mut self, e: PeerEvent) {
        // The daemon only goes away at exit; nothing to do then.
        let _ = self.events.send((self.id, e)).await;
    }

    fn send_message(&mut self, m: &Message) {
        let Some(conn) = &mut self.conn else { return };
        let mut out = BytesMut::new();
        if let Err(e) = wire::encode(m, &self.ectx, &mut out) {
            return warn!(peer = %self.name, error = %e, "message not encodable; not sent");
        }
        if matches!(m, Message::Notification(_)) {
            // The connection closes right after (RFC 4271 4.5): it goes
            // ahead of whatever the peer has not taken yet.
            conn.send_last(out.freeze());
        } else if let Err(e) = conn.send(out.freeze()) {
            warn!(peer = %self.name, error = %e, "peer not reading; session reset");
            self.overflow = true;
        }
    }

    fn close(&mut self) {
        if let Some(c) = self.conn.take() {
            // Dropping the connection lets its writer flush and shut down;
            // keep the writer to await it at exit.
            self.closing.retain(|h| !h.is_finished());
            self.closing.push(c.write_task);
        }
        if let Some(h) = self.connecting.take() {
            h.abort();
        }
        self.buf.clear();
        self.dctx = DecodeContext::default();
        self.ectx = EncodeContext::default();
    }

    fn start_connect(&mut self) {
        if let Some(h) = self.connecting.take() {
            h.abort();
        }
        let timeout = Duration::from_secs(self.session.config().connect_retry_secs.max(1) as u64);
        let t = self.transport.clone();
        debug!(peer = %self.name, address = %t.address, port = t.port, "connecting");
        self.connecting = Some(tokio::spawn(conn::connect(t, timeout)));
    }

    async fn on_connected(&mut self, r: Option<io::Result<TcpStream>>) {
        match r {
            Some(Ok(stream)) => {
                if self.conn.is_some()
                    || !matches!(self.session.state(), State::Connect | State::Active)
                {
                    return;
                }
                match Conn::new(stream, Direction::Outbound, self.transport.send_queue_limit) {
                    Ok(c) => {
                        self.conn = Some(c);
                        self.input(Input::TcpCrAcked).await;
                    }
                    Err(e) => {
                        debug!(peer = %self.name, error = %e, "connection lost at once");
                        self.input(Input::TcpConnectFailed).await;
                    }
                }
            }
            Some(Err(e)) => {
                // Refused or unreachable: the peer is not up yet. Retried soon from Active.
                debug!(peer = %self.name, error = %e, "connect failed");
                self.input(Input::TcpConnectFailed).await;
            }
            None => {}
        }
    }

    async fn on_read(&mut self, r: io::Result<usize>) {
        match r {
            Ok(0) | Err(_) => {
                if let Err(e) = &r {
                    debug!(peer = %self.name, error = %e, "read failed");
                }
                self.input(Input::TcpConnectionFails).await;
            }
            Ok(_) => {
                self.process_buffer().await;
                if self.buf.is_empty() && self.read_room == SMALL_READ {
                    self.buf = BytesMut::new();
                }
            }
        }
    }

    /// Decode and handle every complete message in the buffer.
    async fn process_buffer(&mut self) {
        while self.conn.is_some() {
            let max = self.dctx.max_message_len();
            let len = match peek_header(&self.buf, max) {
                Ok(Some(h)) if self.buf.len() >= h.length as usize => h.length as usize,
                Ok(_) => return,
                Err(e) => {
                    let shown = &self.buf[..self.buf.len().min(LOG_BYTES)];
                    warn!(peer = %self.name, error = %e, bytes = %hex(shown), "bad message header");
                    self.input(Input::DecodeError(e)).await;
                    return;
                }
            };
            let frame: Bytes = self.buf.split_to(len).freeze();
            match wire::decode(&frame, &self.dctx) {
                Ok((m, _)) => {
                    if let Message::Update(u) = &m
                        && !u.errors.is_empty()
                    {
                        // RFC 7606 8: log what was wrong, with the bytes.
                        let errors: Vec<String> = u.errors.iter().map(|e| e.to_string()).collect();
                        warn!(peer = %self.name, ?errors, bytes = %hex(&frame[..len.min(LOG_BYTES)]), "malformed UPDATE attributes");
                    }
                    self.input(Input::Message(m)).await;
                }
                Err(e) => {
                    warn!(peer = %self.name, error = %e, bytes = %hex(&frame[..len.min(LOG_BYTES)]), "message refused");
                    self.input(Input::DecodeError(e)).await;
                }
            }
        }
    }

    async fn fire_timers(&mut self) {
        let now = Instant::now();
        for t in Timer::ALL {
            if let Some(d) = self.timers[t.index()]
                && d <= now
            {
                self.timers[t.index()] = None;
                self.input(Input::TimerExpired(t)).await;
            }
        }
    }

    async fn on_inbound(&mut self, stream: TcpStream) {
        if let Err(e) = conn::prepare_inbound(&stream, &self.transport) {
            warn!(peer = %self.name, error = %e, "socket options on inbound connection failed");
        }
        match self.session.state() {
            State::Connect | State::Active => self.adopt(stream, None).await,
            s if collision_relevant(s) => {
                // RFC 4271 6.8: learn the peer's identifier from the OPEN on
                // the new connection, then keep one of the two.
                if let Some(h) = self.collision.take() {
                    h.abort();
                }
                self.collision = Some(tokio::spawn(read_open(stream)));
            }
            s => {
                // Established, administratively stopped, or damping oscillations in Idle:
                // refuse, RFC 4486 Cease subcode 5.
                let reason = match s {
                    State::Idle if self.session.is_timer_armed(Timer::IdleHold) => {
                        "session idle: damping peer oscillations (RFC 4271 8.1.1)"
                    }
                    State::Idle => "session administratively stopped",
                    _ => "session already established",
                };
                let remote = stream.peer_addr().ok();
                info!(peer = %self.name, ?remote, state = ?s, reason, "inbound connection refused");
                refuse(stream, fsm::reject_connection());
            }
        }
    }

    async fn on_collision_open(&mut self, (stream, open, rest): (TcpStream, Open, BytesMut)) {
        let state = self.session.state();
        if matches!(state, State::Connect | State::Active) {
            return self.adopt(stream, Some((open, rest))).await;
        }
        let existing = self.conn.as_ref().map(|c| c.direction);
        if !collision_relevant(state) || existing.is_none() {
            return refuse(stream, fsm::reject_connection());
        }
        let cfg = self.session.config();
        let winner = collision_winner(cfg.router_id, cfg.local_as, open.bgp_id, open.asn());
        let cease = Message::Notification(Notification::cease(
            wire::notification::cease_subcode::CONNECTION_COLLISION,
        ));
        if Some(winner) == existing {
            info!(peer = %self.name, kept = ?winner, "connection collision: new connection closed");
            refuse(stream, cease);
        } else {
            info!(peer = %self.name, kept = ?winner, "connection collision: existing connection closed");
            self.input(Input::OpenCollisionDump).await;
            self.adopt(stream, Some((open, rest))).await;
        }
    }

    /// Take `stream` (from the peer) as this session's connection.
    async fn adopt(&mut self, stream: TcpStream, pre: Option<(Open, BytesMut)>) {
        let c = match Conn::new(stream, Direction::Inbound, self.transport.send_queue_limit) {
            Ok(c) => c,
            Err(e) => return debug!(peer = %self.name, error = %e, "inbound connection lost"),
        };
        if let Some(h) = self.connecting.take() {
            h.abort();
        }
        if self.session.state() == State::Idle {
            self.adopting = true;
            self.input(Input::ManualStart).await;
            self.adopting = false;
        }
        self.conn = Some(c);
        self.buf.clear();
        self.input(Input::TcpConnectionConfirmed).await;
        if let Some((open, rest)) = pre {
            self.input(Input::Message(Message::Open(open))).await;
            self.buf.extend_from_slice(&rest);
            self.process_buffer().await;
        }
    }
}

/// Send `msg` on a connection we do not keep, then close it.
fn refuse(stream: TcpStream, msg: Message) {
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut stream = stream;
        if let Ok(b) = wire::encode_to_vec(&msg, &EncodeContext::default()) {
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&b)).await;
        }
        let _ = stream.shutdown().await;
    });
}

/// Read the first message of a connection, expecting an OPEN.
async fn read_open(mut s: TcpStream) -> PreRead {
    let mut buf = BytesMut::with_capacity(MAX_MESSAGE_LEN);
    let ctx = DecodeContext::default();
    let read = async {
        loop {
            if s.read_buf(&mut buf).await.ok()? == 0 {
                return None;
            }
            if let Some(h) = peek_header(&buf, MAX_MESSAGE_LEN).ok()?
                && buf.len() >= h.length as usize
            {
                let len = h.length as usize;
                let (m, _) = wire::decode(&buf[..len], &ctx).ok()?;
                let Message::Open(o) = m else { return None };
                let rest = buf.split_off(len);
                return Some((o, rest));
            }
        }
    };
    let (o, rest) = tokio::time::timeout(COLLISION_OPEN_TIMEOUT, read)
        .await
        .ok()??;
    Some((s, o, rest))
}

/// Lower-case hex of `b` for logs.
pub(crate) fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}
