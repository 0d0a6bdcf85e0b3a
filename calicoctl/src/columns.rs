//! Table columns of `calicoctl get -o ps|wide|custom-columns=`, per kind, with the cell
//! text Calico's templates produce.

use config::model::*;

/// What a cell may need beyond its own object.
pub struct Context {
    /// The cluster AS number (BGPConfiguration `default`, else 64512), shown in
    /// parentheses for nodes that inherit it.
    pub default_as: AsNumber,
}

/// The `ps` (default) or `wide` headings of a kind.
pub fn headings(kind: ResourceKind, wide: bool) -> &'static [&'static str] {
    use ResourceKind::*;
    match (kind, wide) {
        (Node, false) => &["NAME"],
        (Node, true) => &["NAME", "ASN", "IPV4", "IPV6"],
        (BGPPeer, _) => &["NAME", "PEERIP", "NODE", "ASN"],
        (BGPConfiguration, _) => &["NAME", "LOGSEVERITY", "MESHENABLED", "ASNUMBER"],
        (IPPool, false) => &["NAME", "CIDR", "SELECTOR"],
        (IPPool, true) => &[
            "NAME",
            "CIDR",
            "NAT",
            "IPIPMODE",
            "VXLANMODE",
            "DISABLED",
            "DISABLEBGPEXPORT",
            "SELECTOR",
        ],
        (WorkloadEndpoint, false) => &["WORKLOAD", "NODE", "NETWORKS", "INTERFACE"],
        (WorkloadEndpoint, true) => &[
            "NAME",
            "WORKLOAD",
            "NODE",
            "NETWORKS",
            "INTERFACE",
            "PROFILES",
            "NATS",
        ],
        (HostEndpoint, false) => &["NAME", "NODE"],
        (HostEndpoint, true) => &["NAME", "NODE", "INTERFACE", "IPS", "PROFILES"],
        (NetworkPolicy | GlobalNetworkPolicy, false) => &["NAME"],
        (NetworkPolicy | GlobalNetworkPolicy, true) => &["NAME", "ORDER", "SELECTOR"],
        (Profile, _) => &["NAME"],
        // Calico's resourcemgr: network sets show NETS only in wide; tiers NAME ORDER both.
        (NetworkSet | GlobalNetworkSet, false) => &["NAME"],
        (NetworkSet | GlobalNetworkSet, true) => &["NAME", "NETS"],
        (Tier, _) => &["NAME", "ORDER"],
        (IPAMConfiguration, _) => &["NAME", "STRICTAFFINITY", "MAXBLOCKSPERHOST"],
        (ClusterInformation, _) => &["NAME", "CALICOVERSION", "CLUSTERTYPE", "DATASTOREREADY"],
    }
}

