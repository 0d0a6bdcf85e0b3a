//! Kernel FIB install of Loc-RIB best routes:
//! `<prefix> via <next hop> proto bgp metric 1536` (186), multipath for
//! ECMP, removed on withdraw.
//!
//! The routes, their messages, the diff, the pipelined writes and the
//! ownership contract that keeps bgpd and felix from overwriting each other
//! (own protocol, own metric slot, exclusive adds into empty slots) are the
//! `kernel_routes` crate, with bgpd as [`kernel_routes::BGPD`]. This module
//! drives it: a task fed with [`FibOp`]s writes just those (replacing only a
//! slot known to hold our route), so a RIB change costs its
//! own writes and no dump.
//!
//! Stale routes (proto 186 left by an earlier run) are handled by mark and
//! sweep ([`kernel_routes::Sweep`]): the ones present at start are marked;
//! routes written since are unmarked; [`Fib::sweep`] deletes what is still
//! marked once the sessions had their chance to re-announce them.
//!
//! A write that fails (ENETUNREACH at boot while the next hop's interface
//! is still down, a foreign route in the slot, ...) is retried with
//! backoff from the desired state; and every reconcile interval the
//! routes are dumped and diffed against it (read-back repair), repairing
//! missing or changed routes and removing extras (someone's `ip route
//! del`/`flush`).

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use daemon_kit::backoff::Backoff;
use ipnet::IpNet;
use kernel_routes::{
    BGPD, DEFAULT_IN_FLIGHT, KernelRoute, Netlink, Outcome, RouteOp, RouteTarget, Sweep, Written,
    diff, dump_routes, execute,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// `RTPROT_BGP`: shows as `proto bgp` in `ip route`.
pub const RTPROT_BGP: u8 = BGPD.protocol;
/// Metric of our routes: above IPv4's 0 and IPv6's default 1024 (felix's
/// routes), so they never share a slot and felix's local route wins.
pub const ROUTE_METRIC: u32 = BGPD.metric_v4;
const _: () = assert!(BGPD.metric_v4 == BGPD.metric_v6);

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
    /// How many of our routes an earlier run left in the kernel: forwarding state kept
    /// across a restart (RFC 4724 4.1), marked stale until the sweep.
    adopted: usize,
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
        let nl = Netlink::connect()?;
        let found = dump_routes(nl.handle())
            .await
            .map_err(|e| io::Error::other(format!("dumping routes to find ours: {e}")))?;
        let stale = Sweep::mark(&BGPD, &found);
        let adopted = stale.len();
        if !stale.is_empty() {
            info!(
                routes = stale.len(),
                "stale bgp routes in the kernel marked for sweep"
            );
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let w = Writer {
            nl,
            desired: HashMap::new(),
            ours: ours_at_our_metric(&found),
            stale,
            failed: HashSet::new(),
            backoff: Backoff::new(RETRY_FIRST, RETRY_MAX),
        };
        tokio::spawn(w.run(rx, reconcile_every.max(Duration::from_secs(1))));
        Ok(Fib { tx, adopted })
    }

    pub fn apply(&self, ops: Vec<FibOp>) {
        if !ops.is_empty() {
            let _ = self.tx.send(Msg::Ops(ops));
        }
    }

    /// Routes of an earlier run found in the kernel at start: non-zero means we are a
    /// Restarting Speaker whose forwarding state survived.
    pub fn adopted(&self) -> usize {
        self.adopted
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

/// Prefixes whose (prefix, [`ROUTE_METRIC`]) slot holds our route in `found`.
fn ours_at_our_metric(found: &[KernelRoute]) -> HashSet<IpNet> {
    found
        .iter()
        .filter(|r| BGPD.owns(r) && r.metric == BGPD.metric(&r.dst))
        .map(|r| r.dst)
        .collect()
}

/// The FIB task's state.
struct Writer {
    nl: Netlink,
    /// What the kernel should hold, per prefix.
    desired: HashMap<IpNet, KernelRoute>,
    /// Prefixes whose (prefix, [`ROUTE_METRIC`]) slot holds our route, as
    /// far as we know: only these are written with NLM_F_REPLACE, the rest
    /// with NLM_F_EXCL.
    ours: HashSet<IpNet>,
    /// Routes of an earlier run not re-announced yet.
    stale: Sweep,
    /// Prefixes whose last write failed; retried from `desired`.
    failed: HashSet<IpNet>,
    backoff: Backoff,
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
                    let writes: Vec<_> = failed.into_iter().map(|p| self.op_for(p)).collect();
                    info!(routes = writes.len(), "retrying failed kernel route writes");
                    let ok = self.write(writes).await;
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
            let mut prefixes = Vec::with_capacity(latest.len());
            for (p, op) in latest {
                self.stale.unmark(&p);
                // A newer op supersedes a pending retry.
                self.failed.remove(&p);
                match op {
                    FibOp::Replace { next_hops, .. } => {
                        self.desired
                            .insert(p, BGPD.route(p, RouteTarget::via(next_hops)));
                    }
                    FibOp::Delete(_) => {
                        self.desired.remove(&p);
                    }
                }
                prefixes.push(p);
            }
            let writes = prefixes.into_iter().map(|p| self.op_for(p)).collect();
            let ok = self.write(writes).await;
            if !ok && retry_at.is_none() {
                retry_at = self.schedule_retry(false);
            }
            if sweep && !self.stale.is_empty() {
                info!(routes = self.stale.len(), "sweeping stale bgp routes");
                let stale = self.stale.take();
                self.delete_exact(stale).await;
            }
            for tx in acks {
                let _ = tx.send(());
            }
            if let Some(tx) = remove_all {
                match dump_routes(self.nl.handle()).await {
                    Ok(mut found) => {
                        found.retain(|r| BGPD.owns(r));
                        info!(routes = found.len(), "removing bgp routes from the kernel");
                        self.delete_exact(found).await;
                    }
                    Err(e) => warn!(error = %e, "dumping routes to remove failed"),
                }
                self.desired.clear();
                self.failed.clear();
                let _ = tx.send(());
            }
        }
    }

    /// What to write for `p` now: its desired route (replacing only a slot
    /// known to hold ours, else exclusively), or a delete of our route there.
    fn op_for(&self, p: IpNet) -> (RouteOp, KernelRoute) {
        match self.desired.get(&p) {
            Some(route) if self.ours.contains(&p) => (RouteOp::Replace, route.clone()),
            Some(route) => (RouteOp::Add, route.clone()),
            None => (RouteOp::Delete, BGPD.slot(p)),
        }
    }

    /// Write `writes`; remember failures for a retry. True if all succeeded.
    async fn write(&mut self, writes: Vec<(RouteOp, KernelRoute)>) -> bool {
        let n = writes.len();
        let mut all_ok = true;
        for Written { op, route, outcome } in
            execute(self.nl.handle(), writes, DEFAULT_IN_FLIGHT).await
        {
            let p = route.dst;
            match outcome {
                Outcome::Done if op == RouteOp::Delete => {
                    self.ours.remove(&p);
                }
                Outcome::Done => {
                    self.ours.insert(p);
                }
                Outcome::SlotTaken => {
                    warn!(prefix = %p, metric = ROUTE_METRIC, "a route of another protocol holds this slot; left alone, retried later");
                    self.failed.insert(p);
                    all_ok = false;
                }
                Outcome::NoLink | Outcome::Failed { .. } => {
                    warn!(?op, %route, ?outcome, "kernel route write failed; retried later");
                    self.failed.insert(p);
                    all_ok = false;
                }
            }
        }
        debug!(ops = n, "fib batch written");
        all_ok
    }

    /// Delete these exact routes of ours (as a dump found them).
    async fn delete_exact(&mut self, routes: Vec<KernelRoute>) {
        let writes = routes.into_iter().map(|r| (RouteOp::Delete, r));
        for w in execute(self.nl.handle(), writes, DEFAULT_IN_FLIGHT).await {
            if !w.outcome.is_done() {
                warn!(route = %w.route, outcome = ?w.outcome, "deleting a bgp route failed");
            }
            if w.route.metric == ROUTE_METRIC {
                self.ours.remove(&w.route.dst);
            }
        }
    }

    /// Dump the table, repair what differs from `desired`, remove extras
    /// (but not the stale routes still waiting for their sweep).
    async fn reconcile(&mut self) {
        let found = match dump_routes(self.nl.handle()).await {
            Ok(f) => f,
            Err(e) => return warn!(error = %e, "dumping routes to reconcile failed"),
        };
        self.ours = ours_at_our_metric(&found);
        let mut plan = diff(&BGPD, self.desired.values(), &found);
        plan.delete.retain(|r| !self.stale.is_marked(r));
        for (want, holder) in &plan.conflicts {
            warn!(route = %want, %holder, "a route of another protocol holds this slot; left alone, retried later");
            self.failed.insert(want.dst);
        }
        if plan.is_empty() {
            return;
        }
        info!(
            repairs = plan.add.len() + plan.replace.len(),
            extras = plan.delete.len(),
            "kernel routes differ from the RIB; repairing"
        );
        let writes: Vec<_> = plan
            .add
            .into_iter()
            .map(|r| (RouteOp::Add, r))
            .chain(plan.replace.into_iter().map(|r| (RouteOp::Replace, r)))
            .inspect(|(_, r)| {
                self.failed.remove(&r.dst);
            })
            .collect();
        self.write(writes).await;
        self.delete_exact(plan.delete).await;
    }

    /// When to retry, after a round that did (`ok`) or did not succeed.
    fn schedule_retry(&mut self, ok: bool) -> Option<Instant> {
        if ok || self.failed.is_empty() {
            self.backoff.reset();
            return None;
        }
        Some(Instant::now() + self.backoff.next_delay())
    }
}
