//! The watch driver: one tokio task per watch that follows etcd's watch stream, reconnects
//! with bounded, jittered backoff, and re-lists when etcd compacted the revision it needs.
//! The bookkeeping that makes this exact lives in [`super::resync`].

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use daemon_kit::backoff::Backoff;
use etcd_client::{EventType, WatchOptions, WatchResponse};
use futures::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::client::{Datastore, REQUEST_TIMEOUT};
use super::error::{DatastoreError, Result};
use super::raw::{is_compacted, to_kv};
pub use super::resync::WatchEvent;
use super::resync::WatchState;

/// Events buffered between the driver and a slow consumer before the driver waits.
const CHANNEL_DEPTH: usize = 256;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The stream returned by [`Datastore::watch_prefix`]. Dropping it stops the watch.
pub struct WatchStream {
    rx: mpsc::Receiver<Result<WatchEvent>>,
    task: JoinHandle<()>,
}

impl Stream for WatchStream {
    type Item = Result<WatchEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Datastore {
    /// Follows every change under `prefix` after `from_revision`, in revision order.
    ///
    /// `from_revision` is normally the revision returned by [`Datastore::list_raw`]; with 0
    /// the stream first emits the current contents as Puts (a snapshot), then the changes.
    /// Across disconnects, etcd restarts and compactions it re-lists and emits exactly the
    /// difference, so the consumer never misses or repeats a change. It yields an error and
    /// ends only if `from_revision` itself is already compacted (the consumer's starting
    /// point can no longer be reconstructed: re-list and watch again).
    ///
    /// Must be called inside a tokio runtime (it spawns the driver task).
    pub fn watch_prefix(&self, prefix: &str, from_revision: i64) -> WatchStream {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let driver = Driver {
            ds: self.clone(),
            prefix: prefix.to_string(),
            tx,
            backoff: reconnect_backoff(),
        };
        let task = tokio::spawn(driver.run(from_revision));
        WatchStream { rx, task }
    }
}

/// Why following the watch stream stopped.
enum Stop {
    /// The consumer dropped the stream.
    Closed,
    /// etcd no longer has the revision we need: re-list.
    Compacted,
    /// The connection or the watch failed: reconnect and resume.
    Broken(String),
}

struct Driver {
    ds: Datastore,
    prefix: String,
    tx: mpsc::Sender<Result<WatchEvent>>,
    backoff: Backoff,
}

impl Driver {
    async fn run(mut self, from_revision: i64) {
        let Some(mut state) = self.baseline(from_revision).await else {
            return;
        };
        let mut need_resync = from_revision <= 0;
        loop {
            if need_resync {
                if !self.resync(&mut state).await {
                    return;
                }
                need_resync = false;
            }
            match self.follow(&mut state).await {
                Stop::Closed => return,
                Stop::Compacted => need_resync = true,
                Stop::Broken(reason) => {
                    tracing::warn!(prefix = %self.prefix, %reason, "etcd watch broken; reconnecting");
                    if !self.pause().await {
                        return;
                    }
                }
            }
        }
    }

    /// What the consumer holds at `from_revision`: the keys listed at that revision (or
    /// nothing for 0). `None` when the watch cannot start (error sent) or was dropped.
    async fn baseline(&mut self, from_revision: i64) -> Option<WatchState> {
        if from_revision <= 0 {
            return Some(WatchState::default());
        }
        loop {
            match self.ds.list_at(&self.prefix, from_revision, true).await {
                Ok((kvs, _)) => {
                    let keys = kvs.into_iter().map(|kv| (kv.key, kv.mod_revision));
                    return Some(WatchState::new(keys, from_revision));
                }
                Err(err) if is_compacted(&err) => {
                    let compact_revision = self.compact_revision().await;
                    let err = DatastoreError::Compacted {
                        prefix: self.prefix.clone(),
                        revision: from_revision,
                        compact_revision,
                    };
                    let _ = self.tx.send(Err(err)).await;
                    return None;
                }
                Err(err) if err.is_unavailable() => {
                    tracing::warn!(prefix = %self.prefix, error = %err, "etcd unavailable; retrying watch start");
                    if !self.pause().await {
                        return None;
                    }
                }
                Err(err) => {
                    // A future revision or a permission error: retrying will not help.
                    let _ = self.tx.send(Err(err)).await;
                    return None;
                }
            }
        }
    }

    /// Re-lists the prefix and emits the difference. False when the consumer is gone.
    async fn resync(&mut self, state: &mut WatchState) -> bool {
        loop {
            match self.ds.list_raw(&self.prefix).await {
                Ok((listing, revision)) => {
                    let events = state.resync(listing, revision);
                    tracing::debug!(prefix = %self.prefix, revision, changes = events.len(), "watch resynced");
                    for event in events {
                        if self.tx.send(Ok(event)).await.is_err() {
                            return false;
                        }
                    }
                    return true;
                }
                Err(err) => {
                    tracing::warn!(prefix = %self.prefix, error = %err, "re-list for watch resync failed; retrying");
                    if !self.pause().await {
                        return false;
                    }
                }
            }
        }
    }

