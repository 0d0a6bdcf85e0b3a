//! The task owning every BFD session: receives Control packets on the shared socket,
//! demultiplexes them (RFC 5880 6.8.6: by Your Discriminator, or by source address
//! while that is zero), runs the timers, and performs the sessions' outputs.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::SystemTime;

use bgp_core::bfd::{ControlPacket, Input, Output, Session, State, Timer, jittered};
use std::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::network::{self, Received, Receiver};
use super::{Command, Config, SessionView, Views, notify_down};
use crate::peer::{CommandSender, canonical};

struct Entry {
    name: String,
    session: Session,
    sock: UdpSocket,
    notify: CommandSender,
    tx_at: Option<Instant>,
    detect_at: Option<Instant>,
    since: SystemTime,
    interface: Option<String>,
    transitions: u64,
    sent: bool,
}

struct Task {
    sessions: BTreeMap<IpAddr, Entry>,
    by_discr: HashMap<u32, IpAddr>,
    views: Views,
    port: u16,
}

pub(super) async fn run(
    rx: Receiver,
    mut cmds: mpsc::UnboundedReceiver<Command>,
    views: Views,
    port: u16,
) {
    let mut t = Task {
        sessions: BTreeMap::new(),
        by_discr: HashMap::new(),
        views,
        port,
    };
    let mut buf = [0u8; 512];
    loop {
        let next = t.next_deadline();
        tokio::select! {
            c = cmds.recv() => match c {
                Some(Command::Add { peer, name, local, cfg, notify }) => {
                    t.add(peer, name, local, cfg, notify)
                }
                Some(Command::Remove(peer)) => t.remove(peer),
                Some(Command::Shutdown(done)) => {
                    t.remove_all();
                    let _ = done.send(());
                    return;
                }
                None => {
                    t.remove_all();
                    return;
                }
            },
            r = rx.recv(&mut buf) => match r {
                Ok(r) => {
                    let len = r.len.min(buf.len());
                    t.receive(&buf[..len], r);
                }
                Err(e) => warn!(error = %e, "BFD receive failed"),
            },
            _ = sleep_until_some(next), if next.is_some() => t.fire_timers(),
        }
    }
}

