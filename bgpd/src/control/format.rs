//! BIRD 2 CLI replies, byte for byte in the layout `birdc` and calicoctl
//! parse (captured from BIRD 2.0.12's socket; see the tests). Pure.
//!
//! A reply is lines `CODE-text` (more follows), continuation lines that
//! start with a space (same code), and a last line `CODE text`. Codes:
//! 0001 greeting, 1000 version, 1011 status lines, 0013 status, 2002
//! protocol table header, 1002 protocol row, 1006 protocol details, 1007
//! route, 1008/1012 route attributes, 0014 route count, 0000 end, 8xxx
//! run-time errors, 9xxx syntax errors.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::Offset;

use crate::daemon::status::{PathView, PeerStatus, RouteView, StatusReport};
use crate::fsm::State;
use crate::wire::{Family, Origin};

/// The version we answer as; calicoctl and birdc only show it.
pub const VERSION: &str = "2.0.12 (bgpd 0.1.0)";

pub fn greeting() -> String {
    format!("0001 BIRD {VERSION} ready.\n")
}

struct Reply {
    out: String,
    last: Option<u16>,
}

impl Reply {
    fn new() -> Self {
        Reply {
            out: String::new(),
            last: None,
        }
    }

    fn line(&mut self, code: u16, text: &str) {
        if self.last == Some(code) {
            let _ = writeln!(self.out, " {text}");
        } else {
            let _ = writeln!(self.out, "{code:04}-{text}");
            self.last = Some(code);
        }
    }

    fn end(mut self, code: u16, text: &str) -> String {
        let _ = writeln!(self.out, "{code:04} {text}");
        self.out
    }
}

pub fn error(code: u16, text: &str) -> String {
    format!("{code:04} {text}\n")
}

/// `show status`.
pub fn status(r: &StatusReport, hostname: &str, now: SystemTime) -> String {
    let mut rep = Reply::new();
    rep.line(1000, &format!("BIRD {VERSION}"));
    rep.line(1011, &format!("Router ID is {}", r.router_id));
    rep.line(1011, &format!("Hostname is {hostname}"));
    rep.line(1011, &format!("Current server time is {}", datetime(now)));
    rep.line(1011, &format!("Last reboot on {}", datetime(r.started)));
    rep.line(
        1011,
        &format!("Last reconfiguration on {}", datetime(r.started)),
    );
    rep.end(13, "Daemon is up and running")
}

/// BIRD's protocol state column: up, start (trying), down (stopped).
fn proto_state(p: &PeerStatus) -> &'static str {
    match p.state {
        State::Established => "up",
        State::Idle if matches!(p.last_error.as_deref(), Some(e) if e.starts_with("Shutdown")) => {
            "down"
        }
        _ => "start",
    }
}

/// BIRD's BGP state names (bgp_state_dsc), `Passive` for a passive peer
/// waiting.
fn bgp_state(p: &PeerStatus) -> &'static str {
    match p.state {
        State::Idle => "Idle",
        State::Connect => "Connect",
        State::Active if p.passive => "Passive",
        State::Active => "Active",
        State::OpenSent => "OpenSent",
        State::OpenConfirm => "OpenConfirm",
        State::Established => "Established",
    }
}

fn info(p: &PeerStatus) -> String {
    match (&p.last_error, p.state) {
        (Some(e), State::Idle) if proto_state(p) == "down" => e.clone(),
        (Some(e), s) if s != State::Established => format!("{:<14}{e}", bgp_state(p)),
        _ => format!("{:<14}", bgp_state(p)),
    }
}

fn row(p: &PeerStatus, now: SystemTime) -> String {
    format!(
        "{:<10} {:<10} {:<10} {:<5}  {:<12}  {}",
        p.name,
        "BGP",
        "---",
        proto_state(p),
        since(p.since, now),
        info(p)
    )
}

/// `show protocols [all] [NAME]`; `None` if NAME matches nothing.
pub fn protocols(
    r: &StatusReport,
    all: bool,
    name: Option<&str>,
    now: SystemTime,
) -> Option<String> {
    let peers: Vec<&PeerStatus> = r
        .peers
        .iter()
        .filter(|p| name.is_none_or(|n| p.name == n))
        .collect();
    if peers.is_empty() && name.is_some() {
        return None;
    }
    let mut rep = Reply::new();
    rep.line(
        2002,
        "Name       Proto      Table      State  Since         Info",
    );
    for p in peers {
        rep.line(1002, &row(p, now));
        if all {
            details(&mut rep, p, r.local_as);
        }
    }
    Some(rep.end(0, ""))
}