/// The cell of `heading` for `res`, or None when the kind has no such column.
pub fn cell(res: &AnyResource, heading: &str, ctx: &Context) -> Option<String> {
    if heading == "NAME" {
        return Some(res.meta().name.clone());
    }
    if heading == "NAMESPACE" {
        return Some(res.meta().namespace.clone().unwrap_or_default());
    }
    let text = match res {
        AnyResource::Node(n) => node_cell(n, heading, ctx)?,
        AnyResource::BGPPeer(p) => match heading {
            "PEERIP" if p.spec.peer_ip.is_empty() => p.spec.peer_selector.clone(),
            "PEERIP" => p.spec.peer_ip.clone(),
            "NODE" if !p.spec.node.is_empty() => p.spec.node.clone(),
            "NODE" if !p.spec.node_selector.is_empty() => p.spec.node_selector.clone(),
            "NODE" => "(global)".to_string(),
            "ASN" => p.spec.as_number.map(|a| a.to_string()).unwrap_or_default(),
            _ => return None,
        },
        AnyResource::BGPConfiguration(c) => match heading {
            "LOGSEVERITY" => c.spec.log_severity_screen.clone(),
            "MESHENABLED" => opt(c.spec.node_to_node_mesh_enabled),
            "ASNUMBER" => opt(c.spec.as_number),
            _ => return None,
        },
        AnyResource::IPPool(p) => match heading {
            "CIDR" => p.spec.cidr.clone(),
            "NAT" => p.spec.nat_outgoing.to_string(),
            "IPIPMODE" => format!("{:?}", p.spec.effective_ipip_mode()),
            "VXLANMODE" => format!("{:?}", p.spec.effective_vxlan_mode()),
            "DISABLED" => p.spec.disabled.to_string(),
            "DISABLEBGPEXPORT" => p.spec.disable_bgp_export.to_string(),
            "SELECTOR" => p.spec.effective_node_selector().to_string(),
            _ => return None,
        },
        AnyResource::WorkloadEndpoint(w) => match heading {
            "WORKLOAD" if w.spec.workload.is_empty() => w.spec.pod.clone(),
            "WORKLOAD" => w.spec.workload.clone(),
            "NODE" => w.spec.node.clone(),
            "NETWORKS" => w.spec.ip_networks.join(","),
            "INTERFACE" => w.spec.interface_name.clone(),
            "PROFILES" => w.spec.profiles.join(","),
            "NATS" => w
                .spec
                .ip_nats
                .iter()
                .map(|n| format!("{}<->{}", n.internal_ip, n.external_ip))
                .collect::<Vec<_>>()
                .join(","),
            _ => return None,
        },
        AnyResource::HostEndpoint(h) => match heading {
            "NODE" => h.spec.node.clone(),
            "INTERFACE" => h.spec.interface_name.clone(),
            "IPS" => h.spec.expected_ips.join(","),
            "PROFILES" => h.spec.profiles.join(","),
            _ => return None,
        },
        AnyResource::NetworkPolicy(p) => match heading {
            "ORDER" => p.spec.order.map(fmt_order).unwrap_or_default(),
            "SELECTOR" => p.spec.selector.clone(),
            _ => return None,
        },
        AnyResource::GlobalNetworkPolicy(p) => match heading {
            "ORDER" => p.spec.order.map(fmt_order).unwrap_or_default(),
            "SELECTOR" => p.spec.selector.clone(),
            _ => return None,
        },
        AnyResource::NetworkSet(s) => match heading {
            "NETS" => join_and_truncate(&s.spec.nets, ",", 80),
            _ => return None,
        },
        AnyResource::GlobalNetworkSet(s) => match heading {
            "NETS" => join_and_truncate(&s.spec.nets, ",", 80),
            _ => return None,
        },
        // Go's template prints the *float64 order; unset prints "<nil>".
        AnyResource::Tier(t) => match heading {
            "ORDER" => t
                .spec
                .order
                .map(fmt_order)
                .unwrap_or_else(|| "<nil>".into()),
            _ => return None,
        },
        AnyResource::IPAMConfiguration(c) => match heading {
            "STRICTAFFINITY" => c.spec.strict_affinity.to_string(),
            "MAXBLOCKSPERHOST" => c.spec.effective_max_blocks_per_host().to_string(),
            _ => return None,
        },
        AnyResource::ClusterInformation(c) => match heading {
            "CALICOVERSION" => c.spec.calico_version.clone(),
            "CLUSTERTYPE" => c.spec.cluster_type.clone(),
            "DATASTOREREADY" => opt(c.spec.datastore_ready),
            _ => return None,
        },
        AnyResource::Profile(_) => return None,
    };
    Some(text)
}

