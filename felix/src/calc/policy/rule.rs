//! One Calico rule -> `iptables-restore` rule bodies (IPv4).
//!
//! Match order inside a rule follows Calico: protocol, addresses (source then
//! destination), ports, ICMP. Semantics within a rule are AND; OR inside a field
//! (several nets, several selectors' endpoints) is an ipset. Positive ports longer
//! than multiport's 15 slots are split into several rules with the same action,
//! which ORs them; negated port chunks stay in one rule, which ANDs them.
//!
//! Named ports match each endpoint's own number, as Calico does: a `hash:ip,port`
//! set per (side's endpoints, port name, protocol) holds every selected endpoint's
//! (address, protocol, number), matched `dst,dst` (or `src,src`). A positive named
//! port is one more OR'ed variant of the rule, a negated one one more AND'ed match.
//! The chains never depend on which endpoints exist: only the sets' members do, so
//! an endpoint change is an ipset update, and a name no endpoint declares is an
//! empty set that matches nothing.
//!
//! `serviceAccounts` narrows a side's endpoints: it becomes one more selector ANDed
//! with the side's selector (see [`Side::service_accounts`]), so it is part of the
//! side's selector set and of its named-port sets.

use config::model::k8s::SERVICE_ACCOUNT_LABEL_PREFIX;
use config::model::{
    Action, EntityRule, IcmpFields, LABEL_SERVICE_ACCOUNT, Port, Protocol, Rule,
    ServiceAccountMatch,
};
use config::selector::{ParseError, Selector};
use ipnet::{IpNet, Ipv4Net};
use thiserror::Error;

use crate::calc::ipsets::SetSpec;
use crate::calc::names::{MARK_ACCEPT, MARK_PASS};

/// Why a rule cannot be rendered. The enclosing policy then fails closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuleError {
    #[error("{field}: {value:?} is not a CIDR")]
    BadNet { field: String, value: String },
    #[error("{field}: selector {value:?}: {source}")]
    BadSelector {
        field: String,
        value: String,
        source: Box<ParseError>,
    },
    #[error(
        "{field}: ports need a protocol that has ports (TCP, UDP, SCTP), the rule has {protocol}"
    )]
    PortsNeedProtocol { field: String, protocol: String },
    #[error("icmp/notICMP needs protocol ICMP or ICMPv6, the rule has {protocol}")]
    IcmpNeedsProtocol { protocol: String },
    #[error("{field}: ICMP code {code} without a type (iptables cannot match it)")]
    IcmpCodeWithoutType { field: String, code: i64 },
    #[error("{field} is not supported by felix's iptables dataplane")]
    Unsupported { field: &'static str },
}

/// Where a rule sits: its policy's namespace scopes its selectors.
pub struct RuleContext<'a> {
    /// A NetworkPolicy's namespace; `None` for global policies and profiles.
    pub namespace: Option<&'a str>,
}

/// The rendered form of one rule.
#[derive(Clone, Debug, Default)]
pub struct RenderedRule {
    pub bodies: Vec<String>,
    pub sets: Vec<SetSpec>,
}

/// iptables' multiport takes at most 15 ports, a range counting as two.
const MULTIPORT_SLOTS: usize = 15;

