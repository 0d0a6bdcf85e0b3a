//! Permanent neighbour entries an owner keeps in the kernel: `<ip> lladdr <mac>
//! dev <ifindex> PERMANENT` (ARP for IPv4, NDP for IPv6).
//!
//! Ownership: the kernel keeps no protocol mark on a neighbour entry, so an
//! owner owns the permanent entries on the interfaces it names
//! ([`dump_neighbors`]'s `owned`); dynamic entries and other interfaces are
//! never touched. felix owns its workload interfaces' entries; the overlay's
//! ARP entries for remote VTEPs on its tunnel device are the same shape, and
//! its FDB entries (`AF_BRIDGE`: `<mac> dst <remote ip> dev vxlan.calico`) are
//! a second [`NeighborKind`] with the same diff and write path.
//!
//! The pure part is [`diff`] and the message helpers; [`dump_neighbors`] and
//! [`write_neighbors`] are the I/O edge.

use std::collections::BTreeSet;
use std::net::IpAddr;

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::Handle;

use crate::errno::{Outcome, RouteOp};

/// A permanent entry, as wanted or as the kernel holds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelNeighbor {
    pub ifindex: u32,
    /// ARP/NDP: the neighbour's address. FDB: the remote tunnel endpoint (`dst`).
    pub ip: IpAddr,
    pub mac: Vec<u8>,
    pub kind: NeighborKind,
}

/// Which table an entry lives in; each is keyed differently.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NeighborKind {
    /// ARP (IPv4) or NDP (IPv6): one entry per (interface, IP).
    #[default]
    Arp,
    /// A bridge forwarding entry on a VXLAN device (`AF_BRIDGE`): one per
    /// (interface, MAC), sending frames for the MAC to the `ip` given.
    Fdb,
}

/// What makes two entries the same slot in the kernel.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Ip(u32, IpAddr),
    Mac(u32, Vec<u8>),
}

impl KernelNeighbor {
    fn slot(&self) -> Slot {
        match self.kind {
            NeighborKind::Arp => Slot::Ip(self.ifindex, self.ip),
            NeighborKind::Fdb => Slot::Mac(self.ifindex, self.mac.clone()),
        }
    }
}

/// What [`diff`] decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NeighborDiff {
    /// Written with `NLM_F_REPLACE`: creates, or fixes a wrong MAC in place.
    pub replace: Vec<KernelNeighbor>,
    pub delete: Vec<KernelNeighbor>,
}

/// `actual` must hold only entries the owner owns (see the module doc). An ARP
/// entry is keyed by (ifindex, ip), an FDB entry by (ifindex, mac); a wrong MAC
/// (or FDB destination) is replaced in place, and only entries nobody wants are
/// deleted. Both lists come back sorted.
pub fn diff(desired: &[KernelNeighbor], actual: &[KernelNeighbor]) -> NeighborDiff {
    let mut out = NeighborDiff::default();
    let mut wanted = BTreeSet::new();
    let present: std::collections::HashSet<&KernelNeighbor> = actual.iter().collect();
    for want in desired {
        wanted.insert(want.slot());
        if !present.contains(want) {
            out.replace.push(want.clone());
        }
    }
    out.delete = actual
        .iter()
        .filter(|n| !wanted.contains(&n.slot()))
        .cloned()
        .collect();
    out.replace.sort();
    out.delete.sort();
    out
}

/// The permanent entries on the interfaces in `owned`, ARP/NDP and FDB alike. Two dumps:
/// an unspecified-family one reaches only the neighbour tables (ARP, NDP), the FDB
/// answers `AF_BRIDGE` dumps only (the kernel registers them apart).
pub async fn dump_neighbors(
    handle: &Handle,
    owned: &BTreeSet<u32>,
) -> Result<Vec<KernelNeighbor>, rtnetlink::Error> {
    let mut msgs: Vec<NeighbourMessage> = handle.neighbours().get().execute().try_collect().await?;
    let fdb: Vec<NeighbourMessage> = handle
        .neighbours()
        .get()
        .set_address_family(AddressFamily::Bridge)
        .execute()
        .try_collect()
        .await?;
    // Devices without an FDB of their own answer with their address lists (no
    // destination): those parse to nothing below.
    msgs.extend(fdb);
    Ok(msgs
        .iter()
        .filter(|m| {
            m.header.state == NeighbourState::Permanent && owned.contains(&m.header.ifindex)
        })
        .filter_map(parse_neighbour)
        .collect())
}

/// Writes ([`RouteOp::Replace`]) or deletes ([`RouteOp::Delete`]) entries with
/// up to `in_flight` requests outstanding; every write comes back with its
/// outcome (a delete of a missing entry is done; a write to a missing or down
/// interface is [`Outcome::NoLink`]).
pub async fn write_neighbors(
    handle: &Handle,
    writes: impl IntoIterator<Item = (RouteOp, KernelNeighbor)>,
    in_flight: usize,
) -> Vec<(RouteOp, KernelNeighbor, Outcome)> {
    futures::stream::iter(writes)
        .map(|(op, n)| async move {
            let outcome = Outcome::of(op, write_one(handle, op, &n).await);
            (op, n, outcome)
        })
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await
}

