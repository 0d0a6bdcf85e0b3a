//! The owner task: one [`Daemon`] holds the RIB, the peers and their
//! Adj-RIBs-Out, and reacts to three inputs — session events from peer
//! tasks, [`ConfigUpdate`]s (peers and originated prefixes can change at
//! run time, which is how the datastore-driven mode will drive it), and
//! queries from the control socket and metrics endpoint. Handlers are
//! synchronous apart from channel sends; all spawning is in [`crate::peer`].

mod graceful;
mod routes;
pub mod status;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::bfd::{self, BfdHandle};
use crate::config::{Config, PeerConfig};
use crate::fib::Fib;
use crate::fsm::{DownReason, NegotiatedSession, State, StopReason};
use crate::peer::{
    self, CommandSender, Listener, PeerCommand, PeerDirectory, PeerEvent, Transport,
};
use crate::policy::Policy;
use crate::rib::{AdjRibOut, PeerId, Rib, StalePaths};
use crate::wire::Family;

pub use status::{PeerStatus, RouteView, StatusReport};

/// Run-time changes to what the daemon does.
#[derive(Debug, Clone)]
pub enum ConfigUpdate {
    AddPeer(Box<PeerConfig>),
    /// Remove the peer with this address (Cease "peer de-configured").
    RemovePeer(IpAddr),
    /// The complete set of prefixes to originate.
    SetOriginated(Vec<IpNet>),
    /// The prefixes whose routes stay out of the kernel (see `Config::fib_exclude`).
    SetFibExclude(Vec<IpNet>),
    /// The peer with this address may be back (its Node changed): if its session is not
    /// up, connect now.
    RetryNow(IpAddr),
}

/// Questions for the owner task; answers are snapshots.
#[derive(Debug)]
pub enum Query {
    Status(oneshot::Sender<StatusReport>),
    /// Routes: all, or the longest match for an address.
    Routes {
        for_ip: Option<IpAddr>,
        reply: oneshot::Sender<Vec<RouteView>>,
    },
}

#[derive(Debug)]
enum Control {
    Config(ConfigUpdate, oneshot::Sender<Result<(), String>>),
    Query(Query),
    Shutdown(oneshot::Sender<()>),
}

/// Requests that may wait for the owner task. Queries beyond this are
/// refused ([`QueryError::Busy`]) rather than queued without bound.
const CONTROL_QUEUE: usize = 256;

/// Why a query got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("daemon busy: {CONTROL_QUEUE} requests already waiting, try again")]
    Busy,
    #[error("daemon is shutting down")]
    Stopped,
}

/// How other tasks reach the daemon (clone freely).
#[derive(Clone, Debug)]
pub struct DaemonHandle {
    tx: mpsc::Sender<Control>,
}

impl DaemonHandle {
    /// Apply a configuration change; waits for room in the queue (changes
    /// are never dropped).
    pub async fn update(&self, u: ConfigUpdate) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Control::Config(u, tx))
            .await
            .map_err(|_| "daemon stopped".to_string())?;
        rx.await.map_err(|_| "daemon stopped".to_string())?
    }

    pub async fn status(&self) -> Result<StatusReport, QueryError> {
        let (tx, rx) = oneshot::channel();
        self.query(Query::Status(tx))?;
        rx.await.map_err(|_| QueryError::Stopped)
    }

    pub async fn routes(&self, for_ip: Option<IpAddr>) -> Result<Vec<RouteView>, QueryError> {
        let (tx, rx) = oneshot::channel();
        self.query(Query::Routes { for_ip, reply: tx })?;
        rx.await.map_err(|_| QueryError::Stopped)
    }

    /// Queue a query, or refuse it at once when the queue is full (clients
    /// of the control socket and metrics endpoint must not pile up work).
    fn query(&self, q: Query) -> Result<(), QueryError> {
        self.tx.try_send(Control::Query(q)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => QueryError::Busy,
            mpsc::error::TrySendError::Closed(_) => QueryError::Stopped,
        })
    }

    /// Send Cease to every peer, clean up the FIB, stop; returns when done.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Control::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Counters of one peer (Prometheus and `show protocols all`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerStats {
    pub updates_in: u64,
    pub updates_out: u64,
    /// Prefixes announced to us (including replaced ones).
    pub prefixes_received: u64,
    pub withdraws_received: u64,
    /// Prefixes refused by import policy or RFC 7606 treat-as-withdraw.
    pub prefixes_rejected: u64,
}

