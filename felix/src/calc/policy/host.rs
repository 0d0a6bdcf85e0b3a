//! Host endpoint chains, as Calico's `rules/endpoints.go`, `dispatch.go` and
//! `static.go` lay them out for iptables.
//!
//! A host endpoint polices the host's own interface in up to three tables:
//!
//! * filter: `cali-fh-<if>` (into the host, from `cali-INPUT`) and `cali-th-<if>`
//!   (out of the host, from `cali-OUTPUT`) run the endpoint's normal policies and
//!   profiles after the failsafe chain; `cali-fhfw-<if>`/`cali-thfw-<if>` (from
//!   `cali-FORWARD`) run those with `applyOnForward`.
//! * mangle: `cali-fh-<if>` from `cali-PREROUTING` runs `preDNAT` policies.
//! * raw: `cali-fh-<if>`/`cali-th-<if>` from `cali-PREROUTING`/`cali-OUTPUT` run
//!   `doNotTrack` policies; an allow there is also a NOTRACK.
//!
//! The dispatch chains go to an endpoint's chain by interface name and return
//! for interfaces without an endpoint (the host's other interfaces are not
//! policed). The all-interfaces endpoint (`interfaceName: "*"`, chains
//! `cali-*-any`) takes every interface no named endpoint has, except workload
//! interfaces: their traffic is under the workloads' own policy.
//!
//! Failsafe ports (FelixConfiguration `failsafeInboundHostPorts` /
//! `failsafeOutboundHostPorts`) are accepted before any policy, so that a host
//! policy cannot lock the operator out of ssh, BGP, etcd or the API server.

use std::fmt;
use std::str::FromStr;

use ipnet::Ipv4Net;

use super::endpoint::{ChainKind, EndpointPlan, endpoint_rules};
use crate::calc::desired::iptables::{Chain, Table};
use crate::calc::names::{
    ALL_INTERFACES_SUFFIX, CHAIN_FAILSAFE_IN, CHAIN_FAILSAFE_OUT, CHAIN_FROM_HEP_DISPATCH,
    CHAIN_FROM_HEP_FORWARD, CHAIN_OUTPUT, CHAIN_PREROUTING, CHAIN_TO_HEP_DISPATCH,
    CHAIN_TO_HEP_FORWARD, HostChain, MARK_ACCEPT, MARK_ALL, host_endpoint_chain,
};

/// One failsafe entry: `<protocol>:<port>` or `<protocol>:<net>:<port>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailsafePort {
    pub protocol: FailsafeProtocol,
    /// The remote side: source for inbound entries, destination for outbound ones.
    pub net: Option<Ipv4Net>,
    pub port: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailsafeProtocol {
    Tcp,
    Udp,
}

impl FailsafeProtocol {
    fn name(self) -> &'static str {
        match self {
            FailsafeProtocol::Tcp => "tcp",
            FailsafeProtocol::Udp => "udp",
        }
    }
}

impl fmt::Display for FailsafePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.net {
            Some(net) => write!(f, "{}:{net}:{}", self.protocol.name(), self.port),
            None => write!(f, "{}:{}", self.protocol.name(), self.port),
        }
    }
}

impl FromStr for FailsafePort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        let (protocol, net, port) = match parts.as_slice() {
            [proto, port] => (*proto, None, *port),
            [proto, net, port] => (*proto, Some(*net), *port),
            _ => {
                return Err(format!(
                    "{s:?}: expected <protocol>:<port> or <protocol>:<net>:<port>"
                ));
            }
        };
        let protocol = match protocol.to_ascii_lowercase().as_str() {
            "tcp" => FailsafeProtocol::Tcp,
            "udp" => FailsafeProtocol::Udp,
            other => return Err(format!("{s:?}: protocol {other:?} is not tcp or udp")),
        };
        let net = match net {
            Some(n) => Some(
                n.parse::<Ipv4Net>()
                    .or_else(|_| n.parse::<std::net::Ipv4Addr>().map(Ipv4Net::from))
                    .map_err(|_| format!("{s:?}: {n:?} is not an IPv4 address or CIDR"))?,
            ),
            None => None,
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{s:?}: {port:?} is not a port number (1-65535)"))?;
        Ok(FailsafePort {
            protocol,
            net,
            port,
        })
    }
}

/// A comma-separated list; `none` (or nothing) for no failsafe ports.
pub fn parse_failsafe_list(s: &str) -> Result<Vec<FailsafePort>, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    s.split(',').map(str::parse).collect()
}

