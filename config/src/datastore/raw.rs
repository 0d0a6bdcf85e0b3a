//! The raw layer: bytes at keys. Every write is one etcd transaction whose guards are the
//! compare-and-swap conditions (create: `version(key) == 0`; update/delete:
//! `mod_revision(key) == known`); when a guard fails, the transaction's else branch reads
//! the guarded keys in the same revision, which tells which guard failed and why.

use etcd_client::{
    Compare, CompareOp, DeleteOptions, GetOptions, KeyValue, TxnOpResponse, TxnResponse,
    WatchOptions,
};

use super::Kv;
use super::client::Datastore;
use super::error::{DatastoreError, Result};
use super::failover::{Expect, never_sent};
use super::keys::{key_successor, prefix_end};

/// Keys per range request when listing: bounds each response well below gRPC's 4 MiB
/// message limit even with large objects (WorkloadEndpoints are ~1 KiB).
const LIST_PAGE: i64 = 500;
/// A listing restarts when etcd compacts the revision it was paging at; this bounds how often.
const LIST_ATTEMPTS: usize = 3;

/// One operation of a multi-key transaction. All guards must hold, or nothing is written
/// and the transaction fails with [`DatastoreError::Conflict`] naming the failed keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOp {
    /// Write `value`; guard: the key is absent (version == 0).
    Create { key: String, value: Vec<u8> },
    /// Write `value`; guard: the key's mod revision is still `mod_revision`.
    Update {
        key: String,
        value: Vec<u8>,
        mod_revision: i64,
    },
    /// Delete the key; guard (when `Some`): its mod revision is still that.
    Delete {
        key: String,
        mod_revision: Option<i64>,
    },
    /// Guard only: the key's mod revision is `mod_revision` (0 = the key is absent).
    CheckRevision { key: String, mod_revision: i64 },
}

/// A condition on one key's current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Guard {
    Absent,
    Present,
    ModRevision(i64),
}

impl Guard {
    fn compare(self, key: &str) -> Compare {
        match self {
            Guard::Absent => Compare::version(key, CompareOp::Equal, 0),
            Guard::Present => Compare::version(key, CompareOp::Greater, 0),
            // etcd compares an absent key as mod_revision 0, so `ModRevision(0)` means absent.
            Guard::ModRevision(rev) => Compare::mod_revision(key, CompareOp::Equal, rev),
        }
    }

    /// Whether the guard holds for a key whose current mod revision is `current` (0 = absent).
    fn holds(self, current: i64) -> bool {
        match self {
            Guard::Absent => current == 0,
            Guard::Present => current != 0,
            Guard::ModRevision(rev) => current == rev,
        }
    }
}

impl TxnOp {
    fn key(&self) -> &str {
        match self {
            TxnOp::Create { key, .. }
            | TxnOp::Update { key, .. }
            | TxnOp::Delete { key, .. }
            | TxnOp::CheckRevision { key, .. } => key,
        }
    }

    fn guard(&self) -> Option<Guard> {
        match self {
            TxnOp::Create { .. } => Some(Guard::Absent),
            TxnOp::Update { mod_revision, .. } => Some(Guard::ModRevision(*mod_revision)),
            TxnOp::Delete { mod_revision, .. } => mod_revision.map(Guard::ModRevision),
            TxnOp::CheckRevision { mod_revision, .. } => Some(Guard::ModRevision(*mod_revision)),
        }
    }

    /// What this op's write leaves behind (none for a pure check).
    fn expect(&self) -> Option<Expect> {
        match self {
            TxnOp::Create { key, value } | TxnOp::Update { key, value, .. } => {
                Some(Expect::Value(key.clone(), value.clone()))
            }
            TxnOp::Delete { key, .. } => Some(Expect::Absent(key.clone())),
            TxnOp::CheckRevision { .. } => None,
        }
    }