pub(crate) struct Peer {
    pub cfg: PeerConfig,
    pub name: String,
    pub tx: CommandSender,
    pub task: JoinHandle<()>,
    pub state: State,
    pub since: SystemTime,
    pub last_error: Option<DownReason>,
    pub negotiated: Option<Box<NegotiatedSession>>,
    pub local: Option<SocketAddr>,
    pub adj_out: AdjRibOut,
    pub stats: PeerStats,
    pub eor: HashSet<Family>,
    /// End-of-RIB went out on this session (held back while route selection is deferred).
    pub eor_sent: bool,
}

/// Everything needed to start.
pub struct DaemonOptions {
    pub config: Config,
    /// `None`: run without touching the kernel FIB.
    pub fib: Option<Fib>,
    /// `None`: no listening socket (every peer must be active).
    pub listener: Option<Listener>,
    /// Delete stale proto-186 routes this long after start at the latest
    /// (earlier once every peer sent End-of-RIB).
    pub stale_sweep_after: Duration,
}

pub struct Daemon {
    policy: Policy,
    rib: Rib,
    peers: BTreeMap<PeerId, Peer>,
    next_id: u32,
    directory: PeerDirectory,
    listener: Option<Arc<Listener>>,
    events_tx: peer::EventSender,
    fib: Option<Fib>,
    keep_fib_on_exit: bool,
    /// Best routes inside these are not installed.
    fib_exclude: Vec<IpNet>,
    originated: BTreeSet<IpNet>,
    started: SystemTime,
    swept: bool,
    /// We restarted with our forwarding state kept: route selection is deferred, and with
    /// it our End-of-RIB and the Restart State bit (RFC 4724 4.1), until End-of-RIB from
    /// every peer or `sweep_deadline` (the Selection_Deferral_Timer).
    deferring: bool,
    sweep_deadline: tokio::time::Instant,
    /// Paths of peers restarting gracefully (RFC 4724 4.2), and when each peer's restart
    /// time runs out.
    stale: StalePaths,
    stale_deadlines: BTreeMap<PeerId, tokio::time::Instant>,
    /// The BFD task, started with the first peer that has `bfd` on (so a bgpd without
    /// BFD peers never binds UDP 3784).
    bfd: Option<BfdHandle>,
    /// Adj-RIB-Out changes made since the last flush, counted per peer (see
    /// [`UNFLUSHED_LIMIT`]).
    unflushed: usize,
}

/// Adj-RIB-Out changes (one prefix for one peer) after which a batch of
/// events is flushed before it ends: a reflector's batch of 256 UPDATEs for
/// 1,000 clients would otherwise hold a million pending changes at once.
/// Measured with the fan-out bench at 1,000 clients: 65,536 gave 0.65 s and
/// 31 MB, 16,384 0.49 s and 29-31 MB, 4,096 0.71-0.84 s (flushes too small).
const UNFLUSHED_LIMIT: usize = 1 << 14;