/// Renders `rule`; an empty result means the rule can never match an IPv4 packet
/// (IPv6-only) and is left out.
pub fn render_rule(rule: &Rule, ctx: &RuleContext) -> Result<RenderedRule, RuleError> {
    if rule.http.is_some() {
        return Err(RuleError::Unsupported { field: "http" });
    }
    let mut out = RenderedRule::default();
    if rule.ip_version == Some(6) || rule.protocol == Some(Protocol::IcmpV6) {
        return Ok(out);
    }
    let mut m = Vec::new();
    if let Some(p) = rule.protocol {
        m.push(format!("-p {}", proto_name(p)));
    }
    if let Some(p) = rule.not_protocol {
        m.push(format!("! -p {}", proto_name(p)));
    }
    let src = Side::SOURCE;
    let dst = Side::DESTINATION;
    let (Some(src_sel), Some(dst_sel)) = (
        src.addresses(&rule.source, ctx, &mut m, &mut out.sets)?,
        dst.addresses(&rule.destination, ctx, &mut m, &mut out.sets)?,
    ) else {
        return Ok(RenderedRule::default());
    };
    let mut variants = vec![m];
    for (side, entity, side_sel) in [
        (src, &rule.source, src_sel),
        (dst, &rule.destination, dst_sel),
    ] {
        side.ports(entity, rule.protocol, &side_sel, &mut variants, &mut out)?;
    }
    let icmp = icmp_matches(rule)?;
    let action = action_words(rule.action);
    for mut v in variants {
        v.extend(icmp.iter().cloned());
        v.push(action.to_string());
        out.bodies.push(v.join(" "));
    }
    if let Some(mark) = match rule.action {
        Action::Allow => Some(MARK_ACCEPT),
        Action::Pass => Some(MARK_PASS),
        Action::Deny | Action::Log => None,
    } {
        out.bodies
            .push(format!("-m mark --mark {mark:#x}/{mark:#x} -j RETURN"));
    }
    Ok(out)
}

/// The rule's verdict: Allow/Pass set their mark (the RETURN follows), Deny drops,
/// Log logs and lets evaluation continue.
fn action_words(action: Action) -> String {
    match action {
        Action::Allow => format!("-j MARK --set-xmark {MARK_ACCEPT:#x}/{MARK_ACCEPT:#x}"),
        Action::Pass => format!("-j MARK --set-xmark {MARK_PASS:#x}/{MARK_PASS:#x}"),
        Action::Deny => "-j DROP".into(),
        Action::Log => "-j LOG --log-prefix \"calico-packet: \" --log-level 5".into(),
    }
}

pub fn proto_name(p: Protocol) -> String {
    match p {
        Protocol::Tcp => "tcp".into(),
        Protocol::Udp => "udp".into(),
        Protocol::Icmp => "icmp".into(),
        Protocol::IcmpV6 => "ipv6-icmp".into(),
        Protocol::Sctp => "sctp".into(),
        Protocol::UdpLite => "udplite".into(),
        Protocol::Number(n) => n.to_string(),
    }
}

#[derive(Clone, Copy)]
struct Side {
    name: &'static str,
    addr_flag: &'static str,
    set_dir: &'static str,
    /// The flags of a `hash:ip,port` match: the address and the port on this side.
    ip_port_dirs: &'static str,
    ports_flag: &'static str,
}

impl Side {
    const SOURCE: Side = Side {
        name: "source",
        addr_flag: "-s",
        set_dir: "src",
        ip_port_dirs: "src,src",
        ports_flag: "--sports",
    };
    const DESTINATION: Side = Side {
        name: "destination",
        addr_flag: "-d",
        set_dir: "dst",
        ip_port_dirs: "dst,dst",
        ports_flag: "--dports",
    };