    fn write(&self) -> Option<etcd_client::TxnOp> {
        match self {
            TxnOp::Create { key, value } | TxnOp::Update { key, value, .. } => {
                Some(etcd_client::TxnOp::put(key.as_str(), value.clone(), None))
            }
            TxnOp::Delete { key, .. } => Some(etcd_client::TxnOp::delete(
                key.as_str(),
                Some(DeleteOptions::new().with_prev_key()),
            )),
            TxnOp::CheckRevision { .. } => None,
        }
    }
}

/// What a guarded transaction did.
enum Outcome {
    Committed {
        revision: i64,
        responses: Vec<TxnOpResponse>,
    },
    /// Guards failed: each failed key with its current mod revision (0 = absent).
    Failed(Vec<(String, i64)>),
}

/// One read of [`Datastore::read_many`].
#[derive(Clone, Copy, Debug)]
pub enum Read<'a> {
    /// This key (none or one result).
    Key(&'a str),
    /// Every key under this prefix, unpaged: for small sets such as one host's affinities.
    Prefix(&'a str),
}

impl Datastore {
    /// Several reads in one round trip, all at one revision (a read-only etcd transaction):
    /// the results in the order of `reads`. A cold client (the CNI plugin's, one per ADD)
    /// pays per round trip, not per key.
    pub async fn read_many(&self, reads: &[Read<'_>]) -> Result<Vec<Vec<Kv>>> {
        let ops: Vec<etcd_client::TxnOp> = reads
            .iter()
            .map(|r| match r {
                Read::Key(k) => etcd_client::TxnOp::get(*k, None),
                Read::Prefix(p) => etcd_client::TxnOp::get(
                    *p,
                    Some(GetOptions::new().with_range(prefix_end(p.as_bytes()))),
                ),
            })
            .collect();
        let kv = self.inner.client.kv_client();
        let resp = self
            .call("read", || {
                let (mut kv, ops) = (kv.clone(), ops.clone());
                async move { kv.txn(etcd_client::Txn::new().and_then(ops)).await }
            })
            .await?;
        resp.op_responses()
            .into_iter()
            .map(|r| match r {
                TxnOpResponse::Get(mut g) => g.take_kvs().into_iter().map(to_kv).collect(),
                _ => Ok(Vec::new()),
            })
            .collect()
    }

    /// Reads one key.
    pub async fn get_raw(&self, key: &str) -> Result<Option<Kv>> {
        let kv = self.inner.client.kv_client();
        let mut resp = self
            .call("get", || {
                let mut kv = kv.clone();
                async move { kv.get(key, None).await }
            })
            .await?;
        resp.take_kvs().into_iter().next().map(to_kv).transpose()
    }

    /// Lists every key under `prefix`, consistently at one revision, which is returned with
    /// the keys (watch from it to follow later changes).
    pub async fn list_raw(&self, prefix: &str) -> Result<(Vec<Kv>, i64)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.list_at(prefix, 0, false).await {
                Err(err) if is_compacted(&err) && attempt < LIST_ATTEMPTS => {
                    tracing::debug!(
                        prefix,
                        "listing revision compacted while paging; restarting"
                    );
                }
                other => return other,
            }
        }
    }

    /// Lists `prefix` at `revision` (0 = the current one), page by page at that revision.
    pub(crate) async fn list_at(
        &self,
        prefix: &str,
        mut revision: i64,
        keys_only: bool,
    ) -> Result<(Vec<Kv>, i64)> {
        let end = prefix_end(prefix.as_bytes());
        let mut start = prefix.as_bytes().to_vec();
        let mut out = Vec::new();
        let kv = self.inner.client.kv_client();
        loop {
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(LIST_PAGE);
            if revision > 0 {
                options = options.with_revision(revision);
            }
            if keys_only {
                options = options.with_keys_only();
            }
            let mut resp = self
                .call("list", || {
                    let (mut kv, start, options) = (kv.clone(), start.clone(), options.clone());
                    async move { kv.get(start, Some(options)).await }
                })
                .await?;
            if revision <= 0 {
                revision = resp.header().map_or(0, |h| h.revision());
            }
            let more = resp.more();
            let page = resp.take_kvs();
            let Some(last) = page.last() else { break };
            start = key_successor(last.key());
            for item in page {
                out.push(to_kv(item)?);
            }
            if !more {
                break;
            }
        }
        Ok((out, revision))
    }

    /// Creates `key`; fails with `AlreadyExists` if it exists. Returns its mod revision.
    pub async fn create_raw(&self, key: &str, value: Vec<u8>) -> Result<i64> {
        let op = TxnOp::Create {
            key: key.to_string(),
            value,
        };
        match self.guarded(&[op]).await? {
            Outcome::Committed { revision, .. } => Ok(revision),
            Outcome::Failed(_) => Err(DatastoreError::AlreadyExists {
                key: key.to_string(),
            }),
        }
    }

    /// Replaces `key` if it is still at `mod_revision`: `Conflict` if it changed, `NotFound`
    /// if it is gone. Returns the new mod revision.
    pub async fn update_raw(&self, key: &str, value: Vec<u8>, mod_revision: i64) -> Result<i64> {
        let op = TxnOp::Update {
            key: key.to_string(),
            value,
            mod_revision,
        };
        match self.guarded(&[op]).await? {
            Outcome::Committed { revision, .. } => Ok(revision),
            Outcome::Failed(failed) => Err(single_failure(key, &failed)),
        }
    }

    /// Deletes `key` (if still at `mod_revision` when given): `NotFound` if absent,
    /// `Conflict` if it changed.
    pub async fn delete_raw(&self, key: &str, mod_revision: Option<i64>) -> Result<()> {
        self.delete_returning(key, mod_revision).await.map(drop)
    }

    /// Like `delete_raw`, returning the deleted key-value.
    pub(crate) async fn delete_returning(
        &self,
        key: &str,
        mod_revision: Option<i64>,
    ) -> Result<Kv> {
        let guard = mod_revision.map_or(Guard::Present, Guard::ModRevision);
        let delete = etcd_client::TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key()));
        let expect = vec![Expect::Absent(key.to_string())];
        match self
            .run(vec![(key.to_string(), guard)], vec![delete], expect)
            .await?
        {
            Outcome::Committed { responses, .. } => {
                let prev = responses.into_iter().find_map(|r| match r {
                    TxnOpResponse::Delete(mut d) => d.take_prev_kvs().into_iter().next(),
                    _ => None,
                });
                // The guard proved the key present in this revision, so prev_kv is there.
                prev.map(to_kv)
                    .transpose()?
                    .ok_or_else(|| DatastoreError::NotFound {
                        key: key.to_string(),
                    })
            }
            Outcome::Failed(failed) => Err(single_failure(key, &failed)),
        }
    }

    /// Applies `ops` atomically: every guard must hold, else nothing is written and the
    /// result is `Conflict` naming the keys whose guards failed. Returns the store revision
    /// after the commit (the new mod revision of every written key).
    pub async fn txn(&self, ops: Vec<TxnOp>) -> Result<i64> {
        match self.guarded(&ops).await? {
            Outcome::Committed { revision, .. } => Ok(revision),
            Outcome::Failed(failed) => Err(DatastoreError::Conflict {
                keys: failed.into_iter().map(|(k, _)| k).collect(),
            }),
        }
    }

    async fn guarded(&self, ops: &[TxnOp]) -> Result<Outcome> {
        let guards = ops
            .iter()
            .filter_map(|op| op.guard().map(|g| (op.key().to_string(), g)))
            .collect();
        let writes = ops.iter().filter_map(TxnOp::write).collect();
        let expect = ops.iter().filter_map(TxnOp::expect).collect();
        self.run(guards, writes, expect).await
    }

    /// One etcd transaction: `if all guards then writes else read every guarded key`.
    /// `expect` is what the writes leave behind: when the transaction fails without an
    /// answer (its member died, an election), it is read back before the transaction is sent
    /// again, so that one that was applied is not applied twice.
    async fn run(
        &self,
        guards: Vec<(String, Guard)>,
        writes: Vec<etcd_client::TxnOp>,
        expect: Vec<Expect>,
    ) -> Result<Outcome> {
        let compares: Vec<Compare> = guards.iter().map(|(k, g)| g.compare(k)).collect();
        let reads: Vec<etcd_client::TxnOp> = guards
            .iter()
            .map(|(k, _)| {
                etcd_client::TxnOp::get(k.as_str(), Some(GetOptions::new().with_keys_only()))
            })
            .collect();
        let txn = etcd_client::Txn::new()
            .when(compares)
            .and_then(writes)
            .or_else(reads);
        let mut kv = self.inner.client.kv_client();
        let mut failover = self.failover();
        let mut maybe_applied = false;
        // An attempt went unanswered at some point: its proposal may still commit
        // after a read-back said it had not (it was on its way to the next leader).
        let mut was_ambiguous = false;
        let resp = loop {
            if maybe_applied {
                // Applied: done. Not applied: send it again.
                if let Some(done) = self.read_back(&guards, &expect, &mut failover).await? {
                    return Ok(done);
                }
            }
            match self.call_once("txn", kv.txn(txn.clone())).await {
                Ok(resp) => break resp,
                Err(err) if failover.retry("txn", &err).await => {
                    // A refused connection carried nothing: no read-back needed.
                    maybe_applied = !expect.is_empty() && !never_sent(&err);
                    was_ambiguous |= maybe_applied;
                }
                Err(err) => return Err(err),
            }
        };
        if resp.succeeded() {
            let revision = resp.header().map_or(0, |h| h.revision());
            return Ok(Outcome::Committed {
                revision,
                responses: resp.op_responses(),
            });
        }
        if was_ambiguous {
            // The guards may have failed against our own earlier attempt, committed
            // after its read-back (a proposal that timed out still commits later): then
            // the keys hold exactly what we wrote. Calling that a conflict would make the
            // caller apply its change a second time (an IPAM allocation twice, a release
            // reported as "not allocated").
            if let Some(done) = self.read_back(&guards, &expect, &mut failover).await? {
                return Ok(done);
            }
        }
        Ok(Outcome::Failed(failed_guards(&guards, &resp)))
    }

    /// Whether an unanswered transaction was applied after all (its keys hold what it
    /// wrote): `Committed` if so, `None` if not. Read errors are retried while the
    /// failover window lasts; after it, the error (unknown is never a wrong answer).
    async fn read_back(
        &self,
        guards: &[(String, Guard)],
        expect: &[Expect],
        failover: &mut super::failover::Failover,
    ) -> Result<Option<Outcome>> {
        loop {
            let check = match history_anchor(guards, expect) {
                // One key tells for the whole transaction (its writes commit together).
                Some((key, guard, want)) => self.first_change_was(key, guard, want).await,
                None => self.applied(expect).await,
            };
            match check {
                Ok(Some(revision)) => {
                    tracing::info!(
                        keys = ?expect.iter().map(Expect::key).collect::<Vec<_>>(),
                        "etcd transaction without an answer had been applied"
                    );
                    return Ok(Some(Outcome::Committed {
                        revision,
                        responses: Vec::new(),
                    }));
                }
                Ok(None) => return Ok(None),
                Err(err) if failover.retry("txn read-back", &err).await => {}
                Err(err) => return Err(err),
            }
        }
    }
}

