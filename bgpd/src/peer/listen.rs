//! The passive open: one listening socket for all peers. A connection from
//! a configured address goes to that peer's task; any other is refused
//! (closed at once, and logged).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
                        warn!(from = %from, "connection from an unconfigured address refused");
                        drop(stream);
                    }
                }
            }
        })
    }
}
