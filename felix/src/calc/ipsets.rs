//! The ipsets policy rules match on: one per distinct (selector, namespace scope) and
//! one per list of several CIDRs, named `cali40s:<hash of the canonical identity>`;
//! one per (selector, scope, named port, protocol), named `cali40n:<hash>`, holding
//! each selected endpoint's (address, protocol, port) as Calico's named-port sets do;
//! plus the two IPAM pool sets natOutgoing uses.
//!
//! Selector sets hold the IPv4 addresses of every matching workload endpoint in the
//! cluster, not only local ones: a rule `from role == 'web'` must recognise packets
//! from web pods on other nodes too. They also hold the IPv4 nets of every matching
//! network set (Calico's label index treats network sets like endpoints): a
//! GlobalNetworkSet within cluster-wide scope (GlobalNetworkPolicy and profile rules,
//! or a `global()` namespaceSelector), a NetworkSet within its namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use config::model::{IPPool, LABEL_NAMESPACE, Protocol, WorkloadEndpoint};
use config::selector::Selector;
use ipnet::{IpNet, Ipv4Net};

use super::desired::Family;
use super::desired::ipsets::{IpSet, PortProto, SetMember, SetType};
use super::model::{CalcInput, NetSetDef, NetSetKey, WepKey};
use super::names::{SET_ALL_POOLS, SET_MASQ_POOLS, named_port_set, selector_set};

/// Which namespaces a rule selector looks in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Every endpoint (GlobalNetworkPolicy, Profile).
    Cluster,
    /// Endpoints of one namespace (a NetworkPolicy rule without `namespaceSelector`).
    Namespace(String),
    /// Endpoints whose namespace's labels match (canonical selector text).
    Namespaces(String),
}

/// What a set is: equal identities are one set, shared by every rule using it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SetId {
    Selector {
        selector: String,
        scope: Scope,
    },
    /// Sorted, deduplicated IPv4 networks.
    Nets(Vec<Ipv4Net>),
    /// The port called `port` (for `protocol`) on each endpoint the selector set
    /// `endpoints` holds.
    NamedPort {
        endpoints: Box<SetId>,
        port: String,
        protocol: PortProto,
    },
}

impl fmt::Display for SetId {
    /// The text the set name is hashed from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetId::Selector { selector, scope } => match scope {
                Scope::Cluster => f.write_str(selector),
                Scope::Namespace(ns) if selector == "all()" => {
                    write!(f, "{LABEL_NAMESPACE} == \"{ns}\"")
                }
                Scope::Namespace(ns) => write!(f, "({selector} && {LABEL_NAMESPACE} == \"{ns}\")"),
                Scope::Namespaces(nss) => write!(f, "({selector} && namespaceSelector {nss})"),
            },
            SetId::Nets(nets) => {
                f.write_str("nets:")?;
                for (i, n) in nets.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{n}")?;
                }
                Ok(())
            }
            SetId::NamedPort {
                endpoints,
                port,
                protocol,
            } => write!(f, "named port {}:{port} of {endpoints}", protocol.name()),
        }
    }
}

/// A set a rendered rule refers to, with what is needed to compute its members.
#[derive(Clone, Debug)]
pub struct SetSpec {
    pub id: SetId,
    pub name: String,
    matcher: Matcher,
}

#[derive(Clone, Debug)]
enum Matcher {
    Selector(EndpointMatch),
    NamedPort {
        endpoints: EndpointMatch,
        port: String,
        protocol: PortProto,
    },
    Nets,
}

/// Which endpoints a selector set holds.
#[derive(Clone, Debug)]
struct EndpointMatch {
    selector: Selector,
    namespace: Option<String>,
    namespaces: Option<Selector>,
}

impl EndpointMatch {
    /// Whether a network set is in scope and its labels match. A GlobalNetworkSet has
    /// no namespace: only cluster scope sees it, or a namespaceSelector that Calico's
    /// rewrite (`all()` -> `has(projectcalico.org/namespace)`, `global()` ->
    /// `!has(...)`, others over `pcns.` labels it lacks) lets through.
    fn selects_net_set(&self, set: &NetSetView, namespaces: &NamespaceLabels) -> bool {
        match (&set.key.namespace, &self.namespace, &self.namespaces) {
            (Some(ns), Some(scope), _) if ns != scope => return false,
            (None, Some(_), _) => return false,
            (Some(ns), _, Some(sel)) if !namespaces.matches(sel, ns) => return false,
            (None, _, Some(sel)) if !NamespaceLabels::matches_non_namespaced(sel) => {
                return false;
            }
            _ => {}
        }
        self.selector.matches(&set.labels)
    }

