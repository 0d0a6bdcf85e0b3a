//! Prometheus metrics (text exposition format 0.0.4) on `GET /metrics`:
//! sessions by state, routes received/accepted/advertised and updates in/out
//! per peer, Loc-RIB size. Gathered at each scrape from the daemon's status
//! report into a `prometheus` registry (which escapes label values) and served
//! by [`daemon_kit::http`]; other paths are 404. Label pairs come out sorted by
//! name, as the `prometheus` encoders write them (`{address="..",peer=".."}`).

use std::io;
use std::net::SocketAddr;

use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::daemon::{DaemonHandle, PeerStatus, StatusReport};
use crate::fsm::State;

const STATES: [(State, &str); 6] = [
    (State::Idle, "idle"),
    (State::Connect, "connect"),
    (State::Active, "active"),
    (State::OpenSent, "opensent"),
    (State::OpenConfirm, "openconfirm"),
    (State::Established, "established"),
];

/// Counter or gauge: the exposition's `# TYPE`.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// (name, type, help, value) of a per-peer series.
type PerPeer = (&'static str, Kind, &'static str, fn(&PeerStatus) -> u64);

const PER_PEER: [PerPeer; 6] = [
    (
        "bgpd_session_up",
        Kind::Gauge,
        "1 if the session is Established.",
        |p| (p.state == State::Established) as u64,
    ),
    (
        "bgpd_routes_received_total",
        Kind::Counter,
        "Prefixes announced by the peer.",
        |p| p.stats.prefixes_received,
    ),
    (
        "bgpd_routes_accepted",
        Kind::Gauge,
        "Paths held from the peer after import policy.",
        |p| p.imported as u64,
    ),
    (
        "bgpd_routes_advertised",
        Kind::Gauge,
        "Prefixes advertised to the peer.",
        |p| p.exported as u64,
    ),
    (
        "bgpd_updates_received_total",
        Kind::Counter,
        "UPDATE messages received.",
        |p| p.stats.updates_in,
    ),
    (
        "bgpd_updates_sent_total",
        Kind::Counter,
        "UPDATE messages sent.",
        |p| p.stats.updates_out,
    ),
];

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge options");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric name");
    g
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Every metric of `r`, in a fresh registry (pure).
pub fn gather(r: &StatusReport) -> Vec<MetricFamily> {
    let registry = Registry::new();
    let sessions = gauge_vec(
        &registry,
        "bgpd_sessions",
        "BGP sessions by FSM state.",
        &["state"],
    );
    for (st, name) in STATES {
        let n = r.peers.iter().filter(|p| p.state == st).count();
        sessions
            .with_label_values(&[name])
            .set(gauge_value(n as u64));
    }
    let labels = ["peer", "address"];
    for (name, kind, help, f) in PER_PEER {
        match kind {
            Kind::Gauge => {
                let g = gauge_vec(&registry, name, help, &labels);
                for p in &r.peers {
                    g.with_label_values(&[p.name.as_str(), &p.address.to_string()])
                        .set(gauge_value(f(p)));
                }
            }
            Kind::Counter => {
                let c = IntCounterVec::new(Opts::new(name, help), &labels)
                    .expect("valid counter options");
                registry
                    .register(Box::new(c.clone()))
                    .expect("unique metric name");
                for p in &r.peers {
                    c.with_label_values(&[p.name.as_str(), &p.address.to_string()])
                        .inc_by(f(p));
                }
            }
        }
    }
    let rib = gauge_vec(
        &registry,
        "bgpd_loc_rib_networks",
        "Destinations in the Loc-RIB.",
        &["family"],
    );
    rib.with_label_values(&["ipv4"])
        .set(gauge_value(r.networks_v4 as u64));
    rib.with_label_values(&["ipv6"])
        .set(gauge_value(r.networks_v6 as u64));
    bfd(&registry, r);
    registry.gather()
}

