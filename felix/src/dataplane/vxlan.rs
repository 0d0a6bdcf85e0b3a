//! The VXLAN device (`vxlan.calico`, Calico's name and settings): VNI 4096, UDP 4789,
//! the node's address as the local end, learning off (felix writes every FDB and ARP
//! entry itself), the node's VTEP MAC, the tunnel address as a /32, up.
//!
//! Pure: [`observe`] reads a link dump, [`plan`] says what to do. The kernel cannot
//! change a VXLAN device's VNI, port, local address or learning flag in place, so a
//! device that differs there (or a foreign link under our name) is recreated; the MAC,
//! MTU and up state are set in place. [`ensure`] is the thin I/O edge.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use kernel_routes::errno::{ENODEV, errno};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{LinkUnspec, LinkVxlan};

use super::netlink::Netlink;

/// What the device should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VxlanDevice {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    /// The node's address: the outer source of every encapsulated packet.
    pub local: Ipv4Addr,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub tunnel_addr: Ipv4Addr,
}

/// What a link of that name is now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedLink {
    pub index: u32,
    pub is_vxlan: bool,
    pub vni: Option<u32>,
    pub port: Option<u16>,
    pub local: Option<Ipv4Addr>,
    pub learning: Option<bool>,
    pub mac: Option<Vec<u8>>,
    pub mtu: Option<u32>,
    pub up: bool,
}

/// What [`ensure`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DevicePlan {
    Create,
    /// A setting that cannot change in place differs: delete, then create.
    Recreate {
        index: u32,
        why: String,
    },
    /// Set MAC, MTU and up in place (what differs is named).
    Adjust {
        index: u32,
        what: Vec<&'static str>,
    },
    Keep {
        index: u32,
    },
}

/// Reads a link message.
pub fn observe(link: &LinkMessage) -> ObservedLink {
    let mut seen = ObservedLink {
        index: link.header.index,
        up: link.header.flags.contains(LinkFlags::Up),
        ..ObservedLink::default()
    };
    for attr in &link.attributes {
        match attr {
            LinkAttribute::Address(mac) => seen.mac = Some(mac.clone()),
            LinkAttribute::Mtu(mtu) => seen.mtu = Some(*mtu),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(kind) => seen.is_vxlan = *kind == InfoKind::Vxlan,
                        LinkInfo::Data(InfoData::Vxlan(data)) => {
                            for d in data {
                                match d {
                                    InfoVxlan::Id(v) => seen.vni = Some(*v),
                                    InfoVxlan::Port(p) => seen.port = Some(*p),
                                    InfoVxlan::Local(a) => seen.local = Some(*a),
                                    InfoVxlan::Learning(l) => seen.learning = Some(*l),
                                    _ => {}
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    seen
}

/// What to do to turn `seen` (the link holding the name, if any) into `want`.
pub fn plan(want: &VxlanDevice, seen: Option<&ObservedLink>) -> DevicePlan {
    let Some(seen) = seen else {
        return DevicePlan::Create;
    };
    let fixed = [
        (!seen.is_vxlan, "not a VXLAN device".to_string()),
        (
            seen.vni != Some(want.vni),
            format!("VNI {:?}, want {}", seen.vni, want.vni),
        ),
        (
            seen.port != Some(want.port),
            format!("port {:?}, want {}", seen.port, want.port),
        ),
        (
            seen.local != Some(want.local),
            format!("local {:?}, want {}", seen.local, want.local),
        ),
        (seen.learning != Some(false), "learning on".to_string()),
    ];
    if let Some((_, why)) = fixed.into_iter().find(|(differs, _)| *differs) {
        return DevicePlan::Recreate {
            index: seen.index,
            why,
        };
    }
    let mut what = Vec::new();
    if seen.mac.as_deref() != Some(&want.mac[..]) {
        what.push("mac");
    }
    if seen.mtu != Some(want.mtu) {
        what.push("mtu");
    }
    if !seen.up {
        what.push("up");
    }
    if what.is_empty() {
        DevicePlan::Keep { index: seen.index }
    } else {
        DevicePlan::Adjust {
            index: seen.index,
            what,
        }
    }
}

/// Makes the device match `want` (in the calling thread's network namespace) and
/// returns what was done.
pub async fn ensure(nl: &Netlink, want: &VxlanDevice) -> Result<DevicePlan, rtnetlink::Error> {
    let handle = nl.handle();
    let mut links = handle.link().get().match_name(want.name.clone()).execute();
    let seen = match links.try_next().await {
        Ok(link) => link.as_ref().map(observe),
        // No such device.
        Err(e) if errno(&e) == Some(ENODEV) => None,
        Err(e) => return Err(e),
    };
    let todo = plan(want, seen.as_ref());
    let index = match &todo {
        DevicePlan::Keep { index } => *index,
        DevicePlan::Adjust { index, .. } => {
            let msg = LinkUnspec::new_with_index(*index)
                .address(want.mac.to_vec())
                .mtu(want.mtu)
                .up()
                .build();
            handle.link().set(msg).execute().await?;
            *index
        }
        DevicePlan::Create | DevicePlan::Recreate { .. } => {
            if let DevicePlan::Recreate { index, .. } = &todo {
                handle.link().del(*index).execute().await?;
            }
            let msg = LinkVxlan::new(&want.name, want.vni)
                .port(want.port)
                .local(want.local)
                .learning(false)
                .address(want.mac.to_vec())
                .mtu(want.mtu)
                .up()
                .build();
            handle.link().add(msg).execute().await?;
            nl.link_index(&want.name)
                .await?
                .ok_or(rtnetlink::Error::RequestFailed)?
        }
    };
    ensure_tunnel_addr(nl, index, want.tunnel_addr).await?;
    Ok(todo)
}

/// The tunnel address as a /32 on the device (as Calico: remote blocks route via the
/// remote tunnel address `onlink`, and replies leave from ours). Other addresses stay.
async fn ensure_tunnel_addr(
    nl: &Netlink,
    index: u32,
    addr: Ipv4Addr,
) -> Result<(), rtnetlink::Error> {
    let handle = nl.handle();
    let have: Vec<_> = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .set_address_filter(IpAddr::V4(addr))
        .execute()
        .try_collect()
        .await?;
    if have.is_empty() {
        handle
            .address()
            .add(index, IpAddr::V4(addr), 32)
            .execute()
            .await?;
    }
    Ok(())
}

/// The MTU of the interface that holds `addr` (the node's address: the interface the
/// encapsulated packets leave by); `None` when no interface holds it.
pub async fn host_mtu(nl: &Netlink, addr: Ipv4Addr) -> Result<Option<u32>, rtnetlink::Error> {
    let handle = nl.handle();
    let holders: Vec<_> = handle
        .address()
        .get()
        .set_address_filter(IpAddr::V4(addr))
        .execute()
        .try_collect()
        .await?;
    let Some(index) = holders.first().map(|a| a.header.index) else {
        return Ok(None);
    };
    let mut links = handle.link().get().match_index(index).execute();
    let mtu = match links.try_next().await {
        Ok(link) => link.and_then(|l| {
            l.attributes.into_iter().find_map(|a| match a {
                LinkAttribute::Mtu(m) => Some(m),
                _ => None,
            })
        }),
        Err(e) if errno(&e) == Some(ENODEV) => None,
        Err(e) => return Err(e),
    };
    Ok(mtu)
}

/// Removes the device when present (no pool uses VXLAN any more).
pub async fn remove(nl: &Netlink, name: &str) -> Result<bool, rtnetlink::Error> {
    match nl.link_index(name).await? {
        Some(index) => {
            nl.handle().link().del(index).execute().await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests;
