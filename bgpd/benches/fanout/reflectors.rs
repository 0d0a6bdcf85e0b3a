//! The reflectors under test, each started in the reflector namespace at
//! 172.21.0.1 / AS 64512 with every client configured as a passive
//! route-reflector client (RFC 4456) and FIB install off.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use crate::clients::Plan;
use crate::netns::{Netns, Proc, bgpd_bin};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reflector {
    Bgpd,
    Bird,
}

pub const ALL: [Reflector; 2] = [Reflector::Bgpd, Reflector::Bird];

impl Reflector {
    pub fn name(self) -> &'static str {
        match self {
            Reflector::Bgpd => "bgpd",
            Reflector::Bird => "BIRD",
        }
    }
}

/// Starts `r` in `ns` for the clients of `plan`, the route to them being
/// the caller's (`via` is the generator's address on the link).
pub fn start(r: Reflector, ns: &Netns, dir: &Path, plan: &Plan, via: Ipv4Addr) -> Proc {
    let me = plan.reflector;
    let log = dir.join(format!("{}.log", r.name()));
    let sock = dir.join(format!("{}.ctl", r.name()));
    let clients = (0..plan.clients).map(|c| plan.address(c));
    match r {
        Reflector::Bgpd => {
            let mut conf = format!(
                "asNumber: {}\nrouterId: {me}\nfib: false\ncontrolSocket: {}\npeers:\n",
                plan.asn,
                sock.display()
            );
            for a in clients {
                let _ = writeln!(
                    conf,
                    "  - {{address: {a}, asNumber: {}, passive: true, routeReflectorClient: true, families: [ipv4]}}",
                    plan.asn
                );
            }
            let p = dir.join("bgpd.yaml");
            std::fs::write(&p, conf).expect("write bgpd.yaml");
            let p = p.to_str().expect("utf-8 temp path");
            ns.spawn(
                &[bgpd_bin(), "--config", p, "--metrics-listen", "off"],
                &log,
            )
        }
        Reflector::Bird => {
            // iBGP sessions are multihop in BIRD, so next hops resolve
            // recursively: the static route puts the clients' network in the
            // table they resolve through (and is not exported).
            let mut conf = format!(
                "router id {me};\nprotocol device {{}}\n\
                 protocol static {{ ipv4; route {net} via {via}; }}\n\
                 template bgp rrclient {{ local {me} as {asn}; rr client; passive on; \
                 ipv4 {{ import all; export where source = RTS_BGP; }}; }}\n",
                asn = plan.asn,
                net = crate::CLIENT_NET,
            );
            for (c, a) in clients.enumerate() {
                let _ = writeln!(
                    conf,
                    "protocol bgp c{c} from rrclient {{ neighbor {a} as {}; }}",
                    plan.asn
                );
            }
            let p = dir.join("bird.conf");
            std::fs::write(&p, conf).expect("write bird.conf");
            let (p, s) = (
                p.to_str().expect("utf-8 temp path"),
                sock.to_str().expect("utf-8 temp path"),
            );
            ns.spawn(&["bird", "-f", "-c", p, "-s", s], &log)
        }
    }
}