/// Calico's default `failsafeInboundHostPorts`: ssh, DHCP, BGP, etcd, Typha and the
/// Kubernetes API server.
pub const DEFAULT_FAILSAFE_INBOUND: &str =
    "tcp:22,udp:68,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667";
/// Calico's default `failsafeOutboundHostPorts`: DNS, DHCP, BGP, etcd, Typha and the
/// Kubernetes API server.
pub const DEFAULT_FAILSAFE_OUTBOUND: &str =
    "udp:53,udp:67,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667";

/// Both failsafe lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failsafes {
    pub inbound: Vec<FailsafePort>,
    pub outbound: Vec<FailsafePort>,
}

impl Default for Failsafes {
    fn default() -> Self {
        Failsafes {
            inbound: parse_failsafe_list(DEFAULT_FAILSAFE_INBOUND).expect("valid default"),
            outbound: parse_failsafe_list(DEFAULT_FAILSAFE_OUTBOUND).expect("valid default"),
        }
    }
}

impl Failsafes {
    /// `cali-failsafe-in` and `cali-failsafe-out` for `table`. In raw, before
    /// conntrack, each also accepts the replies of the other direction's
    /// connections, which an untracked policy would otherwise see alone.
    pub fn chains(&self, table: Table) -> [Chain; 2] {
        let rule = |p: &FailsafePort, port: &str, net: &str| {
            let proto = p.protocol.name();
            let net = p.net.map(|n| format!("{net} {n} ")).unwrap_or_default();
            format!("-p {proto} -m {proto} {net}{port} {} -j ACCEPT", p.port)
        };
        let mut inbound: Vec<String> = self
            .inbound
            .iter()
            .map(|p| rule(p, "--dport", "-s"))
            .collect();
        let mut outbound: Vec<String> = self
            .outbound
            .iter()
            .map(|p| rule(p, "--dport", "-d"))
            .collect();
        if table == Table::Raw {
            inbound.extend(self.outbound.iter().map(|p| rule(p, "--sport", "-s")));
            outbound.extend(self.inbound.iter().map(|p| rule(p, "--sport", "-d")));
        }
        [
            Chain {
                name: CHAIN_FAILSAFE_IN.into(),
                rules: inbound.into(),
            },
            Chain {
                name: CHAIN_FAILSAFE_OUT.into(),
                rules: outbound.into(),
            },
        ]
    }
}

/// What one local host endpoint's chains run: plans per chain. The `direction`
/// of each plan picks the policy and profile chains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPlans {
    /// The interface, or `*` for all of them.
    pub interface: String,
    /// Normal policies and the profiles: (into the host, out of the host).
    pub normal: [EndpointPlan; 2],
    /// `applyOnForward` policies: (arriving, leaving).
    pub forward: [EndpointPlan; 2],
    /// `preDNAT` policies (ingress only).
    pub pre_dnat: EndpointPlan,
    /// `doNotTrack` policies: (into the host, out of the host).
    pub untracked: [EndpointPlan; 2],
}

impl HostPlans {
    /// The suffix of the endpoint's chain names: the interface, `any` for `*`.
    pub fn suffix(&self) -> &str {
        if self.interface == "*" {
            ALL_INTERFACES_SUFFIX
        } else {
            &self.interface
        }
    }
}

/// The host endpoint chains of each table (policy and profile chains are the
/// caller's: they are shared with workload endpoints).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostTables {
    pub filter: Vec<Chain>,
    pub mangle: Vec<Chain>,
    pub raw: Vec<Chain>,
}