    fn selects(&self, ep: &EndpointView, namespaces: &NamespaceLabels) -> bool {
        if self
            .namespace
            .as_ref()
            .is_some_and(|ns| *ns != ep.key.namespace)
        {
            return false;
        }
        if let Some(ns_sel) = &self.namespaces
            && !namespaces.matches(ns_sel, &ep.key.namespace)
        {
            return false;
        }
        self.selector.matches(&ep.labels)
    }
}

impl SetSpec {
    /// Endpoints matching `selector` within `scope`.
    pub fn selector(
        selector: Selector,
        namespace: Option<&str>,
        namespaces: Option<Selector>,
    ) -> Self {
        let scope = match (&namespaces, namespace) {
            (Some(nss), _) => Scope::Namespaces(nss.to_string()),
            (None, Some(ns)) => Scope::Namespace(ns.to_string()),
            (None, None) => Scope::Cluster,
        };
        let id = SetId::Selector {
            selector: selector.to_string(),
            scope,
        };
        Self {
            name: selector_set(&id.to_string()),
            id,
            matcher: Matcher::Selector(EndpointMatch {
                selector,
                namespace: namespace
                    .filter(|_| namespaces.is_none())
                    .map(str::to_string),
                namespaces,
            }),
        }
    }

    /// The (address, protocol, port) of the port called `port` on every endpoint
    /// the selector set `endpoints` holds. `None` when `endpoints` is not a
    /// selector set or `protocol` has no ports ipset can match.
    pub fn named_port(endpoints: &SetSpec, port: &str, protocol: Protocol) -> Option<Self> {
        let Matcher::Selector(m) = &endpoints.matcher else {
            return None;
        };
        let protocol = PortProto::from_number(protocol.number())?;
        let id = SetId::NamedPort {
            endpoints: Box::new(endpoints.id.clone()),
            port: port.to_string(),
            protocol,
        };
        Some(Self {
            name: named_port_set(&id.to_string()),
            id,
            matcher: Matcher::NamedPort {
                endpoints: m.clone(),
                port: port.to_string(),
                protocol,
            },
        })
    }

    /// The ipset type this set is created with.
    pub fn kind(&self) -> SetType {
        match self.matcher {
            Matcher::NamedPort { .. } => SetType::HashIpPort,
            Matcher::Selector(_) | Matcher::Nets => SetType::HashNet,
        }
    }

    /// A fixed list of networks.
    pub fn nets(nets: &[Ipv4Net]) -> Self {
        let mut sorted: Vec<Ipv4Net> = nets.iter().map(Ipv4Net::trunc).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let id = SetId::Nets(sorted);
        Self {
            name: selector_set(&id.to_string()),
            id,
            matcher: Matcher::Nets,
        }
    }

    /// What the endpoint contributes to the set: its addresses (selector sets), its
    /// addresses with the named port's number (named-port sets), nothing (net sets).
    pub fn members_of(&self, ep: &EndpointView, namespaces: &NamespaceLabels) -> Vec<SetMember> {
        match &self.matcher {
            Matcher::Nets => Vec::new(),
            Matcher::Selector(m) if m.selects(ep, namespaces) => {
                ep.ipv4.iter().copied().map(SetMember::Net).collect()
            }
            Matcher::NamedPort {
                endpoints,
                port,
                protocol,
            } if endpoints.selects(ep, namespaces) => ep
                .ports
                .iter()
                .filter(|(name, proto, _)| {
                    name == port && PortProto::from_number(proto.number()) == Some(*protocol)
                })
                .flat_map(|&(_, _, number)| {
                    ep.ipv4.iter().map(move |ip| SetMember::IpPort {
                        ip: ip.addr(),
                        proto: *protocol,
                        port: number,
                    })
                })
                .collect(),
            Matcher::Selector(_) | Matcher::NamedPort { .. } => Vec::new(),
        }
    }

    /// What a network set contributes: its IPv4 nets, to selector sets whose scope and
    /// selector take it.
    pub fn members_of_net_set(
        &self,
        set: &NetSetView,
        namespaces: &NamespaceLabels,
    ) -> Vec<SetMember> {
        match &self.matcher {
            Matcher::Selector(m) if m.selects_net_set(set, namespaces) => set.members.clone(),
            _ => Vec::new(),
        }
    }

    /// The fixed members of a net set (a /0 is split in two /1, which hash:net can hold).
    pub fn fixed_members(&self) -> BTreeSet<SetMember> {
        let SetId::Nets(nets) = &self.id else {
            return BTreeSet::new();
        };
        nets.iter().flat_map(|n| hash_net_members(*n)).collect()
    }
}

