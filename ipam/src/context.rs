//! What an allocation reads before it touches a block, in one round trip: the host's
//! affinities and the IPAM config, and as needed the IPPools, the host's Node (for the
//! pools' node selectors) and the block the host's hint names.

use std::collections::BTreeMap;

use ipnet::IpNet;

use config::datastore::{Read, decode_resource, resource_key, resource_prefix};
use config::model::{IPPool, Node};

use crate::Ipam;
use crate::affinity::{AffinityEntry, affinity_entries};
use crate::config::IpamConfig;
use crate::error::Result;
use crate::keys::{CONFIG_KEY, block_key, host_affinity_prefix};
use crate::pool::PoolSpec;
use crate::store::{BlockState, pool_specs, usable_block};

/// Which optional parts to read.
#[derive(Default)]
pub(crate) struct Wanted {
    pub pools: bool,
    pub node_labels: bool,
    pub block: Option<IpNet>,
}

pub(crate) struct AllocContext {
    pub affinities: Vec<AffinityEntry>,
    pub config: IpamConfig,
    /// Read when wanted; invalid pools are left out (and logged).
    pub pools: Option<Vec<PoolSpec>>,
    /// Read when wanted; a missing Node has no labels.
    pub node_labels: Option<BTreeMap<String, String>>,
    /// The wanted block, when it exists.
    pub block: Option<BlockState>,
    /// The keys read that the allocation depends on (the IPPools, the Node when read),
    /// with their mod revisions (0: absent), and the IPPools as stored: what the host's
    /// hint records so that the next allocation can do without this read.
    pub guards: Vec<(String, i64)>,
    pub raw_pools: Vec<serde_json::Value>,
}

impl Ipam {
    pub(crate) async fn read_alloc_context(
        &self,
        host: &str,
        version: u8,
        wanted: &Wanted,
    ) -> Result<AllocContext> {
        let affinity_prefix = host_affinity_prefix(host, version);
        let pools_prefix = resource_prefix::<IPPool>(None);
        let node_key = resource_key::<Node>(None, host);
        let block = wanted.block.map(|c| block_key(&c));
        let mut reads = vec![Read::Prefix(&affinity_prefix), Read::Key(CONFIG_KEY)];
        if wanted.pools {
            reads.push(Read::Prefix(&pools_prefix));
        }
        if wanted.node_labels {
            reads.push(Read::Key(&node_key));
        }
        if let Some(k) = &block {
            reads.push(Read::Key(k));
        }
        let mut got = self.ds.read_many(&reads).await?.into_iter();
        let mut next = || got.next().unwrap_or_default();
        let affinities = affinity_entries(next())?;
        let config = crate::config::from_kv(next().into_iter().next())?;
        let mut guards = Vec::new();
        let mut raw_pools = Vec::new();
        let pools = match wanted.pools {
            true => {
                let kvs = next();
                let pools = kvs
                    .iter()
                    .map(decode_resource::<IPPool>)
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                for kv in &kvs {
                    guards.push((kv.key.clone(), kv.mod_revision));
                    raw_pools.push(serde_json::from_slice(&kv.value).unwrap_or_default());
                }
                Some(pool_specs(&pools))
            }
            false => None,
        };
        let node_labels = match wanted.node_labels {
            true => Some(match next().first() {
                Some(kv) => {
                    guards.push((node_key.clone(), kv.mod_revision));
                    decode_resource::<Node>(kv)?.metadata.labels
                }
                None => {
                    guards.push((node_key.clone(), 0));
                    BTreeMap::new()
                }
            }),
            false => None,
        };
        let block = match block {
            Some(_) => next().into_iter().next().map(usable_block).transpose()?,
            None => None,
        };
        Ok(AllocContext {
            affinities,
            config,
            pools,
            node_labels,
            block,
            guards,
            raw_pools,
        })
    }
}
