//! Claiming a new block for a host.
//!
//! Candidates walk a pool's blocks in order from a start index derived from an FNV-1 hash
//! of the node name (as Calico seeds its walk with one), so a node keeps returning to the
//! same region of the pool and concurrent nodes rarely race for the same block. The hash is
//! mixed before use: FNV-1 of `node-1` and `node-2` differs only in the low bits, and a
//! start of `hash mod n` would put such nodes on adjacent blocks, every claim racing the
//! neighbours' (Calico feeds the hash to Go's PRNG as a seed, which spreads them too).
//!
//! `auto_assign` claims a free candidate in one transaction together with its first
//! allocation (`claim_alloc`). The step-by-step claim here serves `calicoctl ipam claim`
//! and finishes claims a crash left half done: write the affinity `pending`
//! (create-if-absent), then in ONE transaction create the block with
//! `affinity: host:<node>` and mark the affinity `confirmed`. If the block already exists
//! for another node, our pending affinity is removed and the next candidate is tried.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;

use config::datastore::{DatastoreError, TxnOp};

use crate::affinity::{AffinityState, BlockAffinity};
use crate::assign::{Assigned, AutoAssignArgs};
use crate::block::AllocationBlock;
use crate::claim_alloc::ClaimAlloc;
use crate::error::{IpamError, Result};
use crate::handle::encode;
use crate::keys::{affinity_key, block_key};
use crate::pool::PoolSpec;
use crate::retry::{Retries, failpoint, is_conflict};
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

/// SplitMix64's finalizer: every input bit affects every output bit, so hashes that differ
/// in one low bit land far apart.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Index of the first block `host` tries among `n`.
pub fn walk_start(host: &str, n: u128) -> u128 {
    u128::from(mix64(u64::from(fnv1_32(host.as_bytes())))) % n
}

/// The blocks of `pool` in the order `host` tries them: every block exactly once, starting
/// at [`walk_start`] and wrapping around.
pub fn candidate_blocks<'a>(pool: &'a PoolSpec, host: &str) -> impl Iterator<Item = IpNet> + 'a {
    let n = pool.num_blocks();
    let start = walk_start(host, n);
    (0..n).map(move |k| pool.nth_block((start + k) % n))
}

/// A block obtained for a host by [`Ipam::claim_block`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Claimed {
    pub cidr: IpNet,
    /// False when the block already was the host's (it counts against no new limit).
    pub new: bool,
    /// Addresses allocated by the claiming transaction itself (may be none).
    pub assigned: Vec<Assigned>,
}

/// Unknown candidates tried before listing all blocks to see which exist.
const FAST_CLAIM_TRIES: usize = 3;

/// What the claim walk needs to know about an existing block.
struct Existing {
    owner: Option<String>,
    free: usize,
    empty: bool,
    seq: u64,
    claim_time: Option<String>,
}

pub(crate) fn new_block_sequence() -> u64 {
    // As Calico: seed the sequence with the time, so a deleted and re-created block never
    // hands out an (ordinal, sequence) pair seen before.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

impl Ipam {
    /// Finds and claims a block for `host` in `pools`, allocating up to `num` addresses of
    /// it for `args` in the claiming transaction where it can; `None` when every block
    /// exists and none is reclaimable. `affine`: blocks `host` has an affinity to already
    /// (skipped by the walk: they exist).
    pub(crate) async fn claim_block(
        &self,
        host: &str,
        pools: &[PoolSpec],
        affine: &HashSet<IpNet>,
        num: usize,
        args: &AutoAssignArgs,
    ) -> Result<Option<Claimed>> {
        let Some(version) = pools.first().map(|p| crate::keys::family(&p.cidr)) else {
            return Ok(None);
        };
        // Fast path: walk past blocks known to exist (ours, and those of the last listing)
        // and claim the first other one; a block that exists after all just fails its
        // create guard. Listing every block costs far more than a few failed claims.
        let known = self.known_blocks(version).unwrap_or_default();
        let mut tries = 0;
        'walk: for pool in pools {
            for cidr in
                candidate_blocks(pool, host).filter(|c| !known.contains(c) && !affine.contains(c))
            {
                if let Some(assigned) = self.claim_one(&cidr, host, num, args).await? {
                    return Ok(Some(Claimed {
                        cidr,
                        new: true,
                        assigned,
                    }));
                }
                tries += 1;
                if tries >= FAST_CLAIM_TRIES {
                    break 'walk;
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
                        if let Some(assigned) = self.claim_one(&cidr, host, num, args).await? {
                            return Ok(Some(Claimed {
                                cidr,
                                new: true,
                                assigned,
                            }));
                        }
                    }
                    Some(e) if e.owner.as_deref() == Some(host) && e.free > 0 => {
                        // Ours with space but not in our confirmed list: repair the affinity.
                        self.ensure_confirmed(host, &cidr).await?;
                        return Ok(Some(Claimed {
                            cidr,
                            new: false,
                            assigned: Vec::new(),
                        }));
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
                        return Ok(Some(Claimed {
                            cidr,
                            new: true,
                            assigned: Vec::new(),
                        }));
                    }
                }
                Err(e) => tracing::debug!(block = %cidr, error = %e, "empty block not reclaimed"),
            }
        }
        Ok(None)
    }

    /// Claims the absent block `cidr` with its first allocation; `None` when it exists.
    async fn claim_one(
        &self,
        cidr: &IpNet,
        host: &str,
        num: usize,
        args: &AutoAssignArgs,
    ) -> Result<Option<Vec<Assigned>>> {
        match self.claim_with_allocation(cidr, host, num, args).await? {
            ClaimAlloc::Done(assigned) => Ok(Some(assigned)),
            ClaimAlloc::Taken => Ok(None),
            ClaimAlloc::AffinityExists => {
                let won = self.try_claim(cidr, host).await?;
                self.mark_known(*cidr);
                Ok(won.then(Vec::new))
            }
        }
    }

    /// Claims `cidr` for `host`. `Ok(true)` when the block now exists with our affinity and
    /// the affinity is confirmed; `Ok(false)` when another host owns it.
    pub(crate) async fn try_claim(&self, cidr: &IpNet, host: &str) -> Result<bool> {
        let aff_key = affinity_key(host, cidr);
        let pending = encode(&BlockAffinity::new(AffinityState::Pending));
        let mut retries = Retries::new();
        while retries.next().await {
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
            attempts: retries.attempts(),
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
        let start = walk_start("node-a", 4);
        assert_eq!(a[0], pool.nth_block(start));
        assert_eq!(a[1], pool.nth_block((start + 1) % 4));
        // Different hosts start at different places in a large pool.
        let big = PoolSpec::new("10.244.0.0/16".parse().unwrap(), 26);
        let starts: std::collections::BTreeSet<IpNet> = (0..20)
            .map(|i| candidate_blocks(&big, &format!("node-{i}")).next().unwrap())
            .collect();
        assert!(starts.len() >= 18, "hash spreads node starts: {starts:?}");
        // Names differing in the last character must not start on neighbouring blocks
        // (their walks would race for the same blocks on every claim).
        let n = PoolSpec::new("10.0.0.0/12".parse().unwrap(), 26).num_blocks();
        let mut idx: Vec<u128> = (0..8)
            .map(|i| walk_start(&format!("node-{i}"), n))
            .collect();
        idx.sort();
        let min_gap = idx.windows(2).map(|w| w[1] - w[0]).min().unwrap();
        assert!(min_gap > 20, "starts {idx:?} too close ({min_gap} blocks)");
    }
}
