//! The host's hint of the block it allocated from last, kept in a small file per host and
//! family. A one-shot client (the CNI plugin, one process per ADD) has no cache; with the
//! hint it reads that block in the same round trip as the pools and affinities, and
//! allocates without reading the host's other blocks.
//!
//! The hint is only a guess of which key to read: the block read decides (its affinity,
//! free addresses and pool), and the write is guarded by its revision. A missing,
//! unreadable or stale hint costs the usual read of the host's blocks, never a wrong
//! allocation, so file errors are logged and otherwise ignored.

use std::path::{Path, PathBuf};

use ipnet::IpNet;

/// The hint file of `host` for one family, `None` when the host name cannot be a file name.
fn hint_path(dir: &Path, host: &str, version: u8) -> Option<PathBuf> {
    let plain = !host.is_empty() && !host.starts_with('.') && !host.contains(['/', '\0']);
    plain.then(|| dir.join(format!("{host}.ipv{version}")))
}

/// The block named by the hint, if there is a readable one.
pub(crate) fn read(dir: &Path, host: &str, version: u8) -> Option<IpNet> {
    let path = hint_path(dir, host, version)?;
    let text = std::fs::read_to_string(&path).ok()?;
    match text.trim().parse::<IpNet>() {
        Ok(cidr) => Some(cidr),
        Err(_) => {
            tracing::debug!(path = %path.display(), "IPAM hint does not name a block; ignored");
            None
        }
    }
}

/// Records `cidr` as the host's block. Written to a temporary file and renamed, so that
/// concurrent plugins never read half a hint.
pub(crate) fn write(dir: &Path, host: &str, version: u8, cidr: &IpNet) {
    let Some(path) = hint_path(dir, host, version) else {
        return;
    };
    let tmp = path.with_extension(format!("ipv{version}.{}.tmp", std::process::id()));
    let res = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, format!("{cidr}\n")))
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
        assert_eq!(read(&dir, "node-1", 4), None);
        write(&dir, "node-1", 4, &cidr);
        assert_eq!(read(&dir, "node-1", 4), Some(cidr));
        assert_eq!(read(&dir, "node-1", 6), None);
        // Names that would leave the directory or hide the file get no hint.
        for bad in ["", "../x", "a/b", ".hidden"] {
            write(&dir, bad, 4, &cidr);
            assert_eq!(read(&dir, bad, 4), None, "{bad:?}");
        }
        std::fs::write(dir.join("node-2.ipv4"), "garbage").unwrap();
        assert_eq!(read(&dir, "node-2", 4), None);
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(left.len(), 2, "no temporary files left: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