    /// Appends the address matches of one side. Returns the set of endpoints the side
    /// selects (for named ports), or `None` when the side can never match IPv4.
    fn addresses(
        self,
        e: &EntityRule,
        ctx: &RuleContext,
        m: &mut Vec<String>,
        sets: &mut Vec<SetSpec>,
    ) -> Result<Option<SetSpec>, RuleError> {
        if e.services.is_some() {
            // A Service as source/destination needs the Service's endpoints (Calico
            // reads Kubernetes Services and EndpointSlices into its own ipsets); the
            // datastore holds neither yet, so the rule cannot be rendered and the
            // policy fails closed rather than match nothing or everything.
            return Err(RuleError::Unsupported {
                field: match self.name {
                    "source" => "source.services",
                    _ => "destination.services",
                },
            });
        }
        let nets = self.v4_nets(&e.nets, "nets")?;
        if !e.nets.is_empty() && nets.is_empty() {
            return Ok(None);
        }
        match nets.as_slice() {
            [] => {}
            [one] => m.push(format!("{} {one}", self.addr_flag)),
            many => {
                let set = SetSpec::nets(many);
                m.push(format!("-m set --match-set {} {}", set.name, self.set_dir));
                sets.push(set);
            }
        }
        // iptables takes one -s/-d per rule: a lone notNet is inline only when the
        // positive side did not use the flag already.
        match self.v4_nets(&e.not_nets, "notNets")?.as_slice() {
            [] => {}
            [one] if nets.len() != 1 => m.push(format!("! {} {one}", self.addr_flag)),
            many => {
                let set = SetSpec::nets(many);
                m.push(format!(
                    "-m set ! --match-set {} {}",
                    set.name, self.set_dir
                ));
                sets.push(set);
            }
        }
        let selector = self.parse(&e.selector, "selector")?;
        let selector = match &e.service_accounts {
            Some(sa) => and(&self.service_accounts(sa)?, &selector),
            None => selector,
        };
        let ns_selector = match e.namespace_selector.as_str() {
            "" => None,
            s => Some(self.parse(s, "namespaceSelector")?),
        };
        // A NetworkPolicy's selectors only see its own namespace unless the rule names
        // other namespaces; a lone notSelector still implies "in this namespace".
        let has_selector = !e.selector.is_empty() || e.service_accounts.is_some();
        let scoped = ns_selector.is_some()
            || (ctx.namespace.is_some() && (has_selector || !e.not_selector.is_empty()));
        let side_set = SetSpec::selector(selector, ctx.namespace, ns_selector);
        if scoped || has_selector {
            m.push(format!(
                "-m set --match-set {} {}",
                side_set.name, self.set_dir
            ));
            sets.push(side_set.clone());
        }
        if !e.not_selector.is_empty() {
            let not = SetSpec::selector(self.parse(&e.not_selector, "notSelector")?, None, None);
            m.push(format!(
                "-m set ! --match-set {} {}",
                not.name, self.set_dir
            ));
            sets.push(not);
        }
        Ok(Some(side_set))
    }

    /// The endpoints of the matched service accounts, as Calico's `parseServiceAccounts`
    /// (libcalico-go `updateprocessors/rules.go`) writes them: the account selector over
    /// the `pcsa.` labels the `ksa.<ns>.<account>` profile applies, AND the account name
    /// (`projectcalico.org/serviceaccount`, on the endpoint itself) in `names`.
    fn service_accounts(self, sa: &ServiceAccountMatch) -> Result<Selector, RuleError> {
        let by_labels = self
            .parse(&sa.selector, "serviceAccounts.selector")?
            .with_key_prefix(SERVICE_ACCOUNT_LABEL_PREFIX);
        if sa.names.is_empty() {
            return Ok(by_labels);
        }
        let quoted: Vec<String> = sa.names.iter().map(|n| quote(n)).collect();
        let text = format!("{LABEL_SERVICE_ACCOUNT} in {{{}}}", quoted.join(", "));
        let by_name = self.parse(&text, "serviceAccounts.names")?;
        Ok(and(&by_labels, &by_name))
    }