impl Daemon {
    /// Build the daemon, spawn its peers, return a handle, the owner future
    /// and the accept loop's task (when there is a listener). The owner
    /// returns only after a shutdown and the accept loop never: whoever runs
    /// them should treat either ending otherwise as fatal.
    pub fn start(
        opts: DaemonOptions,
    ) -> (
        DaemonHandle,
        impl std::future::Future<Output = ()> + Send,
        Option<JoinHandle<()>>,
    ) {
        let cfg = opts.config;
        let (events_tx, events_rx) = mpsc::channel(1024);
        let (ctl_tx, ctl_rx) = mpsc::channel(CONTROL_QUEUE);
        let directory = PeerDirectory::default();
        let listener = opts.listener.map(Arc::new);
        let adopted = opts.fib.as_ref().map_or(0, |f| f.adopted());
        if adopted > 0 {
            info!(
                routes = adopted,
                deferral = ?opts.stale_sweep_after,
                "restarting with forwarding state kept: End-of-RIB deferred until every peer's"
            );
        }
        let mut d = Daemon {
            policy: Policy {
                local_as: cfg.as_number,
                router_id: cfg.router_id,
                cluster_id: cfg.effective_cluster_id(),
            },
            rib: Rib::new(cfg.as_number, cfg.router_id),
            peers: BTreeMap::new(),
            next_id: 1,
            unflushed: 0,
            directory,
            listener,
            events_tx,
            fib: opts.fib,
            keep_fib_on_exit: cfg.keep_fib_on_exit,
            fib_exclude: cfg.fib_exclude.clone(),
            originated: BTreeSet::new(),
            started: SystemTime::now(),
            swept: false,
            deferring: adopted > 0,
            sweep_deadline: tokio::time::Instant::now() + opts.stale_sweep_after,
            stale: StalePaths::default(),
            stale_deadlines: BTreeMap::new(),
            bfd: None,
        };
        for p in &cfg.peers {
            if let Err(e) = d.add_peer(p.clone()) {
                warn!(peer = %p.name(), error = %e, "peer not started");
            }
        }
        // Accepting only now that every configured peer is in the directory: a peer that
        // connected while bgpd started waited in the listen backlog instead of being refused
        // as unconfigured (which cost the mesh 4 s when a node joined).
        let accept = d
            .listener
            .as_ref()
            .map(|l| l.spawn_accept(d.directory.clone()));
        d.set_originated(cfg.originate.clone());
        let handle = DaemonHandle { tx: ctl_tx };
        (handle, d.run(events_rx, ctl_rx), accept)
    }

    async fn run(
        mut self,
        mut events: mpsc::Receiver<(PeerId, PeerEvent)>,
        mut ctl: mpsc::Receiver<Control>,
    ) {
        let mut batch = Vec::with_capacity(256);
        loop {
            let sweep_pending = !self.swept && self.fib.is_some();
            let deadline_pending = sweep_pending || self.deferring;
            let restart_over = self.next_stale_deadline();
            tokio::select! {
                n = events.recv_many(&mut batch, 256) => {
                    if n == 0 {
                        break;
                    }
                    for (id, e) in batch.drain(..) {
                        self.on_event(id, e);
                        if self.unflushed >= UNFLUSHED_LIMIT {
                            self.flush();
                        }
                    }
                    self.maybe_end_deferral();
                    self.flush();
                }
                c = ctl.recv() => match c {
                    Some(Control::Shutdown(tx)) => {
                        self.shutdown(&mut events).await;
                        let _ = tx.send(());
                        return;
                    }
                    Some(Control::Config(u, tx)) => {
                        let r = self.on_config(u);
                        self.maybe_end_deferral();
                        self.flush();
                        let _ = tx.send(r);
                    }
                    Some(Control::Query(q)) => self.on_query(q),
                    None => {
                        self.shutdown(&mut events).await;
                        return;
                    }
                },
                _ = tokio::time::sleep_until(self.sweep_deadline), if deadline_pending => {
                    if self.deferring {
                        self.end_deferral("selection deferral timer expired");
                    }
                    if sweep_pending {
                        self.sweep();
                    }
                }
                _ = sleep_until_some(restart_over.map(|(_, t)| t)), if restart_over.is_some() => {
                    if let Some((id, _)) = restart_over {
                        info!(peer = id.0, "restart time over: the peer's stale routes go");
                        self.withdraw_stale(id, None);
                        self.flush();
                    }
                }
            }
        }
    }

    fn on_config(&mut self, u: ConfigUpdate) -> Result<(), String> {
        match u {
            ConfigUpdate::AddPeer(p) => self.add_peer(*p),
            ConfigUpdate::RemovePeer(addr) => self.remove_peer(addr),
            ConfigUpdate::RetryNow(addr) => {
                if let Some(p) = self.peers.values().find(|p| p.cfg.address == addr)
                    && p.state != State::Established
                {
                    let _ = p.tx.send(PeerCommand::RetryNow);
                }
                Ok(())
            }
            ConfigUpdate::SetOriginated(v) => {
                self.set_originated(v);
                Ok(())
            }
            ConfigUpdate::SetFibExclude(v) => {
                self.set_fib_exclude(v);
                Ok(())
            }
        }
    }

