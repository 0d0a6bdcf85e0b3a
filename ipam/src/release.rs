//! Returning addresses: by address (with the sequence number seen at allocation, so a stale
//! release cannot free an address that was re-allocated since) and by handle. The block and
//! every handle it touches change in one transaction.

use std::collections::BTreeMap;
use std::net::IpAddr;

use config::datastore::TxnOp;
use ipnet::IpNet;

use crate::Ipam;
use crate::block::{OrdinalRelease, ReleaseRefused, Released};
use crate::error::{IpamError, Result};
use crate::handle::HandleState;
use crate::keys::block_key;
use crate::retry::{Retries, is_conflict};
use crate::store::BlockState;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseOptions {
    pub ip: IpAddr,
    /// `Assigned::sequence`; when given, release only the allocation it identifies.
    pub sequence_number: Option<u64>,
    /// When given, release only if this handle owns the address.
    pub handle: Option<String>,
}

impl ReleaseOptions {
    pub fn ip(ip: IpAddr) -> ReleaseOptions {
        ReleaseOptions {
            ip,
            sequence_number: None,
            handle: None,
        }
    }
}

impl Ipam {
    /// Releases addresses; returns those that were not allocated. A stale sequence number or
    /// a mismatched handle fails the request for that block without changing it.
    pub async fn release_ips(&self, opts: &[ReleaseOptions]) -> Result<Vec<IpAddr>> {
        let mut by_block: BTreeMap<IpNet, Vec<&ReleaseOptions>> = BTreeMap::new();
        let mut unallocated = Vec::new();
        // Blocks not in the cache (a cold client's case) are read in one round trip with
        // the handles named, and cached for the release that follows.
        let uncached: Vec<&ReleaseOptions> = opts
            .iter()
            .filter(|o| self.cached_block_of(o.ip).is_none())
            .collect();
        if !uncached.is_empty() {
            let ips: Vec<IpAddr> = uncached.iter().map(|o| o.ip).collect();
            let handles: Vec<&str> = uncached
                .iter()
                .filter_map(|o| o.handle.as_deref())
                .filter(|h| self.cached_handle(h).is_none())
                .collect();
            for st in self.blocks_of_ips(&ips, &handles).await? {
                self.remember_read_block(st);
            }
        }
        for o in opts {
            match self.cached_block_of(o.ip) {
                Some(c) => by_block.entry(c).or_default().push(o),
                None => unallocated.push(o.ip),
            }
        }
        for (cidr, reqs) in by_block {
            unallocated.extend(self.release_in_block(&cidr, &reqs).await?);
        }
        Ok(unallocated)
    }

    async fn release_in_block(
        &self,
        cidr: &IpNet,
        reqs: &[&ReleaseOptions],
    ) -> Result<Vec<IpAddr>> {
        let mut cached = true;
        let mut retries = Retries::new();
        while retries.next().await {
            let st = if cached {
                self.cached_block(cidr)
            } else {
                None
            };
            let from_cache = st.is_some();
            let Some(mut st): Option<BlockState> = (match st {
                Some(s) => Some(s),
                None => self.read_block(cidr).await?,
            }) else {
                return Ok(reqs.iter().map(|r| r.ip).collect());
            };
            let mut ords = Vec::with_capacity(reqs.len());
            let mut outside = Vec::new();
            for r in reqs {
                match st.block.ordinal_of(r.ip) {
                    Some(ordinal) => ords.push(OrdinalRelease {
                        ordinal,
                        sequence_number: r.sequence_number,
                        handle: r.handle.clone(),
                    }),
                    None => outside.push(r.ip),
                }
            }
            let released = match st.block.release(&ords) {
                Ok(r) => r,
                Err(refused) if from_cache => {
                    tracing::debug!(?refused, "cached block refused release, re-reading");
                    cached = false;
                    continue;
                }
                Err(ReleaseRefused::StaleSequence {
                    ordinal,
                    requested,
                    current,
                }) => {
                    return Err(IpamError::StaleSequence {
                        ip: st.block.ip_at(ordinal),
                        requested,
                        current,
                    });
                }
                Err(ReleaseRefused::WrongHandle {
                    ordinal,
                    requested,
                    current,
                }) => {
                    return Err(IpamError::WrongHandle {
                        ip: st.block.ip_at(ordinal),
                        requested,
                        current,
                    });
                }
            };
            outside.extend(released.not_allocated.iter().map(|o| st.block.ip_at(*o)));
            if released.ordinals.is_empty() {
                if from_cache {
                    cached = false;
                    continue;
                }
                return Ok(outside);
            }
            match self.commit_release(&mut st, &released, from_cache).await {
                Ok(()) => return Ok(outside),
                Err(e) if is_conflict(&e) => cached = false,
                Err(e) => return Err(e),
            }
        }
        Err(IpamError::TooManyConflicts {
            what: format!("release from block {cidr}"),
            attempts: retries.attempts(),
        })
    }

