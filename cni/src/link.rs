//! The veth pair: Calico's host-side name, creation straight into the pod namespace, and
//! the link lookups both sides use.

use std::fs::File;
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use kernel_routes::errno::{ENODEV, errno};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec};
use sha1::{Digest, Sha1};

use crate::error::{CniError, NETLINK_FAILURE, Result};

/// The MAC of every host-side workload interface. Pods reach 169.254.1.1 through it (the
/// host answers ARP for it by proxy_arp), so all caliX look alike to the pods.
pub const HOST_MAC: [u8; 6] = [0xee; 6];

/// Calico's host-side name: `cali` + the first 11 hex digits of sha1("<namespace>.<pod>"),
/// 15 bytes in all (IFNAMSIZ - 1).
pub fn host_veth_name(namespace: &str, pod: &str) -> String {
    let digest = Sha1::digest(format!("{namespace}.{pod}").as_bytes());
    format!("cali{}", &hex::encode(digest)[..11])
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn netlink_error(what: impl Into<String>, e: rtnetlink::Error) -> CniError {
    CniError::new(NETLINK_FAILURE, what, e.to_string())
}

/// One interface as the kernel reports it, reduced to what these plugins look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Vec<u8>,
    pub up: bool,
    pub mtu: Option<u32>,
    pub kind: Option<InfoKind>,
}

impl Link {
    fn from_message(msg: LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            mac: Vec::new(),
            up: msg.header.flags.contains(LinkFlags::Up),
            mtu: None,
            kind: None,
        };
        for attr in msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n,
                LinkAttribute::Address(a) => link.mac = a,
                LinkAttribute::Mtu(m) => link.mtu = Some(m),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(k) = info {
                            link.kind = Some(k);
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// The interface called `name`, `None` when there is none.
pub async fn by_name(h: &Handle, name: &str) -> Result<Option<Link>> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link.map(Link::from_message)),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
        Err(e) => Err(netlink_error(format!("looking up interface {name}"), e)),
    }
}

/// Deletes an interface by name; `false` when it did not exist (deleting one end of a veth
/// removes both).
pub async fn delete_by_name(h: &Handle, name: &str) -> Result<bool> {
    let Some(link) = by_name(h, name).await? else {
        return Ok(false);
    };
    match h.link().del(link.index).execute().await {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(false),
        Err(e) => Err(netlink_error(format!("deleting interface {name}"), e)),
    }
}

pub async fn set_up(h: &Handle, index: u32, name: &str) -> Result<()> {
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| netlink_error(format!("setting {name} up"), e))
}

/// Creates the veth pair in one RTM_NEWLINK: `host` (MAC [`HOST_MAC`]) here, its peer
/// `pod_ifname` directly in the namespace of `pod_netns` (IFLA_NET_NS_FD on the peer), so
/// the pod-side name never exists in the host namespace, where it could clash with a real
/// `eth0`. Returns the host side.
pub async fn create_veth(
    h: &Handle,
    host: &str,
    pod_ifname: &str,
    pod_netns: &File,
    mtu: u32,
) -> Result<Link> {
    let peer = LinkUnspec::new_with_name(pod_ifname)
        .mtu(mtu)
        .setns_by_fd(pod_netns.as_raw_fd())
        .build();
    let msg = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
        .name(host.to_string())
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .mtu(mtu)
        .address(HOST_MAC.to_vec())
        .build();
    h.link().add(msg).execute().await.map_err(|e| {
        netlink_error(
            format!("creating veth {host} with peer {pod_ifname} in the pod namespace"),
            e,
        )
    })?;
    by_name(h, host).await?.ok_or_else(|| {
        CniError::new(
            NETLINK_FAILURE,
            format!("veth {host} vanished right after creation"),
            "another process deleted it",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_match_calico() {
        // The expected digest comes from sha1sum, an independent implementation.
        let name = host_veth_name("default", "nginx");
        assert_eq!(name.len(), 15);
        assert!(name.starts_with("cali"));
        let expected = std::process::Command::new("sh")
            .arg("-c")
            .arg("printf %s default.nginx | sha1sum | cut -c1-11")
            .output()
            .unwrap();
        assert_eq!(&name[4..], String::from_utf8_lossy(&expected.stdout).trim());
        assert_ne!(host_veth_name("a", "b.c"), host_veth_name("a.b", "c.d"));
    }

    #[test]
    fn macs_format_like_ip_link() {
        assert_eq!(format_mac(&HOST_MAC), "ee:ee:ee:ee:ee:ee");
        assert_eq!(format_mac(&[0, 1, 0xab, 2, 3, 4]), "00:01:ab:02:03:04");
    }
}
