//! Claiming a new block and allocating its first addresses in ONE etcd transaction: create
//! the affinity (already `confirmed`), create the block with the addresses allocated, and
//! write the handle. All three keys appear together or none does, so there is no crash
//! point between them and the `pending` affinity of the step-by-step claim
//! ([`Ipam::try_claim`], which exists for datastores without multi-key transactions) is not
//! needed: readers never see the block without its affinity or the affinity without its
//! block. It also saves the claim two of its three round trips.
//!
//! When our affinity to the block exists already (a pending one a crash left, or a claim by
//! another process of this host), the step-by-step claim takes over: it knows how to finish
//! or undo such a claim.

use std::time::SystemTime;

use ipnet::IpNet;

use config::datastore::{DatastoreError, TxnOp};

use crate::affinity::{AffinityState, BlockAffinity};
use crate::assign::{Assigned, AutoAssignArgs};
use crate::block::AllocationBlock;
use crate::claim::new_block_sequence;
use crate::error::{IpamError, Result};
use crate::handle::{HandleState, encode};
use crate::keys::{affinity_key, block_key};
use crate::retry::{Retries, failpoint};
use crate::{Ipam, claimtime};

/// Outcome of [`Ipam::claim_with_allocation`].
#[derive(Debug)]
pub(crate) enum ClaimAlloc {
    /// The block is ours, with these addresses allocated in the claiming transaction.
    Done(Vec<Assigned>),
    /// The block exists already: another host's, or one not in our affinity list.
    Taken,
    /// Our affinity key to the block exists already: finish with the step-by-step claim.
    AffinityExists,
}

impl Ipam {
    /// Claims `cidr` for `host` and allocates up to `num` addresses of it to
    /// `args.handle_id`, all in one transaction guarded by "affinity absent", "block absent"
    /// and the handle's revision.
    pub(crate) async fn claim_with_allocation(
        &self,
        cidr: &IpNet,
        host: &str,
        num: usize,
        args: &AutoAssignArgs,
    ) -> Result<ClaimAlloc> {
        let aff_key = affinity_key(host, cidr);
        let blk_key = block_key(cidr);
        let handle_id = args.handle_id.as_str();
        // As for any allocation, the cached handle (or "new", the CNI case) is a guess
        // guarded by its revision; a wrong one costs a conflict and a re-read.
        let mut handle = self
            .cached_handle(handle_id)
            .unwrap_or_else(|| HandleState::absent(handle_id));
        let mut retries = Retries::new();
        while retries.next().await {
            let mut block = AllocationBlock::new(*cidr, Some(host), new_block_sequence());
            block.affinity_claim_time = Some(claimtime::format(SystemTime::now()));
            let ordinals = block.auto_assign(num, handle_id, &args.attrs);
            let assigned: Vec<Assigned> = ordinals
                .iter()
                .map(|&o| Assigned {
                    ip: block.ip_at(o),
                    block: block.cidr,
                    sequence: block.sequence_of(o),
                })
                .collect();
            block.bump_sequence();
            let mut h = handle.clone();
            h.handle.increment(cidr, ordinals.len() as u64);
            let ops = vec![
                TxnOp::Create {
                    key: aff_key.clone(),
                    value: encode(&BlockAffinity::new(AffinityState::Confirmed)),
                },
                TxnOp::Create {
                    key: blk_key.clone(),
                    value: encode(&block),
                },
                h.write_op(),
            ];
            match self.ds.txn(ops).await {
                Ok(rev) => {
                    self.remember(Some((&block, false)), &[&h], rev);
                    self.mark_known(*cidr);
                    self.set_hot(host, *cidr);
                    tracing::info!(host, block = %cidr, "claimed block");
                    failpoint("after-block-claim");
                    return Ok(ClaimAlloc::Done(assigned));
                }
                // The affinity first: with it present the block may be ours (a crashed
                // claim), which only the step-by-step claim sorts out.
                Err(DatastoreError::Conflict { keys }) if keys.contains(&aff_key) => {
                    return Ok(ClaimAlloc::AffinityExists);
                }
                Err(DatastoreError::Conflict { keys }) if keys.contains(&blk_key) => {
                    self.mark_known(*cidr);
                    return Ok(ClaimAlloc::Taken);
                }
                Err(DatastoreError::Conflict { .. }) => {
                    // Only the handle changed under us.
                    self.forget_handle(handle_id);
                    handle = self.read_handle(handle_id).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(IpamError::TooManyConflicts {
            what: format!("claim block {cidr} for {host} with its first allocation"),
            attempts: retries.attempts(),
        })
    }
}
