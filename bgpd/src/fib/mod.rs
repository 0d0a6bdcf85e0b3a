//! Kernel FIB install of Loc-RIB best routes over rtnetlink:
//! `<prefix> via <next hop> proto bgp metric 1536` (186), multipath for
//! ECMP, removed on withdraw.
//!
//! Routes of any other protocol are never touched (DESIGN.md: each daemon
//! changes only its own protocol's routes). The kernel keys a route by
//! (prefix, tos, metric) and NLM_F_REPLACE overwrites whatever holds that
//! slot, whatever its protocol. So: our routes use their own metric
//! [`ROUTE_METRIC`], never felix's (0 for IPv4, the kernel's 1024 for IPv6),
//! and felix's local route for the same prefix wins by its lower metric;
//! a slot is replaced only when it is known to hold our route, otherwise
//! the write is exclusive (NLM_F_EXCL) and a foreign route there is left
//! alone; deletes carry protocol 186 and our metric, and the kernel only
//! deletes a route that matches both.
//!
//! Stale routes (proto 186 left by an earlier run) are handled by mark and
//! sweep: the ones present at start are marked; routes written since are
//! unmarked; [`Fib::sweep`] deletes what is still marked once the sessions
//! had their chance to re-announce them.
//!
//! A write that fails (ENETUNREACH at boot while the next hop's interface
//! is still down, a foreign route in the slot, ...) is retried with
//! backoff from the desired state; and every reconcile interval the
//! proto-186 routes are dumped and diffed against it, repairing missing or
//! changed routes and removing extras (someone's `ip route del`/`flush`).
//!
//! Requests are pipelined (many in flight on one socket), the way
//! felix/src/dataplane/routes/syncer.rs drives rtnetlink.

mod diff;
mod kernel;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{info, warn};

pub use diff::{KernelRoute, reconcile};
pub use kernel::route_message;
use kernel::{Outcome, dump_ours, execute};

/// `RTPROT_BGP`: shows as `proto bgp` in `ip route`.
pub const RTPROT_BGP: u8 = 186;
/// Metric of our routes: above IPv4's 0 and IPv6's default 1024 (felix's
/// routes), so they never share a slot and felix's local route wins.
pub const ROUTE_METRIC: u32 = 1536;

/// Default time between dump-and-diff repairs of our kernel routes.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(60);
/// First retry of a failed write; doubles per failed round up to the cap.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// One change to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FibOp {
    /// Install `prefix` via these next hops (one: a plain gateway route;
    /// several: one multipath route).
    Replace {
        prefix: IpNet,
        next_hops: Vec<IpAddr>,
    },
    Delete(IpNet),
}

impl FibOp {
    fn prefix(&self) -> IpNet {
        match self {
            FibOp::Replace { prefix, .. } | FibOp::Delete(prefix) => *prefix,
        }
    }
}

enum Msg {
    Ops(Vec<FibOp>),
    Sweep,
    RemoveAll(oneshot::Sender<()>),
    Flush(oneshot::Sender<()>),
}

/// Handle on the FIB task (cheap to clone).
#[derive(Clone)]
pub struct Fib {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Fib {
    /// Connect to rtnetlink in the current network namespace, mark our
    /// stale routes, and start the writer task (reconciling every
    /// [`RECONCILE_EVERY`]).
    pub async fn start() -> io::Result<Fib> {
        Fib::start_with(RECONCILE_EVERY).await
    }

