//! Permanent neighbour (ARP/NDP) entries for workloads: pod IP -> pod MAC on
//! the pod's `caliX` interface, so the host never has to resolve it.
//!
//! Ownership: felix owns the permanent entries on interfaces whose name starts
//! with the configured prefix (`cali` by default); dynamic entries and other
//! interfaces are never touched.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use thiserror::Error;
use tracing::{info, warn};

use super::netlink::{ENETDOWN, ENODEV, ENOENT, ESRCH, Netlink, errno};

/// One entry the calculation wants.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NeighborSpec {
    pub ip: IpAddr,
    pub mac: [u8; 6],
    pub ifname: String,
}

/// A permanent entry as the kernel holds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelNeighbor {
    pub ifindex: u32,
    pub ip: IpAddr,
    pub mac: Vec<u8>,
}

/// What [`diff`] decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NeighborDiff {
    pub replace: Vec<KernelNeighbor>,
    pub delete: Vec<KernelNeighbor>,
    /// Specs whose interface does not exist (yet).
    pub pending: Vec<NeighborSpec>,
}

/// `actual` must hold only entries felix owns (permanent, on owned interfaces).
pub fn diff(
    desired: &[NeighborSpec],
    ifindexes: &HashMap<String, u32>,
    actual: &[KernelNeighbor],
) -> NeighborDiff {
    let mut out = NeighborDiff::default();
    let mut wanted = BTreeSet::new();
    for spec in desired {
        let Some(&ifindex) = ifindexes.get(&spec.ifname) else {
            out.pending.push(spec.clone());
            continue;
        };
        let want = KernelNeighbor {
            ifindex,
            ip: spec.ip,
            mac: spec.mac.to_vec(),
        };
        wanted.insert((ifindex, spec.ip));
        if !actual.contains(&want) {
            out.replace.push(want);
        }
    }
    // Replace overwrites a wrong MAC in place; only entries nobody wants go.
    out.delete = actual
        .iter()
        .filter(|n| !wanted.contains(&(n.ifindex, n.ip)))
        .cloned()
        .collect();
    out.replace.sort();
    out.delete.sort();
    out.pending.sort();
    out
}

#[derive(Debug, Error)]
pub enum NeighborError {
    #[error("listing interfaces failed: {0}")]
    Links(#[source] rtnetlink::Error),
    #[error("dumping neighbour entries (RTM_GETNEIGH) failed: {0}")]
    Dump(#[source] rtnetlink::Error),
}

/// What one [`NeighborSyncer::apply`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NeighborReport {
    pub replaced: usize,
    pub deleted: usize,
    pub pending: Vec<NeighborSpec>,
    /// (entry, error) for writes the kernel refused.
    pub failures: Vec<(KernelNeighbor, String)>,
}

pub struct NeighborSyncer {
    nl: Netlink,
    iface_prefix: String,
    desired: Vec<NeighborSpec>,
}

impl NeighborSyncer {
    pub fn new(nl: Netlink) -> Self {
        Self::with_prefix(nl, "cali")
    }

    /// Owns permanent entries on interfaces whose names start with `prefix`.
    pub fn with_prefix(nl: Netlink, prefix: &str) -> Self {
        Self {
            nl,
            iface_prefix: prefix.into(),
            desired: Vec::new(),
        }
    }

    pub fn set_desired(&mut self, desired: Vec<NeighborSpec>) {
        self.desired = desired;
    }

    /// Permanent entries on owned interfaces.
    pub async fn dump(
        &self,
        ifindexes: &HashMap<String, u32>,
    ) -> Result<Vec<KernelNeighbor>, NeighborError> {
        let owned: BTreeSet<u32> = ifindexes
            .iter()
            .filter(|(name, _)| name.starts_with(&self.iface_prefix))
            .map(|(_, &i)| i)
            .collect();
        let msgs: Vec<NeighbourMessage> = self
            .nl
            .handle()
            .neighbours()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(NeighborError::Dump)?;
        Ok(msgs
            .iter()
            .filter(|m| {
                m.header.state == NeighbourState::Permanent && owned.contains(&m.header.ifindex)
            })
            .filter_map(parse_neighbour)
            .collect())
    }

