//! The etcd v3 datastore client, speaking Calico's etcdv3 key layout.
//!
//! Three layers:
//! - raw (`get_raw`, `create_raw`, `txn` ...): bytes at keys, every write a transaction
//!   guarded on the key's version or mod revision (IPAM and felix use it directly);
//! - typed (`get`, `create`, `update` ... over [`Resource`](crate::model::Resource)):
//!   the JSON of the full object at its Calico key, `metadata.resourceVersion` being the
//!   etcd mod revision;
//! - watch (`watch_prefix`): ordered events that survive disconnects and compaction by
//!   re-listing and emitting exactly the difference.

mod client;
mod error;
mod failover;
mod keys;
mod raw;
mod resync;
mod typed;
mod watch;

use std::fmt;
use std::path::PathBuf;

pub use client::{Datastore, RequestCounts};
pub use error::{DatastoreError, Result};
pub use keys::{DEFAULT_NAMESPACE, RESOURCE_ROOT, resource_key, resource_prefix};
pub use raw::{Read, TxnOp};
pub use typed::decode_resource;
pub use watch::{WatchEvent, WatchStream};

/// How to reach etcd; built by [`crate::settings`] from the environment and flags.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client URLs, e.g. `["http://127.0.0.1:2379"]`.
    pub endpoints: Vec<String>,
    pub ca_cert_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
}

// Hand-written so that the password never reaches a log line.
impl fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("ca_cert_file", &self.ca_cert_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One key with its value and the revision that last modified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    pub mod_revision: i64,
}
