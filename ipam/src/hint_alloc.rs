//! Allocation from the host's hint (see `hint`): the write-only path of a client without a
//! cache, and keeping the hint current after allocations and releases.

use config::datastore::TxnOp;

use crate::assign::{Assigned, AutoAssignArgs, take_addresses};
use crate::block::AllocationBlock;
use crate::context::AllocContext;
use crate::error::Result;
use crate::handle::HandleState;
use crate::hint::{self, Hint, HintBasis, Seen};
use crate::store::{BlockState, PoolSource, pool_specs};
use crate::{Ipam, PoolSpec};

impl From<&AllocContext> for HintBasis {
    fn from(c: &AllocContext) -> HintBasis {
        HintBasis {
            guards: c.guards.clone(),
            pools: c.raw_pools.clone(),
            node_labels: c.node_labels.clone(),
        }
    }
}

impl Ipam {
    /// All `num` addresses from the hint's copy of its block in one transaction guarded by
    /// the block's revision and the revisions of the pools and the Node it was chosen
    /// under, then the hint updated. `None` when the copy cannot serve the request (not
    /// the host's, not in a usable pool, too few free addresses) or something moved since
    /// (a conflict): the caller then reads as usual. The copy is taken, not cloned: a
    /// block with its attributes is hundreds of allocations, on the CNI plugin's path.
    pub(crate) async fn alloc_from_hint(
        &self,
        args: &AutoAssignArgs,
        version: u8,
        num: usize,
        seen: Seen,
    ) -> Result<Option<Vec<Assigned>>> {
        let host = args.hostname.as_str();
        let labels = match (args.node_labels_from_datastore, &seen.basis.node_labels) {
            (true, Some(l)) => l.clone(),
            (true, None) => return Ok(None),
            (false, _) => args.node_labels.clone(),
        };
        let all: Vec<PoolSpec> = match &self.pools {
            PoolSource::Static(p) => p.clone(),
            PoolSource::Datastore => {
                let Ok(pools) = seen
                    .basis
                    .pools
                    .iter()
                    .map(|v| serde_json::from_value::<config::model::IPPool>(v.clone()))
                    .collect::<std::result::Result<Vec<_>, _>>()
                else {
                    return Ok(None);
                };
                pool_specs(&pools)
            }
        };
        let Ok(pools) = self.select_usable(all, version, host, &labels, args.pools.as_deref())
        else {
            return Ok(None);
        };
        let mut st = BlockState {
            block: seen.value,
            mod_revision: seen.revision,
        };
        let cidr = st.block.cidr;
        if !pools.iter().any(|p| p.cidr.contains(&cidr))
            || !st.block.is_affine_to(host)
            || st.block.free_count() < num
            || !st.block.structural_problems().is_empty()
        {
            return Ok(None);
        }
        // The CNI case: a new handle (an existing one fails the guard, and the usual path
        // reads it).
        let mut handle = HandleState::absent(&args.handle_id);
        let assigned = take_addresses(&mut st, num, args, &mut handle);
        if assigned.len() != num {
            return Ok(None);
        }
        // The block first: an unanswered transaction is judged by the history of the first
        // guarded key it writes.
        let mut ops = vec![st.update_op(), handle.write_op()];
        ops.extend(
            seen.basis
                .guards
                .iter()
                .map(|(key, rev)| TxnOp::CheckRevision {
                    key: key.clone(),
                    mod_revision: *rev,
                }),
        );
        match self.ds.txn(ops).await {
            Ok(rev) => {
                self.remember(Some((&st.block, false)), &[&handle], rev);
                self.set_hot(host, cidr);
                if let Some(dir) = self.hint_dir.as_deref() {
                    let seen = Seen {
                        value: st.block,
                        revision: rev,
                        basis: seen.basis,
                    };
                    let hint = Hint {
                        block: cidr,
                        seen: Some(seen),
                    };
                    hint::write(dir, host, &hint);
                }
                Ok(Some(assigned))
            }
            Err(e) if e.is_conflict() => {
                tracing::debug!(block = %cidr, "IPAM hint out of date; reading");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Points the host's hint at the block allocated from last, with the block as written
    /// when what it was chosen under is known.
    pub(crate) fn keep_hint(&self, host: &str, got: &[Assigned], basis: Option<HintBasis>) {
        let (Some(dir), Some(last)) = (self.hint_dir.as_deref(), got.last()) else {
            return;
        };
        let seen = match (self.cached_block(&last.block), basis) {
            (Some(st), Some(basis)) => Some(Seen {
                value: st.block,
                revision: st.mod_revision,
                basis,
            }),
            _ => None,
        };
        let hint = Hint {
            block: last.block,
            seen,
        };
        hint::write(dir, host, &hint);
    }

    /// After a release wrote `block` at `revision`: the affine host's hint, if it holds an
    /// older copy of this block, gets the new one (else the host's next allocation would
    /// find it out of date and read).
    pub(crate) fn refresh_hint(&self, block: &AllocationBlock, revision: i64) {
        let Some(dir) = self.hint_dir.as_deref() else {
            return;
        };
        let Some(host) = block
            .affinity
            .as_deref()
            .and_then(|a| a.strip_prefix("host:"))
        else {
            return;
        };
        let Some(mut h) = hint::read(dir, host, crate::keys::family(&block.cidr)) else {
            return;
        };
        match h.seen.as_mut() {
            Some(seen) if h.block == block.cidr && seen.revision < revision => {
                seen.value = block.clone();
                seen.revision = revision;
            }
            _ => return,
        }
        hint::write(dir, host, &h);
    }
}
