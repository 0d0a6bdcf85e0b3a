//! The passive open: one listening socket for all peers. A connection from
//! a configured address goes to that peer's task; any other is refused
//! (closed at once, and logged at most once a minute per address).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::{CommandSender, PeerCommand, canonical, sockopt};

/// Peer address -> its task, shared by the daemon (writer) and the
/// accept loop (reader).
#[derive(Clone, Default)]
pub struct PeerDirectory(Arc<Mutex<HashMap<IpAddr, CommandSender>>>);

impl PeerDirectory {
    /// The map, also after a panic elsewhere while it was held: every
    /// critical section is a single map operation, so a poisoned lock still
    /// guards a consistent map, and refusing it would stop the accept loop
    /// (or the owner task) for good.
    fn map(&self) -> MutexGuard<'_, HashMap<IpAddr, CommandSender>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn insert(&self, peer: IpAddr, tx: CommandSender) {
        self.map().insert(peer, tx);
    }

    pub fn remove(&self, peer: &IpAddr) {
        self.map().remove(peer);
    }

    pub fn get(&self, peer: &IpAddr) -> Option<CommandSender> {
        self.map().get(peer).cloned()
    }
}

pub struct Listener {
    inner: Arc<TcpListener>,
    v6: bool,
}

impl Listener {
    /// Bind the BGP port. `[::]` accepts IPv4 too (dual stack).
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let v6 = addr.is_ipv6();
        let sock = if v6 {
            TcpSocket::new_v6()?
        } else {
            TcpSocket::new_v4()?
        };
        sock.set_reuseaddr(true)?;
        sock.bind(addr)?;
        let inner = sock.listen(1024)?;
        Ok(Listener {
            inner: Arc::new(inner),
            v6,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Install (`Some`) or remove (`None`) the TCP MD5 key for connections
    /// from `peer` (RFC 2385: unsigned SYNs from it are then dropped).
    pub fn set_md5(&self, peer: IpAddr, key: Option<&str>) -> io::Result<()> {
        sockopt::set_md5(&*self.inner, self.v6, peer, key)
    }

    /// Accept forever, handing connections to their peer's task. The task
    /// only ends by panicking; its handle lets the daemon notice that.
    pub fn spawn_accept(&self, peers: PeerDirectory) -> JoinHandle<()> {
        let l = self.inner.clone();
        tokio::spawn(async move {
            let mut refusals = RefusalLog::default();
            loop {
                let (stream, from) = match l.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and the like: keep serving the others.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let ip = canonical(from.ip());
                let tx = peers.get(&ip);
                match tx {
                    Some(tx) => {
                        debug!(peer = %ip, "inbound connection");
                        let _ = tx.send(PeerCommand::Inbound(stream));
                    }
                    None => {
                        drop(stream);
                        if let Some(since) = refusals.should_log(ip, Instant::now()) {
                            warn!(from = %from, refused_since_last_log = since, "connection from an unconfigured address refused");
                        }
                    }
                }
            }
        })
    }
}

/// Refused connections to log: a peer that does not know us yet is refused at once, and one
/// of ours retries within a second (see `Reconnect`), so a misconfigured peer would log
/// every second; each address is logged once a minute instead, with the refusals between.
#[derive(Default)]
struct RefusalLog {
    /// Address -> when it was last logged, and refusals since then not logged.
    seen: HashMap<IpAddr, (Instant, u64)>,
}

impl RefusalLog {
    const EVERY: Duration = Duration::from_secs(60);
    /// Bound on the addresses remembered (connections from anywhere can reach the port).
    const MAX_ADDRESSES: usize = 1024;

    /// Whether to log this refusal; if so, how many refusals of `ip` went unlogged before
    /// it (counting this one).
    fn should_log(&mut self, ip: IpAddr, now: Instant) -> Option<u64> {
        if let Some((last, unlogged)) = self.seen.get_mut(&ip) {
            *unlogged += 1;
            if now.duration_since(*last) < Self::EVERY {
                return None;
            }
            let n = std::mem::take(unlogged);
            *last = now;
            return Some(n);
        }
        if self.seen.len() >= Self::MAX_ADDRESSES {
            self.seen.clear();
        }
        self.seen.insert(ip, (now, 0));
        Some(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_once_a_minute_per_address() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(log.should_log(a, t0), Some(1));
        assert_eq!(log.should_log(b, t0), Some(1));
        for s in 1..60 {
            assert_eq!(log.should_log(a, t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(log.should_log(a, t0 + Duration::from_secs(60)), Some(60));
        assert_eq!(log.should_log(a, t0 + Duration::from_secs(61)), None);
        assert_eq!(log.should_log(b, t0 + Duration::from_secs(61)), Some(1));
    }

    #[test]
    fn the_remembered_addresses_are_bounded() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        for i in 0..=RefusalLog::MAX_ADDRESSES as u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert_eq!(log.should_log(ip, t0), Some(1));
        }
        assert!(log.seen.len() <= RefusalLog::MAX_ADDRESSES);
    }
}
