//! Host-side sysctls of a workload interface (REFERENCE.md section 4), as Calico's plugin
//! sets them when it creates the veth (felix keeps them right afterwards):
//!
//! * `net.ipv4.conf.<if>.proxy_arp = 1`: the host answers the pod's ARP for its gateway
//!   169.254.1.1 (which exists nowhere) with the veth's MAC;
//! * `net.ipv4.conf.<if>.forwarding = 1`;
//! * `net.ipv4.conf.<if>.route_localnet = 1`: allows DNAT to 127.0.0.0/8;
//! * `net.ipv4.neigh.<if>.proxy_delay = 0`: answer proxy ARP at once, not after up to
//!   0.8 s (the default `proxy_delay` of 80 jiffies);
//! * `net.ipv6.conf.<if>.accept_ra = 0` (skipped when IPv6 is disabled).
//!
//! Synchronous `std::fs` on purpose: `/proc/sys/net` shows the network namespace of the
//! thread that opens the file, and tokio's file I/O would run on a pool thread.

use std::path::{Path, PathBuf};

use crate::error::{CniError, NETLINK_FAILURE, Result};

/// (path below /proc/sys, value) for one interface.
pub fn host_sysctls(ifname: &str) -> Vec<(PathBuf, &'static str)> {
    let p = |s: String| PathBuf::from(s);
    vec![
        (p(format!("net/ipv4/conf/{ifname}/proxy_arp")), "1"),
        (p(format!("net/ipv4/conf/{ifname}/forwarding")), "1"),
        (p(format!("net/ipv4/conf/{ifname}/route_localnet")), "1"),
        (p(format!("net/ipv4/neigh/{ifname}/proxy_delay")), "0"),
        (p(format!("net/ipv6/conf/{ifname}/accept_ra")), "0"),
    ]
}

/// Writes the sysctls of `ifname` under `root` (normally `/proc/sys`) in the calling
/// thread's namespace. IPv6 keys are skipped when the kernel has IPv6 disabled.
pub fn apply_host(root: &Path, ifname: &str) -> Result<()> {
    for (key, value) in host_sysctls(ifname) {
        let path = root.join(&key);
        if key.starts_with("net/ipv6") && !root.join("net/ipv6/conf").exists() {
            continue;
        }
        std::fs::write(&path, value).map_err(|e| {
            CniError::new(
                NETLINK_FAILURE,
                format!("cannot set sysctl {}", path.display()),
                e.to_string(),
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_key_and_skips_ipv6_when_absent() {
        let root = std::env::temp_dir().join(format!("cni-sysctl-{}", std::process::id()));
        for (key, _) in host_sysctls("cali1") {
            if !key.starts_with("net/ipv6") {
                std::fs::create_dir_all(root.join(&key).parent().unwrap()).unwrap();
            }
        }
        apply_host(&root, "cali1").unwrap();
        let read = |k: &str| std::fs::read_to_string(root.join(k)).unwrap();
        assert_eq!(read("net/ipv4/conf/cali1/proxy_arp"), "1");
        assert_eq!(read("net/ipv4/neigh/cali1/proxy_delay"), "0");
        assert!(!root.join("net/ipv6").exists());
        let missing = apply_host(&root, "cali2").unwrap_err();
        assert!(missing.msg.contains("cali2"), "{missing}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