    /// As [`Fib::start`], reconciling every `reconcile_every`.
    pub async fn start_with(reconcile_every: Duration) -> io::Result<Fib> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        let found = dump_ours(&handle)
            .await
            .map_err(|e| io::Error::other(format!("dumping proto {RTPROT_BGP} routes: {e}")))?;
        let stale: HashSet<(IpNet, u32)> = found.iter().map(|r| (r.prefix, r.metric)).collect();
        if !stale.is_empty() {
            info!(
                routes = stale.len(),
                "stale bgp routes in the kernel marked for sweep"
            );
        }
        let ours = found
            .iter()
            .filter(|r| r.metric == ROUTE_METRIC)
            .map(|r| r.prefix)
            .collect();
        let (tx, rx) = mpsc::unbounded_channel();
        let w = Writer {
            handle,
            desired: HashMap::new(),
            ours,
            stale,
            failed: HashSet::new(),
            retry_delay: RETRY_FIRST,
        };
        tokio::spawn(w.run(rx, reconcile_every.max(Duration::from_secs(1))));
        Ok(Fib { tx })
    }

    pub fn apply(&self, ops: Vec<FibOp>) {
        if !ops.is_empty() {
            let _ = self.tx.send(Msg::Ops(ops));
        }
    }

    /// Delete the stale routes nobody re-announced.
    pub fn sweep(&self) {
        let _ = self.tx.send(Msg::Sweep);
    }

    /// Wait until everything sent so far is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Delete every proto-186 route (at exit).
    pub async fn remove_all(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::RemoveAll(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// The FIB task's state.
struct Writer {
    handle: rtnetlink::Handle,
    /// What the kernel should hold: prefix -> next hops.
    desired: HashMap<IpNet, Vec<IpAddr>>,
    /// Prefixes whose (prefix, [`ROUTE_METRIC`]) slot holds our route, as
    /// far as we know: only these are written with NLM_F_REPLACE.
    ours: HashSet<IpNet>,
    /// Routes of an earlier run not re-announced yet, (prefix, metric).
    stale: HashSet<(IpNet, u32)>,
    /// Prefixes whose last write failed; retried from `desired`.
    failed: HashSet<IpNet>,
    retry_delay: Duration,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>, reconcile_every: Duration) {
        let mut next_reconcile = Instant::now() + reconcile_every;
        let mut retry_at: Option<Instant> = None;
        loop {
            let first = tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => m,
                    None => return,
                },
                _ = tokio::time::sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {
                    let failed = std::mem::take(&mut self.failed);
                    let ops: Vec<FibOp> = failed.into_iter().map(|p| self.op_for(p)).collect();
                    info!(routes = ops.len(), "retrying failed kernel route writes");
                    let ok = self.write(ops).await;
                    retry_at = self.schedule_retry(ok);
                    continue;
                }
                _ = tokio::time::sleep_until(next_reconcile) => {
                    self.reconcile().await;
                    next_reconcile = Instant::now() + reconcile_every;
                    retry_at = self.schedule_retry(self.failed.is_empty());
                    continue;
                }
            };
            // Coalesce everything queued: the last op per prefix wins.
            let mut latest: HashMap<IpNet, FibOp> = HashMap::new();
            let mut acks = Vec::new();
            let mut next = Some(first);
            let mut sweep = false;
            let mut remove_all = None;
            while let Some(m) = next.take() {
                match m {
                    Msg::Ops(ops) => {
                        for op in ops {
                            latest.insert(op.prefix(), op);
                        }
                    }
                    Msg::Sweep => sweep = true,
                    Msg::Flush(tx) => acks.push(tx),
                    Msg::RemoveAll(tx) => remove_all = Some(tx),
                }
                if remove_all.is_none() {
                    next = rx.try_recv().ok();
                }
            }
            for (p, op) in &latest {
                self.stale.retain(|(s, _)| s != p);
                // A newer op supersedes a pending retry.
                self.failed.remove(p);
                match op {
                    FibOp::Replace { next_hops, .. } => {
                        self.desired.insert(*p, next_hops.clone());
                    }
                    FibOp::Delete(_) => {
                        self.desired.remove(p);
                    }
                }
            }
            let ok = self.write(latest.into_values().collect()).await;
            if !ok && retry_at.is_none() {
                retry_at = self.schedule_retry(false);
            }
            if sweep && !self.stale.is_empty() {
                info!(routes = self.stale.len(), "sweeping stale bgp routes");
                let stale: Vec<_> = self.stale.drain().collect();
                self.delete_exact(stale).await;
            }
            for tx in acks {
                let _ = tx.send(());
            }
            if let Some(tx) = remove_all {
                match dump_ours(&self.handle).await {
                    Ok(found) => {
                        info!(routes = found.len(), "removing bgp routes from the kernel");
                        let all = found.into_iter().map(|r| (r.prefix, r.metric)).collect();
                        self.delete_exact(all).await;
                    }
                    Err(e) => warn!(error = %e, "dumping routes to remove failed"),
                }
                self.desired.clear();
                self.failed.clear();
                let _ = tx.send(());
            }
        }
    }

