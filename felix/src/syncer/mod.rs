//! The datastore syncer: lists, then watches, every prefix felix's model needs
//! ([`Watched::all`]) and hands the owner loop [`SyncerEvent`]s.
//!
//! Start-up: each prefix is listed (retrying while etcd is unavailable) and its
//! objects sent as one batch; when every prefix is listed, [`SyncerEvent::InSync`]
//! follows. Each prefix is then watched from its own listing's revision, so no
//! change between list and watch is lost. The datastore's watch already survives
//! disconnects, etcd restarts and compaction (it re-lists and sends the
//! difference); while etcd is away nothing is sent and the model, and so the
//! kernel, stays as it is. Only when the watch cannot resume from our revision
//! (it was compacted before the watch even started) does the syncer re-list the
//! prefix itself and send the difference against the keys it knows.
//!
//! Objects that do not decode or fail `config::validate` are logged and counted in
//! `felix_resync_invalid_objects`. Policies among them are delivered as
//! `Update::PolicyRefused` (their selector read leniently when the rest does not
//! decode), so the endpoints they select fail closed; other kinds are skipped, the
//! model keeping the last valid version of that key. No other object is affected.

pub mod decode;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use config::datastore::{Datastore, Kv, WatchEvent};
use daemon_kit::backoff::Backoff;
use futures::StreamExt;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

pub use decode::{DecodeError, Watched};

use crate::calc::Update;
use crate::metrics::Metrics;

/// What the syncer tells the owner loop.
#[derive(Debug)]
pub enum SyncerEvent {
    /// Changes to the model, in datastore order per prefix.
    Updates(Vec<Update>),
    /// Every prefix has been listed once: the model is complete.
    InSync,
}

/// Listing retries while etcd is unavailable: doubling from 100 ms to 5 s, ±20 % so
/// that every node's felix, cut off by the same outage, does not list again at once.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
const RETRY_JITTER: f64 = 0.2;
/// Watch events forwarded to the owner loop in one message at most.
const MAX_BATCH: usize = 512;

/// Runs the syncer until `tx` is closed (the owner loop ended).
pub async fn run(
    ds: Datastore,
    node: String,
    tx: mpsc::Sender<SyncerEvent>,
    metrics: Arc<Metrics>,
) {
    metrics.resync_state.set(RESYNC_IN_PROGRESS);
    let watched = Watched::all(&node);
    let listings =
        futures::future::join_all(watched.iter().map(|w| list_until_ok(&ds, w, &metrics))).await;
    let mut followers = Vec::new();
    for (w, (updates, known, revision)) in watched.into_iter().zip(listings) {
        info!(prefix = %w.prefix(), objects = known.len(), revision, "listed");
        if tx.send(SyncerEvent::Updates(updates)).await.is_err() {
            return;
        }
        followers.push(Follower {
            ds: ds.clone(),
            watched: w,
            known,
            revision,
            tx: tx.clone(),
            metrics: metrics.clone(),
        });
    }
    if tx.send(SyncerEvent::InSync).await.is_err() {
        return;
    }
    metrics.resync_state.set(RESYNC_IN_SYNC);
    info!("datastore in sync");
    futures::future::join_all(followers.into_iter().map(Follower::run)).await;
}

/// `felix_resync_state` values: resync in progress, in sync.
pub const RESYNC_IN_PROGRESS: i64 = 2;
pub const RESYNC_IN_SYNC: i64 = 3;

/// Lists one prefix, retrying with backoff while etcd is unavailable. Returns
/// the updates, the keys seen, and the listing's revision.
async fn list_until_ok(
    ds: &Datastore,
    watched: &Watched,
    metrics: &Metrics,
) -> (Vec<Update>, HashSet<String>, i64) {
    let prefix = watched.prefix();
    let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX).jitter(RETRY_JITTER);
    loop {
        match ds.list_raw(&prefix).await {
            Ok((kvs, revision)) => {
                let mut known = HashSet::with_capacity(kvs.len());
                let mut updates = Vec::with_capacity(kvs.len());
                for kv in kvs {
                    updates.extend(decode_put(watched, &kv, metrics));
                    known.insert(kv.key);
                }
                return (updates, known, revision);
            }
            Err(error) => {
                let delay = backoff.next_delay();
                warn!(%prefix, %error, retry_in = ?delay, "listing failed; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

fn decode_put(watched: &Watched, kv: &Kv, metrics: &Metrics) -> Option<Update> {
    match watched.decode_put(&kv.key, &kv.value) {
        Ok(Some(Update::PolicyRefused { def, reason })) => {
            // Counted as invalid like any bad object, but delivered: the calculation
            // closes the endpoints it selects (and reports it with its name).
            warn!(kind = watched.name(), key = %kv.key, %reason, "invalid policy; failing closed");
            metrics
                .resync_invalid_objects
                .with_label_values(&[watched.name()])
                .inc();
            Some(Update::PolicyRefused { def, reason })
        }
        Ok(update) => update,
        Err(error) => {
            report_invalid(watched, &error, metrics);
            None
        }
    }
}

fn report_invalid(watched: &Watched, error: &DecodeError, metrics: &Metrics) {
    warn!(kind = watched.name(), %error, "skipping object");
    metrics
        .resync_invalid_objects
        .with_label_values(&[watched.name()])
        .inc();
}

/// Follows one prefix after its listing.
struct Follower {
    ds: Datastore,
    watched: Watched,
    known: HashSet<String>,
    revision: i64,
    tx: mpsc::Sender<SyncerEvent>,
    metrics: Arc<Metrics>,
}

impl Follower {
    async fn run(mut self) {
        let prefix = self.watched.prefix();
        loop {
            let stream = self.ds.watch_prefix(&prefix, self.revision);
            let mut chunks = stream.ready_chunks(MAX_BATCH);
            let mut broken = None;
            while let Some(chunk) = chunks.next().await {
                let mut updates = Vec::with_capacity(chunk.len());
                for item in chunk {
                    match item {
                        Ok(event) => updates.extend(self.event(event)),
                        Err(error) => broken = Some(error),
                    }
                }
                if !updates.is_empty() && self.tx.send(SyncerEvent::Updates(updates)).await.is_err()
                {
                    return;
                }
                if broken.is_some() {
                    break;
                }
            }
            if self.tx.is_closed() {
                return;
            }
            // The watch ended: our starting revision is gone (compacted before the
            // watch began). Re-list and send the difference.
            warn!(%prefix, error = ?broken, "watch ended; re-listing");
            self.relist().await;
        }
    }

    fn event(&mut self, event: WatchEvent) -> Option<Update> {
        self.revision = self.revision.max(event.mod_revision());
        match event {
            WatchEvent::Put(kv) => {
                debug!(key = %kv.key, revision = kv.mod_revision, "put");
                self.known.insert(kv.key.clone());
                decode_put(&self.watched, &kv, &self.metrics)
            }
            WatchEvent::Delete { key, .. } => {
                debug!(%key, "delete");
                self.known.remove(&key);
                match self.watched.decode_delete(&key) {
                    Ok(update) => update,
                    Err(error) => {
                        report_invalid(&self.watched, &error, &self.metrics);
                        None
                    }
                }
            }
        }
    }

    async fn relist(&mut self) {
        let (mut updates, known, revision) =
            list_until_ok(&self.ds, &self.watched, &self.metrics).await;
        for gone in self.known.difference(&known) {
            if let Ok(Some(update)) = self.watched.decode_delete(gone) {
                updates.push(update);
            }
        }
        self.known = known;
        self.revision = revision;
        let _ = self.tx.send(SyncerEvent::Updates(updates)).await;
    }
}
