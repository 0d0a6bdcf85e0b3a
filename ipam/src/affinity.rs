//! Block affinities (`/calico/ipam/v2/host/<node>/ipvN/block/<cidr>`): which node owns which
//! block. States pending -> confirmed -> pendingDeletion; only `confirmed` is ownership.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use ipnet::IpNet;

use config::datastore::{DatastoreError, Kv, TxnOp};

use crate::Ipam;
use crate::error::{IpamError, Result};
use crate::handle::{decode, encode};
use crate::keys::{affinity_key, host_affinity_prefix, parse_affinity_key};
use crate::retry::{Retries, is_conflict};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum AffinityState {
    /// Written before the block is claimed; Calico treats an empty state as pending too.
    #[default]
    #[serde(alias = "")]
    Pending,
    Confirmed,
    PendingDeletion,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockAffinity {
    #[serde(default)]
    pub state: AffinityState,
    #[serde(default)]
    pub deleted: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl BlockAffinity {
    pub fn new(state: AffinityState) -> BlockAffinity {
        BlockAffinity {
            state,
            deleted: false,
            extra: Map::new(),
        }
    }
}

/// An affinity as read from etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffinityEntry {
    pub host: String,
    pub cidr: IpNet,
    pub state: AffinityState,
    pub mod_revision: i64,
}

/// Outcome of `claim_affinity` over a CIDR.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClaimResult {
    pub claimed: Vec<IpNet>,
    /// Blocks that exist and belong to another host.
    pub failed: Vec<IpNet>,
}

impl Ipam {
    /// Affinities of `host` for one address family.
    pub async fn host_affinities(&self, host: &str, version: u8) -> Result<Vec<AffinityEntry>> {
        let (kvs, _) = self
            .ds
            .list_raw(&host_affinity_prefix(host, version))
            .await?;
        affinity_entries(kvs)
    }
}

/// Affinity entries from the keys under a host's affinity prefix (others are skipped).
pub(crate) fn affinity_entries(kvs: Vec<Kv>) -> Result<Vec<AffinityEntry>> {
    let mut out = Vec::with_capacity(kvs.len());
    for kv in kvs {
        let Some((host, cidr)) = parse_affinity_key(&kv.key) else {
            continue;
        };
        let a: BlockAffinity = decode(&kv.key, &kv.value)?;
        out.push(AffinityEntry {
            host,
            cidr,
            state: a.state,
            mod_revision: kv.mod_revision,
        });
    }
    Ok(out)
}

impl Ipam {
    /// Every affinity of every host (for `check`).
    pub async fn all_affinities(&self) -> Result<Vec<AffinityEntry>> {
        let (kvs, _) = self.ds.list_raw(crate::keys::HOST_PREFIX).await?;
        affinity_entries(kvs)
    }

    pub(crate) async fn read_affinity(
        &self,
        host: &str,
        cidr: &IpNet,
    ) -> Result<Option<AffinityEntry>> {
        let key = affinity_key(host, cidr);
        Ok(match self.ds.get_raw(&key).await? {
            None => None,
            Some(kv) => {
                let a: BlockAffinity = decode(&key, &kv.value)?;
                Some(AffinityEntry {
                    host: host.to_string(),
                    cidr: *cidr,
                    state: a.state,
                    mod_revision: kv.mod_revision,
                })
            }
        })
    }

