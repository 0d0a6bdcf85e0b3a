//! Replies compared with text captured from BIRD 2.0.12's control socket
//! (two BIRDs in throwaway namespaces, `show protocols`, `show route`,
//! `show route count`), with our values put in the same places.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::daemon::PeerStats;

/// `ms_of_day` (UTC) on the day of `now`.
fn at(now: SystemTime, ms_of_day: u64) -> SystemTime {
    let days = now.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 / 86_400_000;
    UNIX_EPOCH + Duration::from_millis(days * 86_400_000 + ms_of_day)
}

const T1: u64 = (6 * 3600 + 17 * 60 + 6) * 1000 + 19;
const T2: u64 = (6 * 3600 + 16 * 60 + 57) * 1000 + 608;

fn peer(name: &str, addr: &str, state: State, passive: bool, since: SystemTime) -> PeerStatus {
    PeerStatus {
        name: name.into(),
        address: addr.parse().unwrap(),
        asn: 64512,
        state,
        since,
        last_error: None,
        neighbor_id: (state == State::Established).then(|| "192.168.5.1".parse().unwrap()),
        local: None,
        internal: Some(false),
        hold_time: Some(240),
        keepalive: Some(80),
        families: vec![Family::IPV4_UNICAST],
        passive,
        imported: 2,
        exported: 0,
        preferred: 2,
        stats: PeerStats::default(),
    }
}

fn report(peers: Vec<PeerStatus>) -> StatusReport {
    StatusReport {
        router_id: "192.168.5.2".parse().unwrap(),
        local_as: 64513,
        started: UNIX_EPOCH,
        peers,
        networks_v4: 2,
        networks_v6: 0,
        paths_v4: 2,
        paths_v6: 0,
        bfd: vec![],
    }
}

#[test]
fn show_protocols_matches_bird() {
    let now = SystemTime::now();
    let r = report(vec![
        peer(
            "Node_192_168_5_1",
            "192.168.5.1",
            State::Established,
            false,
            at(now, T1),
        ),
        peer(
            "Mesh_127_0_0_3",
            "127.0.0.3",
            State::Active,
            true,
            at(now, T2),
        ),
    ]);
    let got = protocols(&r, false, None, now).unwrap();
    let bird = "2002-Name       Proto      Table      State  Since         Info\n\
                1002-Node_192_168_5_1 BGP        ---        up     06:17:06.019  Established   \n \
                Mesh_127_0_0_3 BGP        ---        start  06:16:57.608  Passive       \n\
                0000 \n";
    assert_eq!(got, bird);
}

#[test]
fn show_protocols_all_block_and_unknown_name() {
    let now = SystemTime::now();
    let r = report(vec![peer(
        "Node_1",
        "192.168.5.1",
        State::Established,
        false,
        now,
    )]);
    let got = protocols(&r, true, Some("Node_1"), now).unwrap();
    assert!(
        got.contains("\n1006-  BGP state:          Established\n"),
        "{got}"
    );
    assert!(
        got.contains("\n     Neighbor address: 192.168.5.1\n"),
        "{got}"
    );
    assert!(
        got.contains("     Routes:         2 imported, 0 exported, 2 preferred\n"),
        "{got}"
    );
    assert!(got.ends_with("\n \n0000 \n"), "{got}");
    assert!(protocols(&r, true, Some("nosuch"), now).is_none());
}