/// Every host endpoint chain, dispatch chain, failsafe chain and the raw and
/// mangle base chains, for the endpoints in `heps` (at most one per interface,
/// sorted by interface).
pub fn host_tables(heps: &[HostPlans], failsafes: &Failsafes) -> HostTables {
    let chain = |which: HostChain, hep: &HostPlans, plan: &EndpointPlan, kind: ChainKind| Chain {
        name: host_endpoint_chain(which, hep.suffix()),
        rules: endpoint_rules(plan, kind).into(),
    };
    let host = |failsafe| ChainKind::Host { failsafe };
    let mut out = HostTables::default();
    for hep in heps {
        let [from, to] = &hep.normal;
        let [from_fw, to_fw] = &hep.forward;
        let [from_raw, to_raw] = &hep.untracked;
        out.filter.extend([
            chain(HostChain::From, hep, from, host(CHAIN_FAILSAFE_IN)),
            chain(HostChain::To, hep, to, host(CHAIN_FAILSAFE_OUT)),
            chain(HostChain::FromForward, hep, from_fw, ChainKind::Forward),
            chain(HostChain::ToForward, hep, to_fw, ChainKind::Forward),
        ]);
        let pre_dnat = ChainKind::PreDnat {
            failsafe: CHAIN_FAILSAFE_IN,
        };
        out.mangle
            .push(chain(HostChain::From, hep, &hep.pre_dnat, pre_dnat));
        out.raw.extend([
            chain(
                HostChain::From,
                hep,
                from_raw,
                ChainKind::Untracked {
                    failsafe: CHAIN_FAILSAFE_IN,
                },
            ),
            chain(
                HostChain::To,
                hep,
                to_raw,
                ChainKind::Untracked {
                    failsafe: CHAIN_FAILSAFE_OUT,
                },
            ),
        ]);
    }
    let from = dispatch(CHAIN_FROM_HEP_DISPATCH, "-i", HostChain::From, heps);
    let to = dispatch(CHAIN_TO_HEP_DISPATCH, "-o", HostChain::To, heps);
    out.filter.extend([
        from.clone(),
        to.clone(),
        dispatch(CHAIN_FROM_HEP_FORWARD, "-i", HostChain::FromForward, heps),
        dispatch(CHAIN_TO_HEP_FORWARD, "-o", HostChain::ToForward, heps),
    ]);
    out.filter.extend(failsafes.chains(Table::Filter));
    out.mangle.push(from.clone());
    out.mangle.push(failsafes.chains(Table::Mangle)[0].clone());
    out.mangle.push(mangle_prerouting());
    out.raw.extend([from, to]);
    out.raw.extend(failsafes.chains(Table::Raw));
    out.raw.extend(raw_base_chains());
    out
}

/// Goes to the endpoint chain of the packet's interface; returns for interfaces
/// without an endpoint.
fn dispatch(name: &str, flag: &str, which: HostChain, heps: &[HostPlans]) -> Chain {
    let mut rules: Vec<String> = heps
        .iter()
        .filter(|h| h.interface != "*")
        .map(|h| {
            format!(
                "{flag} {} -g {}",
                h.interface,
                host_endpoint_chain(which, h.suffix())
            )
        })
        .collect();
    if heps.iter().any(|h| h.interface == "*") {
        rules.push(format!(
            "{flag} cali+ -m comment --comment \"Workload interface: not a host endpoint\" -j RETURN"
        ));
        rules.push(format!(
            "-g {}",
            host_endpoint_chain(which, ALL_INTERFACES_SUFFIX)
        ));
    }
    Chain {
        name: name.into(),
        rules: rules.into(),
    }
}

/// Accept in the raw or mangle table, as the filter table's chains read it.
fn accept_mark() -> String {
    format!("-m mark --mark {MARK_ACCEPT:#x}/{MARK_ACCEPT:#x}")
}

/// mangle `cali-PREROUTING`: established traffic and traffic untracked policy
/// accepted skip pre-DNAT policy; what pre-DNAT policy accepts is accepted here
/// (and again, by its mark, in the filter table).
fn mangle_prerouting() -> Chain {
    let accept = accept_mark();
    Chain {
        name: CHAIN_PREROUTING.into(),
        rules: vec![
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".to_string(),
            format!("{accept} -j ACCEPT"),
            format!("-j {CHAIN_FROM_HEP_DISPATCH}"),
            format!(
                "-m comment --comment \"Host endpoint policy accepted packet.\" {accept} -j ACCEPT"
            ),
        ]
        .into(),
    }
}

/// raw `cali-PREROUTING` and `cali-OUTPUT`: clear felix's mark bits (every packet
/// enters here first), run untracked policy of host endpoints (not for packets
/// from workloads), accept what it allowed.
fn raw_base_chains() -> [Chain; 2] {
    let accept = accept_mark();
    let clear = format!("-j MARK --set-xmark 0x0/{MARK_ALL:#x}");
    [
        Chain {
            name: CHAIN_PREROUTING.into(),
            rules: vec![
                clear.clone(),
                "-i cali+ -j RETURN".into(),
                format!("-j {CHAIN_FROM_HEP_DISPATCH}"),
                format!("{accept} -j ACCEPT"),
            ]
            .into(),
        },
        Chain {
            name: CHAIN_OUTPUT.into(),
            rules: vec![
                clear,
                format!("-j {CHAIN_TO_HEP_DISPATCH}"),
                format!("{accept} -j ACCEPT"),
            ]
            .into(),
        },
    ]
}

#[cfg(test)]
mod tests;
