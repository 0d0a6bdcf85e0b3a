//! Session: the RFC 4271 8.2.2 transitions.

use std::time::Duration;

use super::backoff::Backoff;
use super::config::Config;
use super::negotiate::{NegotiatedSession, validate_open};
use super::{DownReason, Input, Output, State, StopReason, Timer};
use crate::wire::notification::{cease_subcode, code, fsm_subcode, open_subcode};
use crate::wire::{DecodeError, Message, Notification, Open, RefreshSubtype, RouteRefresh, Update};

/// One BGP session (one TCP connection at a time) with its peer.
#[derive(Debug, Clone)]
pub struct Session {
    config: Config,
    state: State,
    /// RFC 4271 8: ConnectRetryCounter.
    connect_retry_counter: u32,
    negotiated: Option<NegotiatedSession>,
    armed: [bool; 4],
    backoff: Backoff,
    keepalives_received: u32,
    /// Connections that failed in a row before the peer's OPEN came: our attempts refused or
    /// unanswered ([`Input::TcpConnectFailed`]), and connections the peer closed in OpenSent.
    /// They set the [`Reconnect`](super::Reconnect) delay; a valid OPEN resets the count.
    connect_failures: u32,
}

/// Collects outputs and keeps the armed-timer set in step with them.
struct Out<'a> {
    v: Vec<Output>,
    armed: &'a mut [bool; 4],
}

impl Out<'_> {
    fn push(&mut self, o: Output) {
        self.v.push(o);
    }
    fn send(&mut self, m: Message) {
        self.v.push(Output::SendMessage(m));
    }
    fn arm(&mut self, t: Timer, secs: u32) {
        self.arm_for(t, Duration::from_secs(secs.into()));
    }
    fn arm_for(&mut self, t: Timer, d: Duration) {
        self.armed[t.index()] = true;
        self.v.push(Output::ArmTimer(t, d));
    }
    fn stop(&mut self, t: Timer) {
        if std::mem::replace(&mut self.armed[t.index()], false) {
            self.v.push(Output::StopTimer(t));
        }
    }
}