/// A net as `hash:net` members: a /0 is split in two /1, which hash:net can hold.
fn hash_net_members(net: Ipv4Net) -> Vec<SetMember> {
    if net.prefix_len() == 0 {
        ["0.0.0.0/1", "128.0.0.0/1"]
            .map(|s| SetMember::Net(s.parse::<IpNet>().expect("literal")))
            .to_vec()
    } else {
        vec![SetMember::Net(IpNet::V4(net.trunc()))]
    }
}

/// What selectors see of one network set.
#[derive(Clone, Debug, PartialEq)]
pub struct NetSetView {
    pub key: NetSetKey,
    pub labels: BTreeMap<String, String>,
    /// Its IPv4 nets as set members (IPv6 nets and unparsable entries are left out:
    /// the sets are IPv4; validation refuses bad entries before they get here).
    pub members: Vec<SetMember>,
}

impl NetSetView {
    pub fn new(key: &NetSetKey, def: &NetSetDef) -> Self {
        let mut members: Vec<SetMember> = def
            .nets
            .iter()
            .filter_map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                    .ok()
            })
            .filter_map(|n| match n {
                IpNet::V4(v4) => Some(v4),
                IpNet::V6(_) => None,
            })
            .flat_map(hash_net_members)
            .collect();
        members.sort_unstable();
        members.dedup();
        Self {
            key: key.clone(),
            labels: def.labels.clone(),
            members,
        }
    }
}

/// What selectors see of one workload endpoint, computed once per change of the
/// endpoint or of its profiles.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointView {
    pub key: WepKey,
    pub labels: BTreeMap<String, String>,
    /// IPv4 host prefixes of `ipNetworks`.
    pub ipv4: Vec<IpNet>,
    pub local: bool,
    /// Named container ports: (name, protocol, number).
    pub ports: Vec<(String, Protocol, u16)>,
}

impl EndpointView {
    pub fn new(input: &CalcInput, key: &WepKey, wep: &WorkloadEndpoint) -> Self {
        let ipv4 = wep
            .spec
            .ip_networks
            .iter()
            .filter_map(|s| s.parse::<IpNet>().ok())
            .filter_map(|n| match n {
                IpNet::V4(v4) => Some(IpNet::V4(
                    Ipv4Net::new(v4.addr(), 32).expect("32 is a valid prefix"),
                )),
                IpNet::V6(_) => None,
            })
            .collect();
        Self {
            key: key.clone(),
            labels: input.endpoint_labels(wep),
            ipv4,
            local: input.is_local(wep),
            ports: wep
                .spec
                .ports
                .iter()
                .map(|p| (p.name.clone(), p.protocol, p.port))
                .collect(),
        }
    }
}

/// Namespace labels by namespace, from the `kns.` profiles.
#[derive(Clone, Debug, Default)]
pub struct NamespaceLabels(pub BTreeMap<String, BTreeMap<String, String>>);

impl NamespaceLabels {
    pub fn matches(&self, sel: &Selector, namespace: &str) -> bool {
        // `global()` picks non-namespaced endpoints, which workloads never are.
        if sel.to_string() == "global()" {
            return false;
        }
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        sel.matches(self.0.get(namespace).unwrap_or(&EMPTY))
    }

    /// Whether a namespaceSelector picks non-namespaced things (GlobalNetworkSets):
    /// `global()` does, `all()` does not (Calico rewrites it to "has a namespace"),
    /// any other selector as evaluated over no namespace labels.
    pub fn matches_non_namespaced(sel: &Selector) -> bool {
        if sel.to_string() == "global()" {
            return true;
        }
        !sel.is_all() && sel.matches(&BTreeMap::<String, String>::new())
    }
}

/// The two pool sets: masquerade sources (`natOutgoing` pools) and all pools.
/// Disabled pools still count: their addresses may still be in use.
pub fn pool_sets<'a>(pools: impl IntoIterator<Item = &'a IPPool>) -> [IpSet; 2] {
    let mut masq = BTreeSet::new();
    let mut all = BTreeSet::new();
    for pool in pools {
        let Some(IpNet::V4(net)) = pool.spec.network() else {
            continue;
        };
        all.insert(SetMember::Net(IpNet::V4(net)));
        if pool.spec.nat_outgoing {
            masq.insert(SetMember::Net(IpNet::V4(net)));
        }
    }
    let set = |name: &str, members| IpSet {
        name: name.into(),
        kind: SetType::HashNet,
        family: Family::V4,
        members,
    };
    [set(SET_MASQ_POOLS, masq), set(SET_ALL_POOLS, all)]
}
