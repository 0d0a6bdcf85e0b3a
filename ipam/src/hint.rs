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

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

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
    let text = std::fs::read(&path).ok()?;
    match serde_json::from_slice::<Hint>(&text) {
        Ok(h) if crate::keys::family(&h.block) == version => Some(h),
        _ => {
            tracing::debug!(path = %path.display(), "IPAM hint unreadable; ignored");
            None
        }
    }
}

/// Records the host's hint. Written to a temporary file and renamed, so that concurrent
/// plugins never read half a hint.
pub(crate) fn write(dir: &Path, host: &str, hint: &Hint) {
    let Some(path) = hint_path(dir, host, crate::keys::family(&hint.block)) else {
        return;
    };
    let mut tmp = path.clone().into_os_string();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let res = std::fs::create_dir_all(dir)
        .and_then(|()| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&serde_json::to_vec(hint).unwrap_or_default())
        })
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        tracing::debug!(path = %path.display(), error = %e, "could not write the IPAM hint");
    }
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
        assert_eq!(left.len(), 2, "no temporary files left: {left:?}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("node-1.ipv4"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
