//! The I/O edge of BFD (RFC 5880 Asynchronous mode, RFC 5881 single hop): one task owns
//! every session ([`task`]), the sockets are in [`network`]; the session logic is the
//! pure [`bgp_core::bfd`]. The daemon adds a session per peer configured with `bfd`
//! and hands it the peer's command sender: when a session goes from Up to Down the
//! task tells the peer task at once ([`PeerCommand::BfdDown`]), without a round trip
//! through the daemon. Snapshots for the control socket and metrics are kept in a
//! shared map the task updates after every event.

mod network;
mod task;

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use bgp_core::bfd::{CONTROL_PORT, Config, ControlPacket, Diag, State};

use crate::peer::{CommandSender, PeerCommand};

/// One session as `show bfd sessions` and the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub peer: IpAddr,
    /// The BGP session it serves.
    pub peer_name: String,
    /// Where the remote's packets arrive; `None` before the first one.
    pub interface: Option<String>,
    pub state: State,
    pub diag: Diag,
    pub since: SystemTime,
    /// Our transmit interval before jitter (`None` before the first packet went out).
    pub tx_interval: Option<Duration>,
    pub detection_time: Option<Duration>,
    /// State changes since the session was created.
    pub transitions: u64,
}

type Views = Arc<Mutex<BTreeMap<IpAddr, SessionView>>>;

enum Command {
    Add {
        peer: IpAddr,
        name: String,
        local: Option<IpAddr>,
        cfg: Config,
        notify: CommandSender,
    },
    Remove(IpAddr),
    /// AdminDown to every remote, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// How the daemon reaches the BFD task (clone freely).
#[derive(Debug, Clone)]
pub struct BfdHandle {
    tx: mpsc::UnboundedSender<Command>,
    views: Views,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Add { peer, .. } => write!(f, "Add({peer})"),
            Command::Remove(p) => write!(f, "Remove({p})"),
            Command::Shutdown(_) => f.write_str("Shutdown"),
        }
    }
}

impl BfdHandle {
    /// Run a session towards `peer` (replacing one that exists); `notify` hears
    /// [`PeerCommand::BfdDown`] when it goes from Up to Down.
    pub fn add(
        &self,
        peer: IpAddr,
        name: String,
        local: Option<IpAddr>,
        cfg: Config,
        notify: CommandSender,
    ) {
        let _ = self.tx.send(Command::Add {
            peer,
            name,
            local,
            cfg,
            notify,
        });
    }

    /// End the session towards `peer`, telling the remote AdminDown first.
    pub fn remove(&self, peer: IpAddr) {
        let _ = self.tx.send(Command::Remove(peer));
    }

    /// Every session, by peer address.
    pub fn sessions(&self) -> Vec<SessionView> {
        self.views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Send AdminDown on every session and stop the task (RFC 5882 3.2: the remote
    /// then keeps its BGP session to us, e.g. for a graceful restart).
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Bind UDP `port` (3784 outside tests) and start the task owning every session.
pub fn spawn(port: u16) -> io::Result<(BfdHandle, JoinHandle<()>)> {
    let rx = network::Receiver::bind(port)?;
    let (tx, cmds) = mpsc::unbounded_channel();
    let views = Views::default();
    let task = tokio::spawn(task::run(rx, cmds, views.clone(), port));
    Ok((BfdHandle { tx, views }, task))
}

/// BIRD's names for the states (`show bfd sessions`).
pub fn state_name(s: State) -> &'static str {
    match s {
        State::AdminDown => "AdminDown",
        State::Down => "Down",
        State::Init => "Init",
        State::Up => "Up",
    }
}

fn notify_down(notify: &CommandSender) {
    let _ = notify.send(PeerCommand::BfdDown);
}
