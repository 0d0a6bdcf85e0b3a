//! Claiming a new block for a host.
//!
//! Candidates walk a pool's blocks in order from a start index derived from an FNV-1 hash
//! of the node name (as Calico seeds its walk with one), so a node keeps returning to the
//! same region of the pool and concurrent nodes rarely race for the same block.
//!
//! The claim itself: write the affinity `pending` (create-if-absent), then in ONE
//! transaction create the block with `affinity: host:<node>` and mark the affinity
//! `confirmed`. If the block already exists for another node, our pending affinity is
//! removed and the next candidate is tried.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;

use config::datastore::{DatastoreError, TxnOp};

use crate::affinity::{AffinityState, BlockAffinity};
use crate::block::AllocationBlock;
use crate::config::IpamConfig;
use crate::error::{IpamError, Result};
use crate::handle::encode;
use crate::keys::{affinity_key, block_key};
use crate::pool::PoolSpec;
use crate::retry::{MAX_ATTEMPTS, backoff, failpoint, is_conflict};
use crate::{Ipam, claimtime};

/// Another node's empty block may be taken over once its claim is this old (Calico's
/// EmptyBlockMinReclaimAge), so two nodes cannot ping-pong a block.
pub const EMPTY_BLOCK_MIN_RECLAIM_AGE: Duration = Duration::from_secs(60);

/// 32-bit FNV-1 (Go's `hash/fnv.New32`, which Calico uses on the host name).
pub fn fnv1_32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h = h.wrapping_mul(0x0100_0193);
        h ^= u32::from(*b);
    }
    h
}

/// The blocks of `pool` in the order `host` tries them: every block exactly once, starting
/// at `fnv1_32(host) mod num_blocks` and wrapping around.
pub fn candidate_blocks<'a>(pool: &'a PoolSpec, host: &str) -> impl Iterator<Item = IpNet> + 'a {
    let n = pool.num_blocks();
    let start = u128::from(fnv1_32(host.as_bytes())) % n;
    (0..n).map(move |k| pool.nth_block((start + k) % n))
}

/// A block obtained for a host by [`Ipam::claim_block`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Claimed {
    pub cidr: IpNet,
    /// False when the block already was the host's (it counts against no new limit).
    pub new: bool,
}

/// Claims tried from the cached block set before listing all blocks.
const FAST_CLAIM_TRIES: usize = 3;

/// What the claim walk needs to know about an existing block.
struct Existing {
    owner: Option<String>,
    free: usize,
    empty: bool,
    seq: u64,
    claim_time: Option<String>,
}