    /// Makes the affinity of `host` to `cidr` confirmed, whatever state (or absence) it had.
    /// Used once the block is known to carry `affinity: host:<host>`.
    pub(crate) async fn ensure_confirmed(&self, host: &str, cidr: &IpNet) -> Result<()> {
        let key = affinity_key(host, cidr);
        let value = encode(&BlockAffinity::new(AffinityState::Confirmed));
        let mut retries = Retries::new();
        while retries.next().await {
            let res = match self.read_affinity(host, cidr).await? {
                Some(a) if a.state == AffinityState::Confirmed => return Ok(()),
                Some(a) => {
                    self.ds
                        .update_raw(&key, value.clone(), a.mod_revision)
                        .await
                }
                None => self.ds.create_raw(&key, value.clone()).await,
            };
            match res {
                Ok(_) => {
                    tracing::info!(host, block = %cidr, "confirmed block affinity");
                    return Ok(());
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(IpamError::TooManyConflicts {
            what: format!("confirm affinity {key}"),
            attempts: retries.attempts(),
        })
    }

    /// Deletes one affinity if it is still at `mod_revision`; a concurrent change wins.
    pub(crate) async fn delete_affinity_if_unchanged(
        &self,
        host: &str,
        cidr: &IpNet,
        mod_revision: i64,
    ) -> Result<()> {
        match self
            .ds
            .delete_raw(&affinity_key(host, cidr), Some(mod_revision))
            .await
        {
            Ok(()) | Err(DatastoreError::NotFound { .. }) => Ok(()),
            Err(e) if e.is_conflict() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Claims every block of the pool's block size inside `cidr` for `host` (calicoctl
    /// `ipam claim`); blocks owned by other hosts are reported in `failed`.
    pub async fn claim_affinity(&self, cidr: IpNet, host: &str) -> Result<ClaimResult> {
        if host.is_empty() {
            return Err(IpamError::Empty { what: "host" });
        }
        let pools = self.all_pools().await?;
        let pool = pools
            .iter()
            .find(|p| p.cidr.contains(&cidr) && cidr.prefix_len() <= p.block_size)
            .ok_or(IpamError::NotInPool { ip: cidr.network() })?;
        let mut out = ClaimResult::default();
        let sub = crate::PoolSpec::new(cidr, pool.block_size);
        for i in 0..sub.num_blocks() {
            let block = sub.nth_block(i);
            if self.try_claim(&block, host).await? {
                out.claimed.push(block);
            } else {
                out.failed.push(block);
            }
        }
        Ok(out)
    }

    /// Removes `host`'s affinity to `block`. An empty block is deleted; a non-empty one loses
    /// its affinity (its addresses stay allocated) unless `require_empty` refuses.
    pub async fn release_affinity(
        &self,
        block: IpNet,
        host: &str,
        require_empty: bool,
    ) -> Result<()> {
        self.release_affinity_inner(block, host, require_empty, None)
            .await
    }

    /// Releases every affinity of `host` (node removal), returning the blocks released.
    pub async fn release_host_affinities(
        &self,
        host: &str,
        require_empty: bool,
    ) -> Result<Vec<IpNet>> {
        let mut done = Vec::new();
        for v in [4, 6] {
            for a in self.host_affinities(host, v).await? {
                match self.release_affinity(a.cidr, host, require_empty).await {
                    Ok(()) => done.push(a.cidr),
                    Err(IpamError::BlockNotEmpty { .. }) if require_empty => {}
                    Err(IpamError::AffinityMismatch { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(done)
    }

    /// `required_seq`: abort unless the block still has this sequence number (reclaiming an
    /// empty block must not free one that its owner just started using).
    pub(crate) async fn release_affinity_inner(
        &self,
        cidr: IpNet,
        host: &str,
        require_empty: bool,
        required_seq: Option<u64>,
    ) -> Result<()> {
        let mut retries = Retries::new();
        while retries.next().await {
            let Some(aff) = self.read_affinity(host, &cidr).await? else {
                return Err(IpamError::AffinityMismatch {
                    block: cidr,
                    host: host.into(),
                    affinity: "none".into(),
                });
            };
            let aff_key = affinity_key(host, &cidr);
            let Some(mut st) = self.read_block(&cidr).await? else {
                // The block is gone: the affinity is stale.
                self.delete_affinity_if_unchanged(host, &cidr, aff.mod_revision)
                    .await?;
                return Ok(());
            };
            if required_seq.is_some_and(|s| s != st.block.sequence_number) {
                return Err(IpamError::TooManyConflicts {
                    what: format!("reclaim of block {cidr}"),
                    attempts: 1,
                });
            }
            if !st.block.is_affine_to(host) {
                self.delete_affinity_if_unchanged(host, &cidr, aff.mod_revision)
                    .await?;
                return Err(IpamError::AffinityMismatch {
                    block: cidr,
                    host: host.into(),
                    affinity: st.block.affinity.clone().unwrap_or_else(|| "none".into()),
                });
            }
            if require_empty && !st.block.is_empty() {
                return Err(IpamError::BlockNotEmpty {
                    block: cidr,
                    in_use: st.block.in_use(),
                });
            }
            // One transaction for block and affinity: no window where a block points at a
            // host without the matching affinity key (Calico needs three writes here).
            let block_op = if st.block.is_empty() {
                TxnOp::Delete {
                    key: crate::keys::block_key(&cidr),
                    mod_revision: Some(st.mod_revision),
                }
            } else {
                st.block.affinity = None;
                st.block.host_affinity = None;
                st.block.affinity_claim_time = None;
                st.block.bump_sequence();
                st.update_op()
            };
            let ops = vec![
                block_op,
                TxnOp::Delete {
                    key: aff_key,
                    mod_revision: Some(aff.mod_revision),
                },
            ];
            match self.ds.txn(ops).await {
                Ok(_) => {
                    self.forget_block(&cidr);
                    tracing::info!(host, block = %cidr, "released block affinity");
                    return Ok(());
                }
                Err(e) => {
                    let e = IpamError::from(e);
                    if !is_conflict(&e) {
                        return Err(e);
                    }
                }
            }
        }
        Err(IpamError::TooManyConflicts {
            what: format!("release affinity of {cidr} for {host}"),
            attempts: retries.attempts(),
        })
    }
}
