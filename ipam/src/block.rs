//! An allocation block (`/calico/ipam/v2/assignment/ipvN/block/<cidr>`): Calico's JSON,
//! address <-> ordinal math, and the pure allocate/release operations inside one block.
//!
//! `unallocated` is a FIFO like Calico's: allocation pops from the front, release appends
//! at the back, so the address that has been free longest is reused first.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::pool::{addr_to_u128, net_size, u128_to_addr};

/// Prefix of the `affinity` field for host affinities (`host:<node>`).
pub const HOST_AFFINITY_PREFIX: &str = "host:";
/// Calico pre-allocates some addresses of Windows blocks under this handle; they do not
/// make a block non-empty.
pub const WINDOWS_RESERVED_HANDLE: &str = "windows-reserved-ipam-handle";

/// Go writes a nil slice or map as `null`; read that as empty.
fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Metadata of one allocation: the owning handle and free-form attributes (pod, namespace,
/// node...). Several ordinals share one entry when handle and attributes are equal.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct AllocationAttribute {
    #[serde(rename = "handle_id", default)]
    pub handle_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub secondary: BTreeMap<String, String>,
    /// Fields newer Calico versions write (e.g. `alternate`), kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AllocationAttribute {
    /// The handle with Calico's sanitation: host-local migrations wrote handles with a
    /// trailing `\r...` (projectcalico/cni-plugin#821).
    pub fn handle(&self) -> Option<&str> {
        self.handle_id
            .as_deref()
            .map(|h| h.split('\r').next().unwrap_or(h))
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AllocationBlock {
    pub cidr: IpNet,
    /// `host:<node>` when the block is affine to a node; `null` otherwise.
    #[serde(default)]
    pub affinity: Option<String>,
    /// Per ordinal: index into `attributes`, or `null` when free.
    #[serde(default, deserialize_with = "null_as_default")]
    pub allocations: Vec<Option<usize>>,
    /// Free ordinals, FIFO.
    #[serde(default, deserialize_with = "null_as_default")]
    pub unallocated: Vec<usize>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attributes: Vec<AllocationAttribute>,
    /// Bumped on every write of the block.
    #[serde(default)]
    pub sequence_number: u64,
    /// Ordinal (as a decimal string) -> block sequence number when it was allocated.
    #[serde(default, deserialize_with = "null_as_default")]
    pub sequence_number_for_allocation: BTreeMap<String, u64>,
    #[serde(default)]
    pub deleted: bool,
    /// RFC 3339 time of the claim (newer Calico); gates reclaiming empty blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_claim_time: Option<String>,
    /// Deprecated form of `affinity` (bare host name) that old Calico wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_affinity: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A release request resolved to an ordinal of this block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrdinalRelease {
    pub ordinal: usize,
    pub sequence_number: Option<u64>,
    pub handle: Option<String>,
}

/// Why a release inside a block was refused as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseRefused {
    StaleSequence {
        ordinal: usize,
        requested: u64,
        current: u64,
    },
    WrongHandle {
        ordinal: usize,
        requested: String,
        current: String,
    },
}

/// Effect of a release on a block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Released {
    pub ordinals: Vec<usize>,
    /// Requested ordinals that were already free.
    pub not_allocated: Vec<usize>,
    /// Released addresses per handle, for the handle update in the same transaction.
    pub by_handle: BTreeMap<String, u64>,
}

impl AllocationBlock {
    /// A fresh block with every ordinal free, in ascending order.
    pub fn new(cidr: IpNet, host: Option<&str>, sequence_number: u64) -> AllocationBlock {
        let cidr = cidr.trunc();
        let n = usize::try_from(net_size(&cidr)).expect("block size validated by the pool");
        AllocationBlock {
            cidr,
            affinity: host.map(|h| format!("{HOST_AFFINITY_PREFIX}{h}")),
            allocations: vec![None; n],
            unallocated: (0..n).collect(),
            attributes: Vec::new(),
            sequence_number,
            sequence_number_for_allocation: BTreeMap::new(),
            deleted: false,
            affinity_claim_time: None,
            host_affinity: None,
            extra: Map::new(),
        }
    }

    pub fn num_addresses(&self) -> usize {
        self.allocations.len()
    }

    pub fn ordinal_of(&self, ip: IpAddr) -> Option<usize> {
        if !self.cidr.contains(&ip) {
            return None;
        }
        let ord = addr_to_u128(ip) - addr_to_u128(self.cidr.network());
        usize::try_from(ord)
            .ok()
            .filter(|o| *o < self.num_addresses())
    }