    fn v4_nets(self, nets: &[String], field: &str) -> Result<Vec<Ipv4Net>, RuleError> {
        let mut out = Vec::new();
        for s in nets {
            let net = s
                .parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| RuleError::BadNet {
                    field: format!("{}.{field}", self.name),
                    value: s.clone(),
                })?;
            if let IpNet::V4(n) = net {
                out.push(n.trunc());
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn parse(self, s: &str, field: &str) -> Result<Selector, RuleError> {
        Selector::parse(s).map_err(|source| RuleError::BadSelector {
            field: format!("{}.{field}", self.name),
            value: s.into(),
            source: Box::new(source),
        })
    }

    /// Adds port matches to every variant: positive numeric ports and each positive
    /// named port are OR'ed (one variant each), negated ones AND'ed onto all.
    fn ports(
        self,
        e: &EntityRule,
        protocol: Option<Protocol>,
        side_set: &SetSpec,
        variants: &mut Vec<Vec<String>>,
        out: &mut RenderedRule,
    ) -> Result<(), RuleError> {
        if !e.has_ports() {
            return Ok(());
        }
        let field = |f: &str| format!("{}.{f}", self.name);
        let proto = protocol
            .filter(|p| p.supports_ports() || *p == Protocol::UdpLite)
            .ok_or_else(|| RuleError::PortsNeedProtocol {
                field: field(if e.ports.is_empty() {
                    "notPorts"
                } else {
                    "ports"
                }),
                protocol: protocol.map_or("none".into(), |p| p.to_string()),
            })?;
        // Numeric ranges as multiport lists, and the named-port sets.
        let mut split = |ports: &[Port]| -> (Vec<String>, Vec<SetSpec>) {
            let mut ranges = Vec::new();
            let mut named = Vec::new();
            for p in ports {
                match (p.bounds(), p) {
                    (Some(b), _) => ranges.push(b),
                    (None, Port::Named(name)) => {
                        let set = SetSpec::named_port(side_set, name, proto)
                            .expect("a rule side's endpoints are a selector set, proto has ports");
                        if !named.iter().any(|s: &SetSpec| s.name == set.name) {
                            named.push(set);
                        }
                    }
                    (None, _) => {}
                }
            }
            ranges.sort_unstable();
            ranges.dedup();
            out.sets.extend(named.iter().cloned());
            (chunks(&ranges), named)
        };
        if !e.ports.is_empty() {
            let (chunks, named) = split(&e.ports);
            let alternatives: Vec<String> =
                chunks
                    .iter()
                    .map(|c| format!("-m multiport {} {c}", self.ports_flag))
                    .chain(named.iter().map(|set| {
                        format!("-m set --match-set {} {}", set.name, self.ip_port_dirs)
                    }))
                    .collect();
            *variants = variants
                .iter()
                .flat_map(|v| {
                    alternatives.iter().map(move |alt| {
                        let mut v = v.clone();
                        v.push(alt.clone());
                        v
                    })
                })
                .collect();
        }
        let (chunks, named) = split(&e.not_ports);
        for v in variants.iter_mut() {
            for c in &chunks {
                v.push(format!("-m multiport ! {} {c}", self.ports_flag));
            }
            for set in &named {
                v.push(format!(
                    "-m set ! --match-set {} {}",
                    set.name, self.ip_port_dirs
                ));
            }
        }
        Ok(())
    }
}

/// `(a) && (b)`, Calico's way of combining a rule side's selectors; an `all()`
/// operand (also what an unwritten selector parses to) is left out.
fn and(a: &Selector, b: &Selector) -> Selector {
    if b.is_all() {
        return a.clone();
    }
    if a.is_all() {
        return b.clone();
    }
    Selector::parse(&format!("({a}) && ({b})")).expect("two canonical selectors AND'ed parse")
}

/// A selector string literal: Calico's selector grammar has no escapes, so a name
/// holding `"` is written in single quotes (a Kubernetes name holds neither).
fn quote(s: &str) -> String {
    if s.contains('"') {
        format!("'{s}'")
    } else {
        format!("\"{s}\"")
    }
}

/// Port ranges as multiport lists of at most 15 slots each.
fn chunks(ranges: &[(u16, u16)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut used = 0;
    for &(a, b) in ranges {
        let (text, cost) = if a == b {
            (a.to_string(), 1)
        } else {
            (format!("{a}:{b}"), 2)
        };
        if used + cost > MULTIPORT_SLOTS {
            out.push(cur.join(","));
            cur.clear();
            used = 0;
        }
        cur.push(text);
        used += cost;
    }
    if !cur.is_empty() {
        out.push(cur.join(","));
    }
    out
}

fn icmp_matches(rule: &Rule) -> Result<Vec<String>, RuleError> {
    let mut out = Vec::new();
    for (field, fields, neg) in [("icmp", &rule.icmp, ""), ("notICMP", &rule.not_icmp, "! ")] {
        let Some(IcmpFields { icmp_type, code }) = fields else {
            continue;
        };
        if rule.protocol != Some(Protocol::Icmp) {
            return Err(RuleError::IcmpNeedsProtocol {
                protocol: rule.protocol.map_or("none".into(), |p| p.to_string()),
            });
        }
        match (icmp_type, code) {
            (None, None) => {}
            (None, Some(code)) => {
                return Err(RuleError::IcmpCodeWithoutType {
                    field: field.into(),
                    code: *code,
                });
            }
            (Some(t), None) => out.push(format!("-m icmp {neg}--icmp-type {t}")),
            (Some(t), Some(c)) => out.push(format!("-m icmp {neg}--icmp-type {t}/{c}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
