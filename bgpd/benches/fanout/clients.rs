//! The route reflector's clients: N iBGP sessions from one thread (a
//! current-thread tokio runtime inside the generator namespace), each from
//! its own address, each announcing 4 /26 blocks and counting how many of
//! the other clients' blocks it holds.
//!
//! Client `c` speaks from `first + c`; its blocks are `10.128.0.0 + 64 *
//! (4c + k)`, so a received prefix names its owner without a lookup. The
//! messages are built and parsed by hand (`common/bgp_msg.rs`): the load
//! this generator puts on the machine is the same for every reflector and
//! does not depend on the codec under test.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpSocket;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::bgp_msg::{
    HEADER, KEEPALIVE, NOTIFICATION, OPEN, UPDATE, message, open, open_hold_time,
};
use crate::proc_stats::running;

pub const BLOCKS_PER_CLIENT: usize = 4;
/// 10.128.0.0: the first client's first block.
const BLOCK_BASE: u32 = 0x0a80_0000;
const BLOCK_LEN: u8 = 26;
/// Our OPEN's hold time; the keepalive interval is a third of the one
/// negotiated (RFC 4271 10).
const HOLD: u16 = 240;
/// Sessions being opened at once: a bound on the reflector's accept queue
/// and on the SYNs in flight, not on the sessions held.
const CONNECTING_AT_ONCE: usize = 64;

/// Who the clients are and whom they talk to.
#[derive(Clone, Copy)]
pub struct Plan {
    pub clients: usize,
    pub first: Ipv4Addr,
    pub reflector: Ipv4Addr,
    pub asn: u32,
    /// The reflector's process: the waits end when it does.
    pub reflector_pid: u32,
}

impl Plan {
    pub fn address(&self, c: usize) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.first) + c as u32)
    }

    /// Blocks of the other clients: what each client holds at full fan-out.
    pub fn others(&self) -> u32 {
        ((self.clients - 1) * BLOCKS_PER_CLIENT) as u32
    }
}

enum Command {
    Announce,
    Withdraw,
}

/// What the sessions report to the coordinator.
struct Shared {
    established: AtomicUsize,
    /// Per client: how many of the other clients' blocks it holds.
    held: Vec<AtomicU32>,
    failure: Mutex<Option<String>>,
}

impl Shared {
    fn fail(&self, what: String) {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        f.get_or_insert(what);
    }

    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// All sessions, established. Dropping it (or the runtime) closes them.
pub struct Clients {
    plan: Plan,
    shared: Arc<Shared>,
    commands: Vec<mpsc::UnboundedSender<Command>>,
    _tasks: JoinSet<()>,
}

impl Clients {
    /// Opens every session (at most [`CONNECTING_AT_ONCE`] in the handshake
    /// at a time); returns once all are Established.
    pub async fn connect(plan: Plan, within: Duration) -> Result<Clients, String> {
        let shared = Arc::new(Shared {
            established: AtomicUsize::new(0),
            held: (0..plan.clients).map(|_| AtomicU32::new(0)).collect(),
            failure: Mutex::new(None),
        });
        let gate = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
        let deadline = Instant::now() + within;
        let mut tasks = JoinSet::new();
        let mut commands = Vec::with_capacity(plan.clients);
        for c in 0..plan.clients {
            let (tx, rx) = mpsc::unbounded_channel();
            commands.push(tx);
            let (shared, gate) = (shared.clone(), gate.clone());
            tasks.spawn(async move {
                if let Err(e) = session(plan, c, &shared, &gate, deadline, rx).await {
                    shared.fail(format!("client {c} ({}): {e}", plan.address(c)));
                }
            });
        }
        let clients = Clients {
            plan,
            shared,
            commands,
            _tasks: tasks,
        };
        clients
            .wait_until("all sessions Established", within, |s| {
                s.established.load(Relaxed) == plan.clients
            })
            .await?;
        Ok(clients)
    }

    pub fn announce(&self, c: usize) {
        let _ = self.commands[c].send(Command::Announce);
    }

    pub fn withdraw(&self, c: usize) {
        let _ = self.commands[c].send(Command::Withdraw);
    }

