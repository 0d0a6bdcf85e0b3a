//! FSM transitions (RFC 4271 8.2.2), driven without sockets or clocks.

use std::net::Ipv4Addr;
use std::time::Duration;

use bgpd::fsm::{
    Config, Direction, DownReason, Input, Output, PeerAs, Session, State, StopReason, Timer,
    collision_winner, negotiate_timers, validate_open,
};
use bgpd::wire::{
    AddPathMode, Capability, DecodeError, DecodeReason, Family, GracefulRestart, Message,
    Notification, Open, RefreshSubtype, RouteRefresh, Update,
};

const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn cfg() -> Config {
    Config::new(65000, LOCAL_ID, PeerAs::Exact(65001))
}

fn peer_open(asn: u32, hold: u16, caps: Vec<Capability>) -> Open {
    Open::new(asn, hold, PEER_ID, caps)
}

fn default_peer_open() -> Open {
    peer_open(
        65001,
        90,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(65001),
        ],
    )
}

fn open_in(m: Open) -> Input {
    Input::Message(Message::Open(m))
}

fn sent_notification(out: &[Output]) -> Option<Notification> {
    out.iter().find_map(|o| match o {
        Output::SendMessage(Message::Notification(n)) => Some(n.clone()),
        _ => None,
    })
}

