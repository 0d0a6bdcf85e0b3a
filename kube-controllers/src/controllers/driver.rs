//! The loop every controller runs: take the watcher's events (draining whatever is
//! already there, so a burst becomes one batch of writes), let the controller update its
//! in-memory view, then, while leading, let it write what changed. Failed writes stay
//! pending and are retried with a growing delay; gaining leadership forces a full
//! resync (another replica may have left etcd in any state).

use std::future::Future;
use std::time::Duration;

use daemon_kit::backoff::Backoff;
use futures::{FutureExt, Stream, StreamExt};
use kube::runtime::watcher;
use tokio::sync::watch;

use super::Ctx;

/// Most events taken into one batch before writing.
const MAX_BATCH: usize = 10_000;
/// How often an idle loop reports liveness.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// First and longest delay before retrying failed writes.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// What a reconcile pass achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// etcd matches the view (or there was nothing to do).
    Done,
    /// Some writes failed or were not attempted; call again after a delay.
    Retry,
}

/// A controller driven by [`drive`].
pub trait Controller<K>: Send {
    /// Its Calico name, for logs, metrics and health.
    fn name(&self) -> &'static str;
    /// Takes one watcher event into the in-memory view (no I/O).
    fn on_event(&mut self, event: watcher::Event<K>);
    /// This replica just started leading: the next reconcile resyncs everything.
    fn on_leading(&mut self);
    /// Writes what is pending. Called only while leading, after every batch of events
    /// and at least every few seconds (periodic work keeps its own timers).
    fn reconcile(&mut self, ctx: &Ctx) -> impl Future<Output = Progress> + Send;
    /// Whether etcd matches the view (nothing pending, first list done).
    fn synced(&self) -> bool;
    /// When periodic work wants the next reconcile, if sooner than the heartbeat.
    fn wake_in(&self) -> Option<Duration> {
        None
    }
}

/// Runs `controller` on `events` until `stop` turns true or the stream ends.
pub async fn drive<K, C, S>(mut controller: C, events: S, ctx: Ctx, mut stop: watch::Receiver<bool>)
where
    C: Controller<K>,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
{
    let name = controller.name();
    let mut events = std::pin::pin!(events);
    let mut leading = ctx.leadership.subscribe();
    // False once the leadership channel closed (it would then be ready forever).
    let mut leading_open = true;
    let mut retry: Option<Duration> = None;
    let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    loop {
        let wake = controller.wake_in();
        let sleep_for = [retry, wake].into_iter().flatten().min();
        let wake_sleep = tokio::time::sleep(sleep_for.unwrap_or(HEARTBEAT));
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else {
                    tracing::warn!(controller = name, "watch stream ended");
                    break;
                };
                take(&mut controller, event);
                let mut n = 1;
                while n < MAX_BATCH {
                    match events.next().now_or_never() {
                        Some(Some(event)) => take(&mut controller, event),
                        _ => break,
                    }
                    n += 1;
                }
            }
            changed = leading.changed(), if leading_open => {
                if changed.is_err() {
                    leading_open = false;
                } else if *leading.borrow_and_update() {
                    tracing::info!(controller = name, "leading: full resync");
                    controller.on_leading();
                }
            }
            _ = wake_sleep, if sleep_for.is_some() => {}
            _ = heartbeat.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let progress = if ctx.leadership.is_leading() {
            controller.reconcile(&ctx).await
        } else {
            Progress::Done
        };
        retry = match progress {
            Progress::Done => {
                backoff.reset();
                None
            }
            Progress::Retry => Some(backoff.next_delay()),
        };
        let synced = controller.synced();
        ctx.metrics
            .synced
            .with_label_values(&[name])
            .set(i64::from(synced));
        ctx.health.report(name, synced);
    }
}

fn take<K, C: Controller<K>>(controller: &mut C, event: Result<watcher::Event<K>, watcher::Error>) {
    match event {
        Ok(event) => controller.on_event(event),
        // The watcher lists again by itself (after 410 Gone, too), with backoff; the
        // view stays as it was until the new list is complete.
        Err(err) => {
            tracing::warn!(controller = controller.name(), error = %err, "Kubernetes watch failed; retrying")
        }
    }
}
