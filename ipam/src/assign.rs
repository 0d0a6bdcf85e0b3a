//! Handing out addresses: `auto_assign` (affine blocks, then a newly claimed block, then
//! borrowing) and `assign_ip` (one named address).
//!
//! Every allocation is one etcd transaction writing the block (guarded by its mod revision)
//! and the handle (created, or updated at its mod revision): a crash can never leave an
//! address without its handle count or a handle count without its address.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::AffinityState;
use crate::Ipam;
use crate::PoolSource;
use crate::config::IpamConfig;
use crate::context::Wanted;
use crate::error::{Exhaustion, IpamError, Result};
use crate::handle::HandleState;
use crate::hint::HintBasis;
use crate::pool::PoolSpec;
use crate::retry::{MAX_ATTEMPTS, Retries, failpoint, is_conflict};
use crate::store::BlockState;

#[derive(Clone, Debug, Default)]
pub struct AutoAssignArgs {
    pub num_v4: usize,
    pub num_v6: usize,
    /// Owner of the addresses, e.g. `k8s-pod-network.<containerID>`.
    pub handle_id: String,
    /// Stored as the allocation's `secondary` attributes (namespace, pod, node...).
    pub attrs: BTreeMap<String, String>,
    pub hostname: String,
    /// Labels of the node, for the pools' node selectors.
    pub node_labels: BTreeMap<String, String>,
    /// Use the labels of the host's Node resource instead of `node_labels` (read in the
    /// allocation's first round trip; a missing Node has none).
    pub node_labels_from_datastore: bool,
    /// Only these pools (by CIDR); each must be enabled and select the node.
    pub pools: Option<Vec<IpNet>>,
    /// Overrides the config's `maxBlocksPerHost` (0 = 20).
    pub max_blocks_per_host: Option<u32>,
}

/// One assigned address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Assigned {
    pub ip: IpAddr,
    pub block: IpNet,
    /// The block's sequence number at allocation; pass it back on release.
    pub sequence: u64,
}

/// Which copy of the block the first allocation attempt works on.
enum First {
    /// This client's cached copy (read when there is none).
    Cache,
    /// A copy just read.
    Given(Box<BlockState>),
}

/// Whose blocks an allocation may use.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use<'a> {
    /// Only a block affine to this host.
    Affine(&'a str),
    /// Any block (borrowing).
    Any,
}