impl Session {
    pub fn new(config: Config) -> Self {
        let backoff = Backoff::new(config.idle_hold);
        Session {
            config,
            state: State::Idle,
            connect_retry_counter: 0,
            negotiated: None,
            armed: [false; 4],
            backoff,
            keepalives_received: 0,
            connect_failures: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The Restart State bit of the OPENs this session sends from now on (see
    /// [`Config::set_restart_state`]); a session already past OpenSent keeps what it sent.
    pub fn set_restart_state(&mut self, restarting: bool) {
        self.config.set_restart_state(restarting);
    }

    /// Negotiated parameters, from OpenConfirm on.
    pub fn negotiated(&self) -> Option<&NegotiatedSession> {
        self.negotiated.as_ref()
    }

    pub fn connect_retry_counter(&self) -> u32 {
        self.connect_retry_counter
    }

    /// Consecutive failures the idle hold backoff has counted.
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }

    pub fn is_timer_armed(&self, t: Timer) -> bool {
        self.armed[t.index()]
    }

    /// Our OPEN for this session.
    pub fn open_message(&self) -> Open {
        Open::new(
            self.config.local_as,
            self.config.hold_time,
            self.config.router_id,
            self.config.capabilities.clone(),
        )
    }

    /// Process one event; returns the actions to perform, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut armed = self.armed;
        let mut out = Out {
            v: Vec::new(),
            armed: &mut armed,
        };
        self.dispatch(input, &mut out);
        let v = out.v;
        self.armed = armed;
        v
    }

    fn dispatch(&mut self, input: Input, out: &mut Out<'_>) {
        match input {
            Input::ManualStart => {
                if self.state == State::Idle {
                    self.backoff.reset();
                    self.connect_retry_counter = 0;
                    self.connect_failures = 0;
                    out.stop(Timer::IdleHold);
                    self.start(out);
                }
            }
            // RFC 4271 8.1.1: with DampPeerOscillations an AutomaticStart is
            // ignored while the IdleHoldTimer runs.
            Input::AutomaticStart => {
                if self.state == State::Idle && !out.armed[Timer::IdleHold.index()] {
                    self.start(out);
                }
            }
            Input::ManualStop(reason) => self.manual_stop(reason, out),
            Input::TimerExpired(t) => {
                // A timer we did not arm (or already stopped) is stale.
                if std::mem::replace(&mut out.armed[t.index()], false) {
                    self.timer_expired(t, out);
                }
            }
            Input::TcpCrAcked | Input::TcpConnectionConfirmed => self.tcp_up(out),
            Input::TcpConnectionFails => self.tcp_fails(out),
            Input::BfdDown => {
                if self.state != State::Idle {
                    self.go_idle(DownReason::BfdDown, true, out);
                }
            }
            Input::TcpConnectFailed => self.connect_failed(out),
            Input::Message(m) => self.message(m, out),
            Input::DecodeError(e) => self.decode_error(e, out),
            Input::OpenCollisionDump => {
                if matches!(
                    self.state,
                    State::OpenSent | State::OpenConfirm | State::Established
                ) {
                    out.send(Message::Notification(Notification::cease(
                        cease_subcode::CONNECTION_COLLISION,
                    )));
                    self.go_idle(DownReason::Collision, false, out);
                }
            }
            Input::PrefixCount { family, count } => {
                if let (State::Established, Some(limit)) = (self.state, self.config.max_prefixes)
                    && count > limit
                {
                    // RFC 4486 4: Cease/1 with AFI, SAFI and the limit.
                    out.send(Message::Notification(Notification::cease_max_prefixes(
                        family, limit,
                    )));
                    self.go_idle(
                        DownReason::MaxPrefixes {
                            family,
                            count,
                            limit,
                        },
                        true,
                        out,
                    );
                }
            }
            Input::OutOfResources => {
                if matches!(
                    self.state,
                    State::OpenSent | State::OpenConfirm | State::Established
                ) {
                    self.fail(Notification::cease(cease_subcode::OUT_OF_RESOURCES), out);
                }
            }
            Input::UpdateSent => {
                if self.state == State::Established {
                    self.arm_keepalive(out);
                }
            }
        }
    }

    fn set_state(&mut self, to: State, out: &mut Out<'_>) {
        if self.state != to {
            out.push(Output::StateChanged {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }

    /// Idle + ManualStart/AutomaticStart/IdleHoldTimer_Expires (RFC 4271
    /// 8.2.2 Idle state, events 1, 3, 13).
    fn start(&mut self, out: &mut Out<'_>) {
        out.arm(Timer::ConnectRetry, self.config.connect_retry_secs);
        if self.config.passive {
            self.set_state(State::Active, out);
        } else {
            out.push(Output::Connect);
            self.set_state(State::Connect, out);
        }
    }

    fn manual_stop(&mut self, reason: StopReason, out: &mut Out<'_>) {
        if self.state == State::Idle {
            out.stop(Timer::IdleHold);
            return;
        }
        if matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) && reason != StopReason::GracefulRestart
        {
            out.send(Message::Notification(Notification::cease(
                reason.cease_subcode(),
            )));
        }
        // RFC 4271 8.2.2: ManualStop sets the ConnectRetryCounter to zero.
        self.connect_retry_counter = 0;
        self.backoff.reset();
        self.go_idle(DownReason::Stopped(reason), reason.restarts(), out);
    }

    /// Leave for Idle: close, stop every timer, report, and (if `restart`)
    /// arm the IdleHoldTimer with the oscillation backoff.
    fn go_idle(&mut self, reason: DownReason, restart: bool, out: &mut Out<'_>) {
        out.push(Output::CloseConnection);
        for t in Timer::ALL {
            out.stop(t);
        }
        if !matches!(reason, DownReason::Stopped(_)) {
            self.connect_retry_counter += 1;
        }
        self.negotiated = None;
        self.keepalives_received = 0;
        self.set_state(State::Idle, out);
        out.push(Output::SessionDown(reason));
        if restart {
            // DampPeerOscillations damps repeated failures; the first one after a stable
            // session (a peer restarting, a link flap) restarts at once, as BIRD and FRR do.
            match self.backoff.next_delay() {
                0 => self.start(out),
                delay => out.arm(Timer::IdleHold, delay),
            }
        }
    }

    /// Send a NOTIFICATION and go Idle with automatic restart.
    fn fail(&mut self, n: Notification, out: &mut Out<'_>) {
        out.send(Message::Notification(n.clone()));
        self.go_idle(DownReason::LocalNotification(n), true, out);
    }

    fn arm_keepalive(&mut self, out: &mut Out<'_>) {
        if let Some(n) = &self.negotiated
            && n.keepalive > 0
        {
            out.arm(Timer::Keepalive, n.keepalive as u32);
        }
    }

    fn restart_hold(&mut self, out: &mut Out<'_>) {
        if let Some(n) = &self.negotiated
            && n.hold_time > 0
        {
            out.arm(Timer::Hold, n.hold_time as u32);
        }
    }

    fn timer_expired(&mut self, t: Timer, out: &mut Out<'_>) {
        match (t, self.state) {
            // Event 9 in Connect: drop the attempt, retry.
            (Timer::ConnectRetry, State::Connect) => {
                out.push(Output::CloseConnection);
                out.arm(Timer::ConnectRetry, self.config.connect_retry_secs);
                out.push(Output::Connect);
            }
            // Event 9 in Active: initiate a connection (unless passive).
            (Timer::ConnectRetry, State::Active) => {
                out.arm(Timer::ConnectRetry, self.config.connect_retry_secs);
                if !self.config.passive {
                    out.push(Output::Connect);
                    self.set_state(State::Connect, out);
                }
            }
            // Event 10: HoldTimer_Expires -> NOTIFICATION 4, Idle.
            (Timer::Hold, State::OpenSent | State::OpenConfirm | State::Established) => {
                out.send(Message::Notification(Notification::hold_timer_expired()));
                self.go_idle(DownReason::HoldTimerExpired, true, out);
            }
            // Event 11: send KEEPALIVE, restart the timer.
            (Timer::Keepalive, State::OpenConfirm | State::Established) => {
                out.send(Message::Keepalive);
                self.arm_keepalive(out);
            }
            // Event 13: IdleHoldTimer_Expires -> as AutomaticStart.
            (Timer::IdleHold, State::Idle) => self.start(out),
            _ => {}
        }
    }

    /// Events 16/17: the TCP connection is up; send OPEN (RFC 4271 8.2.2,
    /// Connect and Active states, DelayOpen not used).
    fn tcp_up(&mut self, out: &mut Out<'_>) {
        if !matches!(self.state, State::Connect | State::Active) {
            return;
        }
        out.stop(Timer::ConnectRetry);
        out.send(Message::Open(self.open_message()));
        out.arm(Timer::Hold, self.config.open_hold_time as u32);
        self.set_state(State::OpenSent, out);
    }

    /// Event 18 for our own attempt (see [`Input::TcpConnectFailed`]): wait in Active, where
    /// the peer's connection is taken too, and try again soon.
    fn connect_failed(&mut self, out: &mut Out<'_>) {
        if !matches!(self.state, State::Connect | State::Active) || self.config.passive {
            return;
        }
        out.push(Output::CloseConnection);
        self.arm_reconnect(out);
        self.set_state(State::Active, out);
    }

    /// The ConnectRetryTimer on the [`Reconnect`](super::Reconnect) schedule, counting one
    /// more failure before an OPEN.
    fn arm_reconnect(&mut self, out: &mut Out<'_>) {
        let delay = self.config.reconnect.delay(self.connect_failures);
        self.connect_failures = self.connect_failures.saturating_add(1);
        out.arm_for(Timer::ConnectRetry, delay);
    }

    /// Event 18.
    fn tcp_fails(&mut self, out: &mut Out<'_>) {
        match self.state {
            State::Idle => {}
            // RFC 4271 8.2.2 OpenSent: close, restart ConnectRetryTimer, continue to listen
            // in Active. The peer closed before sending its OPEN: it accepted the connection
            // but is not ready for us (it has not taken its configuration of us yet, or it is
            // starting). As with a refused connection, the timer runs on the Reconnect
            // schedule rather than the full ConnectRetry time (3.75-5 s after jitter), which
            // kept a mesh node that joined unreachable for 4 s when one peer refused it.
            State::OpenSent => {
                out.push(Output::CloseConnection);
                out.stop(Timer::Hold);
                self.arm_reconnect(out);
                self.set_state(State::Active, out);
            }
            _ => self.go_idle(DownReason::ConnectionFailed, true, out),
        }
    }

    fn unexpected(&mut self, out: &mut Out<'_>) {
        // RFC 6608: FSM Error with the subcode naming the state.
        let sub = match self.state {
            State::OpenSent => fsm_subcode::UNEXPECTED_IN_OPEN_SENT,
            State::OpenConfirm => fsm_subcode::UNEXPECTED_IN_OPEN_CONFIRM,
            State::Established => fsm_subcode::UNEXPECTED_IN_ESTABLISHED,
            State::Connect | State::Active => {
                // No BGP connection yet to send a NOTIFICATION on.
                self.go_idle(DownReason::UnexpectedEvent, true, out);
                return;
            }
            State::Idle => return,
        };
        self.fail(Notification::fsm_error(sub), out);
    }

    fn message(&mut self, m: Message, out: &mut Out<'_>) {
        match (self.state, m) {
            (State::Idle, _) => {}
            // Event 25 (and 24, NotifMsgVerErr, which skips damping).
            (_, Message::Notification(n)) => {
                let version_error =
                    n.code == code::OPEN_MESSAGE && n.subcode == open_subcode::UNSUPPORTED_VERSION;
                if version_error {
                    self.connect_retry_counter = self.connect_retry_counter.saturating_sub(1);
                }
                self.go_idle(DownReason::PeerNotification(n), true, out);
            }
            // Event 19 in OpenSent.
            (State::OpenSent, Message::Open(open)) => self.open_received(open, out),
            // Event 26 in OpenConfirm.
            (State::OpenConfirm, Message::Keepalive) => {
                self.restart_hold(out);
                self.set_state(State::Established, out);
                let n = self.negotiated.clone().expect("negotiated in OpenConfirm");
                out.push(Output::Established(Box::new(n)));
            }
            (State::Established, Message::Keepalive) => {
                self.restart_hold(out);
                self.keepalives_received = self.keepalives_received.saturating_add(1);
                if self.keepalives_received == self.config.idle_hold.stable_keepalives {
                    self.backoff.reset();
                }
            }
            // Event 27.
            (State::Established, Message::Update(u)) => {
                self.restart_hold(out);
                out.push(Output::DeliverUpdate(u));
            }
            (State::Established, Message::RouteRefresh(rr)) => {
                self.restart_hold(out);
                if self.refresh_acceptable(&rr) {
                    out.push(Output::RouteRefreshReceived(rr));
                }
            }
            _ => self.unexpected(out),
        }
    }

    /// RFC 2918 4: ignore a refresh for a family not negotiated (or when
    /// the capability was not); RFC 7313 5: ignore unknown subtypes and
    /// BoRR/EoRR without enhanced route refresh.
    fn refresh_acceptable(&self, rr: &RouteRefresh) -> bool {
        let Some(n) = &self.negotiated else {
            return false;
        };
        let subtype_ok = match rr.subtype {
            RefreshSubtype::Request => n.route_refresh,
            RefreshSubtype::BeginOfRefresh | RefreshSubtype::EndOfRefresh => {
                n.enhanced_route_refresh
            }
            RefreshSubtype::Other(_) => false,
        };
        subtype_ok && n.families.contains(&rr.family)
    }

    fn open_received(&mut self, open: Open, out: &mut Out<'_>) {
        match validate_open(&self.config, &open) {
            Ok(n) => {
                out.stop(Timer::ConnectRetry);
                self.connect_failures = 0;
                out.send(Message::Keepalive);
                let (hold, ka) = (n.hold_time, n.keepalive);
                self.negotiated = Some(n);
                if hold > 0 {
                    out.arm(Timer::Keepalive, ka as u32);
                    out.arm(Timer::Hold, hold as u32);
                } else {
                    // RFC 4271 4.4: hold time 0 -> no KEEPALIVEs, no timer.
                    out.stop(Timer::Hold);
                }
                self.set_state(State::OpenConfirm, out);
            }
            Err(n) => self.fail(n, out),
        }
    }

    /// Events 21, 22, 28: send the error's NOTIFICATION and go Idle.
    fn decode_error(&mut self, e: DecodeError, out: &mut Out<'_>) {
        match self.state {
            State::Idle => {}
            State::Connect | State::Active => self.go_idle(DownReason::UnexpectedEvent, true, out),
            _ => self.fail(e.notification, out),
        }
    }
}

/// Convenience for tests and the peer layer: an UPDATE as an input.
impl From<Update> for Input {
    fn from(u: Update) -> Self {
        Input::Message(Message::Update(Box::new(u)))
    }
}