#[test]
fn show_route_matches_bird() {
    let now = SystemTime::now();
    let view = |p: &str| RouteView {
        prefix: p.parse().unwrap(),
        paths: vec![PathView {
            from: "Node_192_168_5_1".into(),
            best: true,
            next_hop: "192.168.5.1".parse::<IpAddr>().unwrap(),
            as_path: vec![64512],
            origin: Origin::Igp,
            local_pref: 100,
            med: None,
            internal: false,
            since: at(now, (6 * 3600 + 17 * 60 + 6) * 1000 + 191),
        }],
    };
    let got = routes(&[view("10.1.0.0/24"), view("10.1.1.0/24")], false, now);
    // BIRD adds " on <interface>" after the next hop; we do not track it.
    let bird = "1007-Table master4:\n \
                10.1.0.0/24          unicast [Node_192_168_5_1 06:17:06.191] * (100) [AS64512i]\n \
                \tvia 192.168.5.1\n \
                10.1.1.0/24          unicast [Node_192_168_5_1 06:17:06.191] * (100) [AS64512i]\n \
                \tvia 192.168.5.1\n\
                0000 \n";
    assert_eq!(got, bird);
    let all = routes(&[view("10.1.0.0/24")], true, now);
    assert!(all.contains("1008-\tType: BGP univ\n1012-\tBGP.origin: IGP\n \tBGP.as_path: 64512\n \tBGP.next_hop: 192.168.5.1\n"), "{all}");
}

#[test]
fn show_route_count_matches_bird() {
    let bird = "1007-2 of 2 routes for 2 networks in table master4\n \
                0 of 0 routes for 0 networks in table master6\n\
                0014 Total: 2 of 2 routes for 2 networks in 2 tables\n";
    assert_eq!(route_count(&report(vec![])), bird);
}

#[test]
fn show_status_layout() {
    let got = status(
        &report(vec![]),
        "vm",
        UNIX_EPOCH + Duration::from_secs(86_400 * 365),
    );
    assert!(got.starts_with("1000-BIRD "), "{got}");
    assert!(got.contains("\n1011-Router ID is 192.168.5.2\n Hostname is vm\n Current server time is 1971-01-01 00:00:00.000\n"), "{got}");
    assert!(got.ends_with("0013 Daemon is up and running\n"));
}

/// `YYYY-MM-DD hh:mm:ss.mmm` at this many milliseconds after the epoch.
fn at_ms(ms: u64) -> String {
    datetime(UNIX_EPOCH + Duration::from_millis(ms))
}

#[test]
fn dates_and_times_pinned_around_leap_days_and_month_ends() {
    const DAY: u64 = 86_400_000;
    assert_eq!(at_ms(0), "1970-01-01 00:00:00.000");
    assert_eq!(at_ms(19_723 * DAY), "2024-01-01 00:00:00.000");
    assert_eq!(at_ms(19_782 * DAY), "2024-02-29 00:00:00.000");
    // Leap day's last millisecond, then 1 March; 2023 has no 29 February.
    assert_eq!(at_ms(19_783 * DAY - 1), "2024-02-29 23:59:59.999");
    assert_eq!(at_ms(19_783 * DAY), "2024-03-01 00:00:00.000");
    assert_eq!(at_ms(19_417 * DAY), "2023-03-01 00:00:00.000");
    assert_eq!(at_ms(19_417 * DAY - 1), "2023-02-28 23:59:59.999");
    // 2000 is a leap year (divisible by 400), 2100 is not.
    assert_eq!(at_ms(11_016 * DAY + 45_296_007), "2000-02-29 12:34:56.007");
    assert_eq!(at_ms(47_540 * DAY), "2100-02-28 00:00:00.000");
    assert_eq!(at_ms(47_541 * DAY), "2100-03-01 00:00:00.000");
    // Month and year ends.
    assert_eq!(at_ms(19_358 * DAY - 1), "2022-12-31 23:59:59.999");
    assert_eq!(at_ms(19_539 * DAY + 3_723_004), "2023-07-01 01:02:03.004");
    assert_eq!(at_ms(19_538 * DAY + 86_399_010), "2023-06-30 23:59:59.010");
    // Before the epoch: the epoch.
    assert_eq!(
        datetime(UNIX_EPOCH - Duration::from_secs(1)),
        "1970-01-01 00:00:00.000"
    );
}

#[test]
fn since_is_the_clock_today_and_the_date_before() {
    const DAY: u64 = 86_400_000;
    let t = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
    let now = t(19_783 * DAY + 1);
    assert_eq!(since(t(19_783 * DAY), now), "00:00:00.000");
    assert_eq!(since(t(19_783 * DAY - 1), now), "2024-02-29");
    assert_eq!(since(t(19_783 * DAY + 5), now), "00:00:00.005");
}