    fn add_peer(&mut self, cfg: PeerConfig) -> Result<(), String> {
        let mut check = Config {
            as_number: self.policy.local_as,
            router_id: self.policy.router_id,
            cluster_id: None,
            listen: Default::default(),
            peers: self.peers.values().map(|p| p.cfg.clone()).collect(),
            originate: Vec::new(),
            fib: false,
            fib_exclude: Vec::new(),
            keep_fib_on_exit: false,
            control_socket: None,
            metrics_listen: None,
        };
        check.peers.push(cfg.clone());
        check.validate().map_err(|e| e.to_string())?;
        let id = PeerId(self.next_id);
        self.next_id += 1;
        let name = cfg.name();
        if let (Some(l), Some(pw)) = (&self.listener, &cfg.password)
            && let Err(e) = l.set_md5(cfg.address, Some(pw))
        {
            return Err(format!(
                "TCP MD5 key for {} on the listener: {e}",
                cfg.address
            ));
        }
        let transport = Transport {
            address: cfg.address,
            port: cfg.port,
            password: cfg.password.clone(),
            ttl_security: cfg.ttl_security,
            source_address: cfg.source_address,
            send_queue_limit: cfg.send_queue_limit,
        };
        // The F bit (RFC 4724 3): our forwarding survives our restart when the kernel routes
        // stay at exit (or there are none to lose).
        let forwarding_preserved = self.keep_fib_on_exit || self.fib.is_none();
        let mut fsm_cfg = cfg.fsm_config(
            self.policy.local_as,
            self.policy.router_id,
            forwarding_preserved,
        );
        fsm_cfg.set_restart_state(self.deferring);
        let (tx, task) = peer::spawn(id, name.clone(), transport, fsm_cfg, self.events_tx.clone());
        self.directory.insert(cfg.address, tx.clone());
        if let Some(b) = cfg.bfd {
            // BFD only ever takes the session down; BGP comes up without it.
            match self.bfd_handle() {
                Ok(h) => h.add(
                    cfg.address,
                    name.clone(),
                    cfg.source_address,
                    b.session_config(),
                    tx.clone(),
                ),
                Err(e) => {
                    warn!(peer = %name, error = %e, "BFD not started: UDP {} unavailable", bfd::CONTROL_PORT)
                }
            }
        }
        let _ = tx.send(PeerCommand::Start);
        info!(peer = %name, address = %cfg.address, asn = cfg.as_number, "peer added");
        self.peers.insert(
            id,
            Peer {
                cfg,
                name,
                tx,
                task,
                state: State::Idle,
                since: SystemTime::now(),
                last_error: None,
                negotiated: None,
                local: None,
                adj_out: AdjRibOut::new(),
                stats: PeerStats::default(),
                eor: HashSet::new(),
                eor_sent: false,
            },
        );
        Ok(())
    }

    fn remove_peer(&mut self, addr: IpAddr) -> Result<(), String> {
        let id = self
            .peers
            .iter()
            .find(|(_, p)| p.cfg.address == addr)
            .map(|(id, _)| *id);
        let Some((id, p)) = id.and_then(|id| self.peers.remove_entry(&id)) else {
            return Err(format!("no peer with address {addr}"));
        };
        self.directory.remove(&addr);
        if let (Some(b), Some(_)) = (&self.bfd, &p.cfg.bfd) {
            b.remove(addr);
        }
        if let (Some(l), Some(_)) = (&self.listener, &p.cfg.password) {
            let _ = l.set_md5(addr, None);
        }
        let (tx, _rx) = oneshot::channel();
        let _ =
            p.tx.send(PeerCommand::Exit(StopReason::PeerDeconfigured, tx));
        self.stale.take_all(id);
        self.stale_deadlines.remove(&id);
        let changes = self.rib.remove_peer(id);
        self.apply_changes(changes);
        self.rib.sweep_attributes();
        info!(peer = %p.name, address = %addr, "peer removed");
        Ok(())
    }