fn new_block_sequence() -> u64 {
    // As Calico: seed the sequence with the time, so a deleted and re-created block never
    // hands out an (ordinal, sequence) pair seen before.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

impl Ipam {
    /// Finds and claims a block for `host` in `pools`, or `None` when every block exists and
    /// none is reclaimable.
    pub(crate) async fn claim_block(
        &self,
        host: &str,
        pools: &[PoolSpec],
        _cfg: &IpamConfig,
    ) -> Result<Option<Claimed>> {
        let Some(version) = pools.first().map(|p| crate::keys::family(&p.cidr)) else {
            return Ok(None);
        };
        // Fast path for long-lived clients: walk past blocks known to exist and claim the
        // first unknown one; a block created meanwhile by someone else just fails the claim.
        if let Some(known) = self.known_blocks(version) {
            let mut tries = 0;
            'walk: for pool in pools {
                for cidr in candidate_blocks(pool, host).filter(|c| !known.contains(c)) {
                    let won = self.try_claim(&cidr, host).await?;
                    self.mark_known(cidr);
                    if won {
                        return Ok(Some(Claimed { cidr, new: true }));
                    }
                    tries += 1;
                    if tries >= FAST_CLAIM_TRIES {
                        break 'walk;
                    }
                }
            }
        }
        let existing: HashMap<IpNet, Existing> = self
            .list_blocks(version)
            .await?
            .into_iter()
            .map(|s| {
                let b = s.block;
                let e = Existing {
                    owner: b.host().map(str::to_string),
                    free: b.free_count(),
                    empty: b.is_empty(),
                    seq: b.sequence_number,
                    claim_time: b.affinity_claim_time.clone(),
                };
                (b.cidr, e)
            })
            .collect();
        let mut reclaimable = Vec::new();
        for pool in pools {
            for cidr in candidate_blocks(pool, host) {
                match existing.get(&cidr) {
                    None => {
                        if self.try_claim(&cidr, host).await? {
                            self.mark_known(cidr);
                            return Ok(Some(Claimed { cidr, new: true }));
                        }
                    }
                    Some(e) if e.owner.as_deref() == Some(host) && e.free > 0 => {
                        // Ours with space but not in our confirmed list: repair the affinity.
                        self.ensure_confirmed(host, &cidr).await?;
                        return Ok(Some(Claimed { cidr, new: false }));
                    }
                    Some(e)
                        if e.empty
                            && e.free > 0
                            && e.owner.as_deref().is_some_and(|o| o != host) =>
                    {
                        let owner = e.owner.clone().unwrap_or_default();
                        reclaimable.push((cidr, owner, e.seq, e.claim_time.clone()));
                    }
                    Some(_) => {}
                }
            }
        }
        for (cidr, owner, seq, claim_time) in reclaimable {
            let age = claim_time
                .as_deref()
                .and_then(claimtime::parse)
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or(Duration::MAX);
            if age < EMPTY_BLOCK_MIN_RECLAIM_AGE {
                continue;
            }
            match self
                .release_affinity_inner(cidr, &owner, true, Some(seq))
                .await
            {
                Ok(()) => {
                    tracing::info!(block = %cidr, from = %owner, to = host, "reclaiming empty block");
                    if self.try_claim(&cidr, host).await? {
                        return Ok(Some(Claimed { cidr, new: true }));
                    }
                }
                Err(e) => tracing::debug!(block = %cidr, error = %e, "empty block not reclaimed"),
            }
        }
        Ok(None)
    }

    /// Claims `cidr` for `host`. `Ok(true)` when the block now exists with our affinity and
    /// the affinity is confirmed; `Ok(false)` when another host owns it.
    pub(crate) async fn try_claim(&self, cidr: &IpNet, host: &str) -> Result<bool> {
        let aff_key = affinity_key(host, cidr);
        let pending = encode(&BlockAffinity::new(AffinityState::Pending));
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            // Step 1: our affinity, pending (or whatever confirmed one a crash left).
            let aff_rev = match self.ds.create_raw(&aff_key, pending.clone()).await {
                Ok(rev) => rev,
                Err(DatastoreError::AlreadyExists { .. }) => {
                    match self.read_affinity(host, cidr).await? {
                        None => continue,
                        Some(a) if a.state == AffinityState::Confirmed => a.mod_revision,
                        Some(a) => match self
                            .ds
                            .update_raw(&aff_key, pending.clone(), a.mod_revision)
                            .await
                        {
                            Ok(rev) => rev,
                            Err(e) if e.is_conflict() => continue,
                            Err(e) => return Err(e.into()),
                        },
                    }
                }
                Err(e) => return Err(e.into()),
            };
            failpoint("after-affinity-pending");

            // Step 2: create the block and confirm the affinity atomically.
            let mut block = AllocationBlock::new(*cidr, Some(host), new_block_sequence());
            block.affinity_claim_time = Some(claimtime::format(SystemTime::now()));
            let ops = vec![
                TxnOp::Create {
                    key: block_key(cidr),
                    value: encode(&block),
                },
                TxnOp::Update {
                    key: aff_key.clone(),
                    value: encode(&BlockAffinity::new(AffinityState::Confirmed)),
                    mod_revision: aff_rev,
                },
            ];
            match self.ds.txn(ops).await {
                Ok(rev) => {
                    self.remember(Some((&block, false)), &[], rev);
                    tracing::info!(host, block = %cidr, "claimed block");
                    failpoint("after-block-claim");
                    return Ok(true);
                }
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(e.into()),
            }
            // The block exists already, or our affinity changed under us.
            match self.read_block(cidr).await? {
                Some(st) if st.block.is_affine_to(host) => {
                    // Another process of this host (or our own crashed run) made it.
                    self.ensure_confirmed(host, cidr).await?;
                    return Ok(true);
                }
                Some(_) => {
                    // Another host won: drop our pending claim (a confirmed affinity of ours
                    // to a block owned by someone else is stale too).
                    if let Some(a) = self.read_affinity(host, cidr).await? {
                        self.delete_affinity_if_unchanged(host, cidr, a.mod_revision)
                            .await?;
                    }
                    return Ok(false);
                }
                None => continue,
            }
        }
        Err(IpamError::TooManyConflicts {
            what: format!("claim block {cidr} for {host}"),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Repairs `host`'s non-confirmed affinities, as a crash between claim steps leaves them:
    /// block ours -> confirm; block missing or someone else's -> remove the affinity.
    /// Returns the blocks that became confirmed.
    pub(crate) async fn repair_pending(
        &self,
        affs: &[crate::affinity::AffinityEntry],
        host: &str,
    ) -> Result<Vec<IpNet>> {
        let mut confirmed = Vec::new();
        for a in affs {
            if a.state == AffinityState::Confirmed {
                continue;
            }
            match self.read_block(&a.cidr).await? {
                Some(st) if st.block.is_affine_to(host) && a.state == AffinityState::Pending => {
                    self.ensure_confirmed(host, &a.cidr).await?;
                    confirmed.push(a.cidr);
                }
                Some(st) if st.block.is_affine_to(host) => {
                    // pendingDeletion: finish the release the crashed writer began.
                    match self.release_affinity_inner(a.cidr, host, false, None).await {
                        Ok(()) => {}
                        Err(e) if is_conflict(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
                _ => {
                    self.delete_affinity_if_unchanged(host, &a.cidr, a.mod_revision)
                        .await?
                }
            }
        }
        Ok(confirmed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1_matches_go() {
        // Go: fnv.New32().Write([]byte("a")).Sum32() == 0x050c5d7e; "" is the offset basis.
        assert_eq!(fnv1_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1_32(b"a"), 0x050c_5d7e);
        assert_eq!(fnv1_32(b"foobar"), 0x31f0_b262);
    }

    #[test]
    fn walk_is_deterministic_and_complete() {
        let pool = PoolSpec::new("10.0.0.0/24".parse().unwrap(), 26);
        let a: Vec<IpNet> = candidate_blocks(&pool, "node-a").collect();
        assert_eq!(a, candidate_blocks(&pool, "node-a").collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            (0..4).map(|i| pool.nth_block(i)).collect::<Vec<_>>()
        );
        let start = (fnv1_32(b"node-a") % 4) as u128;
        assert_eq!(a[0], pool.nth_block(start));
        assert_eq!(a[1], pool.nth_block((start + 1) % 4));
        // Different hosts start at different places in a large pool.
        let big = PoolSpec::new("10.244.0.0/16".parse().unwrap(), 26);
        let starts: std::collections::BTreeSet<IpNet> = (0..20)
            .map(|i| candidate_blocks(&big, &format!("node-{i}")).next().unwrap())
            .collect();
        assert!(starts.len() >= 18, "hash spreads node starts: {starts:?}");
    }
}
