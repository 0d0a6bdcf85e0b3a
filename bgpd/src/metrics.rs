//! Prometheus metrics (text exposition format 0.0.4) on a plain HTTP
//! endpoint: sessions by state, routes received/accepted/advertised and
//! updates in/out per peer, Loc-RIB size.

use std::fmt::Write;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

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

/// (name, type, help, value) of a per-peer series.
type PerPeer = (
    &'static str,
    &'static str,
    &'static str,
    fn(&PeerStatus) -> u64,
);

/// Render the exposition text (pure).
pub fn render(r: &StatusReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# HELP bgpd_sessions BGP sessions by FSM state.");
    let _ = writeln!(s, "# TYPE bgpd_sessions gauge");
    for (st, name) in STATES {
        let n = r.peers.iter().filter(|p| p.state == st).count();
        let _ = writeln!(s, "bgpd_sessions{{state=\"{name}\"}} {n}");
    }
    let per_peer: [PerPeer; 6] = [
        (
            "bgpd_session_up",
            "gauge",
            "1 if the session is Established.",
            |p| (p.state == State::Established) as u64,
        ),
        (
            "bgpd_routes_received_total",
            "counter",
            "Prefixes announced by the peer.",
            |p| p.stats.prefixes_received,
        ),
        (
            "bgpd_routes_accepted",
            "gauge",
            "Paths held from the peer after import policy.",
            |p| p.imported as u64,
        ),
        (
            "bgpd_routes_advertised",
            "gauge",
            "Prefixes advertised to the peer.",
            |p| p.exported as u64,
        ),
        (
            "bgpd_updates_received_total",
            "counter",
            "UPDATE messages received.",
            |p| p.stats.updates_in,
        ),
        (
            "bgpd_updates_sent_total",
            "counter",
            "UPDATE messages sent.",
            |p| p.stats.updates_out,
        ),
    ];
    for (name, kind, help, f) in per_peer {
        let _ = writeln!(s, "# HELP {name} {help}");
        let _ = writeln!(s, "# TYPE {name} {kind}");
        for p in &r.peers {
            let _ = writeln!(
                s,
                "{name}{{peer=\"{}\",address=\"{}\"}} {}",
                p.name,
                p.address,
                f(p)
            );
        }
    }
    let _ = writeln!(
        s,
        "# HELP bgpd_loc_rib_networks Destinations in the Loc-RIB."
    );
    let _ = writeln!(s, "# TYPE bgpd_loc_rib_networks gauge");
    let _ = writeln!(
        s,
        "bgpd_loc_rib_networks{{family=\"ipv4\"}} {}",
        r.networks_v4
    );
    let _ = writeln!(
        s,
        "bgpd_loc_rib_networks{{family=\"ipv6\"}} {}",
        r.networks_v6
    );
    s
}

/// Longest a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serve `GET /metrics` (any path) on `addr`.
pub async fn serve(addr: SocketAddr, daemon: DaemonHandle) -> io::Result<JoinHandle<()>> {
    let l = TcpListener::bind(addr).await?;
    Ok(tokio::spawn(async move {
        loop {
            let mut s = match l.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    // EMFILE and the like pass; keep serving afterwards.
                    warn!(%addr, error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let d = daemon.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 2048];
                // One read is enough for a GET; the body is ignored. A
                // client that sends nothing is dropped after READ_TIMEOUT.
                match tokio::time::timeout(READ_TIMEOUT, s.read(&mut req)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return debug!(error = %e, "metrics read failed"),
                    Err(_) => return debug!("metrics request not sent in time"),
                }
                let resp = match d.status().await {
                    Ok(r) => {
                        let body = render(&r);
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    Err(e) => {
                        let body = format!("{e}\n");
                        format!(
                            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                };
                if let Err(e) = s.write_all(resp.as_bytes()).await {
                    debug!(error = %e, "metrics write failed");
                }
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::PeerStats;

    #[test]
    fn exposition_has_states_and_peer_series() {
        let p = PeerStatus {
            name: "Global_10_0_0_2".into(),
            address: "10.0.0.2".parse().unwrap(),
            asn: 1,
            state: State::Established,
            since: std::time::SystemTime::now(),
            last_error: None,
            neighbor_id: None,
            local: None,
            internal: None,
            hold_time: None,
            keepalive: None,
            families: vec![],
            passive: false,
            imported: 7,
            exported: 3,
            preferred: 7,
            stats: PeerStats {
                updates_in: 5,
                ..Default::default()
            },
        };
        let r = StatusReport {
            router_id: "1.1.1.1".parse().unwrap(),
            local_as: 1,
            started: std::time::SystemTime::now(),
            peers: vec![p],
            networks_v4: 7,
            networks_v6: 0,
            paths_v4: 7,
            paths_v6: 0,
        };
        let t = render(&r);
        assert!(
            t.contains("bgpd_sessions{state=\"established\"} 1\n"),
            "{t}"
        );
        assert!(t.contains("bgpd_sessions{state=\"idle\"} 0\n"));
        assert!(
            t.contains("bgpd_routes_accepted{peer=\"Global_10_0_0_2\",address=\"10.0.0.2\"} 7\n")
        );
        assert!(
            t.contains("bgpd_routes_advertised{peer=\"Global_10_0_0_2\",address=\"10.0.0.2\"} 3\n")
        );
        assert!(t.contains(
            "bgpd_updates_received_total{peer=\"Global_10_0_0_2\",address=\"10.0.0.2\"} 5\n"
        ));
    }
}
