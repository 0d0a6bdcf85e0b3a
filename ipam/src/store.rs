//! The [`Ipam`] client: datastore handle, pool source, and a small cache of the blocks and
//! handles this client wrote last. The cache only saves reads: every write is guarded by the
//! cached mod revision, so a stale entry turns into a conflict, a re-read and a retry.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ipnet::IpNet;

use config::datastore::{Datastore, DatastoreError, Kv, Read, TxnOp};

use crate::block::AllocationBlock;
use crate::error::{IpamError, Result};
use crate::handle::{HandleState, decode, encode};
use crate::keys::{block_key, block_prefix, handle_key, parse_block_key, parse_handle_key};
use crate::pool::PoolSpec;

/// Where the client finds IP pools.
#[derive(Clone, Debug)]
pub enum PoolSource {
    /// A fixed list (tests, or a caller that already read the pools).
    Static(Vec<PoolSpec>),
    /// The IPPool resources in the datastore, read on every call that needs them.
    Datastore,
}

/// Decides whether a pool's node selector selects a node with these labels.
pub type SelectorMatcher = Arc<dyn Fn(&str, &BTreeMap<String, String>) -> bool + Send + Sync>;

/// A block as read, with the revision that guards its update.
#[derive(Clone, Debug)]
pub(crate) struct BlockState {
    pub block: AllocationBlock,
    pub mod_revision: i64,
}

impl BlockState {
    pub fn update_op(&self) -> TxnOp {
        TxnOp::Update {
            key: block_key(&self.block.cidr),
            value: encode(&self.block),
            mod_revision: self.mod_revision,
        }
    }
}

/// Compares or reads per transaction, below etcd's default `--max-txn-ops` (128).
const TXN_OPS: usize = 100;

/// Entries kept per cache map before it is cleared (bounds memory of long-lived clients).
const CACHE_LIMIT: usize = 4096;

#[derive(Default)]
pub(crate) struct Cache {
    blocks: HashMap<IpNet, BlockState>,
    handles: HashMap<String, HandleState>,
    /// (host, family) -> block the host allocated from last.
    hot: HashMap<(String, u8), IpNet>,
    /// Family -> block CIDRs known to exist (from the last listing plus own claims). Lets
    /// the claim walk skip taken blocks without listing every block again.
    known: HashMap<u8, std::collections::HashSet<IpNet>>,
}

#[derive(Clone)]
pub struct Ipam {
    pub(crate) ds: Datastore,
    pub(crate) pools: PoolSource,
    pub(crate) selector: SelectorMatcher,
    /// Where the per-host hints of the last block live (see `hint`), if kept.
    pub(crate) hint_dir: Option<std::path::PathBuf>,
    cache: Arc<Mutex<Cache>>,
}

/// Pool specs of the IPPool resources; invalid ones are logged and skipped.
pub(crate) fn pool_specs(pools: &[config::model::IPPool]) -> Vec<PoolSpec> {
    let mut out = Vec::with_capacity(pools.len());
    for p in pools {
        match PoolSpec::try_from(p) {
            Ok(s) => out.push(s),
            Err(e) => {
                tracing::warn!(pool = %p.metadata.name, error = %e, "skipping invalid IP pool")
            }
        }
    }
    out
}

/// A block read for use: a structurally corrupt block is an error, never modified.
pub(crate) fn usable_block(kv: Kv) -> Result<BlockState> {
    let block: AllocationBlock = decode(&kv.key, &kv.value)?;
    let problems = block.structural_problems();
    if !problems.is_empty() {
        return Err(IpamError::CorruptBlock {
            block: block.cidr,
            problems: problems.join("; "),
        });
    }
    Ok(BlockState {
        block,
        mod_revision: kv.mod_revision,
    })
}

/// Calico's selector language over the node's labels; an empty selector selects all nodes,
/// one that does not parse selects none (the pool's validation reports it).
fn default_selector(sel: &str, labels: &BTreeMap<String, String>) -> bool {
    if sel.trim().is_empty() {
        return true;
    }
    match config::selector::Selector::parse(sel) {
        Ok(s) => s.matches(labels),
        Err(e) => {
            tracing::warn!(selector = sel, error = %e, "pool node selector does not parse; pool skipped");
            false
        }
    }
}