fn details(rep: &mut Reply, p: &PeerStatus, local_as: u32) {
    let mut d = |t: String| rep.line(1006, &t);
    d(format!("  BGP state:          {}", bgp_state(p)));
    d(format!("    Neighbor address: {}", p.address));
    d(format!("    Neighbor AS:      {}", p.asn));
    d(format!("    Local AS:         {local_as}"));
    if let Some(id) = p.neighbor_id {
        d(format!("    Neighbor ID:      {id}"));
        let kind = if p.internal == Some(true) {
            "internal"
        } else {
            "external"
        };
        d(format!("    Session:          {kind} AS4"));
        if let Some(l) = p.local {
            d(format!("    Source address:   {}", l.ip()));
        }
        if let (Some(h), Some(k)) = (p.hold_time, p.keepalive) {
            d(format!("    Hold timer:       {h}"));
            d(format!("    Keepalive timer:  {k}"));
        }
    }
    if let Some(e) = &p.last_error {
        d(format!("    Last error:       {e}"));
    }
    for f in &p.families {
        let (chan, table) = if *f == Family::IPV6_UNICAST {
            ("ipv6", "master6")
        } else {
            ("ipv4", "master4")
        };
        let up = if p.state == State::Established {
            "UP"
        } else {
            "DOWN"
        };
        d(format!("  Channel {chan}"));
        d(format!("    State:          {up}"));
        d(format!("    Table:          {table}"));
        d("    Preference:     100".to_string());
        d("    Input filter:   ACCEPT".to_string());
        d("    Output filter:  ACCEPT".to_string());
        if p.state == State::Established {
            d(format!(
                "    Routes:         {} imported, {} exported, {} preferred",
                p.imported, p.exported, p.preferred
            ));
            d(
                "    Route change stats:     received   rejected   filtered    ignored   accepted"
                    .to_string(),
            );
            let s = &p.stats;
            d(format!(
                "      Import updates:     {:>10} {:>10} {:>10} {:>10} {:>10}",
                s.prefixes_received,
                s.prefixes_rejected,
                0,
                0,
                s.prefixes_received.saturating_sub(s.prefixes_rejected)
            ));
            d(format!(
                "      Import withdraws:   {:>10} {:>10} {:>10} {:>10} {:>10}",
                s.withdraws_received, 0, "---", 0, s.withdraws_received
            ));
        }
    }
    d(String::new());
}

/// `show route [for IP] [all]`.
pub fn routes(views: &[RouteView], all: bool, now: SystemTime) -> String {
    let mut rep = Reply::new();
    let mut table = None;
    for v in views {
        let t = if v.prefix.addr().is_ipv4() {
            "master4"
        } else {
            "master6"
        };
        if table != Some(t) {
            if table.is_some() {
                rep.line(1007, "");
            }
            rep.line(1007, &format!("Table {t}:"));
            table = Some(t);
        }
        for (i, p) in v.paths.iter().enumerate() {
            let prefix = if i == 0 {
                v.prefix.to_string()
            } else {
                String::new()
            };
            rep.line(1007, &route_line(&prefix, p, now));
            rep.line(1007, &format!("\tvia {}", p.next_hop));
            if all {
                path_attributes(&mut rep, p);
            }
        }
    }
    rep.end(0, "")
}

fn route_line(prefix: &str, p: &PathView, now: SystemTime) -> String {
    let pref = if p.from == "static" { 200 } else { 100 };
    let origin = match p.origin {
        Origin::Igp => 'i',
        Origin::Egp => 'e',
        Origin::Incomplete => '?',
    };
    let last_as = p
        .as_path
        .last()
        .map(|a| format!("AS{a}"))
        .unwrap_or_default();
    format!(
        "{:<20} unicast [{} {}] {}({}) [{}{}]",
        prefix,
        p.from,
        since(p.since, now),
        if p.best { "* " } else { "" },
        pref,
        last_as,
        origin
    )
}

fn path_attributes(rep: &mut Reply, p: &PathView) {
    let kind = if p.from == "static" { "static" } else { "BGP" };
    rep.line(1008, &format!("\tType: {kind} univ"));
    if p.from == "static" {
        return;
    }
    let origin = match p.origin {
        Origin::Igp => "IGP",
        Origin::Egp => "EGP",
        Origin::Incomplete => "Incomplete",
    };
    rep.line(1012, &format!("\tBGP.origin: {origin}"));
    let path: Vec<String> = p.as_path.iter().map(|a| a.to_string()).collect();
    rep.line(1012, &format!("\tBGP.as_path: {}", path.join(" ")));
    rep.line(1012, &format!("\tBGP.next_hop: {}", p.next_hop));
    if let Some(m) = p.med {
        rep.line(1012, &format!("\tBGP.med: {m}"));
    }
    if p.internal {
        rep.line(1012, &format!("\tBGP.local_pref: {}", p.local_pref));
    }
}

/// `show route count`.
pub fn route_count(r: &StatusReport) -> String {
    let mut rep = Reply::new();
    rep.line(
        1007,
        &format!(
            "{} of {} routes for {} networks in table master4",
            r.paths_v4, r.paths_v4, r.networks_v4
        ),
    );
    rep.line(
        1007,
        &format!(
            "{} of {} routes for {} networks in table master6",
            r.paths_v6, r.paths_v6, r.networks_v6
        ),
    );
    let paths = r.paths_v4 + r.paths_v6;
    let nets = r.networks_v4 + r.networks_v6;
    rep.end(
        14,
        &format!("Total: {paths} of {paths} routes for {nets} networks in 2 tables"),
    )
}

/// BIRD's short time: `hh:mm:ss.mmm` (UTC) today, the date otherwise.
fn since(t: SystemTime, now: SystemTime) -> String {
    let (t, now) = (utc(t), utc(now));
    if t.date() == now.date() {
        clock(t)
    } else {
        date(t)
    }
}

/// The UTC calendar time of `t`, to the millisecond (before 1970: the epoch).
fn utc(t: SystemTime) -> DateTime {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Offset::UTC.to_datetime(Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX))
}

/// `hh:mm:ss.mmm`
fn clock(t: DateTime) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `YYYY-MM-DD`
fn date(t: DateTime) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day())
}

fn datetime(t: SystemTime) -> String {
    let t = utc(t);
    format!("{} {}", date(t), clock(t))
}

mod bfd;
pub use bfd::bfd_sessions;

#[cfg(test)]
mod tests;