async fn write_one(
    handle: &Handle,
    op: RouteOp,
    n: &KernelNeighbor,
) -> Result<(), rtnetlink::Error> {
    let neigh = handle.neighbours();
    match (op, n.kind) {
        (RouteOp::Delete, _) => neigh.del(delete_message(n)).execute().await,
        // NTF_SELF: the entry belongs to the VXLAN device itself, not to a bridge
        // it might be a port of (iproute2's `bridge fdb ... self`).
        (RouteOp::Add | RouteOp::Replace, NeighborKind::Fdb) => {
            neigh
                .add_bridge(n.ifindex, &n.mac)
                .destination(n.ip)
                .flags(NeighbourFlags::Own)
                .replace()
                .execute()
                .await
        }
        // Neighbour entries have no foreign owner to protect by an exclusive
        // add: the interfaces are the owner's own.
        (RouteOp::Add | RouteOp::Replace, NeighborKind::Arp) => {
            neigh
                .add(n.ifindex, n.ip)
                .link_layer_address(&n.mac)
                .replace()
                .execute()
                .await
        }
    }
}

fn parse_neighbour(m: &NeighbourMessage) -> Option<KernelNeighbor> {
    let mut ip = None;
    let mut mac = Vec::new();
    for attr in &m.attributes {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(IpAddr::V4(*a)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                ip = Some(IpAddr::V6(*a))
            }
            // netlink-packet-route reads an AF_BRIDGE message's NDA_DST without its
            // family: by length, 4 bytes IPv4, 16 IPv6.
            NeighbourAttribute::Destination(NeighbourAddress::Other(bytes)) => {
                ip = match bytes.len() {
                    4 => <[u8; 4]>::try_from(&bytes[..]).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(&bytes[..]).ok().map(IpAddr::from),
                    _ => None,
                }
            }
            NeighbourAttribute::LinkLayerAddress(l) => mac.clone_from(l),
            _ => {}
        }
    }
    let kind = match m.header.family {
        AddressFamily::Inet | AddressFamily::Inet6 => NeighborKind::Arp,
        AddressFamily::Bridge => NeighborKind::Fdb,
        _ => return None,
    };
    Some(KernelNeighbor {
        ifindex: m.header.ifindex,
        ip: ip?,
        mac,
        kind,
    })
}

fn delete_message(n: &KernelNeighbor) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = match (n.kind, n.ip) {
        (NeighborKind::Fdb, _) => AddressFamily::Bridge,
        (NeighborKind::Arp, IpAddr::V4(_)) => AddressFamily::Inet,
        (NeighborKind::Arp, IpAddr::V6(_)) => AddressFamily::Inet6,
    };
    m.header.ifindex = n.ifindex;
    if n.kind == NeighborKind::Fdb {
        m.header.flags = NeighbourFlags::Own;
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(n.mac.clone()));
    }
    m.attributes
        .push(NeighbourAttribute::Destination(match n.ip {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        }));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0xee; 6];

    fn kn(ifindex: u32, ip: &str, mac: [u8; 6]) -> KernelNeighbor {
        KernelNeighbor {
            ifindex,
            ip: ip.parse().unwrap(),
            mac: mac.to_vec(),
            kind: NeighborKind::Arp,
        }
    }

    fn fdb(ifindex: u32, mac: [u8; 6], dst: &str) -> KernelNeighbor {
        KernelNeighbor {
            kind: NeighborKind::Fdb,
            ..kn(ifindex, dst, mac)
        }
    }

    #[test]
    fn fdb_entries_are_keyed_by_mac_apart_from_arp_entries() {
        let other = [2, 2, 2, 2, 2, 2];
        let desired = [
            kn(9, "10.0.0.1", MAC),
            fdb(9, MAC, "172.18.2.11"), // the VTEP moved: replaced, not added beside
            fdb(9, other, "172.18.2.12"),
        ];
        let actual = [
            kn(9, "10.0.0.1", MAC),
            // Same interface and an address equal to an FDB destination: no clash.
            kn(9, "172.18.2.11", other),
            fdb(9, MAC, "172.18.1.11"),
        ];
        let d = diff(&desired, &actual);
        assert_eq!(
            d.replace,
            vec![fdb(9, MAC, "172.18.2.11"), fdb(9, other, "172.18.2.12")]
        );
        assert_eq!(d.delete, vec![kn(9, "172.18.2.11", other)]);
    }

    #[test]
    fn fdb_delete_message_is_a_bridge_entry_by_mac() {
        let m = delete_message(&fdb(7, MAC, "172.18.2.11"));
        assert_eq!(m.header.family, AddressFamily::Bridge);
        assert_eq!(parse_neighbour(&m), Some(fdb(7, MAC, "172.18.2.11")));
    }

    #[test]
    fn diff_adds_fixes_and_deletes() {
        let desired = [
            kn(5, "10.0.0.1", MAC), // present and right
            kn(6, "10.0.0.2", MAC), // wrong MAC in kernel: replaced
            kn(5, "fd00::3", MAC),  // missing: added
        ];
        let actual = [
            kn(5, "10.0.0.1", MAC),
            kn(6, "10.0.0.2", [1, 2, 3, 4, 5, 6]),
            kn(6, "10.0.0.9", MAC), // stale: deleted
        ];
        let d = diff(&desired, &actual);
        assert_eq!(
            d.replace,
            vec![kn(5, "fd00::3", MAC), kn(6, "10.0.0.2", MAC)]
        );
        assert_eq!(d.delete, vec![kn(6, "10.0.0.9", MAC)]);
    }

    #[test]
    fn delete_message_names_entry() {
        let m = delete_message(&kn(7, "10.0.0.1", MAC));
        assert_eq!(m.header.ifindex, 7);
        assert_eq!(m.header.family, AddressFamily::Inet);
        assert_eq!(
            parse_neighbour(&m).unwrap().ip,
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