    /// Waits (polling every millisecond) until `held(c)` holds for every
    /// client; the time it took.
    pub async fn wait_for_held(
        &self,
        what: &str,
        within: Duration,
        held: impl Fn(usize, u32) -> bool,
    ) -> Result<Duration, String> {
        self.wait_until(what, within, |s| {
            s.held
                .iter()
                .enumerate()
                .all(|(c, h)| held(c, h.load(Relaxed)))
        })
        .await
    }

    async fn wait_until(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&Shared) -> bool,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            if let Some(e) = self.shared.failure() {
                return Err(e);
            }
            if !running(self.plan.reflector_pid) {
                return Err(format!("{what}: the reflector exited"));
            }
            if done(&self.shared) {
                return Ok(start.elapsed());
            }
            if start.elapsed() > within {
                let counts: Vec<u32> = self.shared.held.iter().map(|h| h.load(Relaxed)).collect();
                let (min, max) = (counts.iter().min(), counts.iter().max());
                return Err(format!(
                    "{what}: not within {within:?} ({} of {} Established; blocks held per client min {min:?} max {max:?} of {})",
                    self.shared.established.load(Relaxed),
                    self.plan.clients,
                    self.plan.others()
                ));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// One client: handshake, then a reader task counting blocks and this task
/// writing what the coordinator asks for and the keepalives.
async fn session(
    plan: Plan,
    c: usize,
    shared: &Arc<Shared>,
    gate: &Semaphore,
    deadline: Instant,
    mut commands: mpsc::UnboundedReceiver<Command>,
) -> Result<(), String> {
    let me = plan.address(c);
    let permit = gate.acquire().await.map_err(|e| e.to_string())?;
    let stream = connect(me, plan.reflector, deadline).await?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(1 << 16, rd);
    wr.write_all(&open(me, plan.asn, HOLD))
        .await
        .map_err(|e| format!("write OPEN: {e}"))?;
    let m = read_message(&mut rd).await?;
    if m[18] != OPEN {
        return Err(format!("expected OPEN, got type {}", m[18]));
    }
    let hold = open_hold_time(&m).unwrap_or(HOLD).min(HOLD);
    wr.write_all(&message(KEEPALIVE, &[]))
        .await
        .map_err(|e| format!("write KEEPALIVE: {e}"))?;
    // RFC 4271 8.2.2: OpenConfirm -> Established on the peer's KEEPALIVE.
    while read_message(&mut rd).await?[18] != KEEPALIVE {}
    drop(permit);
    shared.established.fetch_add(1, Relaxed);

    // Aborted with the set when this task ends.
    let mut reader = JoinSet::new();
    reader.spawn(count_blocks(plan, c, rd, shared.clone()));
    // Hold time 0 means no keepalives (RFC 4271 4.4); a day stands for never.
    let every = match hold {
        0 => Duration::from_secs(86_400),
        h => Duration::from_secs(u64::from(h) / 3).max(Duration::from_secs(1)),
    };
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let (announce, withdraw) = (announce_update(plan, c), withdraw_update(c));
    loop {
        let out = tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(Command::Announce) => &announce,
                Some(Command::Withdraw) => &withdraw,
                None => return Ok(()),
            },
            _ = keepalive.tick() => &message(KEEPALIVE, &[]),
        };
        wr.write_all(out).await.map_err(|e| format!("write: {e}"))?;
    }
}

/// Connects from `me` (a local address of the generator namespace) to the
/// reflector's port 179, retrying while its listener is not up yet.
async fn connect(
    me: Ipv4Addr,
    reflector: Ipv4Addr,
    deadline: Instant,
) -> Result<tokio::net::TcpStream, String> {
    loop {
        let s = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        s.bind(SocketAddr::from((me, 0)))
            .map_err(|e| format!("bind {me}: {e}"))?;
        match s.connect(SocketAddr::from((reflector, 179))).await {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("connect to {reflector}: {e}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Reads UPDATEs until the session ends, keeping `held[c]` current.
async fn count_blocks(plan: Plan, c: usize, mut rd: BufReader<OwnedReadHalf>, shared: Arc<Shared>) {
    let total = plan.clients * BLOCKS_PER_CLIENT;
    let mut have = vec![false; total];
    let mut held = 0u32;
    loop {
        let m = match read_message(&mut rd).await {
            Ok(m) => m,
            Err(e) => {
                shared.fail(format!("client {c} ({}): {e}", plan.address(c)));
                return;
            }
        };
        if m[18] != UPDATE {
            continue;
        }
        let seen = for_each_prefix(&m[HEADER..], |announced, addr, len| {
            let Some(b) = block_of(addr, len, total) else {
                return;
            };
            // A reflector may send a client its own routes back: not counted.
            if b / BLOCKS_PER_CLIENT == c || have[b] == announced {
                return;
            }
            have[b] = announced;
            if announced {
                held += 1;
            } else {
                held -= 1;
            }
        });
        if let Err(e) = seen {
            shared.fail(format!("client {c}: malformed UPDATE: {e}"));
            return;
        }
        shared.held[c].store(held, Relaxed);
    }
}

async fn read_message(rd: &mut BufReader<OwnedReadHalf>) -> Result<Vec<u8>, String> {
    let mut m = vec![0; HEADER];
    rd.read_exact(&mut m)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let len = u16::from_be_bytes([m[16], m[17]]) as usize;
    if len < HEADER || m[..16] != [0xff; 16] {
        return Err(format!("bad header {m:02x?}"));
    }
    m.resize(len, 0);
    rd.read_exact(&mut m[HEADER..])
        .await
        .map_err(|e| format!("read: {e}"))?;
    if m[18] == NOTIFICATION {
        return Err(format!(
            "NOTIFICATION from the reflector: {:02x?}",
            &m[HEADER..]
        ));
    }
    Ok(m)
}

fn block_prefix(b: usize) -> [u8; 4] {
    (BLOCK_BASE + 64 * b as u32).to_be_bytes()
}

/// The block index of an announced or withdrawn prefix, if it is one of ours.
fn block_of(addr: u32, len: u8, total: usize) -> Option<usize> {
    let off = addr.checked_sub(BLOCK_BASE)?;
    let b = (off / 64) as usize;
    (len == BLOCK_LEN && off % 64 == 0 && b < total).then_some(b)
}

/// Calls `f(announced, address, length)` for every IPv4 prefix in the
/// Withdrawn Routes and the NLRI of an UPDATE body (RFC 4271 4.3).
fn for_each_prefix(body: &[u8], mut f: impl FnMut(bool, u32, u8)) -> Result<(), String> {
    let u16_at = |at: usize| -> Result<usize, String> {
        body.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
            .ok_or_else(|| format!("truncated at {at}"))
    };
    let withdrawn_len = u16_at(0)?;
    let withdrawn = body
        .get(2..2 + withdrawn_len)
        .ok_or("withdrawn routes overrun the message")?;
    let attrs_len = u16_at(2 + withdrawn_len)?;
    let nlri = body
        .get(4 + withdrawn_len + attrs_len..)
        .ok_or("path attributes overrun the message")?;
    for (announced, mut rest) in [(false, withdrawn), (true, nlri)] {
        while let [len, tail @ ..] = rest {
            let n = usize::from(*len).div_ceil(8);
            if *len > 32 || tail.len() < n {
                return Err(format!("bad prefix length {len}"));
            }
            let mut a = [0u8; 4];
            a[..n].copy_from_slice(&tail[..n]);
            f(announced, u32::from_be_bytes(a), *len);
            rest = &tail[n..];
        }
    }
    Ok(())
}

/// Client `c`'s blocks with ORIGIN IGP, an empty AS_PATH (iBGP), NEXT_HOP
/// itself and LOCAL_PREF 100 (RFC 4271 5.1).
fn announce_update(plan: Plan, c: usize) -> Vec<u8> {
    let mut attrs = vec![0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4];
    attrs.extend_from_slice(&plan.address(c).octets());
    attrs.extend_from_slice(&[0x40, 5, 4, 0, 0, 0, 100]);
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    body.extend_from_slice(&blocks_nlri(c));
    message(UPDATE, &body)
}

fn withdraw_update(c: usize) -> Vec<u8> {
    let nlri = blocks_nlri(c);
    let mut body = (nlri.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(&nlri);
    body.extend_from_slice(&[0, 0]);
    message(UPDATE, &body)
}

fn blocks_nlri(c: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for b in c * BLOCKS_PER_CLIENT..(c + 1) * BLOCKS_PER_CLIENT {
        v.push(BLOCK_LEN);
        v.extend_from_slice(&block_prefix(b));
    }
    v
}
