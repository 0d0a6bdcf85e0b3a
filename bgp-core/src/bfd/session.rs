//! One BFD session in Asynchronous mode (RFC 5880 6.8), pure: [`Session::handle`]
//! takes an [`Input`] and returns the [`Output`]s the I/O layer performs. Timers are
//! data: the session asks for a Transmit and a Detection timer with their full
//! durations; the I/O layer applies the transmit jitter ([`jittered`]) and runs them.

use std::time::Duration;

use super::packet::{ControlPacket, Diag};
use super::{Config, State};

/// RFC 5880 6.8.3: while the session is not Up, bfd.DesiredMinTxInterval is at least
/// one second.
pub const SLOW_TX_US: u32 = 1_000_000;

/// The two timers of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Periodic transmission (RFC 5880 6.8.7); jittered by the I/O layer.
    Transmit,
    /// Detection Time (RFC 5880 6.8.4): no valid packet for this long.
    Detect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A Control packet that passed [`ControlPacket::decode`] and was matched to this
    /// session (by Your Discriminator, or by address when that is zero).
    Received(ControlPacket),
    TimerExpired(Timer),
    /// Take the session AdminDown (the BGP peer is being removed): the remote sees
    /// AdminDown, not a failure (RFC 5882 3.2).
    AdminDown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this packet now.
    Send(ControlPacket),
    /// (Re)start this timer; for [`Timer::Transmit`] the I/O layer jitters it.
    ArmTimer(Timer, Duration),
    StopTimer(Timer),
    StateChanged {
        from: State,
        to: State,
        diag: Diag,
    },
}

/// The RFC 5880 6.8.1 state variables of one session.
#[derive(Debug, Clone)]
pub struct Session {
    cfg: Config,
    state: State,
    remote_state: State,
    local_discr: u32,
    remote_discr: u32,
    local_diag: Diag,
    /// bfd.DesiredMinTxInterval as advertised now.
    desired_min_tx_us: u32,
    /// The DesiredMinTxInterval our transmit interval is based on: during a Poll
    /// Sequence that increases it, the old value (RFC 5880 6.8.3).
    tx_basis_us: u32,
    /// bfd.RemoteMinRxInterval (initial value 1 per 6.8.1).
    remote_min_rx_us: u32,
    remote_desired_min_tx_us: u32,
    /// bfd.DetectMult of the remote; 0 until a packet arrived.
    remote_detect_mult: u8,
    /// A Poll Sequence is in progress: our packets carry P until one with F arrives.
    poll: bool,
}