    /// Writes a block after a release together with the decremented handles. A block with no
    /// affinity that became empty is deleted (nobody would reuse it); an affine one stays.
    async fn commit_release(
        &self,
        st: &mut BlockState,
        released: &Released,
        handles_from_cache: bool,
    ) -> Result<()> {
        let cidr = st.block.cidr;
        let mut handles = Vec::with_capacity(released.by_handle.len());
        for (id, n) in &released.by_handle {
            let mut h = match self.cached_handle(id).filter(|_| handles_from_cache) {
                Some(h) => h,
                None => self.read_handle(id).await?,
            };
            if h.mod_revision == 0 {
                // No handle record (written by a non-transactional client that crashed):
                // nothing to decrement; `check` reports such allocations.
                continue;
            }
            h.handle.decrement(&cidr, *n);
            handles.push(h);
        }
        let delete_block = st.block.affinity.is_none()
            && st.block.host_affinity.is_none()
            && st.block.in_use() == 0;
        st.block.bump_sequence();
        let mut ops = vec![if delete_block {
            TxnOp::Delete {
                key: block_key(&cidr),
                mod_revision: Some(st.mod_revision),
            }
        } else {
            st.update_op()
        }];
        ops.extend(handles.iter().map(HandleState::write_op));
        let rev = self.ds.txn(ops).await?;
        let refs: Vec<&HandleState> = handles.iter().collect();
        self.remember(Some((&st.block, delete_block)), &refs, rev);
        if !delete_block {
            self.refresh_hint(&st.block, rev);
        }
        for h in handles.iter().filter(|h| h.handle.is_empty()) {
            self.forget_handle(&h.id);
        }
        Ok(())
    }

    /// Releases every address of `handle_id`, block by block; returns the addresses freed.
    pub async fn release_by_handle(&self, handle_id: &str) -> Result<Vec<IpAddr>> {
        let mut freed = Vec::new();
        let mut read_once = false;
        let mut retries = Retries::new();
        while retries.next().await {
            let h = self.read_handle(handle_id).await?;
            if h.mod_revision == 0 {
                if read_once {
                    return Ok(freed);
                }
                return Err(IpamError::HandleNotFound {
                    handle: handle_id.to_string(),
                });
            }
            read_once = true;
            let Some((cidr, _)) = h.handle.blocks().next() else {
                // An empty handle record: delete it.
                match self.ds.txn(vec![h.write_op()]).await {
                    Ok(_) => {
                        self.forget_handle(handle_id);
                        return Ok(freed);
                    }
                    Err(e) if e.is_conflict() => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            let block = self.read_block(&cidr).await?;
            let mut h = h;
            let res = match block {
                None => {
                    // The handle points at a block that is gone: drop that entry.
                    let n = h.handle.block.get(&cidr.to_string()).copied().unwrap_or(0);
                    h.handle.decrement(&cidr, n);
                    self.ds
                        .txn(vec![h.write_op()])
                        .await
                        .map(|_| ())
                        .map_err(IpamError::from)
                }
                Some(mut st) => {
                    let released = st.block.release_by_handle(handle_id, None);
                    let n = h.handle.block.get(&cidr.to_string()).copied().unwrap_or(0);
                    // Decrement by what the handle recorded for this block, so that the entry
                    // goes even when block and handle disagree.
                    h.handle
                        .decrement(&cidr, n.max(released.ordinals.len() as u64));
                    let delete_block = st.block.affinity.is_none()
                        && st.block.host_affinity.is_none()
                        && st.block.in_use() == 0;
                    st.block.bump_sequence();
                    let block_op = if delete_block {
                        TxnOp::Delete {
                            key: block_key(&cidr),
                            mod_revision: Some(st.mod_revision),
                        }
                    } else {
                        st.update_op()
                    };
                    match self.ds.txn(vec![block_op, h.write_op()]).await {
                        Ok(rev) => {
                            self.remember(Some((&st.block, delete_block)), &[&h], rev);
                            if !delete_block {
                                self.refresh_hint(&st.block, rev);
                            }
                            freed.extend(released.ordinals.iter().map(|o| st.block.ip_at(*o)));
                            Ok(())
                        }
                        Err(e) => Err(e.into()),
                    }
                }
            };
            match res {
                Ok(()) => {
                    if h.handle.is_empty() {
                        self.forget_handle(handle_id);
                        return Ok(freed);
                    }
                }
                Err(e) if is_conflict(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Err(IpamError::TooManyConflicts {
            what: format!("release handle {handle_id}"),
            attempts: retries.attempts(),
        })
    }

    /// The handle and attributes stored with an allocated address.
    pub async fn get_assignment_attributes(
        &self,
        ip: IpAddr,
    ) -> Result<Option<crate::block::AllocationAttribute>> {
        let Some(st) = self.block_of_ip(ip).await? else {
            return Ok(None);
        };
        Ok(st
            .block
            .ordinal_of(ip)
            .and_then(|o| st.block.attribute_of(o))
            .cloned())
    }
}
