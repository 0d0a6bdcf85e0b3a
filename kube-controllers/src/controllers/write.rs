//! One planned write to etcd, with the outcomes the controllers tell apart: done,
//! lost a compare-and-swap race (re-read and plan again), or failed (retry later).

use config::datastore::DatastoreError;

use super::Ctx;
use config::model::Resource;

use crate::reconcile::Write;

/// How a write ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Someone wrote the key since it was read: re-read and plan again.
    Conflict,
    /// etcd unreachable or refused: keep the key dirty and retry after a delay.
    Failed,
    /// This replica does not lead (any more): nothing written.
    NotLeading,
}

/// Performs `write` for `controller`, unless this replica no longer leads.
pub async fn perform<T: Resource>(ctx: &Ctx, controller: &str, write: &Write<T>) -> Outcome {
    if !ctx.leadership.is_leading() {
        return Outcome::NotLeading;
    }
    let (op, result) = match write {
        Write::Create(obj) => ("create", ctx.ds.create(obj).await.map(|_| ())),
        Write::Update(obj) => ("update", ctx.ds.update(obj).await.map(|_| ())),
        Write::Delete { key, revision } => {
            let r = ctx
                .ds
                .delete::<T>(key.0.as_deref(), &key.1, *revision)
                .await
                .map(|_| ());
            // Already gone is what we wanted.
            (
                "delete",
                r.or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) }),
            )
        }
    };
    let (ns, name) = write.key();
    match result {
        Ok(()) => {
            ctx.metrics
                .writes
                .with_label_values(&[controller, op])
                .inc();
            tracing::debug!(controller, op, kind = T::KIND, namespace = ns.as_deref(), %name, "wrote");
            Outcome::Done
        }
        Err(e) if e.is_conflict() || e.is_not_found() => {
            ctx.metrics.conflicts.with_label_values(&[controller]).inc();
            tracing::debug!(controller, op, %name, "lost a race; re-reading");
            Outcome::Conflict
        }
        Err(e) => {
            failed(ctx, controller, op, &name, &e);
            Outcome::Failed
        }
    }
}

/// Counts and logs a failed datastore call.
pub fn failed(ctx: &Ctx, controller: &str, op: &str, name: &str, e: &DatastoreError) {
    ctx.metrics
        .write_errors
        .with_label_values(&[controller])
        .inc();
    tracing::warn!(controller, op, %name, error = %e, "datastore write failed; will retry");
}