    pub async fn apply(&mut self) -> Result<NeighborReport, NeighborError> {
        let ifindexes = self.nl.link_indexes().await.map_err(NeighborError::Links)?;
        let actual = self.dump(&ifindexes).await?;
        let d = diff(&self.desired, &ifindexes, &actual);
        let mut report = NeighborReport {
            replaced: d.replace.len(),
            deleted: d.delete.len(),
            pending: d.pending,
            failures: Vec::new(),
        };
        let handle = self.nl.handle();
        let ops = d
            .replace
            .into_iter()
            .map(|n| (true, n))
            .chain(d.delete.into_iter().map(|n| (false, n)));
        let results: Vec<_> = futures::stream::iter(ops)
            .map(|(add, n)| async move {
                let res = write_with(handle, add, &n).await;
                (add, n, res)
            })
            .buffer_unordered(64)
            .collect()
            .await;
        for (add, n, res) in results {
            let Err(e) = res else { continue };
            match (add, errno(&e)) {
                (false, Some(ENOENT | ESRCH)) => report.deleted -= 1,
                (true, Some(ENODEV | ENETDOWN)) => report.replaced -= 1,
                _ => {
                    warn!(neighbor = ?n, error = %e, "neighbour write failed");
                    if add {
                        report.replaced -= 1
                    } else {
                        report.deleted -= 1
                    }
                    report.failures.push((n, e.to_string()));
                }
            }
        }
        if report.replaced + report.deleted > 0 {
            info!(
                replaced = report.replaced,
                deleted = report.deleted,
                "neighbour entries synced"
            );
        }
        Ok(report)
    }
}

/// Writes one entry (`replace`, so a wrong MAC is fixed in place) or deletes
/// it, without the interface and neighbour dumps of [`NeighborSyncer::apply`].
pub async fn write_entry(
    nl: &Netlink,
    add: bool,
    n: &KernelNeighbor,
) -> Result<(), rtnetlink::Error> {
    write_with(nl.handle(), add, n).await
}

async fn write_with(
    handle: &rtnetlink::Handle,
    add: bool,
    n: &KernelNeighbor,
) -> Result<(), rtnetlink::Error> {
    let neigh = handle.neighbours();
    if add {
        neigh
            .add(n.ifindex, n.ip)
            .link_layer_address(&n.mac)
            .replace()
            .execute()
            .await
    } else {
        neigh.del(delete_message(n)).execute().await
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
            NeighbourAttribute::LinkLayerAddress(l) => mac.clone_from(l),
            _ => {}
        }
    }
    Some(KernelNeighbor {
        ifindex: m.header.ifindex,
        ip: ip?,
        mac,
    })
}

fn delete_message(n: &KernelNeighbor) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = match n.ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    m.header.ifindex = n.ifindex;
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

    fn spec(ip: &str, ifname: &str) -> NeighborSpec {
        NeighborSpec {
            ip: ip.parse().unwrap(),
            mac: MAC,
            ifname: ifname.into(),
        }
    }

    fn kn(ifindex: u32, ip: &str, mac: [u8; 6]) -> KernelNeighbor {
        KernelNeighbor {
            ifindex,
            ip: ip.parse().unwrap(),
            mac: mac.to_vec(),
        }
    }

    #[test]
    fn diff_adds_fixes_deletes_and_pends() {
        let idx = HashMap::from([("calia".to_string(), 5), ("calib".to_string(), 6)]);
        let desired = [
            spec("10.0.0.1", "calia"),   // present and right
            spec("10.0.0.2", "calib"),   // wrong MAC in kernel: replaced
            spec("fd00::3", "calia"),    // missing: added
            spec("10.0.0.4", "calizzz"), // no interface: pending
        ];
        let actual = [
            kn(5, "10.0.0.1", MAC),
            kn(6, "10.0.0.2", [1, 2, 3, 4, 5, 6]),
            kn(6, "10.0.0.9", MAC), // stale: deleted
        ];
        let d = diff(&desired, &idx, &actual);
        assert_eq!(
            d.replace,
            vec![kn(5, "fd00::3", MAC), kn(6, "10.0.0.2", MAC)]
        );
        assert_eq!(d.delete, vec![kn(6, "10.0.0.9", MAC)]);
        assert_eq!(d.pending, vec![spec("10.0.0.4", "calizzz")]);
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