fn down_reason(out: &[Output]) -> Option<DownReason> {
    out.iter().find_map(|o| match o {
        Output::SessionDown(r) => Some(r.clone()),
        _ => None,
    })
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn armed(out: &[Output], t: Timer) -> Option<Duration> {
    out.iter().rev().find_map(|o| match o {
        Output::ArmTimer(x, s) if *x == t => Some(*s),
        _ => None,
    })
}

/// Drive a session to OpenSent over an outbound connection.
fn open_sent(c: Config) -> Session {
    let mut s = Session::new(c);
    s.handle(Input::ManualStart);
    s.handle(Input::TcpCrAcked);
    assert_eq!(s.state(), State::OpenSent);
    s
}

fn open_confirm(c: Config, peer: Open) -> Session {
    let mut s = open_sent(c);
    s.handle(open_in(peer));
    assert_eq!(s.state(), State::OpenConfirm);
    s
}

fn established(c: Config) -> Session {
    let mut s = open_confirm(c, default_peer_open());
    s.handle(Input::Message(Message::Keepalive));
    assert_eq!(s.state(), State::Established);
    s
}

#[test]
fn idle_manual_start_connects() {
    let mut s = Session::new(cfg());
    let out = s.handle(Input::ManualStart);
    assert_eq!(
        out,
        vec![
            Output::ArmTimer(Timer::ConnectRetry, secs(5)),
            Output::Connect,
            Output::StateChanged {
                from: State::Idle,
                to: State::Connect
            },
        ]
    );
}

#[test]
fn passive_start_waits_in_active() {
    let mut s = Session::new(Config {
        passive: true,
        ..cfg()
    });
    let out = s.handle(Input::ManualStart);
    assert!(!out.contains(&Output::Connect));
    assert_eq!(s.state(), State::Active);
    // ConnectRetry expiry while passive: re-arm, no connect, stay Active.
    let out = s.handle(Input::TimerExpired(Timer::ConnectRetry));
    assert_eq!(out, vec![Output::ArmTimer(Timer::ConnectRetry, secs(5))]);
    assert_eq!(s.state(), State::Active);
    // Inbound connection: OPEN goes out.
    let out = s.handle(Input::TcpConnectionConfirmed);
    assert!(matches!(out[1], Output::SendMessage(Message::Open(_))));
    assert_eq!(s.state(), State::OpenSent);
}

#[test]
fn connect_retry_in_connect_retries() {
    let mut s = Session::new(cfg());
    s.handle(Input::ManualStart);
    let out = s.handle(Input::TimerExpired(Timer::ConnectRetry));
    assert_eq!(
        out,
        vec![
            Output::CloseConnection,
            Output::ArmTimer(Timer::ConnectRetry, secs(5)),
            Output::Connect
        ]
    );
    assert_eq!(s.state(), State::Connect);
}

#[test]
fn tcp_up_sends_open_and_arms_large_hold_timer() {
    let mut s = Session::new(cfg());
    s.handle(Input::ManualStart);
    let out = s.handle(Input::TcpCrAcked);
    assert_eq!(out[0], Output::StopTimer(Timer::ConnectRetry));
    let Output::SendMessage(Message::Open(o)) = &out[1] else {
        panic!("{out:?}")
    };
    assert_eq!((o.my_as, o.hold_time, o.bgp_id), (65000, 240, LOCAL_ID));
    assert!(
        o.capabilities()
            .any(|c| *c == Capability::FourOctetAs(65000))
    );
    assert_eq!(armed(&out, Timer::Hold), Some(secs(240)));
}

/// RFC 5882 3.2: BFD down drops an Established session at once, like a TCP failure
/// (nothing sent: the path is broken), and it restarts; in Idle it changes nothing.
#[test]
fn bfd_down_drops_the_session_like_a_tcp_failure() {
    let mut s = established(cfg());
    let out = s.handle(Input::BfdDown);
    assert_eq!(down_reason(&out), Some(DownReason::BfdDown));
    assert_eq!(sent_notification(&out), None);
    assert!(out.contains(&Output::CloseConnection));
    assert!(out.contains(&Output::Connect));
    assert_eq!(s.state(), State::Connect);
    let mut s = Session::new(cfg());
    assert!(s.handle(Input::BfdDown).is_empty());
}

#[test]
fn tcp_fails_in_open_sent_goes_active_then_retries_soon() {
    let mut s = open_sent(cfg());
    // The peer accepted and closed before its OPEN (it does not know us yet): no session
    // failure; the retry follows the Reconnect schedule, not the 5 s ConnectRetry time.
    let mut delays = vec![];
    for _ in 0..4 {
        let out = s.handle(Input::TcpConnectionFails);
        assert_eq!(s.state(), State::Active);
        assert!(out.contains(&Output::CloseConnection));
        assert!(out.contains(&Output::StopTimer(Timer::Hold)));
        assert_eq!(down_reason(&out), None);
        delays.push(armed(&out, Timer::ConnectRetry).unwrap());
        let out = s.handle(Input::TimerExpired(Timer::ConnectRetry));
        assert!(out.contains(&Output::Connect));
        assert_eq!(s.state(), State::Connect);
        s.handle(Input::TcpCrAcked);
        assert_eq!(s.state(), State::OpenSent);
    }
    let ms = |n| Duration::from_millis(n);
    // A TCP connection alone does not reset the schedule: a peer that keeps closing on us
    // is retried at most every 800 ms.
    assert_eq!(delays, [ms(200), ms(400), ms(800), ms(800)]);
    assert_eq!((s.failures(), s.connect_retry_counter()), (0, 0));
    // The peer's OPEN does.
    s.handle(open_in(default_peer_open()));
    assert_eq!(s.state(), State::OpenConfirm);
    s.handle(Input::TcpConnectionFails);
    let out = s.handle(Input::TcpConnectFailed);
    assert_eq!(armed(&out, Timer::ConnectRetry), Some(ms(200)));
}

#[test]
fn tcp_fails_restarts_at_once_then_damps_in_idle() {
    let mut s = Session::new(cfg());
    s.handle(Input::ManualStart);
    // The first failure after a stable (here: fresh) session restarts at once.
    let out = s.handle(Input::TcpConnectionFails);
    assert_eq!(down_reason(&out), Some(DownReason::ConnectionFailed));
    assert_eq!(armed(&out, Timer::IdleHold), None);
    assert!(out.contains(&Output::Connect));
    assert_eq!(s.state(), State::Connect);
    assert_eq!(s.connect_retry_counter(), 1);
    // The second in a row waits in Idle for the IdleHoldTimer.
    let out = s.handle(Input::TcpConnectionFails);
    assert_eq!(s.state(), State::Idle);
    assert_eq!(armed(&out, Timer::IdleHold), Some(secs(5)));
    assert_eq!(s.connect_retry_counter(), 2);
    // IdleHoldTimer_Expires restarts like AutomaticStart.
    let out = s.handle(Input::TimerExpired(Timer::IdleHold));
    assert!(out.contains(&Output::Connect));
}

#[test]
fn failed_connect_waits_in_active_and_retries_soon() {
    let mut s = Session::new(cfg());
    s.handle(Input::ManualStart);
    let out = s.handle(Input::TcpConnectFailed);
    // Not a session failure: no SessionDown, nothing counted, no Idle.
    assert_eq!(
        out,
        vec![
            Output::CloseConnection,
            Output::ArmTimer(Timer::ConnectRetry, Duration::from_millis(200)),
            Output::StateChanged {
                from: State::Connect,
                to: State::Active
            },
        ]
    );
    assert_eq!((s.failures(), s.connect_retry_counter()), (0, 0));
    // The retries double up to the configured maximum, staying under a second.
    let mut delays = vec![armed(&out, Timer::ConnectRetry).unwrap()];
    for _ in 0..4 {
        let out = s.handle(Input::TimerExpired(Timer::ConnectRetry));
        assert!(out.contains(&Output::Connect));
        assert_eq!(s.state(), State::Connect);
        let out = s.handle(Input::TcpConnectFailed);
        delays.push(armed(&out, Timer::ConnectRetry).unwrap());
    }
    let ms = |n| Duration::from_millis(n);
    assert_eq!(delays, [ms(200), ms(400), ms(800), ms(800), ms(800)]);
    // Waiting in Active, the peer's own connection is taken (RFC 4271 8.2.2 Active,
    // event 17): an OPEN goes out at once.
    assert_eq!(s.state(), State::Active);
    let out = s.handle(Input::TcpConnectionConfirmed);
    assert!(matches!(out[1], Output::SendMessage(Message::Open(_))));
    assert_eq!(s.state(), State::OpenSent);
    // The peer's OPEN resets the schedule; a session failure after it restarts at once.
    s.handle(open_in(default_peer_open()));
    s.handle(Input::TcpConnectionFails);
    assert_eq!(s.state(), State::Connect);
    let out = s.handle(Input::TcpConnectFailed);
    assert_eq!(armed(&out, Timer::ConnectRetry), Some(ms(200)));
}

#[test]
fn failed_connect_is_ignored_when_passive_or_connected() {
    let mut s = Session::new(Config {
        passive: true,
        ..cfg()
    });
    s.handle(Input::ManualStart);
    assert!(s.handle(Input::TcpConnectFailed).is_empty());
    assert_eq!(s.state(), State::Active);
    let mut s = open_sent(cfg());
    assert!(s.handle(Input::TcpConnectFailed).is_empty());
    assert_eq!(s.state(), State::OpenSent);
}

#[test]
fn open_received_negotiates_and_sends_keepalive() {
    let mut s = open_sent(cfg());
    let out = s.handle(open_in(default_peer_open()));
    assert!(out.contains(&Output::SendMessage(Message::Keepalive)));
    assert_eq!(armed(&out, Timer::Hold), Some(secs(90)));
    assert_eq!(armed(&out, Timer::Keepalive), Some(secs(30)));
    assert_eq!(s.state(), State::OpenConfirm);
    let n = s.negotiated().unwrap();
    assert_eq!(
        (n.peer_as, n.peer_id, n.hold_time, n.keepalive),
        (65001, PEER_ID, 90, 30)
    );
    assert!(n.four_octet_as && n.route_refresh && !n.enhanced_route_refresh && !n.internal);
    assert_eq!(n.families, vec![Family::IPV4_UNICAST]);
}

#[test]
fn keepalive_in_open_confirm_establishes() {
    let mut s = open_confirm(cfg(), default_peer_open());
    let out = s.handle(Input::Message(Message::Keepalive));
    assert_eq!(s.state(), State::Established);
    assert_eq!(armed(&out, Timer::Hold), Some(secs(90)));
    let est = out
        .iter()
        .find_map(|o| match o {
            Output::Established(n) => Some(n.clone()),
            _ => None,
        })
        .expect("Established output");
    let d = est.decode_context();
    assert!(d.four_octet_as && d.external_peer && !d.extended_message);
}

#[test]
fn established_delivers_updates_and_restarts_hold() {
    let mut s = established(cfg());
    let u = Update::end_of_rib(Family::IPV4_UNICAST);
    let out = s.handle(u.clone().into());
    assert_eq!(
        out,
        vec![
            Output::ArmTimer(Timer::Hold, secs(90)),
            Output::DeliverUpdate(Box::new(u))
        ]
    );
    let out = s.handle(Input::Message(Message::Keepalive));
    assert_eq!(out, vec![Output::ArmTimer(Timer::Hold, secs(90))]);
}

#[test]
fn keepalive_timer_sends_keepalive_and_update_sent_rearms() {
    let mut s = established(cfg());
    let out = s.handle(Input::TimerExpired(Timer::Keepalive));
    assert_eq!(
        out,
        vec![
            Output::SendMessage(Message::Keepalive),
            Output::ArmTimer(Timer::Keepalive, secs(30))
        ]
    );
    let out = s.handle(Input::UpdateSent);
    assert_eq!(out, vec![Output::ArmTimer(Timer::Keepalive, secs(30))]);
}

#[test]
fn hold_timer_expiry_sends_4_0_and_backs_off() {
    let mut s = established(cfg());
    let out = s.handle(Input::TimerExpired(Timer::Hold));
    assert_eq!(
        sent_notification(&out),
        Some(Notification::new(4, 0, vec![]))
    );
    assert_eq!(down_reason(&out), Some(DownReason::HoldTimerExpired));
    assert!(out.contains(&Output::CloseConnection));
    assert!(out.contains(&Output::StopTimer(Timer::Keepalive)));
    // The first failure after a stable session: reconnect at once.
    assert_eq!(armed(&out, Timer::IdleHold), None);
    assert!(out.contains(&Output::Connect));
    assert_eq!(s.state(), State::Connect);
    assert!(s.negotiated().is_none());
}

#[test]
fn idle_hold_backoff_doubles_caps_and_resets_when_stable() {
    let mut s = Session::new(cfg());
    s.handle(Input::ManualStart);
    // The first failure restarts at once (see above); the next ones back off.
    s.handle(Input::TcpConnectionFails);
    assert_eq!(s.state(), State::Connect);
    let mut delays = Vec::new();
    for _ in 0..7 {
        let out = s.handle(Input::TcpConnectionFails);
        delays.push(armed(&out, Timer::IdleHold).unwrap());
        // AutomaticStart is ignored while the IdleHoldTimer runs.
        assert!(s.handle(Input::AutomaticStart).is_empty());
        s.handle(Input::TimerExpired(Timer::IdleHold));
        assert_eq!(s.state(), State::Connect);
    }
    assert_eq!(delays, [5, 10, 20, 40, 80, 120, 120].map(secs));
    // Reach Established and stay for 3 keepalives: backoff starts over.
    s.handle(Input::TcpCrAcked);
    s.handle(open_in(default_peer_open()));
    s.handle(Input::Message(Message::Keepalive));
    for _ in 0..3 {
        s.handle(Input::Message(Message::Keepalive));
    }
    let out = s.handle(Input::TcpConnectionFails);
    assert_eq!(armed(&out, Timer::IdleHold), None);
    assert_eq!(s.state(), State::Connect);
    let out = s.handle(Input::TcpConnectionFails);
    assert_eq!(armed(&out, Timer::IdleHold), Some(secs(5)));
}

#[test]
fn flapping_established_session_keeps_backing_off() {
    let mut s = established(cfg());
    let out = s.handle(Input::TcpConnectionFails);
    assert_eq!(armed(&out, Timer::IdleHold), None);
    for want in [5, 10] {
        s.handle(Input::TcpCrAcked);
        s.handle(open_in(default_peer_open()));
        s.handle(Input::Message(Message::Keepalive));
        let out = s.handle(Input::TcpConnectionFails);
        assert_eq!(armed(&out, Timer::IdleHold), Some(secs(want)));
        s.handle(Input::TimerExpired(Timer::IdleHold));
    }
}

#[test]
fn manual_stop_sends_cease_subcodes() {
    for (reason, sub, restarts) in [
        (StopReason::AdminShutdown, 2, false),
        (StopReason::PeerDeconfigured, 3, false),
        (StopReason::AdminReset, 4, true),
    ] {
        let mut s = established(cfg());
        let out = s.handle(Input::ManualStop(reason));
        assert_eq!(sent_notification(&out), Some(Notification::cease(sub)));
        assert_eq!(down_reason(&out), Some(DownReason::Stopped(reason)));
        // A reset restarts at once; the others stay down.
        assert_eq!(out.contains(&Output::Connect), restarts, "{reason:?}");
        let want = if restarts {
            State::Connect
        } else {
            State::Idle
        };
        assert_eq!(s.state(), want, "{reason:?}");
        assert_eq!(armed(&out, Timer::IdleHold), None);
        assert_eq!(s.connect_retry_counter(), 0);
    }
    // ManualStop in Connect: no NOTIFICATION (no BGP connection yet).
    let mut s = Session::new(cfg());
    s.handle(Input::ManualStart);
    let out = s.handle(Input::ManualStop(StopReason::AdminShutdown));
    assert_eq!(sent_notification(&out), None);
    assert!(out.contains(&Output::StopTimer(Timer::ConnectRetry)));
    // ManualStop in Idle cancels a pending automatic restart (the second failure in a
    // row waits in Idle).
    let mut s = established(cfg());
    s.handle(Input::TcpConnectionFails);
    s.handle(Input::TcpConnectionFails);
    let out = s.handle(Input::ManualStop(StopReason::AdminShutdown));
    assert_eq!(out, vec![Output::StopTimer(Timer::IdleHold)]);
    assert!(!s.is_timer_armed(Timer::IdleHold));
}

fn refused(c: Config, open: Open) -> Notification {
    let mut s = open_sent(c);
    let out = s.handle(open_in(open));
    // Down, and (the first failure) already trying again.
    assert!(down_reason(&out).is_some());
    assert_eq!(s.state(), State::Connect);
    let n = sent_notification(&out).expect("NOTIFICATION before close");
    let close_at = out
        .iter()
        .position(|o| *o == Output::CloseConnection)
        .unwrap();
    let send_at = out
        .iter()
        .position(|o| matches!(o, Output::SendMessage(_)))
        .unwrap();
    assert!(send_at < close_at, "NOTIFICATION goes out before the close");
    n
}

#[test]
fn open_validation_failures() {
    // Wrong AS.
    assert_eq!(
        refused(cfg(), peer_open(65099, 90, vec![])),
        Notification::new(2, 2, vec![])
    );
    // iBGP with our own identifier.
    let ibgp = Config::new(65000, LOCAL_ID, PeerAs::Internal);
    let mut o = peer_open(65000, 90, vec![]);
    o.bgp_id = LOCAL_ID;
    assert_eq!(refused(ibgp, o.clone()), Notification::new(2, 3, vec![]));
    // RFC 6286: the same identifier is fine between ASes.
    let mut e = o.clone();
    e.my_as = 65001;
    assert!(validate_open(&cfg(), &e).is_ok());
    // AS_TRANS without the 4-octet capability.
    let trans = Open::new(23456, 90, PEER_ID, vec![]);
    assert_eq!(
        refused(Config::new(65000, LOCAL_ID, PeerAs::Any), trans),
        Notification::new(2, 2, vec![])
    );
    // Required capability missing: 2/7 with our capability TLV as data.
    let need = Config {
        required_capabilities: vec![65],
        ..cfg()
    };
    assert_eq!(
        refused(need, peer_open(65001, 90, vec![])),
        Notification::new(2, 7, vec![65, 4, 0, 0, 0xfd, 0xe8])
    );
}

#[test]
fn peer_as_policies() {
    let o = default_peer_open();
    for (peer_as, ok) in [
        (PeerAs::Exact(65001), true),
        (PeerAs::External, true),
        (PeerAs::Internal, false),
        (PeerAs::Any, true),
    ] {
        let c = Config::new(65000, LOCAL_ID, peer_as);
        assert_eq!(validate_open(&c, &o).is_ok(), ok, "{peer_as:?}");
    }
    // A 4-octet peer AS arrives through the capability.
    let big = peer_open(
        4_200_000_000,
        90,
        vec![Capability::FourOctetAs(4_200_000_000)],
    );
    let n = validate_open(
        &Config::new(65000, LOCAL_ID, PeerAs::Exact(4_200_000_000)),
        &big,
    )
    .unwrap();
    assert_eq!(n.peer_as, 4_200_000_000);
}

#[test]
fn hold_time_zero_disables_timers() {
    let mut s = open_sent(cfg());
    let out = s.handle(open_in(peer_open(65001, 0, vec![])));
    assert_eq!(armed(&out, Timer::Keepalive), None);
    assert!(out.contains(&Output::StopTimer(Timer::Hold)));
    let out = s.handle(Input::Message(Message::Keepalive));
    assert_eq!(armed(&out, Timer::Hold), None);
    assert_eq!(s.state(), State::Established);
    assert!(
        s.handle(Input::TimerExpired(Timer::Hold)).is_empty(),
        "stale timer ignored"
    );
}

#[test]
fn timer_negotiation() {
    assert_eq!(negotiate_timers(240, 90, None), (90, 30));
    assert_eq!(negotiate_timers(240, 0, None), (0, 0));
    assert_eq!(negotiate_timers(240, 240, Some(10)), (240, 10));
    assert_eq!(negotiate_timers(3, 240, None), (3, 1));
    // A configured keepalive not below the hold time falls back to a third.
    assert_eq!(negotiate_timers(9, 240, Some(20)), (9, 3));
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let u = || Input::from(Update::default());
    let mut s = open_sent(cfg());
    assert_eq!(
        sent_notification(&s.handle(u())),
        Some(Notification::new(5, 1, vec![]))
    );
    let mut s = open_sent(cfg());
    assert_eq!(
        sent_notification(&s.handle(Input::Message(Message::Keepalive))),
        Some(Notification::new(5, 1, vec![]))
    );
    let mut s = open_confirm(cfg(), default_peer_open());
    assert_eq!(
        sent_notification(&s.handle(u())),
        Some(Notification::new(5, 2, vec![]))
    );
    let mut s = open_confirm(cfg(), default_peer_open());
    assert_eq!(
        sent_notification(&s.handle(open_in(default_peer_open()))),
        Some(Notification::new(5, 2, vec![]))
    );
    let mut s = established(cfg());
    let out = s.handle(open_in(default_peer_open()));
    assert_eq!(
        sent_notification(&out),
        Some(Notification::new(5, 3, vec![]))
    );
    assert_eq!(s.state(), State::Connect);
    // A second failure in a row waits in Idle, where messages are ignored.
    s.handle(Input::TcpConnectionFails);
    assert_eq!(s.state(), State::Idle);
    assert!(s.handle(u()).is_empty());
}

#[test]
fn peer_notification_goes_idle_without_answering() {
    let mut s = established(cfg());
    let n = Notification::cease(2);
    let out = s.handle(Input::Message(Message::Notification(n.clone())));
    assert_eq!(sent_notification(&out), None);
    assert_eq!(down_reason(&out), Some(DownReason::PeerNotification(n)));
    assert!(out.contains(&Output::StateChanged {
        from: State::Established,
        to: State::Idle
    }));
}

#[test]
fn decode_errors_send_their_notification() {
    let mut s = established(cfg());
    let e = DecodeError::new(
        Notification::new(3, 1, vec![]),
        21,
        DecodeReason::BadType(0),
    );
    let out = s.handle(Input::DecodeError(e));
    assert_eq!(
        sent_notification(&out),
        Some(Notification::new(3, 1, vec![]))
    );
    assert_eq!(
        down_reason(&out),
        Some(DownReason::LocalNotification(Notification::new(
            3,
            1,
            vec![]
        )))
    );
}

#[test]
fn collision_dump_sends_cease_7_and_does_not_restart() {
    let mut s = open_confirm(cfg(), default_peer_open());
    let out = s.handle(Input::OpenCollisionDump);
    assert_eq!(sent_notification(&out), Some(Notification::cease(7)));
    assert_eq!(down_reason(&out), Some(DownReason::Collision));
    assert_eq!(armed(&out, Timer::IdleHold), None);
}

#[test]
fn collision_winner_rfc4271_6_8() {
    let lo = Ipv4Addr::new(10, 0, 0, 1);
    let hi = Ipv4Addr::new(10, 0, 0, 9);
    assert_eq!(collision_winner(lo, 1, hi, 1), Direction::Inbound);
    assert_eq!(collision_winner(hi, 1, lo, 1), Direction::Outbound);
    // RFC 6286 2.3: equal identifiers, larger AS wins.
    assert_eq!(collision_winner(lo, 65002, lo, 65001), Direction::Outbound);
    assert_eq!(collision_winner(lo, 65001, lo, 65002), Direction::Inbound);
}

#[test]
fn max_prefix_hook_sends_cease_1() {
    let mut s = established(Config {
        max_prefixes: Some(100),
        ..cfg()
    });
    assert!(
        s.handle(Input::PrefixCount {
            family: Family::IPV4_UNICAST,
            count: 100
        })
        .is_empty()
    );
    let out = s.handle(Input::PrefixCount {
        family: Family::IPV4_UNICAST,
        count: 101,
    });
    assert_eq!(
        sent_notification(&out),
        Some(Notification::new(6, 1, vec![0, 1, 1, 0, 0, 0, 100]))
    );
    assert!(matches!(
        down_reason(&out),
        Some(DownReason::MaxPrefixes {
            count: 101,
            limit: 100,
            ..
        })
    ));
    assert!(out.contains(&Output::Connect), "restarts at once");
}

#[test]
fn route_refresh_handling() {
    let rr =
        |family, subtype| Input::Message(Message::RouteRefresh(RouteRefresh { family, subtype }));
    let mut s = established(cfg());
    let out = s.handle(rr(Family::IPV4_UNICAST, RefreshSubtype::Request));
    assert!(
        out.contains(&Output::RouteRefreshReceived(RouteRefresh::request(
            Family::IPV4_UNICAST
        )))
    );
    // Family not negotiated, or enhanced subtype without the capability,
    // or an unknown subtype: ignored (RFC 2918 4, RFC 7313 5).
    for input in [
        rr(Family::IPV6_UNICAST, RefreshSubtype::Request),
        rr(Family::IPV4_UNICAST, RefreshSubtype::BeginOfRefresh),
        rr(Family::IPV4_UNICAST, RefreshSubtype::Other(7)),
    ] {
        let out = s.handle(input);
        assert!(
            !out.iter()
                .any(|o| matches!(o, Output::RouteRefreshReceived(_)))
        );
        assert_eq!(s.state(), State::Established);
    }
}

#[test]
fn capability_negotiation() {
    let mut c = cfg();
    c.capabilities.push(Capability::AddPath(vec![
        (Family::IPV4_UNICAST, AddPathMode::Both),
        (Family::IPV6_UNICAST, AddPathMode::Receive),
    ]));
    c.capabilities
        .push(Capability::GracefulRestart(GracefulRestart {
            restarting: false,
            notification: false,
            restart_time: 120,
            families: vec![],
        }));
    let peer = peer_open(
        65001,
        240,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::EnhancedRouteRefresh,
            Capability::ExtendedMessage,
            Capability::FourOctetAs(65001),
            Capability::AddPath(vec![
                (Family::IPV4_UNICAST, AddPathMode::Receive),
                (Family::IPV6_UNICAST, AddPathMode::Both),
            ]),
            Capability::GracefulRestart(GracefulRestart {
                restarting: true,
                notification: false,
                restart_time: 90,
                families: vec![],
            }),
        ],
    );
    let n = validate_open(&c, &peer).unwrap();
    assert_eq!(n.families, vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
    assert_eq!(n.add_path_send, vec![Family::IPV4_UNICAST]);
    assert_eq!(n.add_path_receive, vec![Family::IPV6_UNICAST]);
    assert!(n.extended_message && n.enhanced_route_refresh && n.graceful_restart());
    assert_eq!(n.encode_context().add_path, vec![Family::IPV4_UNICAST]);
    assert!(n.decode_context().extended_message);
    // A peer without any Multiprotocol capability implies IPv4 unicast.
    let n = validate_open(&cfg(), &peer_open(65001, 90, vec![])).unwrap();
    assert_eq!(n.families, vec![Family::IPV4_UNICAST]);
    assert!(!n.four_octet_as && !n.graceful_restart());
}