    /// The BFD task, started on first use.
    fn bfd_handle(&mut self) -> std::io::Result<&BfdHandle> {
        if self.bfd.is_none() {
            let (h, _task) = bfd::spawn(bfd::CONTROL_PORT)?;
            self.bfd = Some(h);
        }
        Ok(self.bfd.as_ref().expect("just set"))
    }

    fn sweep(&mut self) {
        if let Some(f) = &self.fib {
            f.sweep();
        }
        self.swept = true;
    }

    async fn shutdown(&mut self, events: &mut mpsc::Receiver<(PeerId, PeerEvent)>) {
        info!(
            peers = self.peers.len(),
            "shutting down: Cease to every peer"
        );
        // RFC 5882 3.2: AdminDown first, so that BFD peers do not mistake our stopping
        // for a path failure (and keep our routes through a graceful restart).
        if let Some(b) = &self.bfd {
            let _ = tokio::time::timeout(Duration::from_secs(1), b.shutdown()).await;
        }
        let mut waits = Vec::new();
        for p in self.peers.values() {
            let (tx, rx) = oneshot::channel();
            // Restarting gracefully: a bare close, so that GR peers keep our routes while
            // the kernel keeps theirs (RFC 4724 4.1).
            let reason = if self.keep_fib_on_exit && p.cfg.graceful_restart_time.is_some() {
                StopReason::GracefulRestart
            } else {
                StopReason::AdminShutdown
            };
            if p.tx.send(PeerCommand::Exit(reason, tx)).is_ok() {
                waits.push(rx);
            }
        }
        let all = futures::future::join_all(waits);
        // Keep draining (and dropping) events meanwhile: a peer task blocked
        // sending one on the full channel would otherwise never see its
        // Exit, and would be aborted below without having sent its Cease.
        let drain = async {
            let mut batch = Vec::with_capacity(256);
            while events.recv_many(&mut batch, 256).await > 0 {
                batch.clear();
            }
            std::future::pending::<()>().await
        };
        let waited = tokio::time::timeout(Duration::from_secs(5), async {
            tokio::select! {
                _ = all => {}
                _ = drain => {}
            }
        })
        .await;
        if waited.is_err() {
            warn!("peers did not all stop within 5 s; aborting the rest");
        }
        if let Some(f) = &self.fib {
            if self.keep_fib_on_exit {
                f.flush().await;
                info!("kernel routes kept for graceful restart");
            } else {
                f.remove_all().await;
            }
        }
        for p in self.peers.values() {
            p.task.abort();
        }
    }
}

/// Sleeps until `t` (forever without one).
async fn sleep_until_some(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Queries beyond the queue are refused at once, not queued; config
    /// updates wait; a stopped daemon is reported as such.
    #[tokio::test]
    async fn full_control_queue_refuses_queries() {
        let (handle, owner, _) = Daemon::start(DaemonOptions {
            config: Config::parse("asNumber: 64512\nrouterId: 192.0.2.1\n").unwrap(),
            fib: None,
            listener: None,
            stale_sweep_after: Duration::from_secs(60),
        });
        // The owner is not running yet: these wait in the queue.
        let mut waiting = Vec::new();
        for _ in 0..CONTROL_QUEUE {
            let h = handle.clone();
            waiting.push(tokio::spawn(async move { h.status().await }));
        }
        tokio::task::yield_now().await;
        while handle.tx.capacity() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(handle.status().await.err(), Some(QueryError::Busy));
        assert_eq!(handle.routes(None).await.err(), Some(QueryError::Busy));
        // Once the owner runs, the queued ones are answered.
        let owner = tokio::spawn(owner);
        for w in waiting {
            assert!(w.await.unwrap().is_ok());
        }
        handle.shutdown().await;
        owner.await.unwrap();
        assert_eq!(handle.status().await.err(), Some(QueryError::Stopped));
    }
}