impl Ipam {
    pub fn new(ds: Datastore, pools: PoolSource) -> Ipam {
        Ipam {
            ds,
            pools,
            selector: Arc::new(default_selector),
            hint_dir: None,
            cache: Arc::default(),
        }
    }

    /// Keeps, per host and family, a file in `dir` naming the block allocated from last, so
    /// that a client without a cache (one per CNI ADD) finds a block with room in the same
    /// round trip as the affinities.
    pub fn with_hint_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Ipam {
        self.hint_dir = Some(dir.into());
        self
    }

    /// Replaces the node-selector evaluator.
    pub fn with_selector(mut self, m: SelectorMatcher) -> Ipam {
        self.selector = m;
        self
    }

    pub fn datastore(&self) -> &Datastore {
        &self.ds
    }

    /// Every configured pool, disabled ones included.
    pub async fn all_pools(&self) -> Result<Vec<PoolSpec>> {
        match &self.pools {
            PoolSource::Static(p) => Ok(p.clone()),
            PoolSource::Datastore => {
                let (pools, _) = self.ds.list::<config::model::IPPool>(None).await?;
                Ok(pool_specs(&pools))
            }
        }
    }

    /// The enabled pools of `all` for `version` whose node selector selects the node,
    /// restricted to `requested` when given (each requested pool must be usable).
    pub(crate) fn select_usable(
        &self,
        all: Vec<PoolSpec>,
        version: u8,
        host: &str,
        labels: &BTreeMap<String, String>,
        requested: Option<&[IpNet]>,
    ) -> Result<Vec<PoolSpec>> {
        let usable: Vec<PoolSpec> = all
            .into_iter()
            .filter(|p| crate::keys::family(&p.cidr) == version && !p.disabled)
            .filter(|p| p.validate().is_ok())
            .filter(|p| (self.selector)(&p.node_selector, labels))
            .collect();
        let Some(req) = requested else {
            return Ok(usable);
        };
        let mut out = Vec::new();
        for r in req.iter().filter(|r| crate::keys::family(r) == version) {
            match usable.iter().find(|p| p.cidr == r.trunc()) {
                Some(p) => out.push(p.clone()),
                None => {
                    return Err(IpamError::PoolNotUsable {
                        pool: *r,
                        host: host.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Reads one block for use: a structurally corrupt block is an error, never modified.
    pub(crate) async fn read_block(&self, cidr: &IpNet) -> Result<Option<BlockState>> {
        self.ds
            .get_raw(&block_key(cidr))
            .await?
            .map(usable_block)
            .transpose()
    }

    /// Reads the blocks that exist among `cidrs` (missing ones are left out), in one round
    /// trip per [`TXN_OPS`] blocks; corrupt ones are errors, as for [`Ipam::read_block`].
    pub(crate) async fn read_blocks(&self, cidrs: &[IpNet]) -> Result<Vec<BlockState>> {
        let reads = cidrs.chunks(TXN_OPS).map(|chunk| async move {
            let keys: Vec<String> = chunk.iter().map(block_key).collect();
            let reads: Vec<Read<'_>> = keys.iter().map(|k| Read::Key(k)).collect();
            self.ds.read_many(&reads).await
        });
        let mut out = Vec::with_capacity(cidrs.len());
        for kv in futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(usable_block(kv)?);
        }
        Ok(out)
    }

    /// A block and a handle in one round trip (after a conflict, and for `assign_ip`).
    pub(crate) async fn read_block_and_handle(
        &self,
        cidr: &IpNet,
        id: &str,
    ) -> Result<(Option<BlockState>, HandleState)> {
        let (bkey, hkey) = (block_key(cidr), handle_key(id));
        let mut got = self
            .ds
            .read_many(&[Read::Key(&bkey), Read::Key(&hkey)])
            .await?
            .into_iter();
        let block = got.next().unwrap_or_default().into_iter().next();
        let handle = got.next().unwrap_or_default().into_iter().next();
        Ok((
            block.map(usable_block).transpose()?,
            HandleState::from_kv(id, handle)?,
        ))
    }

    /// Every block of `version`, corrupt ones included (for `check` and usage, which
    /// report them and never write).
    pub(crate) async fn list_all_blocks(&self, version: u8) -> Result<Vec<BlockState>> {
        let (kvs, _) = self.ds.list_raw(&block_prefix(version)).await?;
        let mut out = Vec::with_capacity(kvs.len());
        for kv in kvs {
            if parse_block_key(&kv.key).is_none() {
                continue;
            }
            out.push(BlockState {
                block: decode(&kv.key, &kv.value)?,
                mod_revision: kv.mod_revision,
            });
        }
        let known = out.iter().map(|s| s.block.cidr).collect();
        self.cache().known.insert(version, known);
        Ok(out)
    }

    /// Blocks of `version` that allocation may use: corrupt ones are skipped (and logged),
    /// so one damaged block does not stop allocation elsewhere.
    pub(crate) async fn list_blocks(&self, version: u8) -> Result<Vec<BlockState>> {
        let mut blocks = self.list_all_blocks(version).await?;
        blocks.retain(|st| {
            let problems = st.block.structural_problems();
            if !problems.is_empty() {
                tracing::warn!(block = %st.block.cidr, problems = %problems.join("; "), "corrupt IPAM block skipped");
            }
            problems.is_empty()
        });
        Ok(blocks)
    }

    /// Block CIDRs of `version` known to exist, if a listing was done.
    pub(crate) fn known_blocks(&self, version: u8) -> Option<std::collections::HashSet<IpNet>> {
        self.cache().known.get(&version).cloned()
    }

    pub(crate) fn mark_known(&self, cidr: IpNet) {
        if let Some(k) = self.cache().known.get_mut(&crate::keys::family(&cidr)) {
            k.insert(cidr);
        }
    }

    pub(crate) async fn read_handle(&self, id: &str) -> Result<HandleState> {
        HandleState::from_kv(id, self.ds.get_raw(&handle_key(id)).await?)
    }

    /// The block holding `ip`: derived from the pools, else searched among all blocks (a
    /// pool may have been deleted while its blocks remain).
    pub(crate) async fn block_of_ip(&self, ip: std::net::IpAddr) -> Result<Option<BlockState>> {
        Ok(self.blocks_of_ips(&[ip], &[]).await?.pop())
    }

    /// The blocks holding `ips` (each found once), read together with the `handles` in one
    /// round trip when the pools say where the addresses lie; the handles that exist are
    /// cached for the write that follows. An address outside every pool's blocks (its pool
    /// may have been deleted while its block remains) is searched among all blocks.
    pub(crate) async fn blocks_of_ips(
        &self,
        ips: &[std::net::IpAddr],
        handles: &[&str],
    ) -> Result<Vec<BlockState>> {
        let pools = self.all_pools().await?;
        let mut cidrs: Vec<IpNet> = Vec::new();
        for ip in ips {
            for c in pools.iter().filter_map(|p| p.block_for(*ip)) {
                if !cidrs.contains(&c) {
                    cidrs.push(c);
                }
            }
        }
        let mut keys: Vec<String> = cidrs.iter().map(block_key).collect();
        keys.extend(handles.iter().map(|h| handle_key(h)));
        let mut found = Vec::new();
        for chunk in keys.chunks(TXN_OPS) {
            let reads: Vec<Read<'_>> = chunk.iter().map(|k| Read::Key(k)).collect();
            for kv in self.ds.read_many(&reads).await?.into_iter().flatten() {
                match parse_handle_key(&kv.key).map(str::to_string) {
                    Some(id) => {
                        let h = HandleState::from_kv(&id, Some(kv))?;
                        self.remember_read_handle(h);
                    }
                    None => found.push(usable_block(kv)?),
                }
            }
        }
        let missing: Vec<_> = ips
            .iter()
            .filter(|ip| !found.iter().any(|b| b.block.cidr.contains(*ip)))
            .collect();
        for version in [4u8, 6] {
            if !missing.iter().any(|ip| ip.is_ipv4() == (version == 4)) {
                continue;
            }
            for st in self.list_blocks(version).await? {
                if missing.iter().any(|ip| st.block.cidr.contains(*ip))
                    && !found.iter().any(|b| b.block.cidr == st.block.cidr)
                {
                    found.push(st);
                }
            }
        }
        Ok(found)
    }

    // --- cache -------------------------------------------------------------------------

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn cached_block(&self, cidr: &IpNet) -> Option<BlockState> {
        self.cache().blocks.get(cidr).cloned()
    }

    /// Free addresses in the cached copy of a block (without copying it).
    pub(crate) fn cached_free_count(&self, cidr: &IpNet) -> Option<usize> {
        self.cache()
            .blocks
            .get(cidr)
            .map(|st| st.block.free_count())
    }

    pub(crate) fn cached_handle(&self, id: &str) -> Option<HandleState> {
        self.cache().handles.get(id).cloned()
    }

    pub(crate) fn hot_block(&self, host: &str, version: u8) -> Option<IpNet> {
        self.cache().hot.get(&(host.to_string(), version)).copied()
    }

    /// Records what a committed transaction wrote (all its keys now have `revision`).
    pub(crate) fn remember(
        &self,
        block: Option<(&AllocationBlock, bool)>,
        handles: &[&HandleState],
        revision: i64,
    ) {
        let mut c = self.cache();
        if c.blocks.len() > CACHE_LIMIT {
            c.blocks.clear();
        }
        if c.handles.len() > CACHE_LIMIT {
            c.handles.clear();
        }
        if let Some((b, deleted)) = block {
            if deleted {
                c.blocks.remove(&b.cidr);
            } else {
                c.blocks.insert(
                    b.cidr,
                    BlockState {
                        block: b.clone(),
                        mod_revision: revision,
                    },
                );
            }
        }
        for h in handles {
            if h.handle.is_empty() {
                c.handles.remove(&h.id);
            } else {
                let mut h = (*h).clone();
                h.mod_revision = revision;
                c.handles.insert(h.id.clone(), h);
            }
        }
    }

    /// Caches a block just read (the next write is guarded by its revision like any other).
    pub(crate) fn remember_read_block(&self, st: BlockState) {
        let mut c = self.cache();
        if c.blocks.len() > CACHE_LIMIT {
            c.blocks.clear();
        }
        c.blocks.insert(st.block.cidr, st);
    }

    fn remember_read_handle(&self, h: HandleState) {
        let mut c = self.cache();
        if c.handles.len() > CACHE_LIMIT {
            c.handles.clear();
        }
        c.handles.insert(h.id.clone(), h);
    }

    /// Cached copies of the blocks of `version` affine to `host`.
    pub(crate) fn cached_affine_blocks(&self, host: &str, version: u8) -> Vec<BlockState> {
        self.cache()
            .blocks
            .values()
            .filter(|st| {
                crate::keys::family(&st.block.cidr) == version && st.block.is_affine_to(host)
            })
            .cloned()
            .collect()
    }

    /// The blocks among `cached` still at their cached revision, found by one read-only
    /// transaction of revision compares per chunk: no block value is transferred, so a
    /// node's full blocks are re-checked at the cost of one small request.
    pub(crate) async fn still_current(&self, cached: &[BlockState]) -> Result<HashSet<IpNet>> {
        let checks = cached.chunks(TXN_OPS).map(|chunk| async move {
            let ops = chunk
                .iter()
                .map(|st| TxnOp::CheckRevision {
                    key: block_key(&st.block.cidr),
                    mod_revision: st.mod_revision,
                })
                .collect();
            match self.ds.txn(ops).await {
                Ok(_) => Ok(HashSet::new()),
                Err(DatastoreError::Conflict { keys }) => Ok(keys.into_iter().collect()),
                Err(e) => Err(IpamError::from(e)),
            }
        });
        let changed: HashSet<String> = futures::future::try_join_all(checks)
            .await?
            .into_iter()
            .flatten()
            .collect();
        Ok(cached
            .iter()
            .map(|st| st.block.cidr)
            .filter(|c| !changed.contains(&block_key(c)))
            .collect())
    }

    /// A cached block holding `ip`, if any.
    pub(crate) fn cached_block_of(&self, ip: std::net::IpAddr) -> Option<IpNet> {
        self.cache()
            .blocks
            .keys()
            .find(|c| c.contains(&ip))
            .copied()
    }

    pub(crate) fn set_hot(&self, host: &str, cidr: IpNet) {
        self.cache()
            .hot
            .insert((host.to_string(), crate::keys::family(&cidr)), cidr);
    }

    pub(crate) fn forget_block(&self, cidr: &IpNet) {
        let mut c = self.cache();
        c.blocks.remove(cidr);
        c.hot.retain(|_, v| v != cidr);
    }

    pub(crate) fn forget_handle(&self, id: &str) {
        self.cache().handles.remove(id);
    }
}
