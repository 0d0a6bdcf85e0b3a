//! Consistency check over all IPAM data (`calicoctl ipam check`): blocks, affinities and
//! handles must agree with each other, and every allocation should belong to a live
//! workload (the caller supplies which addresses and handles are in use).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::affinity::AffinityState;
use crate::handle::decode;
use crate::keys::{HANDLE_PREFIX, parse_handle_key};
use crate::{Ipam, IpamHandle, Result};

/// What the caller knows to be in use (from WorkloadEndpoints, tunnel addresses...). An
/// allocation is in use when its address or its handle is listed.
#[derive(Clone, Debug, Default)]
pub struct InUse {
    pub ips: BTreeSet<IpAddr>,
    pub handles: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Problem {
    /// A block's arrays disagree (bad indices, ordinals lost or duplicated).
    InvalidBlock { block: IpNet, detail: String },
    /// The block says `host:<h>` but `h` has no confirmed affinity key for it.
    BlockAffinityMissing { block: IpNet, host: String },
    /// A confirmed affinity for a block that does not exist or belongs to another host.
    DanglingAffinity {
        block: IpNet,
        host: String,
        block_owner: Option<String>,
    },
    /// An affinity stuck in pending or pendingDeletion (a claim or release was interrupted).
    UnfinishedAffinity {
        block: IpNet,
        host: String,
        state: AffinityState,
    },
    /// An address allocated to a handle that has no handle record.
    HandleMissing { ip: IpAddr, handle: String },
    /// An allocation without any handle.
    NoHandle { ip: IpAddr },
    /// A handle's count for a block differs from the block's allocations.
    HandleCountMismatch {
        handle: String,
        block: IpNet,
        handle_count: u64,
        block_count: u64,
    },
    /// A handle record that holds no address.
    EmptyHandle { handle: String },
    /// An allocation that no workload uses.
    LeakedIp { ip: IpAddr, handle: Option<String> },
    /// A value that does not decode.
    Undecodable { key: String, message: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub blocks: usize,
    pub affinities: usize,
    pub handles: usize,
    pub allocated_ips: usize,
    pub problems: Vec<Problem>,
}

impl CheckReport {
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Ipam {
    /// Reads all IPAM data and reports every inconsistency. `in_use = None` skips the leak
    /// check.
    pub async fn check(&self, in_use: Option<&InUse>) -> Result<CheckReport> {
        let mut r = CheckReport::default();
        let mut blocks = Vec::new();
        for v in [4, 6] {
            blocks.extend(self.list_all_blocks(v).await?);
        }
        let affinities = self.all_affinities().await?;
        let (handle_kvs, _) = self.ds.list_raw(HANDLE_PREFIX).await?;
        r.blocks = blocks.len();
        r.affinities = affinities.len();

        let mut handles: BTreeMap<String, IpamHandle> = BTreeMap::new();
        for kv in handle_kvs {
            let Some(id) = parse_handle_key(&kv.key) else {
                continue;
            };
            match decode::<IpamHandle>(&kv.key, &kv.value) {
                Ok(h) => {
                    handles.insert(id.to_string(), h);
                }
                Err(e) => r.problems.push(Problem::Undecodable {
                    key: kv.key.clone(),
                    message: e.to_string(),
                }),
            }
        }
        r.handles = handles.len();

        let confirmed: BTreeSet<(String, IpNet)> = affinities
            .iter()
            .filter(|a| a.state == AffinityState::Confirmed)
            .map(|a| (a.host.clone(), a.cidr))
            .collect();
        let owners: BTreeMap<IpNet, Option<String>> = blocks
            .iter()
            .map(|s| (s.block.cidr, s.block.host().map(str::to_string)))
            .collect();

        // Per handle per block, as the blocks see it.
        let mut counted: BTreeMap<(String, IpNet), u64> = BTreeMap::new();
        for st in &blocks {
            let b = &st.block;
            for detail in b.structural_problems() {
                r.problems.push(Problem::InvalidBlock {
                    block: b.cidr,
                    detail,
                });
            }
            if let Some(h) = b.host()
                && !confirmed.contains(&(h.to_string(), b.cidr))
            {
                r.problems.push(Problem::BlockAffinityMissing {
                    block: b.cidr,
                    host: h.to_string(),
                });
            }
            for o in 0..b.num_addresses() {
                if b.allocations[o].is_none() {
                    continue;
                }
                r.allocated_ips += 1;
                let ip = b.ip_at(o);
                let handle = b
                    .attribute_of(o)
                    .and_then(|a| a.handle())
                    .map(str::to_string);
                match &handle {
                    None => r.problems.push(Problem::NoHandle { ip }),
                    Some(h) => {
                        *counted.entry((h.clone(), b.cidr)).or_default() += 1;
                        if !handles.contains_key(h) {
                            r.problems.push(Problem::HandleMissing {
                                ip,
                                handle: h.clone(),
                            });
                        }
                    }
                }
                if let Some(used) = in_use
                    && !used.ips.contains(&ip)
                    && !handle.as_ref().is_some_and(|h| used.handles.contains(h))
                {
                    r.problems.push(Problem::LeakedIp { ip, handle });
                }
            }
        }
        for a in &affinities {
            match a.state {
                AffinityState::Confirmed => {
                    let owner = owners.get(&a.cidr);
                    if owner.is_none_or(|o| o.as_deref() != Some(a.host.as_str())) {
                        r.problems.push(Problem::DanglingAffinity {
                            block: a.cidr,
                            host: a.host.clone(),
                            block_owner: owner.cloned().flatten(),
                        });
                    }
                }
                state => r.problems.push(Problem::UnfinishedAffinity {
                    block: a.cidr,
                    host: a.host.clone(),
                    state,
                }),
            }
        }
        for (id, h) in &handles {
            if h.is_empty() {
                r.problems.push(Problem::EmptyHandle { handle: id.clone() });
            }
            for (cidr, n) in h.blocks() {
                let have = counted.get(&(id.clone(), cidr)).copied().unwrap_or(0);
                if have != n {
                    r.problems.push(Problem::HandleCountMismatch {
                        handle: id.clone(),
                        block: cidr,
                        handle_count: n,
                        block_count: have,
                    });
                }
            }
        }
        for ((id, cidr), n) in &counted {
            let recorded = handles.get(id).map(|h| h.blocks().any(|(c, _)| c == *cidr));
            if recorded == Some(false) {
                r.problems.push(Problem::HandleCountMismatch {
                    handle: id.clone(),
                    block: *cidr,
                    handle_count: 0,
                    block_count: *n,
                });
            }
        }
        Ok(r)
    }
}
