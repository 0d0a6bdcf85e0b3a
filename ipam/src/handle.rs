//! Handles (`/calico/ipam/v2/handle/<id>`): per owner (e.g. `k8s-pod-network.<cid>`), how
//! many addresses it holds in which block. A handle is written in the same etcd transaction
//! as the block change it accounts for.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use config::datastore::{Kv, TxnOp};

use crate::error::{IpamError, Result};
use crate::keys::handle_key;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct IpamHandle {
    /// Block CIDR -> number of addresses of this handle in that block.
    #[serde(default)]
    pub block: BTreeMap<String, u64>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl IpamHandle {
    pub fn increment(&mut self, block: &IpNet, n: u64) {
        *self.block.entry(block.to_string()).or_default() += n;
    }

    /// Subtracts `n` (saturating; a handle that undercounts is reported by `check`).
    pub fn decrement(&mut self, block: &IpNet, n: u64) {
        let key = block.to_string();
        if let Some(c) = self.block.get_mut(&key) {
            *c = c.saturating_sub(n);
            if *c == 0 {
                self.block.remove(&key);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.block.values().all(|c| *c == 0)
    }

    pub fn blocks(&self) -> impl Iterator<Item = (IpNet, u64)> + '_ {
        self.block
            .iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, *v)))
    }
}

/// A handle as read, with the revision that guards its update (0 = absent).
#[derive(Clone, Debug, Default)]
pub struct HandleState {
    pub id: String,
    pub handle: IpamHandle,
    pub mod_revision: i64,
}

impl HandleState {
    pub fn absent(id: &str) -> HandleState {
        HandleState {
            id: id.to_string(),
            handle: IpamHandle::default(),
            mod_revision: 0,
        }
    }

    pub fn from_kv(id: &str, kv: Option<Kv>) -> Result<HandleState> {
        match kv {
            None => Ok(HandleState::absent(id)),
            Some(kv) => Ok(HandleState {
                id: id.to_string(),
                handle: decode(&kv.key, &kv.value)?,
                mod_revision: kv.mod_revision,
            }),
        }
    }

    /// The transaction step writing this handle: create when it was absent, delete when it
    /// holds nothing any more, else update; each guarded by the revision read.
    pub fn write_op(&self) -> TxnOp {
        let key = handle_key(&self.id);
        match (self.mod_revision, self.handle.is_empty()) {
            (0, true) => TxnOp::CheckRevision {
                key,
                mod_revision: 0,
            },
            (0, false) => TxnOp::Create {
                key,
                value: encode(&self.handle),
            },
            (rev, true) => TxnOp::Delete {
                key,
                mod_revision: Some(rev),
            },
            (rev, false) => TxnOp::Update {
                key,
                value: encode(&self.handle),
                mod_revision: rev,
            },
        }
    }
}

pub fn decode<T: serde::de::DeserializeOwned>(key: &str, value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|e| IpamError::Decode {
        key: key.to_string(),
        message: e.to_string(),
    })
}

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("IPAM types serialize infallibly")
}