    /// What to write for `p` now.
    fn op_for(&self, p: IpNet) -> FibOp {
        match self.desired.get(&p) {
            Some(nh) => FibOp::Replace {
                prefix: p,
                next_hops: nh.clone(),
            },
            None => FibOp::Delete(p),
        }
    }

    /// Write `ops`; remember failures for a retry. True if all succeeded.
    async fn write(&mut self, ops: Vec<FibOp>) -> bool {
        let mut all_ok = true;
        let writes = ops.into_iter().map(|op| {
            let replace = self.ours.contains(&op.prefix());
            (op, replace)
        });
        for (op, outcome) in execute(&self.handle, writes.collect()).await {
            let p = op.prefix();
            match outcome {
                Outcome::Written => {
                    match op {
                        FibOp::Replace { .. } => self.ours.insert(p),
                        FibOp::Delete(_) => self.ours.remove(&p),
                    };
                }
                Outcome::SlotTaken => {
                    warn!(prefix = %p, metric = ROUTE_METRIC, "a route of another protocol holds this slot; left alone, retried later");
                    self.failed.insert(p);
                    all_ok = false;
                }
                Outcome::Failed(e) => {
                    warn!(?op, error = %e, "kernel route write failed; retried later");
                    self.failed.insert(p);
                    all_ok = false;
                }
            }
        }
        all_ok
    }

    /// Delete these exact (prefix, metric) routes of ours.
    async fn delete_exact(&mut self, routes: Vec<(IpNet, u32)>) {
        for (p, e) in kernel::delete_exact(&self.handle, &routes).await {
            warn!(prefix = %p, error = %e, "deleting a bgp route failed");
        }
        for (p, m) in routes {
            if m == ROUTE_METRIC {
                self.ours.remove(&p);
            }
        }
    }

    /// Dump our routes, repair what differs from `desired`, remove extras
    /// (but not the stale routes still waiting for their sweep).
    async fn reconcile(&mut self) {
        let found = match dump_ours(&self.handle).await {
            Ok(f) => f,
            Err(e) => return warn!(error = %e, "dumping routes to reconcile failed"),
        };
        self.ours = found
            .iter()
            .filter(|r| r.metric == ROUTE_METRIC)
            .map(|r| r.prefix)
            .collect();
        let plan = reconcile(&self.desired, &found, &self.stale);
        if plan.writes.is_empty() && plan.extras.is_empty() {
            return;
        }
        info!(
            repairs = plan.writes.len(),
            extras = plan.extras.len(),
            "kernel routes differ from the RIB; repairing"
        );
        for p in &plan.writes {
            self.failed.remove(p);
        }
        let ops = plan.writes.into_iter().map(|p| self.op_for(p)).collect();
        self.write(ops).await;
        self.delete_exact(plan.extras).await;
    }

    /// When to retry, after a round that did (`ok`) or did not succeed.
    fn schedule_retry(&mut self, ok: bool) -> Option<Instant> {
        if ok || self.failed.is_empty() {
            self.retry_delay = RETRY_FIRST;
            return None;
        }
        let at = Instant::now() + self.retry_delay;
        self.retry_delay = (self.retry_delay * 2).min(RETRY_MAX);
        Some(at)
    }
}