impl Ipam {
    /// Assigns `num_v4` IPv4 and `num_v6` IPv6 addresses to `handle_id`. All or nothing:
    /// when the request cannot be met in full, addresses taken so far are released again and
    /// the error names the limit that was hit.
    pub async fn auto_assign(&self, args: &AutoAssignArgs) -> Result<Vec<Assigned>> {
        if args.hostname.is_empty() {
            return Err(IpamError::Empty { what: "hostname" });
        }
        if args.handle_id.is_empty() {
            return Err(IpamError::Empty { what: "handle_id" });
        }
        let mut out = Vec::with_capacity(args.num_v4 + args.num_v6);
        for (version, num) in [(4u8, args.num_v4), (6u8, args.num_v6)] {
            if num == 0 {
                continue;
            }
            match self.assign_family(args, version, num, &mut out).await {
                Ok(()) => {}
                Err(e) => {
                    self.undo(&args.handle_id, &out).await;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    async fn undo(&self, handle: &str, got: &[Assigned]) {
        if got.is_empty() {
            return;
        }
        let opts: Vec<_> = got
            .iter()
            .map(|a| crate::ReleaseOptions {
                ip: a.ip,
                sequence_number: Some(a.sequence),
                handle: Some(handle.to_string()),
            })
            .collect();
        if let Err(e) = self.release_ips(&opts).await {
            tracing::warn!(handle, error = %e, "could not return partially assigned addresses");
        }
    }

    async fn assign_family(
        &self,
        args: &AutoAssignArgs,
        version: u8,
        num: usize,
        out: &mut Vec<Assigned>,
    ) -> Result<()> {
        let host = args.hostname.as_str();
        let start = out.len();
        let cold = self
            .hot_block(host, version)
            .and_then(|c| self.cached_free_count(&c))
            .is_none_or(|free| free == 0);
        // Only a client without a usable cache needs the hint.
        let hint = self
            .hint_dir
            .as_deref()
            .filter(|_| cold)
            .and_then(|d| crate::hint::read(d, host, version));
        // (0) A client without a cache whose hint holds the block as last written: one
        // guarded write, nothing read.
        let hint_block = hint.as_ref().map(|h| h.block);
        if cold
            && let Some(seen) = hint.and_then(|h| h.seen)
            && let Some(got) = self.alloc_from_hint(args, version, num, seen).await?
        {
            out.extend(got);
            return Ok(());
        }
        let hint = hint_block;
        // Otherwise a client without a cache reads the pools (from the datastore), the
        // node's labels (when asked to), the hinted block, the affinities and the config in
        // one round trip. A client whose hot block has room reads only what its pools need.
        let from_datastore = matches!(self.pools, PoolSource::Datastore);
        let mut context = if cold || from_datastore || args.node_labels_from_datastore {
            let wanted = Wanted {
                pools: from_datastore,
                node_labels: args.node_labels_from_datastore,
                block: hint,
            };
            Some(self.read_alloc_context(host, version, &wanted).await?)
        } else {
            None
        };
        let basis = context.as_ref().map(HintBasis::from);
        let all_pools = match (&self.pools, context.as_mut()) {
            (PoolSource::Static(p), _) => p.clone(),
            (PoolSource::Datastore, Some(ctx)) => ctx.pools.take().unwrap_or_default(),
            (PoolSource::Datastore, None) => unreachable!("read with the context"),
        };
        let labels = match context.as_mut().and_then(|c| c.node_labels.take()) {
            Some(l) => l,
            None => args.node_labels.clone(),
        };
        let pools = self.select_usable(all_pools, version, host, &labels, args.pools.as_deref())?;
        let exhausted = |reason: Exhaustion, got: usize| IpamError::Exhausted {
            host: host.to_string(),
            requested: num,
            assigned: got,
            reason,
        };
        if pools.is_empty() {
            return Err(exhausted(Exhaustion::NoPoolForNode, 0));
        }
        let in_pools = |c: &IpNet| pools.iter().any(|p| p.cidr.contains(c));
        let need = |out: &Vec<Assigned>| num - (out.len() - start);

        // (1a) The block this client allocated from last, from cache, when the cached copy
        // has room: one transaction. (A cached full block is re-checked in (1b).)
        if let Some(st) = self
            .hot_block(host, version)
            .filter(|c| in_pools(c))
            .and_then(|c| self.cached_block(&c))
            .filter(|st| st.block.free_count() > 0)
        {
            let cidr = st.block.cidr;
            out.extend(
                self.alloc_in_block(
                    &cidr,
                    need(out),
                    args,
                    Use::Affine(host),
                    First::Given(Box::new(st)),
                )
                .await?,
            );
        }
        // (1b) All confirmed affine blocks (after repairing half-done claims); only those
        // with free addresses are tried. The affinity list, the config and a revision check
        // of the cached copies of our blocks go out together. Blocks in hand (cached and
        // unchanged, or the hinted one) are tried first; the others are read only when
        // those are not enough.
        let mut confirmed: Vec<IpNet> = Vec::new();
        let mut config = None;
        if need(out) > 0 {
            let cached = self.cached_affine_blocks(host, version);
            let plain = Wanted::default();
            let (ctx, current) = match context.take() {
                Some(ctx) => (ctx, self.still_current(&cached).await?),
                None => futures::try_join!(
                    self.read_alloc_context(host, version, &plain),
                    self.still_current(&cached)
                )?,
            };
            let affs = ctx.affinities;
            config = Some(ctx.config);
            confirmed = affs
                .iter()
                .filter(|a| a.state == AffinityState::Confirmed)
                .map(|a| a.cidr)
                .collect();
            if affs.iter().any(|a| a.state != AffinityState::Confirmed) {
                confirmed.extend(self.repair_pending(&affs, host).await?);
            }
            let mut known: HashMap<IpNet, BlockState> = cached
                .into_iter()
                .filter(|st| current.contains(&st.block.cidr))
                .map(|st| (st.block.cidr, st))
                .collect();
            if let Some(st) = ctx.block {
                known.entry(st.block.cidr).or_insert(st);
            }
            let wanted: Vec<IpNet> = confirmed.iter().copied().filter(in_pools).collect();
            let (in_hand, to_read): (Vec<IpNet>, Vec<IpNet>) =
                wanted.iter().partition(|c| known.contains_key(c));
            for (phase, blocks) in [in_hand, to_read].into_iter().enumerate() {
                if need(out) == 0 {
                    break;
                }
                if phase == 1 {
                    let read = self.read_blocks(&blocks).await?;
                    known.extend(read.into_iter().map(|st| (st.block.cidr, st)));
                }
                for cidr in &blocks {
                    if need(out) == 0 {
                        break;
                    }
                    let Some(st) = known.remove(cidr) else {
                        continue;
                    };
                    if st.block.free_count() > 0 && st.block.is_affine_to(host) {
                        out.extend(
                            self.alloc_in_block(
                                cidr,
                                need(out),
                                args,
                                Use::Affine(host),
                                First::Given(Box::new(st)),
                            )
                            .await?,
                        );
                    }
                }
            }
        }
        if need(out) == 0 {
            self.keep_hint(host, &out[start..], basis.clone());
            return Ok(());
        }
        // (2) Claim new blocks, up to the per-host cap.
        let cfg: IpamConfig = match config {
            Some(c) => c,
            None => self.get_config().await?,
        };
        let limit = match args.max_blocks_per_host {
            Some(0) | None => cfg.effective_max_blocks(),
            Some(n) => n,
        };
        // Blocks affine to the host count against the cap; a block of ours that only lacked
        // its affinity key (claim result `new: false`) does not count again.
        let mut affine_count = confirmed.len() as u32;
        let mut affine: HashSet<IpNet> = confirmed.into_iter().collect();
        let mut reason = Exhaustion::AutoAllocateDisabled;
        let mut rounds = 0;
        while need(out) > 0 && cfg.auto_allocate_blocks {
            rounds += 1;
            if affine_count >= limit || rounds > limit as usize + MAX_ATTEMPTS as usize {
                reason = Exhaustion::MaxBlocksPerHost { limit };
                break;
            }
            match self
                .claim_block(host, &pools, &affine, need(out), args)
                .await?
            {
                Some(c) => {
                    if c.new {
                        affine_count += 1;
                    }
                    affine.insert(c.cidr);
                    out.extend(c.assigned);
                    out.extend(
                        self.alloc_in_block(
                            &c.cidr,
                            need(out),
                            args,
                            Use::Affine(host),
                            First::Cache,
                        )
                        .await?,
                    );
                }
                None => {
                    reason = Exhaustion::PoolsExhausted;
                    break;
                }
            }
        }
        if need(out) == 0 {
            self.keep_hint(host, &out[start..], basis);
            return Ok(());
        }
        // (3) Borrow from any block with space, unless strict affinity forbids it.
        if cfg.strict_affinity {
            return Err(exhausted(
                Exhaustion::StrictAffinity {
                    cause: Box::new(reason),
                },
                out.len() - start,
            ));
        }
        for st in self.list_blocks(version).await? {
            if need(out) == 0 {
                break;
            }
            let b = &st.block;
            if b.free_count() > 0 && in_pools(&b.cidr) && !b.is_affine_to(host) {
                tracing::info!(host, block = %b.cidr, "borrowing from a block of another host");
                out.extend(
                    self.alloc_in_block(
                        &b.cidr,
                        need(out),
                        args,
                        Use::Any,
                        First::Given(Box::new(st.clone())),
                    )
                    .await?,
                );
            }
        }
        if need(out) > 0 {
            return Err(exhausted(reason, out.len() - start));
        }
        Ok(())
    }

    /// Allocates up to `num` addresses from one block in one transaction (block + handle),
    /// re-reading and retrying on conflicts. Returns fewer (or none) when the block is full,
    /// missing, or not usable under `usage`.
    ///
    /// The first attempt works on `first` (a cached or just-listed copy of the block) and on
    /// the cached handle, or assumes the handle is new (the CNI case); both are guarded by
    /// their mod revisions, so a wrong guess costs one conflict and a re-read, never a
    /// wrong write.
    async fn alloc_in_block(
        &self,
        cidr: &IpNet,
        num: usize,
        args: &AutoAssignArgs,
        usage: Use<'_>,
        first: First,
    ) -> Result<Vec<Assigned>> {
        if num == 0 {
            return Ok(Vec::new());
        }
        let handle_id = args.handle_id.as_str();
        let mut first = Some(first);
        let mut retries = Retries::new();
        while retries.next().await {
            let guess = first.take();
            let from_cache = matches!(guess, Some(First::Cache));
            let block = match guess {
                Some(First::Cache) => match self.cached_block(cidr) {
                    Some(b) => Some(b),
                    None => self.read_block(cidr).await?,
                },
                Some(First::Given(b)) => Some(*b),
                None => None,
            };
            let (block, handle) = match block {
                Some(b) => {
                    let h = self
                        .cached_handle(handle_id)
                        .unwrap_or_else(|| HandleState::absent(handle_id));
                    (Some(b), h)
                }
                None => self.read_block_and_handle(cidr, handle_id).await?,
            };
            let Some(mut st): Option<BlockState> = block else {
                return Ok(Vec::new());
            };
            if let Use::Affine(host) = usage
                && !st.block.is_affine_to(host)
            {
                return Ok(Vec::new());
            }
            if st.block.free_count() == 0 {
                if from_cache {
                    // The cached copy may predate releases by other clients.
                    continue;
                }
                return Ok(Vec::new());
            }
            let mut handle = handle;
            let assigned = take_addresses(&mut st, num, args, &mut handle);
            match self.ds.txn(vec![st.update_op(), handle.write_op()]).await {
                Ok(rev) => {
                    self.remember(Some((&st.block, false)), &[&handle], rev);
                    if let Use::Affine(host) = usage {
                        self.set_hot(host, *cidr);
                    }
                    failpoint("after-allocation");
                    return Ok(assigned);
                }
                Err(e) => {
                    let e = IpamError::from(e);
                    if !is_conflict(&e) {
                        return Err(e);
                    }
                    self.forget_handle(handle_id);
                }
            }
        }
        Err(IpamError::TooManyConflicts {
            what: format!("allocate from block {cidr}"),
            attempts: retries.attempts(),
        })
    }

    /// Assigns the given address to `handle_id`. The address must lie in a configured pool;
    /// its block is claimed for `hostname` if it does not exist yet.
    pub async fn assign_ip(
        &self,
        ip: IpAddr,
        handle_id: &str,
        attrs: &BTreeMap<String, String>,
        hostname: &str,
    ) -> Result<Assigned> {
        if handle_id.is_empty() {
            return Err(IpamError::Empty { what: "handle_id" });
        }
        let pools = self.all_pools().await?;
        let pool: &PoolSpec = pools
            .iter()
            .find(|p| p.cidr.contains(&ip) && p.validate().is_ok())
            .ok_or(IpamError::NotInPool { ip })?;
        let cidr = pool.block_for(ip).ok_or(IpamError::NotInPool { ip })?;
        let mut retries = Retries::new();
        while retries.next().await {
            let (block, mut handle) = self.read_block_and_handle(&cidr, handle_id).await?;
            let Some(mut st) = block else {
                if !hostname.is_empty() {
                    // Either we create it, or someone else did: both leave a block to use.
                    self.try_claim(&cidr, hostname).await?;
                } else {
                    return Err(IpamError::BlockNotFound { block: cidr });
                }
                continue;
            };
            let ordinal = st.block.ordinal_of(ip).ok_or(IpamError::NotInPool { ip })?;
            if !st.block.assign(ordinal, handle_id, attrs) {
                return Err(IpamError::AlreadyAllocated { ip });
            }
            let assigned = Assigned {
                ip,
                block: cidr,
                sequence: st.block.sequence_of(ordinal),
            };
            st.block.bump_sequence();
            handle.handle.increment(&cidr, 1);
            match self.ds.txn(vec![st.update_op(), handle.write_op()]).await {
                Ok(rev) => {
                    self.remember(Some((&st.block, false)), &[&handle], rev);
                    return Ok(assigned);
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(IpamError::TooManyConflicts {
            what: format!("assign {ip}"),
            attempts: retries.attempts(),
        })
    }
}

/// Takes up to `num` free addresses of the block for the handle, in the copies that the
/// caller then writes (the block's sequence number moves on; the handle counts them).
pub(crate) fn take_addresses(
    st: &mut BlockState,
    num: usize,
    args: &AutoAssignArgs,
    handle: &mut HandleState,
) -> Vec<Assigned> {
    let cidr = st.block.cidr;
    let ordinals = st.block.auto_assign(num, &args.handle_id, &args.attrs);
    let assigned: Vec<Assigned> = ordinals
        .iter()
        .map(|&o| Assigned {
            ip: st.block.ip_at(o),
            block: cidr,
            sequence: st.block.sequence_of(o),
        })
        .collect();
    st.block.bump_sequence();
    handle.handle.increment(&cidr, ordinals.len() as u64);
    assigned
}