impl Datastore {
    /// Whether the first change to `key` after the state `guard` demanded was the one we
    /// asked for: `Some(revision)` if so. Exact where reading the current value is not:
    /// others may have written the key since our late commit (IPAM blocks are shared),
    /// and a guarded write can only ever be the first change after its guard's state.
    /// History etcd has compacted away is an error (unknown, never a wrong answer).
    async fn first_change_was(
        &self,
        key: &str,
        guard: Guard,
        want: &Expect,
    ) -> Result<Option<i64>> {
        let mut kv = self.inner.client.kv_client();
        let mut resp = self.call_once("get", kv.get(key, None)).await?;
        let current = resp.take_kvs().into_iter().next();
        let after = match (guard, &current) {
            // Untouched since the guard's state: not applied.
            (Guard::ModRevision(m), Some(kv)) if kv.mod_revision() == m => return Ok(None),
            (Guard::ModRevision(m), _) if m > 0 => m,
            // A create: the key's creation is the first change, if it still exists; gone
            // again (created and deleted since) it is read from the history below.
            (Guard::Absent | Guard::ModRevision(_), Some(kv)) => kv.create_revision() - 1,
            (Guard::Absent | Guard::ModRevision(_), None) => return Ok(None),
            (Guard::Present, _) => return self.applied(std::slice::from_ref(want)).await,
        };
        let options = WatchOptions::new().with_start_revision(after + 1);
        let mut client = self.inner.client.watch_client();
        let mut stream = self
            .call_once("watch", client.watch(key, Some(options)))
            .await?;
        loop {
            let Some(response) = self.call_once("watch", stream.message()).await? else {
                return Err(DatastoreError::Etcd(etcd_client::Error::WatchError(
                    "etcd closed the read-back watch".into(),
                )));
            };
            if response.compact_revision() > 0 || response.canceled() {
                return Err(DatastoreError::Compacted {
                    prefix: key.to_string(),
                    revision: after + 1,
                    compact_revision: response.compact_revision(),
                });
            }
            let Some(event) = response.events().first() else {
                continue;
            };
            let revision = event.kv().map_or(0, |kv| kv.mod_revision());
            let ours = match (event.event_type(), want) {
                (etcd_client::EventType::Put, Expect::Value(_, value)) => {
                    event.kv().is_some_and(|kv| kv.value() == value.as_slice())
                }
                (etcd_client::EventType::Delete, Expect::Absent(_)) => true,
                _ => false,
            };
            return Ok(ours.then_some(revision));
        }
    }

