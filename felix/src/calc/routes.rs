//! Local routes, neighbour entries and interfaces from the model.
//!
//! Per local endpoint address: `<ip>/32 dev caliX scope link` and a permanent
//! neighbour entry `<ip> lladdr <mac> dev caliX` (the pod side never answers ARP for
//! the host, so the host must know the pod's MAC); per confirmed local block:
//! `blackhole <block>`. The interfaces also get felix's sysctls.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use config::model::WorkloadEndpoint;
use config::validate::valid_ifname;
use ipnet::IpNet;

use super::error::CalcError;
use super::model::{CalcInput, WepKey};

/// One route the calculation wants in the main table (the dataplane turns it
/// into the kernel route felix owns: `crate::dataplane::routes`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteSpec {
    /// A local workload: `<dst> dev <ifname> scope link proto 80`. `dst` is a
    /// host prefix (/32 or /128).
    Workload { dst: IpNet, ifname: String },
    /// A local IPAM block: `blackhole <dst> proto 80`, so traffic to unassigned
    /// addresses of our own block is dropped here instead of following the
    /// default route back out.
    Blackhole { dst: IpNet },
    /// A remote block through a tunnel device: `<dst> via <gateway> dev <ifname>
    /// onlink proto 80` (the overlay: `vxlan.calico` or `tunl0`).
    Tunnel {
        dst: IpNet,
        gateway: IpAddr,
        ifname: String,
    },
    /// A remote block on our own subnet, unencapsulated: `<dst> via <gateway>
    /// proto 80` (CrossSubnet).
    Via { dst: IpNet, gateway: IpAddr },
}

impl RouteSpec {
    pub fn dst(&self) -> IpNet {
        match self {
            RouteSpec::Workload { dst, .. }
            | RouteSpec::Blackhole { dst }
            | RouteSpec::Tunnel { dst, .. }
            | RouteSpec::Via { dst, .. } => *dst,
        }
    }
}

pub use kernel_routes::neigh::NeighborKind;

/// One permanent neighbour entry the calculation wants: `<ip> lladdr <mac> dev
/// <ifname>` (ARP), or for the overlay `<mac> dst <ip> dev <ifname>` (FDB).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NeighborSpec {
    pub ip: IpAddr,
    pub mac: [u8; 6],
    pub ifname: String,
    pub kind: NeighborKind,
}

/// What the routing side of the dataplane should hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalNetworking {
    pub routes: Vec<RouteSpec>,
    pub neighbors: Vec<NeighborSpec>,
    /// Local workload interfaces (for sysctls), sorted.
    pub interfaces: Vec<String>,
    pub errors: Vec<CalcError>,
}

/// The routes, neighbours and interfaces of every local endpoint and block,
/// from scratch (the reference [`NetworkingCache`] is checked against).
pub fn local_networking(input: &CalcInput) -> LocalNetworking {
    let mut cache = NetworkingCache::default();
    for (key, _) in input.local_weps() {
        cache.endpoint_changed(input, key);
    }
    cache.blocks_changed(input);
    cache.build()
}

/// What one local endpoint contributes.
#[derive(Clone, Debug, Default)]
struct EndpointNetworking {
    /// `None` when the interface name is invalid (then only `errors`).
    ifname: Option<String>,
    routes: Vec<RouteSpec>,
    neighbors: Vec<NeighborSpec>,
    errors: Vec<CalcError>,
}

impl EndpointNetworking {
    fn new(key: &WepKey, wep: &WorkloadEndpoint) -> Self {
        let mut out = Self::default();
        let ifname = &wep.spec.interface_name;
        if !valid_ifname(ifname) {
            out.errors.push(CalcError::Endpoint {
                endpoint: wep_label(key),
                reason: format!("interfaceName {ifname:?} is not a valid interface name"),
            });
            return out;
        }
        out.ifname = Some(ifname.clone());
        let mac = parse_mac(&wep.spec.mac);
        for addr in addresses(wep, key, &mut out.errors) {
            out.routes.push(RouteSpec::Workload {
                dst: addr,
                ifname: ifname.clone(),
            });
            if let (Some(mac), IpNet::V4(_)) = (mac, addr) {
                out.neighbors.push(NeighborSpec {
                    ip: addr.addr(),
                    mac,
                    ifname: ifname.clone(),
                    kind: NeighborKind::Arp,
                });
            }
        }
        out
    }
}

/// [`LocalNetworking`] kept per local endpoint, so an endpoint change costs
/// that endpoint (not a scan of every endpoint in the cluster), and building
/// the output costs the local endpoints only.
#[derive(Clone, Debug, Default)]
pub struct NetworkingCache {
    eps: BTreeMap<WepKey, EndpointNetworking>,
    blackholes: Vec<RouteSpec>,
}

impl NetworkingCache {
    /// Re-derives endpoint `key` (added, changed, moved away or deleted).
    pub fn endpoint_changed(&mut self, input: &CalcInput, key: &WepKey) {
        match input.weps.get(key).filter(|w| input.is_local(w)) {
            Some(wep) => {
                self.eps
                    .insert(key.clone(), EndpointNetworking::new(key, wep));
            }
            None => {
                self.eps.remove(key);
            }
        }
    }

    pub fn blocks_changed(&mut self, input: &CalcInput) {
        self.blackholes = input
            .local_blocks
            .iter()
            .map(|b| RouteSpec::Blackhole { dst: b.trunc() })
            .collect();
    }

    pub fn build(&self) -> LocalNetworking {
        let mut out = LocalNetworking::default();
        let mut interfaces = BTreeSet::new();
        for ep in self.eps.values() {
            out.errors.extend(ep.errors.iter().cloned());
            if let Some(ifname) = &ep.ifname {
                interfaces.insert(ifname.clone());
            }
            out.routes.extend(ep.routes.iter().cloned());
            out.neighbors.extend(ep.neighbors.iter().cloned());
        }
        out.routes.extend(self.blackholes.iter().cloned());
        out.routes.sort();
        out.routes.dedup();
        out.neighbors.sort();
        out.interfaces = interfaces.into_iter().collect();
        out
    }
}

fn wep_label(key: &WepKey) -> String {
    format!("{}/{}", key.namespace, key.name)
}

/// The endpoint's addresses as host prefixes; CNI writes `ip/32`, a wider prefix
/// means the address inside it.
fn addresses(wep: &WorkloadEndpoint, key: &WepKey, errors: &mut Vec<CalcError>) -> Vec<IpNet> {
    let mut out = Vec::new();
    for s in &wep.spec.ip_networks {
        match s.parse::<IpNet>() {
            Ok(n) => out.push(IpNet::from(n.addr())),
            Err(_) => errors.push(CalcError::Endpoint {
                endpoint: wep_label(key),
                reason: format!("ipNetworks entry {s:?} is not a CIDR"),
            }),
        }
    }
    out
}

/// `ee:ee:ee:ee:ee:ee` -> bytes; `None` for an empty or malformed MAC (no entry).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("ee:ee:ee:ee:ee:0a"),
            Some([0xee, 0xee, 0xee, 0xee, 0xee, 0x0a])
        );
        for bad in [
            "",
            "ee:ee:ee:ee:ee",
            "ee:ee:ee:ee:ee:ee:ee",
            "ee:ee:ee:ee:ee:g0",
            "e:ee:ee:ee:ee:eee",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }
}
