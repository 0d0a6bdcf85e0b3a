//! `show bfd sessions`, in BIRD 2's layout (bfd_show_sessions in BIRD's proto/bfd/bfd.c):
//! a `1020-` block named after the protocol, a header, then one row per session with
//! the address, interface, state, since, transmit interval and detection time in
//! seconds with milliseconds.

use std::time::{Duration, SystemTime};

use super::{Reply, since};
use crate::bfd::{SessionView, state_name};

/// BIRD's name for an unnamed `protocol bfd`.
pub const PROTOCOL_NAME: &str = "bfd1";

pub fn bfd_sessions(sessions: &[SessionView], now: SystemTime) -> String {
    let mut rep = Reply::new();
    rep.line(1020, &format!("{PROTOCOL_NAME}:"));
    rep.line(
        1020,
        &format!(
            "{:<25} {:<10} {:<10} {:<12}  {:>8} {:>8}",
            "IP address", "Interface", "State", "Since", "Interval", "Timeout"
        ),
    );
    for s in sessions {
        rep.line(
            1020,
            &format!(
                "{:<25} {:<10} {:<10} {:<12}  {}  {}",
                s.peer.to_string(),
                s.interface.as_deref().unwrap_or("---"),
                state_name(s.state),
                since(s.since, now),
                secs_ms(s.tx_interval),
                secs_ms(s.detection_time),
            ),
        );
    }
    rep.end(0, "")
}

/// BIRD's `%3u.%03u` of milliseconds; 0 when unknown.
fn secs_ms(d: Option<Duration>) -> String {
    let ms = d.map_or(0, |d| d.as_millis());
    format!("{:>3}.{:03}", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::bfd::{Diag, State};

    #[test]
    fn layout_of_birds_show_bfd_sessions() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let s = SessionView {
            peer: "192.168.53.2".parse().unwrap(),
            peer_name: "Global_192_168_53_2".into(),
            interface: Some("vb1234".into()),
            state: State::Up,
            diag: Diag::None,
            since: now - Duration::from_millis(1500),
            tx_interval: Some(Duration::from_millis(100)),
            detection_time: Some(Duration::from_millis(300)),
            transitions: 2,
        };
        let down = SessionView {
            peer: "10.0.0.9".parse().unwrap(),
            interface: None,
            state: State::Down,
            tx_interval: None,
            detection_time: None,
            ..s.clone()
        };
        assert_eq!(
            bfd_sessions(&[s, down], now),
            "1020-bfd1:\n \
IP address                Interface  State      Since         Interval  Timeout\n \
192.168.53.2              vb1234     Up         22:13:18.500    0.100    0.300\n \
10.0.0.9                  ---        Down       22:13:18.500    0.000    0.000\n\
0000 \n"
        );
    }
}