async fn sleep_until_some(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Task {
    fn add(
        &mut self,
        peer: IpAddr,
        name: String,
        local: Option<IpAddr>,
        cfg: Config,
        notify: CommandSender,
    ) {
        self.remove(peer);
        if peer.is_ipv6() {
            warn!(peer = %name, address = %peer, "BFD over IPv6 is not supported yet; no session");
            return;
        }
        let sock = match network::sender(peer, local, self.port) {
            Ok(s) => s,
            Err(e) => {
                warn!(peer = %name, address = %peer, error = %e, "BFD socket failed; no session");
                return;
            }
        };
        // RFC 5880 6.8.1: bfd.LocalDiscr is nonzero and unique on this system.
        let discr = loop {
            let d = rand::random::<u32>();
            if d != 0 && !self.by_discr.contains_key(&d) {
                break d;
            }
        };
        let mut e = Entry {
            name,
            session: Session::new(cfg, discr),
            sock,
            notify,
            tx_at: None,
            detect_at: None,
            since: SystemTime::now(),
            interface: None,
            transitions: 0,
            sent: false,
        };
        info!(peer = %e.name, address = %peer, discriminator = discr, "BFD session added");
        let out = e.session.start();
        self.by_discr.insert(discr, peer);
        self.sessions.insert(peer, e);
        self.apply(peer, out);
    }

    fn remove(&mut self, peer: IpAddr) {
        if let Some(mut e) = self.sessions.remove(&peer) {
            let out = e.session.handle(Input::AdminDown);
            for o in out {
                if let Output::Send(p) = o {
                    let _ = e.sock.send(&p.encode());
                }
            }
            self.by_discr.remove(&e.session.local_discr());
            info!(peer = %e.name, address = %peer, "BFD session removed");
        }
        self.views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&peer);
    }

    fn remove_all(&mut self) {
        let peers: Vec<IpAddr> = self.sessions.keys().copied().collect();
        for p in peers {
            self.remove(p);
        }
    }

    fn receive(&mut self, bytes: &[u8], r: Received) {
        let from = canonical(r.from);
        let p = match ControlPacket::decode(bytes) {
            Ok(p) => p,
            Err(e) => {
                debug!(%from, error = %e, "BFD packet discarded");
                return;
            }
        };
        // RFC 5881 5: single hop, so only TTL 255 proves the sender is on the link.
        if r.ttl != Some(255) {
            debug!(%from, ttl = ?r.ttl, "BFD packet discarded: TTL is not 255 (RFC 5881 5)");
            return;
        }
        // RFC 5880 6.8.6: by Your Discriminator when nonzero, else by the source address.
        let peer = if p.your_discr != 0 {
            match self.by_discr.get(&p.your_discr) {
                Some(peer) if *peer == from => *peer,
                _ => {
                    debug!(%from, your = p.your_discr, "BFD packet for no session discarded");
                    return;
                }
            }
        } else if self.sessions.contains_key(&from) {
            from
        } else {
            debug!(%from, "BFD packet from no configured peer discarded");
            return;
        };
        let Some(e) = self.sessions.get_mut(&peer) else {
            return;
        };
        if e.interface.is_none() {
            e.interface = r.ifindex.and_then(network::ifname);
        }
        tracing::trace!(peer = %e.name, packet = ?p, "BFD packet received");
        let out = e.session.handle(Input::Received(p));
        self.apply(peer, out);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.sessions
            .values()
            .flat_map(|e| [e.tx_at, e.detect_at])
            .flatten()
            .min()
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        for (peer, e) in &mut self.sessions {
            // Detection first: a late transmit must not hide an expiry.
            if e.detect_at.is_some_and(|t| t <= now) {
                e.detect_at = None;
                due.push((*peer, Timer::Detect));
            }
            if e.tx_at.is_some_and(|t| t <= now) {
                e.tx_at = None;
                due.push((*peer, Timer::Transmit));
            }
        }
        for (peer, timer) in due {
            if let Some(e) = self.sessions.get_mut(&peer) {
                let out = e.session.handle(Input::TimerExpired(timer));
                self.apply(peer, out);
            }
        }
    }

    fn apply(&mut self, peer: IpAddr, out: Vec<Output>) {
        let Some(e) = self.sessions.get_mut(&peer) else {
            return;
        };
        let now = Instant::now();
        for o in out {
            match o {
                Output::Send(p) => {
                    tracing::trace!(peer = %e.name, packet = ?p, "BFD packet sent");
                    if let Err(err) = e.sock.send(&p.encode()) {
                        debug!(peer = %e.name, error = %err, "BFD send failed");
                    }
                    e.sent = true;
                }
                Output::ArmTimer(Timer::Transmit, d) => {
                    let mult = e.session.config().detect_mult;
                    e.tx_at = Some(now + jittered(d, mult, rand::random::<f64>()));
                }
                Output::ArmTimer(Timer::Detect, d) => {
                    tracing::trace!(peer = %e.name, ?d, "BFD detection timer");
                    e.detect_at = Some(now + d)
                }
                Output::StopTimer(Timer::Transmit) => e.tx_at = None,
                Output::StopTimer(Timer::Detect) => e.detect_at = None,
                Output::StateChanged { from, to, diag } => {
                    e.transitions += 1;
                    e.since = SystemTime::now();
                    info!(peer = %e.name, address = %peer, ?from, ?to, ?diag, "BFD session state changed");
                    // RFC 5882 3.2: a remote going AdminDown is no path failure, and
                    // the BGP session stays.
                    if from == State::Up
                        && to == State::Down
                        && e.session.remote_state() != State::AdminDown
                    {
                        notify_down(&e.notify);
                    }
                }
            }
        }
        let view = SessionView {
            peer,
            peer_name: e.name.clone(),
            interface: e.interface.clone(),
            state: e.session.state(),
            diag: e.session.local_diag(),
            since: e.since,
            tx_interval: if e.sent {
                e.session.tx_interval()
            } else {
                None
            },
            detection_time: e.session.detection_time(),
            transitions: e.transitions,
        };
        self.views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(peer, view);
    }
}