impl Session {
    /// A session in Down with our discriminator (non-zero, unique per system).
    pub fn new(cfg: Config, local_discr: u32) -> Session {
        assert_ne!(local_discr, 0, "RFC 5880 6.8.1: bfd.LocalDiscr is nonzero");
        let desired = cfg.desired_min_tx_us.max(SLOW_TX_US);
        Session {
            cfg,
            state: State::Down,
            remote_state: State::Down,
            local_discr,
            remote_discr: 0,
            local_diag: Diag::None,
            desired_min_tx_us: desired,
            tx_basis_us: desired,
            remote_min_rx_us: 1,
            remote_desired_min_tx_us: 0,
            remote_detect_mult: 0,
            poll: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }
    pub fn remote_state(&self) -> State {
        self.remote_state
    }
    pub fn local_diag(&self) -> Diag {
        self.local_diag
    }
    pub fn local_discr(&self) -> u32 {
        self.local_discr
    }
    pub fn remote_discr(&self) -> u32 {
        self.remote_discr
    }
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn poll_active(&self) -> bool {
        self.poll
    }

    /// RFC 5880 6.8.7: the interval between our periodic packets before jitter, the
    /// larger of our DesiredMinTxInterval and the remote's RequiredMinRxInterval. `None`
    /// when the remote asked for no packets at all (RequiredMinRxInterval zero).
    pub fn tx_interval(&self) -> Option<Duration> {
        if self.remote_min_rx_us == 0 {
            return None;
        }
        Some(us(self.tx_basis_us.max(self.remote_min_rx_us)))
    }

    /// RFC 5880 6.8.4, Asynchronous mode: the remote's Detect Mult times the agreed
    /// interval (the larger of our RequiredMinRxInterval and the remote's last
    /// DesiredMinTxInterval). `None` before the first packet.
    pub fn detection_time(&self) -> Option<Duration> {
        if self.remote_detect_mult == 0 {
            return None;
        }
        let agreed = self
            .cfg
            .required_min_rx_us
            .max(self.remote_desired_min_tx_us);
        Some(us(agreed).saturating_mul(self.remote_detect_mult.into()))
    }

    /// Begin transmitting: the first packet at once, then the periodic timer.
    pub fn start(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if self.state != State::AdminDown {
            self.transmit(&mut out);
        }
        out
    }

    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Received(p) => self.receive(p, &mut out),
            Input::TimerExpired(Timer::Transmit) => {
                if self.state != State::AdminDown {
                    self.transmit(&mut out);
                }
            }
            Input::TimerExpired(Timer::Detect) => self.detection_expired(&mut out),
            Input::AdminDown => {
                self.set_state(State::AdminDown, Diag::AdministrativelyDown, &mut out);
                out.push(Output::StopTimer(Timer::Detect));
                out.push(Output::StopTimer(Timer::Transmit));
                out.push(Output::Send(self.packet(false)));
            }
        }
        out
    }

    /// The packet we send now (RFC 5880 6.8.7 "Transmitting BFD Control Packets").
    pub fn packet(&self, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.local_diag,
            state: self.state,
            // "A BFD Control packet MUST NOT have both the Poll (P) and Final (F) bits
            // set."
            poll: self.poll && !final_,
            final_,
            cpi: false,
            demand: false,
            detect_mult: self.cfg.detect_mult,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx_us: self.desired_min_tx_us,
            required_min_rx_us: self.cfg.required_min_rx_us,
            required_min_echo_rx_us: 0,
        }
    }

    fn transmit(&self, out: &mut Vec<Output>) {
        // RFC 5880 6.8.7: no periodic packets when bfd.RemoteMinRxInterval is zero.
        if let Some(iv) = self.tx_interval() {
            out.push(Output::Send(self.packet(false)));
            out.push(Output::ArmTimer(Timer::Transmit, iv));
        }
    }

    /// RFC 5880 6.8.6 "Reception of BFD Control Packets", from "Set bfd.RemoteDiscr".
    fn receive(&mut self, p: ControlPacket, out: &mut Vec<Output>) {
        // "If the Your Discriminator field is nonzero, it MUST be used to select the
        // session ... If no session is found, the packet MUST be discarded."
        if p.your_discr != 0 && p.your_discr != self.local_discr {
            return;
        }
        let tx_before = self.tx_interval();
        self.remote_discr = p.my_discr;
        self.remote_state = p.state;
        self.remote_min_rx_us = p.required_min_rx_us;
        self.remote_desired_min_tx_us = p.desired_min_tx_us;
        self.remote_detect_mult = p.detect_mult;
        // "If a Poll Sequence is being transmitted by the local system and the Final
        // (F) bit in the received packet is set, the Poll Sequence MUST be terminated."
        if p.final_ && self.poll {
            self.poll = false;
            self.tx_basis_us = self.desired_min_tx_us;
        }
        // "If bfd.SessionState is AdminDown: Discard the packet."
        if self.state == State::AdminDown {
            return;
        }
        if p.state == State::AdminDown {
            // "If received state is AdminDown: If bfd.SessionState is not Down: Set
            // bfd.LocalDiag to 3 (Neighbor signaled session down), Set
            // bfd.SessionState to Down."
            if self.state != State::Down {
                self.set_state(State::Down, Diag::NeighborSignaledSessionDown, out);
            }
        } else {
            match (self.state, p.state) {
                // "If bfd.SessionState is Down: If received State is Down: Set
                // bfd.SessionState to Init. Else if received State is Init: Set
                // bfd.SessionState to Up."
                (State::Down, State::Down) => self.set_state(State::Init, self.local_diag, out),
                (State::Down, State::Init) => self.set_state(State::Up, self.local_diag, out),
                // "Else if bfd.SessionState is Init: If received State is Init or Up:
                // Set bfd.SessionState to Up."
                (State::Init, State::Init | State::Up) => {
                    self.set_state(State::Up, self.local_diag, out)
                }
                // "Else (bfd.SessionState is Up): If received State is Down: Set
                // bfd.LocalDiag to 3, Set bfd.SessionState to Down."
                (State::Up, State::Down) => {
                    self.set_state(State::Down, Diag::NeighborSignaledSessionDown, out)
                }
                _ => {}
            }
        }
        // "If the Poll (P) bit is set, send a BFD Control packet to the remote system
        // with the Poll (P) bit clear, and the Final (F) bit set" (6.8.7: as soon as
        // practicable, apart from the periodic ones).
        if p.poll {
            out.push(Output::Send(self.packet(true)));
        }
        // 6.8.4: the Detection Time restarts with every valid packet.
        if let Some(d) = self.detection_time() {
            out.push(Output::ArmTimer(Timer::Detect, d));
        }
        // A new interval (the remote's RequiredMinRx, or the end of a Poll Sequence)
        // takes effect now rather than after the previous, possibly long, one.
        if self.tx_interval() != tx_before {
            match self.tx_interval() {
                Some(iv) => out.push(Output::ArmTimer(Timer::Transmit, iv)),
                None => out.push(Output::StopTimer(Timer::Transmit)),
            }
        }
    }

    /// RFC 5880 6.8.4: "If ... a period of time equal to the Detection Time passes
    /// without the receipt of a valid, authenticated BFD packet from the remote system
    /// ... the session has gone down -- the local system MUST set bfd.SessionState to
    /// Down and bfd.LocalDiag to 1 (Control Detection Time Expired)."
    fn detection_expired(&mut self, out: &mut Vec<Output>) {
        if matches!(self.state, State::Init | State::Up) {
            self.set_state(State::Down, Diag::ControlDetectionTimeExpired, out);
        }
        // 6.8.1: bfd.RemoteDiscr "MUST be set to zero if the Detection Time expires".
        self.remote_discr = 0;
        self.remote_detect_mult = 0;
        self.remote_state = State::Down;
        // 6.8.1: the remote's RequiredMinRx is unknown again (initial value 1).
        let before = self.tx_interval();
        self.remote_min_rx_us = 1;
        if self.tx_interval() != before
            && let Some(iv) = self.tx_interval()
        {
            out.push(Output::ArmTimer(Timer::Transmit, iv));
        }
    }

    fn set_state(&mut self, to: State, diag: Diag, out: &mut Vec<Output>) {
        if to == self.state {
            return;
        }
        let from = self.state;
        self.state = to;
        self.local_diag = diag;
        out.push(Output::StateChanged { from, to, diag });
        // RFC 5880 6.8.3: at least one second while not Up; the configured interval
        // once Up. Either change starts a Poll Sequence.
        let want = if to == State::Up {
            self.cfg.desired_min_tx_us
        } else {
            self.cfg.desired_min_tx_us.max(SLOW_TX_US)
        };
        if want != self.desired_min_tx_us {
            // "If bfd.DesiredMinTxInterval is increased and bfd.SessionState is Up, the
            // actual transmission interval used MUST NOT change until the Poll Sequence
            // ... has terminated." Decreases, and anything outside Up, apply at once.
            if want < self.desired_min_tx_us || to != State::Up {
                self.tx_basis_us = want;
            }
            self.desired_min_tx_us = want;
            self.poll = to != State::AdminDown;
        }
    }
}

fn us(v: u32) -> Duration {
    Duration::from_micros(v.into())
}

/// RFC 5880 6.8.7: the periodic interval "MUST be reduced by a random value of 0 to 25%"
/// and, with bfd.DetectMult 1, be "no more than 90% of the negotiated transmission
/// interval". `unit` is a uniform random number in [0, 1) from the I/O layer.
pub fn jittered(interval: Duration, detect_mult: u8, unit: f64) -> Duration {
    let unit = unit.clamp(0.0, 1.0);
    let (lo, hi) = if detect_mult == 1 {
        (0.75, 0.90)
    } else {
        (0.75, 1.0)
    };
    interval.mul_f64(hi - (hi - lo) * unit)
}
