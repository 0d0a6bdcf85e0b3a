//! Per-workload-interface sysctls (REFERENCE.md section 4), written through
//! `/proc/sys` only when the value differs:
//!
//! * `net.ipv4.conf.<if>.proxy_arp = 1`: the host answers the pod's ARP for its
//!   default gateway 169.254.1.1 (which exists nowhere) with the veth's MAC;
//! * `net.ipv4.conf.<if>.forwarding = 1`;
//! * `net.ipv4.conf.<if>.route_localnet = 1`: allows DNAT to 127.0.0.0/8;
//! * `net.ipv4.neigh.<if>.proxy_delay = 0`: answer proxy ARP at once;
//! * `net.ipv6.conf.<if>.accept_ra = 0` (skipped when IPv6 is disabled).
//!
//! Synchronous `std::fs` on purpose: `/proc/sys/net` shows the network
//! namespace of the thread that opens the file, and tokio's file I/O would run
//! on a pool thread, possibly in another namespace.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;
use tracing::debug;

use super::netlink::valid_ifname;

pub const PROC_SYS: &str = "/proc/sys";

#[derive(Debug, Error)]
pub enum SysctlError {
    #[error("interface name {0:?} is not a valid Linux interface name")]
    BadIfname(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The (dotted key, value) pairs for one interface; v6 ones only if `ipv6`.
pub fn interface_sysctls(ifname: &str, ipv6: bool) -> Vec<(String, &'static str)> {
    let mut out = vec![
        (format!("net.ipv4.conf.{ifname}.proxy_arp"), "1"),
        (format!("net.ipv4.conf.{ifname}.forwarding"), "1"),
        (format!("net.ipv4.conf.{ifname}.route_localnet"), "1"),
        (format!("net.ipv4.neigh.{ifname}.proxy_delay"), "0"),
    ];
    if ipv6 {
        out.push((format!("net.ipv6.conf.{ifname}.accept_ra"), "0"));
    }
    out
}

/// `net.ipv4.conf.x.y` -> `<root>/net/ipv4/conf/x/y`. Only the dots that
/// separate the fixed parts are split; interface names cannot contain '/'.
fn key_path(root: &Path, key: &str) -> PathBuf {
    key.split('.')
        .fold(root.to_path_buf(), |p, part| p.join(part))
}

/// Writes the interface's sysctls under `root` (normally [`PROC_SYS`]) where
/// they differ. Returns the keys written.
pub fn configure_interface(root: &Path, ifname: &str) -> Result<Vec<String>, SysctlError> {
    // A '.' in the name would be split as a key separator, so refuse it too.
    if !valid_ifname(ifname) || ifname.contains('.') {
        return Err(SysctlError::BadIfname(ifname.into()));
    }
    let ipv6 = root.join("net/ipv6").is_dir();
    let mut written = Vec::new();
    for (key, value) in interface_sysctls(ifname, ipv6) {
        let path = key_path(root, &key);
        let current = std::fs::read_to_string(&path).map_err(|source| SysctlError::Io {
            op: "reading",
            path: path.clone(),
            source,
        })?;
        if current.trim() == value {
            continue;
        }
        std::fs::write(&path, value).map_err(|source| SysctlError::Io {
            op: "writing",
            path: path.clone(),
            source,
        })?;
        debug!(%key, value, "sysctl set");
        written.push(key);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_proc(ipv6: bool, ifname: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (key, _) in interface_sysctls(ifname, ipv6) {
            let path = key_path(dir.path(), &key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "0\n").unwrap();
        }
        dir
    }

    #[test]
    fn writes_only_differing_values() {
        let dir = fake_proc(true, "cali1234");
        let written = configure_interface(dir.path(), "cali1234").unwrap();
        assert_eq!(
            written,
            [
                "net.ipv4.conf.cali1234.proxy_arp",
                "net.ipv4.conf.cali1234.forwarding",
                "net.ipv4.conf.cali1234.route_localnet"
            ],
            "proxy_delay and accept_ra already 0"
        );
        let read = |k: &str| std::fs::read_to_string(key_path(dir.path(), k)).unwrap();
        assert_eq!(read("net.ipv4.conf.cali1234.proxy_arp"), "1");
        assert!(
            configure_interface(dir.path(), "cali1234")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn skips_ipv6_when_absent() {
        let dir = fake_proc(false, "cali1");
        std::fs::write(
            key_path(dir.path(), "net.ipv4.neigh.cali1.proxy_delay"),
            "1",
        )
        .unwrap();
        let written = configure_interface(dir.path(), "cali1").unwrap();
        assert_eq!(written.len(), 4);
        assert!(!written.iter().any(|k| k.contains("ipv6")));
    }

    #[test]
    fn rejects_names_that_escape_the_tree() {
        let dir = fake_proc(false, "cali1");
        for bad in ["../../etc", "a.b", "", "x/y"] {
            assert!(
                matches!(
                    configure_interface(dir.path(), bad),
                    Err(SysctlError::BadIfname(_))
                ),
                "{bad}"
            );
        }
        // Missing interface: a typed I/O error naming the path.
        let e = configure_interface(dir.path(), "cali9").unwrap_err();
        assert!(e.to_string().contains("cali9"), "{e}");
    }
}
