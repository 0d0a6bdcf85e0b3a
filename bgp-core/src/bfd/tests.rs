//! The session state machine driven by hand-made packets: RFC 5880 6.8.6 transitions,
//! 6.8.4 Detection Time, 6.8.3 Poll Sequences, 6.8.7 transmission and jitter.

use std::time::Duration;

use super::*;

const LOCAL: u32 = 0x0101;
const REMOTE: u32 = 0x0202;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn session() -> Session {
    Session::new(Config::default(), LOCAL)
}

/// What the remote (BIRD, 100 ms x 3) sends in `state`.
fn remote(state: State) -> ControlPacket {
    ControlPacket {
        diag: Diag::None,
        state,
        poll: false,
        final_: false,
        cpi: false,
        demand: false,
        detect_mult: 3,
        my_discr: REMOTE,
        your_discr: if state == State::Down { 0 } else { LOCAL },
        desired_min_tx_us: 100_000,
        required_min_rx_us: 100_000,
        required_min_echo_rx_us: 0,
    }
}

fn rx(s: &mut Session, p: ControlPacket) -> Vec<Output> {
    s.handle(Input::Received(p))
}

fn changes(out: &[Output]) -> Vec<(State, State, Diag)> {
    out.iter()
        .filter_map(|o| match o {
            Output::StateChanged { from, to, diag } => Some((*from, *to, *diag)),
            _ => None,
        })
        .collect()
}

fn sent(out: &[Output]) -> Vec<ControlPacket> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn up() -> Session {
    let mut s = session();
    rx(&mut s, remote(State::Down));
    rx(&mut s, remote(State::Up));
    assert_eq!(s.state(), State::Up);
    s
}

#[test]
fn starts_down_sending_slowly() {
    let mut s = session();
    let out = s.start();
    let p = sent(&out)[0];
    assert_eq!((p.state, p.my_discr, p.your_discr), (State::Down, LOCAL, 0));
    // RFC 5880 6.8.3: not less than one second while not Up.
    assert_eq!(p.desired_min_tx_us, 1_000_000);
    assert_eq!(p.required_min_rx_us, 100_000);
    assert!(out.contains(&Output::ArmTimer(Timer::Transmit, ms(1000))));
    assert_eq!(s.detection_time(), None);
}

/// The three-way handshake, from both orders.
#[test]
fn down_init_up() {
    let mut s = session();
    let out = rx(&mut s, remote(State::Down));
    assert_eq!(changes(&out), [(State::Down, State::Init, Diag::None)]);
    assert_eq!(s.remote_discr(), REMOTE);
    let out = rx(&mut s, remote(State::Up));
    assert_eq!(changes(&out), [(State::Init, State::Up, Diag::None)]);

    let mut s = session();
    let out = rx(&mut s, remote(State::Init));
    assert_eq!(changes(&out), [(State::Down, State::Up, Diag::None)]);

    let mut s = session();
    rx(&mut s, remote(State::Down));
    let out = rx(&mut s, remote(State::Init));
    assert_eq!(changes(&out), [(State::Init, State::Up, Diag::None)]);
    // Down -> Up directly is not a thing: Up from a Down session is ignored.
    let mut s = session();
    assert!(changes(&rx(&mut s, remote(State::Up))).is_empty());
    assert_eq!(s.state(), State::Down);
}

#[test]
fn neighbor_signals_down() {
    let mut s = up();
    let out = rx(&mut s, remote(State::Down));
    assert_eq!(
        changes(&out),
        [(State::Up, State::Down, Diag::NeighborSignaledSessionDown)]
    );
    let mut s = up();
    let out = rx(&mut s, remote(State::AdminDown));
    assert_eq!(
        changes(&out),
        [(State::Up, State::Down, Diag::NeighborSignaledSessionDown)]
    );
    // AdminDown while Down changes nothing; Init in Up is no change either.
    let mut s = session();
    assert!(changes(&rx(&mut s, remote(State::AdminDown))).is_empty());
    let mut s = up();
    assert!(changes(&rx(&mut s, remote(State::Init))).is_empty());
}

#[test]
fn detection_time_is_remote_mult_times_agreed_interval() {
    let mut s = session();
    let mut p = remote(State::Down);
    // Remote wants to send every 300 ms, we accept 100 ms: agreed 300 ms, x 5.
    p.desired_min_tx_us = 300_000;
    p.detect_mult = 5;
    let out = rx(&mut s, p);
    assert_eq!(s.detection_time(), Some(ms(1500)));
    assert!(out.contains(&Output::ArmTimer(Timer::Detect, ms(1500))));
    // Remote sends faster than we accept: our RequiredMinRx wins. 100 ms x 3.
    let mut p = remote(State::Init);
    p.desired_min_tx_us = 10_000;
    rx(&mut s, p);
    assert_eq!(s.detection_time(), Some(ms(300)));
}