    pub fn ip_at(&self, ordinal: usize) -> IpAddr {
        u128_to_addr(
            self.cidr.network(),
            addr_to_u128(self.cidr.network()) + ordinal as u128,
        )
    }

    /// The node this block is affine to, from `affinity` (or the deprecated `hostAffinity`).
    pub fn host(&self) -> Option<&str> {
        match &self.affinity {
            Some(a) => a.strip_prefix(HOST_AFFINITY_PREFIX),
            None => self.host_affinity.as_deref(),
        }
    }

    pub fn is_affine_to(&self, host: &str) -> bool {
        self.host() == Some(host)
    }

    pub fn free_count(&self) -> usize {
        self.unallocated.len()
    }

    pub fn in_use(&self) -> usize {
        self.allocations.iter().filter(|a| a.is_some()).count()
    }

    /// No address in use apart from Calico's Windows reservations.
    pub fn is_empty(&self) -> bool {
        self.allocations.iter().flatten().all(|i| {
            self.attributes
                .get(*i)
                .and_then(|a| a.handle())
                .is_some_and(|h| h.eq_ignore_ascii_case(WINDOWS_RESERVED_HANDLE))
        })
    }

    pub fn attribute_of(&self, ordinal: usize) -> Option<&AllocationAttribute> {
        self.allocations
            .get(ordinal)
            .copied()
            .flatten()
            .and_then(|i| self.attributes.get(i))
    }

    pub fn sequence_of(&self, ordinal: usize) -> u64 {
        self.sequence_number_for_allocation
            .get(&ordinal.to_string())
            .copied()
            .unwrap_or(0)
    }

    /// Called before every write, as Calico's block writer does, so that an ordinal that is
    /// released and allocated again gets a different allocation sequence number.
    pub fn bump_sequence(&mut self) {
        self.sequence_number = self.sequence_number.wrapping_add(1);
    }

    fn find_or_add_attribute(&mut self, handle: &str, attrs: &BTreeMap<String, String>) -> usize {
        if let Some(i) = self
            .attributes
            .iter()
            .position(|a| a.handle() == Some(handle) && a.secondary == *attrs && a.extra.is_empty())
        {
            return i;
        }
        self.attributes.push(AllocationAttribute {
            handle_id: Some(handle.to_string()),
            secondary: attrs.clone(),
            extra: Map::new(),
        });
        self.attributes.len() - 1
    }

    /// Takes up to `num` free ordinals from the front of the FIFO for `handle`.
    pub fn auto_assign(
        &mut self,
        num: usize,
        handle: &str,
        attrs: &BTreeMap<String, String>,
    ) -> Vec<usize> {
        let take = num.min(self.unallocated.len());
        if take == 0 {
            return Vec::new();
        }
        let idx = self.find_or_add_attribute(handle, attrs);
        let ordinals: Vec<usize> = self.unallocated.drain(..take).collect();
        // Callers only use structurally sound blocks (see Ipam::read_block); an ordinal out
        // of range is still never trusted.
        let ordinals: Vec<usize> = ordinals
            .into_iter()
            .filter(|&o| match self.allocations.get_mut(o) {
                Some(slot) => {
                    *slot = Some(idx);
                    true
                }
                None => false,
            })
            .collect();
        for &o in &ordinals {
            self.sequence_number_for_allocation
                .insert(o.to_string(), self.sequence_number);
        }
        ordinals
    }

    /// Allocates one specific ordinal; `false` when it is already in use.
    pub fn assign(
        &mut self,
        ordinal: usize,
        handle: &str,
        attrs: &BTreeMap<String, String>,
    ) -> bool {
        if self.allocations.get(ordinal).is_none_or(|a| a.is_some()) {
            return false;
        }
        let idx = self.find_or_add_attribute(handle, attrs);
        self.allocations[ordinal] = Some(idx);
        self.unallocated.retain(|o| *o != ordinal);
        self.sequence_number_for_allocation
            .insert(ordinal.to_string(), self.sequence_number);
        true
    }

