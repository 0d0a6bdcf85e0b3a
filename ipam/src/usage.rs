//! Address usage per pool and per block (`calicoctl ipam show`).

use ipnet::IpNet;
use serde::Serialize;

use crate::pool::net_size;
use crate::{Ipam, Result};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockUsage {
    pub cidr: IpNet,
    /// Host the block is affine to, if any.
    pub host: Option<String>,
    pub total: u64,
    pub in_use: u64,
    /// The pool the block lies in; `None` for blocks of deleted pools.
    pub pool: Option<IpNet>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolUsage {
    pub cidr: IpNet,
    pub block_size: u8,
    pub disabled: bool,
    /// Addresses in the pool.
    pub total: u128,
    /// Addresses in allocated blocks of the pool.
    pub in_blocks: u128,
    pub in_use: u128,
    pub blocks: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub pools: Vec<PoolUsage>,
    /// Ordered by address (IPv4 first), as calicoctl prints them.
    pub blocks: Vec<BlockUsage>,
}

impl Ipam {
    pub async fn ip_usage(&self) -> Result<Usage> {
        let pools = self.all_pools().await?;
        let mut usage = Usage {
            pools: pools
                .iter()
                .map(|p| PoolUsage {
                    cidr: p.cidr,
                    block_size: p.block_size,
                    disabled: p.disabled,
                    total: net_size(&p.cidr),
                    in_blocks: 0,
                    in_use: 0,
                    blocks: 0,
                })
                .collect(),
            blocks: Vec::new(),
        };
        for v in [4, 6] {
            for st in self.list_all_blocks(v).await? {
                let b = &st.block;
                let pool = pools.iter().position(|p| p.cidr.contains(&b.cidr));
                let bu = BlockUsage {
                    cidr: b.cidr,
                    host: b.host().map(str::to_string),
                    total: b.num_addresses() as u64,
                    in_use: b.in_use() as u64,
                    pool: pool.map(|i| pools[i].cidr),
                };
                if let Some(i) = pool {
                    let pu = &mut usage.pools[i];
                    pu.blocks += 1;
                    pu.in_blocks += u128::from(bu.total);
                    pu.in_use += u128::from(bu.in_use);
                }
                usage.blocks.push(bu);
            }
        }
        // etcd lists keys in byte order ("10.0.0.128-26" before "10.0.0.64-26"); calicoctl
        // prints blocks by address. `IpNet` orders IPv4 before IPv6, then numerically.
        usage.blocks.sort_by_key(|b| b.cidr);
        Ok(usage)
    }
}