/// BFD per peer: the session state (one series per state, 1 for the current one, as
/// with `bgpd_sessions`) and the state changes counted since the session was created.
fn bfd(registry: &Registry, r: &StatusReport) {
    use crate::bfd::{State as B, state_name};
    let state = gauge_vec(
        registry,
        "bgpd_bfd_session_state",
        "BFD session state per peer (1 for the current state).",
        &["peer", "address", "state"],
    );
    let transitions = IntCounterVec::new(
        Opts::new(
            "bgpd_bfd_transitions_total",
            "BFD session state changes per peer.",
        ),
        &["peer", "address"],
    )
    .expect("valid counter options");
    registry
        .register(Box::new(transitions.clone()))
        .expect("unique metric name");
    for s in &r.bfd {
        let addr = s.peer.to_string();
        for st in [B::AdminDown, B::Down, B::Init, B::Up] {
            state
                .with_label_values(&[s.peer_name.as_str(), &addr, &state_name(st).to_lowercase()])
                .set((s.state == st) as i64);
        }
        transitions
            .with_label_values(&[s.peer_name.as_str(), &addr])
            .inc_by(s.transitions);
    }
}

/// The exposition text of `r` (pure).
pub fn render(r: &StatusReport) -> String {
    daemon_kit::http::render(&gather(r))
}

/// Serves `GET /metrics` on `addr`: 200 with the metrics, or 503 with the error
/// when the daemon does not answer (it is stopping).
pub async fn serve(addr: SocketAddr, daemon: DaemonHandle) -> io::Result<JoinHandle<()>> {
    Ok(serve_on(TcpListener::bind(addr).await?, daemon))
}