    /// Releases the requested ordinals. A stale sequence number or a handle mismatch refuses
    /// the whole request (the caller acted on outdated information).
    pub fn release(&mut self, reqs: &[OrdinalRelease]) -> Result<Released, ReleaseRefused> {
        let mut out = Released::default();
        let mut seen = BTreeSet::new();
        for r in reqs {
            if !seen.insert(r.ordinal) {
                continue;
            }
            let Some(attr) = self.attribute_of(r.ordinal) else {
                out.not_allocated.push(r.ordinal);
                continue;
            };
            let current_seq = self.sequence_of(r.ordinal);
            if let Some(seq) = r.sequence_number.filter(|s| *s != current_seq) {
                return Err(ReleaseRefused::StaleSequence {
                    ordinal: r.ordinal,
                    requested: seq,
                    current: current_seq,
                });
            }
            let owner = attr.handle().unwrap_or_default().to_string();
            if let Some(h) = r.handle.as_ref().filter(|h| **h != owner) {
                return Err(ReleaseRefused::WrongHandle {
                    ordinal: r.ordinal,
                    requested: h.clone(),
                    current: owner,
                });
            }
            if !owner.is_empty() {
                *out.by_handle.entry(owner).or_default() += 1;
            }
            out.ordinals.push(r.ordinal);
        }
        self.free_ordinals(&out.ordinals);
        Ok(out)
    }

    /// Releases every ordinal of `handle` (skipping those whose allocation sequence number
    /// differs from `sequence_number`, when given).
    pub fn release_by_handle(&mut self, handle: &str, sequence_number: Option<u64>) -> Released {
        let ordinals: Vec<usize> = (0..self.num_addresses())
            .filter(|&o| self.attribute_of(o).and_then(|a| a.handle()) == Some(handle))
            .filter(|&o| sequence_number.is_none_or(|s| s == self.sequence_of(o)))
            .collect();
        let mut out = Released::default();
        if !ordinals.is_empty() {
            out.by_handle
                .insert(handle.to_string(), ordinals.len() as u64);
        }
        self.free_ordinals(&ordinals);
        out.ordinals = ordinals;
        out
    }

    /// Frees ordinals (appending them to the FIFO) and drops attributes no longer referenced,
    /// renumbering the remaining references.
    fn free_ordinals(&mut self, ordinals: &[usize]) {
        for &o in ordinals {
            self.allocations[o] = None;
            self.unallocated.push(o);
            self.sequence_number_for_allocation.remove(&o.to_string());
        }
        let used: BTreeSet<usize> = self.allocations.iter().flatten().copied().collect();
        if used.len() == self.attributes.len() {
            return;
        }
        let mut remap = vec![None; self.attributes.len()];
        let mut kept = Vec::with_capacity(used.len());
        for (i, a) in std::mem::take(&mut self.attributes).into_iter().enumerate() {
            if used.contains(&i) {
                remap[i] = Some(kept.len());
                kept.push(a);
            }
        }
        self.attributes = kept;
        for slot in self.allocations.iter_mut() {
            // A dangling index (corrupt input) has nothing to keep: the slot becomes free
            // of attributes rather than pointing at someone else's.
            *slot = slot.and_then(|a| remap.get(a).copied().flatten());
        }
    }

    /// Addresses in use per handle (for handle consistency checks).
    pub fn count_by_handle(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for o in 0..self.num_addresses() {
            if let Some(h) = self.attribute_of(o).and_then(|a| a.handle()) {
                *m.entry(h.to_string()).or_default() += 1;
            }
        }
        m
    }

    /// Structural problems: wrong array sizes, dangling attribute indices, ordinals both
    /// free and allocated, or neither.
    pub fn structural_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let n = usize::try_from(net_size(&self.cidr)).unwrap_or(usize::MAX);
        if self.allocations.len() != n {
            p.push(format!(
                "allocations has {} entries, block {} has {n} addresses",
                self.allocations.len(),
                self.cidr
            ));
        }
        for (o, a) in self.allocations.iter().enumerate() {
            if let Some(i) = a.filter(|i| *i >= self.attributes.len()) {
                p.push(format!(
                    "allocations[{o}]={i} but there are {} attributes",
                    self.attributes.len()
                ));
            }
        }
        let mut free = BTreeSet::new();
        for &o in &self.unallocated {
            if o >= self.allocations.len() {
                p.push(format!("unallocated holds ordinal {o} outside the block"));
            } else if !free.insert(o) {
                p.push(format!("unallocated holds ordinal {o} twice"));
            } else if self.allocations[o].is_some() {
                p.push(format!("ordinal {o} is both allocated and unallocated"));
            }
        }
        for (o, a) in self.allocations.iter().enumerate() {
            if a.is_none() && !free.contains(&o) {
                p.push(format!(
                    "ordinal {o} is neither allocated nor in unallocated"
                ));
            }
        }
        p
    }
}

#[cfg(test)]
#[path = "block_tests.rs"]
mod tests;
