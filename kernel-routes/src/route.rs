//! A main-table route as the kernel keys and reports it, reduced to the fields
//! the owners compare.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// `RT_SCOPE_LINK`: the destination is directly on the link (no gateway).
pub const SCOPE_LINK: u8 = 253;
/// `RT_SCOPE_UNIVERSE`.
pub const SCOPE_UNIVERSE: u8 = 0;

/// Where a route sends packets.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteTarget {
    /// Directly out of this interface index, no gateway (felix's workloads).
    Dev(u32),
    /// Drop (`RTN_BLACKHOLE`; felix's IPAM blocks).
    Blackhole,
    /// Through these gateways, sorted and without repeats (see
    /// [`RouteTarget::via`]): one is a plain gateway route, several one
    /// multipath route (bgpd). Empty only in a delete that names the slot but
    /// not the next hops.
    Via(Vec<IpAddr>),
    /// Through `gateway` out of interface `dev`, `onlink` (the gateway need not be on a
    /// subnet of `dev`): felix's overlay routes, `<block> via <remote tunnel addr> dev
    /// vxlan.calico onlink` and `<block> via <node addr> dev tunl0 onlink`.
    OnlinkVia { gateway: IpAddr, dev: u32 },
    /// Any other shape (unreachable, a gateway route with an odd type, ...).
    Other,
}

impl RouteTarget {
    /// Gateways in the one order the kernel's dump is compared in: sorted, no
    /// repeats.
    pub fn via(mut gateways: Vec<IpAddr>) -> Self {
        gateways.sort_unstable();
        gateways.dedup();
        RouteTarget::Via(gateways)
    }
}

/// The slot a route occupies in a table: (destination, tos, metric). Two routes
/// with the same key compete: a replace of one overwrites the other.
pub type SlotKey = (IpNet, u8, u32);

/// A main-table route, as written or as found in a dump.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelRoute {
    pub dst: IpNet,
    pub tos: u8,
    pub metric: u32,
    pub protocol: u8,
    pub scope: u8,
    pub target: RouteTarget,
}

impl KernelRoute {
    /// The slot this route occupies.
    pub fn key(&self) -> SlotKey {
        (self.dst, self.tos, self.metric)
    }
}

/// `ip route` syntax, with `dev #<index>` since names are resolved elsewhere.
impl fmt::Display for KernelRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            RouteTarget::Dev(index) => write!(f, "{} dev #{index}", self.dst)?,
            RouteTarget::Blackhole => write!(f, "blackhole {}", self.dst)?,
            RouteTarget::Via(hops) => {
                write!(f, "{}", self.dst)?;
                for hop in hops {
                    write!(f, " via {hop}")?;
                }
            }
            RouteTarget::OnlinkVia { gateway, dev } => {
                write!(f, "{} via {gateway} dev #{dev} onlink", self.dst)?
            }
            RouteTarget::Other => write!(f, "{} (other)", self.dst)?,
        }
        if self.tos != 0 {
            write!(f, " tos {:#x}", self.tos)?;
        }
        match self.scope {
            SCOPE_UNIVERSE => {}
            SCOPE_LINK => write!(f, " scope link")?,
            s => write!(f, " scope {s}")?,
        }
        write!(f, " proto {} metric {}", self.protocol, self.metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BGPD, FELIX};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn display_is_ip_route_like() {
        let r = FELIX.route(net("10.244.1.5/32"), RouteTarget::Dev(7));
        assert_eq!(
            r.to_string(),
            "10.244.1.5/32 dev #7 scope link proto 80 metric 0"
        );
        let b = FELIX.route(net("fd00::/122"), RouteTarget::Blackhole);
        assert_eq!(b.to_string(), "blackhole fd00::/122 proto 80 metric 1024");
        let g = BGPD.route(
            net("10.0.1.0/26"),
            RouteTarget::via(vec![
                "192.0.2.3".parse().unwrap(),
                "192.0.2.2".parse().unwrap(),
            ]),
        );
        assert_eq!(
            g.to_string(),
            "10.0.1.0/26 via 192.0.2.2 via 192.0.2.3 proto 186 metric 1536"
        );
    }

    #[test]
    fn onlink_display() {
        let r = FELIX.route(
            net("10.65.0.64/26"),
            RouteTarget::OnlinkVia {
                gateway: "10.65.0.65".parse().unwrap(),
                dev: 9,
            },
        );
        assert_eq!(
            r.to_string(),
            "10.65.0.64/26 via 10.65.0.65 dev #9 onlink proto 80 metric 0"
        );
    }

    #[test]
    fn via_sorts_and_dedups() {
        let a: IpAddr = "192.0.2.2".parse().unwrap();
        let b: IpAddr = "192.0.2.3".parse().unwrap();
        assert_eq!(
            RouteTarget::via(vec![b, a, b]),
            RouteTarget::Via(vec![a, b])
        );
    }
}