    /// Whether every expectation holds now; the highest mod revision among the written keys
    /// when so (the revision the transaction committed at).
    async fn applied(&self, expect: &[Expect]) -> Result<Option<i64>> {
        let mut kv = self.inner.client.kv_client();
        let mut revision = 0;
        for e in expect {
            let mut resp = self.call_once("get", kv.get(e.key(), None)).await?;
            let found = resp.take_kvs().into_iter().next();
            match (e, found) {
                (Expect::Value(_, want), Some(have)) if have.value() == want.as_slice() => {
                    revision = revision.max(have.mod_revision());
                }
                (Expect::Absent(_), None) => {
                    revision = revision.max(resp.header().map_or(0, |h| h.revision()));
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(revision))
    }
}

/// The key whose history decides whether a transaction was applied: the first guarded
/// key the transaction also writes.
fn history_anchor<'a>(
    guards: &'a [(String, Guard)],
    expect: &'a [Expect],
) -> Option<(&'a str, Guard, &'a Expect)> {
    guards.iter().find_map(|(key, guard)| {
        expect
            .iter()
            .find(|e| e.key() == key)
            .map(|e| (key.as_str(), *guard, e))
    })
}

/// Which guards failed, judged on the else branch's reads (taken atomically with the
/// compares). Falls back to all guarded keys if the reads somehow all pass.
fn failed_guards(guards: &[(String, Guard)], resp: &TxnResponse) -> Vec<(String, i64)> {
    let current: Vec<i64> = resp
        .op_responses()
        .into_iter()
        .map(|r| match r {
            TxnOpResponse::Get(g) => g.kvs().first().map_or(0, KeyValue::mod_revision),
            _ => 0,
        })
        .collect();
    let failed: Vec<(String, i64)> = guards
        .iter()
        .zip(current.iter().copied().chain(std::iter::repeat(0)))
        .filter(|((_, guard), cur)| !guard.holds(*cur))
        .map(|((key, _), cur)| (key.clone(), cur))
        .collect();
    if failed.is_empty() {
        guards
            .iter()
            .zip(current.into_iter().chain(std::iter::repeat(0)))
            .map(|((k, _), c)| (k.clone(), c))
            .collect()
    } else {
        failed
    }
}

/// The error for a failed update/delete guard on one key: gone = `NotFound`, else `Conflict`.
fn single_failure(key: &str, failed: &[(String, i64)]) -> DatastoreError {
    match failed.iter().find(|(k, _)| k == key) {
        Some((_, 0)) => DatastoreError::NotFound {
            key: key.to_string(),
        },
        _ => DatastoreError::Conflict {
            keys: vec![key.to_string()],
        },
    }
}

/// True for etcd's "required revision has been compacted" (gRPC OUT_OF_RANGE).
pub(crate) fn is_compacted(err: &DatastoreError) -> bool {
    const GRPC_OUT_OF_RANGE: i32 = 11;
    matches!(err, DatastoreError::Etcd(etcd_client::Error::GRpcStatus(status))
        if i32::from(status.code()) == GRPC_OUT_OF_RANGE && status.message().contains("compacted"))
}

pub(crate) fn to_kv(kv: KeyValue) -> Result<Kv> {
    let mod_revision = kv.mod_revision();
    let (key, value) = kv.into_key_value();
    let key = String::from_utf8(key).map_err(|err| DatastoreError::Decode {
        key: String::from_utf8_lossy(err.as_bytes()).into_owned(),
        message: "key is not UTF-8".into(),
    })?;
    Ok(Kv {
        key,
        value,
        mod_revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_anchor_is_the_first_guarded_key_the_transaction_writes() {
        let guards = vec![
            ("check".to_string(), Guard::ModRevision(3)),
            ("block".to_string(), Guard::ModRevision(9)),
            ("handle".to_string(), Guard::Absent),
        ];
        let expect = vec![
            Expect::Value("handle".into(), b"h".to_vec()),
            Expect::Value("block".into(), b"b".to_vec()),
        ];
        let (key, guard, want) = history_anchor(&guards, &expect).unwrap();
        assert_eq!((key, guard), ("block", Guard::ModRevision(9)));
        assert_eq!(want.key(), "block");
        // Only checks, nothing written under a guard: no anchor (the current values decide).
        assert!(history_anchor(&guards[..1], &expect).is_none());
    }

    #[test]
    fn guards_judge_current_revision() {
        assert!(Guard::Absent.holds(0));
        assert!(!Guard::Absent.holds(7));
        assert!(Guard::Present.holds(7));
        assert!(!Guard::Present.holds(0));
        assert!(Guard::ModRevision(7).holds(7));
        assert!(!Guard::ModRevision(7).holds(8));
        assert!(Guard::ModRevision(0).holds(0));
    }

    #[test]
    fn ops_map_to_guards_and_writes() {
        let create = TxnOp::Create {
            key: "a".into(),
            value: b"1".to_vec(),
        };
        assert_eq!(create.guard(), Some(Guard::Absent));
        assert!(create.write().is_some());
        let check = TxnOp::CheckRevision {
            key: "b".into(),
            mod_revision: 4,
        };
        assert_eq!(check.guard(), Some(Guard::ModRevision(4)));
        assert!(check.write().is_none());
        let delete = TxnOp::Delete {
            key: "c".into(),
            mod_revision: None,
        };
        assert_eq!(delete.guard(), None);
        assert_eq!(delete.key(), "c");
    }

    #[test]
    fn single_failure_distinguishes_gone_from_changed() {
        assert!(matches!(
            single_failure("k", &[("k".into(), 0)]),
            DatastoreError::NotFound { .. }
        ));
        assert!(matches!(
            single_failure("k", &[("k".into(), 9)]),
            DatastoreError::Conflict { .. }
        ));
    }
}
