//! The host's hint of the block it allocated from last, kept in a small file per host and
//! family. A one-shot client (the CNI plugin, one process per ADD) has no cache; the hint
//! is what the host already knows.
//!
//! - It names the block, so that a client reads that block in the same round trip as the
//!   pools and affinities instead of reading every block of the host.
//! - It holds the block as last written, with its revision, and the revisions of the keys
//!   the allocation depended on (the IPPools, and the Node when its labels were used), so
//!   that the next allocation writes without reading anything: its transaction is guarded
//!   by all those revisions, and fails as a conflict when any of them moved (then the
//!   client reads as usual).
//!
//! So the hint is only ever a guess: a missing, unreadable or stale one costs the usual
//! reads, never a wrong allocation, and file errors are logged and otherwise ignored. The
//! file is written by root for root (mode 0600: it holds allocation attributes).
//!
//! The file is overwritten in place, not replaced by a rename: on ext4 a rename over an
//! existing file (or a truncation to zero) makes the kernel flush the new data first
//! (`auto_da_alloc`), 0.13 ms per write here against 7 us in place, paid by every ADD. A
//! reader may then meet a half-written file, or two plugins' writes interleaved: the
//! SHA-256 of the JSON heads the file, and a hint whose sum does not match is no hint.
//! Its parts must never mix: the block is written from the copy in the hint, guarded by
//! the revision in the hint.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::block::AllocationBlock;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct Hint {
    pub block: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Seen>,
}

/// What the host saw when it last wrote the block.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct Seen {
    pub value: AllocationBlock,
    pub revision: i64,
    #[serde(flatten)]
    pub basis: HintBasis,
}

/// What an allocation depended on besides its block.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct HintBasis {
    /// Keys the allocation depended on besides the block, with their mod revisions (0:
    /// the key was absent).
    pub guards: Vec<(String, i64)>,
    /// The IPPools as stored (when the pools come from the datastore).
    pub pools: Vec<serde_json::Value>,
    /// The Node's labels, when they were read.
    pub node_labels: Option<BTreeMap<String, String>>,
}

/// The hint file of `host` for one family, `None` when the host name cannot be a file name.
fn hint_path(dir: &Path, host: &str, version: u8) -> Option<PathBuf> {
    let plain = !host.is_empty() && !host.starts_with('.') && !host.contains(['/', '\0']);
    plain.then(|| dir.join(format!("{host}.ipv{version}")))
}

/// The host's hint, if there is a readable one for this family.
pub(crate) fn read(dir: &Path, host: &str, version: u8) -> Option<Hint> {
    let path = hint_path(dir, host, version)?;
    let bytes = std::fs::read(&path).ok()?;
    match decode(&bytes) {
        Some(h) if crate::keys::family(&h.block) == version => Some(h),
        _ => {
            tracing::debug!(path = %path.display(), "IPAM hint unreadable; ignored");
            None
        }
    }
}

/// Records the host's hint, overwriting the file in place (see the module's comment).
pub(crate) fn write(dir: &Path, host: &str, hint: &Hint) {
    let Some(path) = hint_path(dir, host, crate::keys::family(&hint.block)) else {
        return;
    };
    let bytes = encode(hint);
    let res = std::fs::create_dir_all(dir).and_then(|()| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            // Truncating to zero is what costs the flush; `set_len` below cuts the rest.
            .truncate(false)
            .mode(0o600)
            .open(&path)?;
        f.write_all_at(&bytes, 0)?;
        f.set_len(bytes.len() as u64)
    });
    if let Err(e) = res {
        tracing::debug!(path = %path.display(), error = %e, "could not write the IPAM hint");
    }
}

/// Bytes of the hex SHA-256 and its newline ahead of the JSON.
const SUM_LEN: usize = 64;

/// The file's contents: the JSON's SHA-256 in hex, a newline, the JSON.
fn encode(hint: &Hint) -> Vec<u8> {
    let json = serde_json::to_vec(hint).unwrap_or_default();
    let mut out = format!("{:x}\n", Sha256::digest(&json)).into_bytes();
    out.extend_from_slice(&json);
    out
}

/// The hint in `bytes`, `None` unless the sum matches the JSON (a torn or interleaved write)
/// and the JSON is a hint.
fn decode(bytes: &[u8]) -> Option<Hint> {
    let (sum, rest) = bytes.split_at_checked(SUM_LEN)?;
    let json = rest.strip_prefix(b"\n")?;
    let expected = format!("{:x}", Sha256::digest(json));
    if sum != expected.as_bytes() {
        return None;
    }
    serde_json::from_slice(json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_names() {
        let dir = std::env::temp_dir().join(format!("ipam-hint-test-{}", std::process::id()));
        let cidr: IpNet = "10.1.2.64/26".parse().unwrap();
        let hint = Hint {
            block: cidr,
            seen: None,
        };
        assert_eq!(read(&dir, "node-1", 4), None);
        write(&dir, "node-1", &hint);
        assert_eq!(read(&dir, "node-1", 4), Some(hint.clone()));
        assert_eq!(read(&dir, "node-1", 6), None);
        // Names that would leave the directory or hide the file get no hint.
        for bad in ["", "../x", "a/b", ".hidden"] {
            write(&dir, bad, &hint);
            assert_eq!(read(&dir, bad, 4), None, "{bad:?}");
        }
        std::fs::write(dir.join("node-2.ipv4"), "garbage").unwrap();
        assert_eq!(read(&dir, "node-2", 4), None);
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(left.len(), 2, "no other files: {left:?}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("node-1.ipv4"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn hint_of(cidr: &str, revision: i64) -> Hint {
        let cidr: IpNet = cidr.parse().unwrap();
        Hint {
            block: cidr,
            seen: Some(Seen {
                value: AllocationBlock::new(cidr, Some("node-1"), 0),
                revision,
                basis: HintBasis {
                    guards: vec![("/calico/ipam/v2/x".into(), 7)],
                    pools: vec![],
                    node_labels: None,
                },
            }),
        }
    }

    #[test]
    fn rewrites_in_place_and_refuses_torn_files() {
        let dir = std::env::temp_dir().join(format!("ipam-hint-torn-{}", std::process::id()));
        let path = dir.join("node-1.ipv4");
        // A longer hint, then a shorter one over it: nothing of the first is left behind.
        let long = hint_of("10.1.2.64/26", 123_456_789);
        let short = hint_of("10.1.2.0/30", 5);
        write(&dir, "node-1", &long);
        write(&dir, "node-1", &short);
        assert_eq!(read(&dir, "node-1", 4), Some(short.clone()));
        assert_eq!(std::fs::read(&path).unwrap(), encode(&short));

        // Two writes whose parts mixed: valid JSON, but not what either wrote whole.
        let a = encode(&hint_of("10.1.2.64/26", 100));
        let b = encode(&hint_of("10.1.2.64/26", 200));
        assert_eq!(a.len(), b.len());
        let mixed = [&a[..=SUM_LEN], &b[SUM_LEN + 1..]].concat();
        assert!(serde_json::from_slice::<Hint>(&mixed[SUM_LEN + 1..]).is_ok());
        std::fs::write(&path, &mixed).unwrap();
        assert_eq!(
            read(&dir, "node-1", 4),
            None,
            "a sum that does not match is no hint"
        );

        // A write cut short, and the old format (bare JSON) are no hint either.
        std::fs::write(&path, &a[..a.len() - 10]).unwrap();
        assert_eq!(read(&dir, "node-1", 4), None);
        std::fs::write(&path, serde_json::to_vec(&short).unwrap()).unwrap();
        assert_eq!(read(&dir, "node-1", 4), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