/// [`serve`] on a bound listener.
pub fn serve_on(listener: TcpListener, daemon: DaemonHandle) -> JoinHandle<()> {
    let router = daemon_kit::http::metrics_router_with(move || {
        let daemon = daemon.clone();
        async move { daemon.status().await.map(|r| gather(&r)) }
    });
    daemon_kit::http::serve(listener, router, std::future::pending())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::PeerStats;

    fn peer(name: &str, address: &str, state: State) -> PeerStatus {
        PeerStatus {
            name: name.into(),
            address: address.parse().unwrap(),
            asn: 1,
            state,
            since: std::time::SystemTime::now(),
            last_error: None,
            neighbor_id: None,
            local: None,
            internal: None,
            hold_time: None,
            keepalive: None,
            families: vec![],
            passive: false,
            imported: 0,
            exported: 0,
            preferred: 0,
            stats: PeerStats::default(),
        }
    }

    fn report(peers: Vec<PeerStatus>) -> StatusReport {
        StatusReport {
            router_id: "1.1.1.1".parse().unwrap(),
            local_as: 1,
            started: std::time::SystemTime::now(),
            peers,
            networks_v4: 7,
            networks_v6: 0,
            paths_v4: 7,
            paths_v6: 0,
            bfd: vec![],
        }
    }

    #[test]
    fn exposition_has_states_and_peer_series() {
        let mut p = peer("Global_10_0_0_2", "10.0.0.2", State::Established);
        p.imported = 7;
        p.exported = 3;
        p.preferred = 7;
        p.stats.updates_in = 5;
        p.stats.prefixes_received = 9;
        let t = render(&report(vec![p]));
        assert!(
            t.contains("bgpd_sessions{state=\"established\"} 1\n"),
            "{t}"
        );
        assert!(t.contains("bgpd_sessions{state=\"idle\"} 0\n"));
        assert!(
            t.contains("bgpd_routes_accepted{address=\"10.0.0.2\",peer=\"Global_10_0_0_2\"} 7\n")
        );
        assert!(
            t.contains("bgpd_routes_advertised{address=\"10.0.0.2\",peer=\"Global_10_0_0_2\"} 3\n")
        );
        assert!(t.contains(
            "bgpd_updates_received_total{address=\"10.0.0.2\",peer=\"Global_10_0_0_2\"} 5\n"
        ));
        assert!(t.contains(
            "bgpd_routes_received_total{address=\"10.0.0.2\",peer=\"Global_10_0_0_2\"} 9\n"
        ));
        assert!(t.contains("bgpd_session_up{address=\"10.0.0.2\",peer=\"Global_10_0_0_2\"} 1\n"));
        assert!(t.contains("bgpd_loc_rib_networks{family=\"ipv4\"} 7\n"));
        assert!(t.contains("bgpd_loc_rib_networks{family=\"ipv6\"} 0\n"));
    }

    #[test]
    fn help_and_type_lines_are_as_before() {
        let t = render(&report(vec![peer("a", "10.0.0.2", State::Idle)]));
        for line in [
            "# HELP bgpd_sessions BGP sessions by FSM state.",
            "# TYPE bgpd_sessions gauge",
            "# HELP bgpd_session_up 1 if the session is Established.",
            "# TYPE bgpd_session_up gauge",
            "# HELP bgpd_routes_received_total Prefixes announced by the peer.",
            "# TYPE bgpd_routes_received_total counter",
            "# TYPE bgpd_routes_accepted gauge",
            "# TYPE bgpd_routes_advertised gauge",
            "# TYPE bgpd_updates_received_total counter",
            "# HELP bgpd_updates_sent_total UPDATE messages sent.",
            "# TYPE bgpd_updates_sent_total counter",
            "# HELP bgpd_loc_rib_networks Destinations in the Loc-RIB.",
            "# TYPE bgpd_loc_rib_networks gauge",
        ] {
            assert!(t.contains(&format!("{line}\n")), "{line} missing in:\n{t}");
        }
        assert!(t.contains("bgpd_sessions{state=\"idle\"} 1\n"), "{t}");
    }

    #[test]
    fn bfd_state_and_transitions_per_peer() {
        let mut r = report(vec![]);
        r.bfd.push(crate::bfd::SessionView {
            peer: "10.0.0.2".parse().unwrap(),
            peer_name: "Global_10_0_0_2".into(),
            interface: None,
            state: crate::bfd::State::Up,
            diag: crate::bfd::Diag::None,
            since: std::time::SystemTime::now(),
            tx_interval: None,
            detection_time: None,
            transitions: 5,
        });
        let t = render(&r);
        let l = "address=\"10.0.0.2\",peer=\"Global_10_0_0_2\"";
        assert!(
            t.contains(&format!("bgpd_bfd_session_state{{{l},state=\"up\"}} 1\n")),
            "{t}"
        );
        assert!(
            t.contains(&format!("bgpd_bfd_session_state{{{l},state=\"down\"}} 0\n")),
            "{t}"
        );
        assert!(
            t.contains(&format!("bgpd_bfd_transitions_total{{{l}}} 5\n")),
            "{t}"
        );
        assert!(t.contains("# TYPE bgpd_bfd_transitions_total counter\n"));
    }

    /// A peer name is operator-chosen text: quotes, backslashes and newlines in it
    /// are escaped, so the exposition stays parseable.
    #[test]
    fn label_values_are_escaped() {
        let p = peer("rr \"east\"\\1\nx", "10.0.0.3", State::Active);
        let t = render(&report(vec![p]));
        assert!(
            t.contains(
                "bgpd_session_up{address=\"10.0.0.3\",peer=\"rr \\\"east\\\"\\\\1\\nx\"} 0\n"
            ),
            "{t}"
        );
        // Every sample stays on one line: name{labels} value.
        for line in t.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                line.rsplit_once(' ')
                    .is_some_and(|(_, v)| v.parse::<f64>().is_ok()),
                "{line}"
            );
        }
    }

    #[tokio::test]
    async fn serves_metrics_on_metrics_only_and_503_without_the_daemon() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (handle, owner, _) = crate::daemon::Daemon::start(crate::daemon::DaemonOptions {
            config: crate::config::Config::parse("asNumber: 64512\nrouterId: 192.0.2.1\n").unwrap(),
            fib: None,
            listener: None,
            stale_sweep_after: std::time::Duration::from_secs(60),
        });
        let owner = tokio::spawn(owner);
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let _server = serve_on(l, handle);
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            s.write_all(req.as_bytes()).await.unwrap();
            let mut resp = String::new();
            s.read_to_string(&mut resp).await.unwrap();
            resp
        };
        let r = get("/metrics").await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(
            r.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{r}"
        );
        assert!(r.contains("bgpd_sessions{state=\"idle\"} 0\n"), "{r}");
        assert!(
            r.contains("bgpd_loc_rib_networks{family=\"ipv4\"} 0\n"),
            "{r}"
        );
        assert!(get("/").await.starts_with("HTTP/1.1 404"));
        assert!(get("/metricsx").await.starts_with("HTTP/1.1 404"));
        owner.abort();
        let _ = owner.await;
        assert!(get("/metrics").await.starts_with("HTTP/1.1 503"));
    }
}