#[test]
fn detection_expiry_takes_the_session_down() {
    let mut s = up();
    let out = s.handle(Input::TimerExpired(Timer::Detect));
    assert_eq!(
        changes(&out),
        [(State::Up, State::Down, Diag::ControlDetectionTimeExpired)]
    );
    assert_eq!(s.remote_discr(), 0);
    assert_eq!(s.detection_time(), None);
    let p = s.packet(false);
    assert_eq!((p.state, p.diag.code(), p.your_discr), (State::Down, 1, 0));
    assert_eq!(p.desired_min_tx_us, 1_000_000);
    // And comes back through Init.
    rx(&mut s, remote(State::Down));
    assert_eq!(s.state(), State::Init);
    let mut s = session();
    rx(&mut s, remote(State::Down));
    let out = s.handle(Input::TimerExpired(Timer::Detect));
    assert_eq!(
        changes(&out),
        [(State::Init, State::Down, Diag::ControlDetectionTimeExpired)]
    );
}

/// Up: the configured 100 ms at once (a decrease), announced with a Poll Sequence that
/// ends with the remote's Final.
#[test]
fn poll_sequence_on_up() {
    let s = up();
    assert!(s.poll_active());
    let p = s.packet(false);
    assert!(p.poll && !p.final_);
    assert_eq!(p.desired_min_tx_us, 100_000);
    assert_eq!(s.tx_interval(), Some(ms(100)));
    let mut s = s;
    let mut f = remote(State::Up);
    f.final_ = true;
    rx(&mut s, f);
    assert!(!s.poll_active());
    assert!(!s.packet(false).poll);
}

/// Down again: back to one second at once (not Up), with a Poll Sequence.
#[test]
fn slow_again_when_down() {
    let mut s = up();
    s.handle(Input::TimerExpired(Timer::Detect));
    assert_eq!(s.tx_interval(), Some(ms(1000)));
    assert!(s.packet(false).poll);
}

#[test]
fn poll_is_answered_with_final() {
    let mut s = up();
    let mut p = remote(State::Up);
    p.poll = true;
    let out = rx(&mut s, p);
    let f = sent(&out);
    assert_eq!(f.len(), 1);
    assert!(f[0].final_ && !f[0].poll);
    assert_eq!(f[0].state, State::Up);
}

#[test]
fn transmit_interval_follows_remote_required_min_rx() {
    let mut s = up();
    let mut p = remote(State::Up);
    p.required_min_rx_us = 500_000;
    let out = rx(&mut s, p);
    assert_eq!(s.tx_interval(), Some(ms(500)));
    assert!(out.contains(&Output::ArmTimer(Timer::Transmit, ms(500))));
    let out = s.handle(Input::TimerExpired(Timer::Transmit));
    assert_eq!(sent(&out).len(), 1);
    assert!(out.contains(&Output::ArmTimer(Timer::Transmit, ms(500))));
    // RequiredMinRx zero: the remote wants no periodic packets.
    p.required_min_rx_us = 0;
    let out = rx(&mut s, p);
    assert!(out.contains(&Output::StopTimer(Timer::Transmit)));
    assert!(sent(&s.handle(Input::TimerExpired(Timer::Transmit))).is_empty());
}

#[test]
fn packets_for_another_discriminator_are_ignored() {
    let mut s = up();
    let mut p = remote(State::Down);
    p.your_discr = 0x9999;
    assert!(rx(&mut s, p).is_empty());
    assert_eq!(s.state(), State::Up);
}

#[test]
fn admin_down_tells_the_remote_and_ignores_it() {
    let mut s = up();
    let out = s.handle(Input::AdminDown);
    assert_eq!(
        changes(&out),
        [(State::Up, State::AdminDown, Diag::AdministrativelyDown)]
    );
    assert_eq!(sent(&out)[0].state, State::AdminDown);
    assert!(changes(&rx(&mut s, remote(State::Down))).is_empty());
    assert!(s.handle(Input::TimerExpired(Timer::Transmit)).is_empty());
}

#[test]
fn jitter_is_75_to_100_percent_or_90_with_mult_1() {
    let iv = ms(100);
    assert_eq!(jittered(iv, 3, 0.0), ms(100));
    assert_eq!(jittered(iv, 3, 1.0), ms(75));
    assert_eq!(jittered(iv, 3, 0.5), Duration::from_micros(87_500));
    assert_eq!(jittered(iv, 1, 0.0), ms(90));
    assert_eq!(jittered(iv, 1, 1.0), ms(75));
    for i in 0..100 {
        let d = jittered(iv, 3, f64::from(i) / 100.0);
        assert!(d >= ms(75) && d <= ms(100));
    }
}