    /// Opens an etcd watch at the state's next revision and forwards its events.
    async fn follow(&mut self, state: &mut WatchState) -> Stop {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(state.next_revision())
            .with_progress_notify();
        let mut client = self.ds.inner.client.watch_client();
        let open = client.watch(self.prefix.as_str(), Some(options));
        let mut stream = match tokio::time::timeout(REQUEST_TIMEOUT, open).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => return Stop::Broken(err.to_string()),
            Err(_) => return Stop::Broken("no answer to the watch request".into()),
        };
        loop {
            let message = tokio::select! {
                () = self.tx.closed() => return Stop::Closed,
                message = stream.message() => message,
            };
            let response = match message {
                Ok(Some(response)) => response,
                Ok(None) => return Stop::Broken("etcd closed the watch stream".into()),
                Err(err) => return Stop::Broken(err.to_string()),
            };
            if let Some(stop) = self.handle(state, response).await {
                return stop;
            }
        }
    }

    async fn handle(&mut self, state: &mut WatchState, response: WatchResponse) -> Option<Stop> {
        if response.compact_revision() > 0 {
            // etcd: "the client should treat the watcher as canceled and should not try to
            // create any watcher with the same start_revision again" (rpc.proto).
            tracing::info!(
                prefix = %self.prefix,
                wanted = state.next_revision(),
                compacted = response.compact_revision(),
                "watch revision compacted; re-listing"
            );
            return Some(Stop::Compacted);
        }
        if response.canceled() {
            return Some(Stop::Broken(format!(
                "etcd canceled the watch: {}",
                response.cancel_reason()
            )));
        }
        if response.created() {
            self.backoff.reset();
            return None;
        }
        if response.events().is_empty() {
            state.progress(response.header().map_or(0, |h| h.revision()));
            return None;
        }
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            let event = match event.event_type() {
                EventType::Put => match to_kv(kv.clone()) {
                    Ok(kv) => WatchEvent::Put(kv),
                    Err(err) => {
                        tracing::warn!(prefix = %self.prefix, error = %err, "skipping watch event");
                        continue;
                    }
                },
                EventType::Delete => WatchEvent::Delete {
                    key: String::from_utf8_lossy(kv.key()).into_owned(),
                    mod_revision: kv.mod_revision(),
                },
            };
            if let Some(event) = state.apply(event)
                && self.tx.send(Ok(event)).await.is_err()
            {
                return Some(Stop::Closed);
            }
        }
        None
    }

    /// Waits out the next backoff delay. False when the consumer went away meanwhile.
    async fn pause(&mut self) -> bool {
        let delay = self.backoff.next_delay();
        tokio::select! {
            () = self.tx.closed() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }

    /// The current compaction revision, for the error message (0 if etcd will not say).
    async fn compact_revision(&self) -> i64 {
        let options = WatchOptions::new().with_start_revision(1);
        let mut client = self.ds.inner.client.watch_client();
        let probe = async {
            let mut stream = client
                .watch(self.prefix.as_str(), Some(options))
                .await
                .ok()?;
            loop {
                let response = stream.message().await.ok()??;
                if response.compact_revision() > 0 {
                    return Some(response.compact_revision());
                }
                if !response.created() {
                    return None;
                }
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, probe)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }
}

/// Exponential backoff between reconnect attempts: doubling from 100 ms to at most 5 s,
/// each delay jittered by ±25 % so that many watchers restarted by the same etcd outage
/// do not reconnect in lockstep.
fn reconnect_backoff() -> Backoff {
    Backoff::new(BACKOFF_MIN, BACKOFF_MAX).jitter(0.25)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_bounded_and_resets() {
        let mut backoff = reconnect_backoff();
        let first = backoff.next_delay();
        assert!(
            first >= BACKOFF_MIN * 3 / 4 && first <= BACKOFF_MIN * 5 / 4,
            "{first:?}"
        );
        let delays: Vec<Duration> = (0..20).map(|_| backoff.next_delay()).collect();
        assert!(
            delays.iter().all(|d| *d <= BACKOFF_MAX * 5 / 4),
            "{delays:?}"
        );
        assert!(
            delays.last().unwrap() >= &(BACKOFF_MAX * 3 / 4),
            "{delays:?}"
        );
        backoff.reset();
        assert!(backoff.next_delay() <= BACKOFF_MIN * 5 / 4);
    }
}