fn node_cell(node: &Node, heading: &str, ctx: &Context) -> Option<String> {
    let bgp = node.spec.bgp.as_ref();
    Some(match heading {
        // Calico prints the AS a node inherits from the cluster in parentheses.
        "ASN" => match bgp {
            None => String::new(),
            Some(b) => match b.as_number {
                Some(asn) => asn.to_string(),
                None => format!("({})", ctx.default_as),
            },
        },
        "IPV4" => bgp.map(|b| b.ipv4_address.clone()).unwrap_or_default(),
        "IPV6" => bgp.map(|b| b.ipv6_address.clone()).unwrap_or_default(),
        _ => return None,
    })
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// calicoctl's `joinAndTruncate`: the items joined by `sep`, cut to `max` characters
/// with the last three replaced by `...` when longer.
fn join_and_truncate(items: &[String], sep: &str, max: usize) -> String {
    let joined = items.join(sep);
    if joined.chars().count() <= max {
        return joined;
    }
    let kept: String = joined.chars().take(max.saturating_sub(3)).collect();
    format!("{kept}...")
}

/// An order as Go's `fmt` prints a float64 with `%v` (what calicoctl's templates do):
/// the shortest representation, in exponent form when the decimal exponent is below -4
/// or at least 6 (strconv's `%g` with shortest precision), so `1000000` is `1e+06`.
fn fmt_order(order: f64) -> String {
    if order == 0.0 || !order.is_finite() {
        return order.to_string();
    }
    // Rust's `{:e}` is the shortest round-trip mantissa: `1e6`, `1.5e2`.
    let sci = format!("{order:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if (-4..6).contains(&exp) {
        return order.to_string();
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            default_as: AsNumber(64512),
        }
    }

    #[test]
    fn node_inherits_cluster_as_in_parentheses() {
        let docs = parse_documents(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n1}\nspec:\n  bgp:\n    ipv4Address: 10.0.0.1/24\n---\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n2}\nspec:\n  bgp:\n    asNumber: 65001\n    ipv4Address: 10.0.0.2/24\n",
        )
        .unwrap();
        assert_eq!(cell(&docs[0], "ASN", &ctx()).unwrap(), "(64512)");
        assert_eq!(cell(&docs[1], "ASN", &ctx()).unwrap(), "65001");
        assert_eq!(cell(&docs[0], "IPV4", &ctx()).unwrap(), "10.0.0.1/24");
        assert_eq!(cell(&docs[0], "CIDR", &ctx()), None);
    }

    #[test]
    fn global_peer_and_pool_defaults() {
        let docs = parse_documents(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.9, asNumber: 64500}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool}\nspec: {cidr: 10.244.0.0/16}\n",
        )
        .unwrap();
        assert_eq!(cell(&docs[0], "NODE", &ctx()).unwrap(), "(global)");
        assert_eq!(cell(&docs[1], "IPIPMODE", &ctx()).unwrap(), "Never");
        assert_eq!(cell(&docs[1], "SELECTOR", &ctx()).unwrap(), "all()");
        assert_eq!(cell(&docs[1], "NAT", &ctx()).unwrap(), "false");
    }

    #[test]
    fn network_sets_and_tiers() {
        let docs = parse_documents(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: ext}\nspec:\n  nets: [198.51.100.0/24, 203.0.113.7]\n---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\nspec: {order: 100}\n---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: last}\n",
        )
        .unwrap();
        assert_eq!(
            cell(&docs[0], "NETS", &ctx()).unwrap(),
            "198.51.100.0/24,203.0.113.7"
        );
        assert_eq!(cell(&docs[1], "ORDER", &ctx()).unwrap(), "100");
        assert_eq!(cell(&docs[2], "ORDER", &ctx()).unwrap(), "<nil>");
        let many: Vec<String> = (0..20).map(|i| format!("10.0.{i}.0/24")).collect();
        let cut = join_and_truncate(&many, ",", 80);
        assert_eq!(cut.len(), 80);
        assert!(cut.ends_with("..."), "{cut}");
    }

    #[test]
    fn orders_print_like_go() {
        assert_eq!(fmt_order(100.0), "100");
        assert_eq!(fmt_order(1.5), "1.5");
        assert_eq!(fmt_order(100000.0), "100000");
        assert_eq!(fmt_order(1_000_000.0), "1e+06");
        assert_eq!(fmt_order(1_234_567.0), "1.234567e+06");
        assert_eq!(fmt_order(0.0001), "0.0001");
        assert_eq!(fmt_order(0.00001), "1e-05");
        assert_eq!(fmt_order(-2.0), "-2");
    }
}
