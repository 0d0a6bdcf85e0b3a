//! Which Calico nodes belong to deleted Kubernetes nodes, and what removing one
//! releases. Calico's rule (kube-controllers `node_deleter.go`): only a Calico Node
//! with an orchRef `{orchestrator: k8s, nodeName: <n>}` is Kubernetes'; it is stale when
//! no Kubernetes node `<n>` exists. Calico nodes without such a reference (route
//! reflectors, bare-metal hosts registered by hand) are never touched.

use std::collections::BTreeSet;
use std::net::IpAddr;

use config::model::k8s::ORCHESTRATOR_K8S;
use config::model::{Node, WorkloadEndpoint};

/// The Kubernetes node a Calico node stands for; `None` when it is not Kubernetes'.
pub fn k8s_node_name(node: &Node) -> Option<&str> {
    node.spec
        .orch_refs
        .iter()
        .find(|r| r.orchestrator == ORCHESTRATOR_K8S)
        .map(|r| r.node_name.as_str())
        .filter(|n| !n.is_empty())
}

/// The Calico nodes whose Kubernetes node is not in `k8s_nodes`, by Calico name.
pub fn stale_nodes(calico: &[Node], k8s_nodes: &BTreeSet<String>) -> Vec<String> {
    calico
        .iter()
        .filter(|n| k8s_node_name(n).is_some_and(|k| !k8s_nodes.contains(k)))
        .map(|n| n.metadata.name.clone())
        .collect()
}

/// The addresses a node's removal frees explicitly (as libcalico-go's `Nodes().Delete`):
/// those of its workload endpoints and its tunnel addresses. Endpoints of other nodes
/// in the list are ignored.
pub fn node_addresses(node: Option<&Node>, name: &str, weps: &[WorkloadEndpoint]) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = weps
        .iter()
        .filter(|w| w.spec.node == name)
        .flat_map(|w| w.spec.ip_networks.iter())
        .filter_map(|n| parse_ip(n))
        .collect();
    if let Some(node) = node {
        let ipip = node
            .spec
            .bgp
            .as_ref()
            .map(|b| b.ipv4_ipip_tunnel_addr.as_str());
        let wireguard = node
            .spec
            .wireguard
            .as_ref()
            .map(|w| w.interface_ipv4_address.as_str());
        for addr in [
            ipip.unwrap_or_default(),
            &node.spec.ipv4_vxlan_tunnel_addr,
            &node.spec.ipv6_vxlan_tunnel_addr,
            wireguard.unwrap_or_default(),
        ] {
            ips.extend(parse_ip(addr));
        }
    }
    ips.sort();
    ips.dedup();
    ips
}

/// An address written as `a.b.c.d`, `a.b.c.d/32` or IPv6 equivalents.
fn parse_ip(s: &str) -> Option<IpAddr> {
    s.split('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::model::{NodeBgpSpec, OrchRef};

    fn node(name: &str, refs: &[(&str, &str)]) -> Node {
        let mut n = Node::named(name, Default::default());
        n.spec.orch_refs = refs
            .iter()
            .map(|(o, k)| OrchRef {
                orchestrator: o.to_string(),
                node_name: k.to_string(),
            })
            .collect();
        n
    }

    #[test]
    fn only_nodes_referring_to_a_missing_k8s_node_are_stale() {
        let calico = vec![
            node("n1", &[("k8s", "n1")]),
            node("n2", &[("k8s", "n2")]),
            node("calico-n3", &[("k8s", "n3")]),
            node("rr1", &[]),
            node("os1", &[("openstack", "os1")]),
            node("blank", &[("k8s", "")]),
        ];
        let k8s: BTreeSet<String> = ["n1".to_string()].into();
        assert_eq!(stale_nodes(&calico, &k8s), ["n2", "calico-n3"]);
        assert_eq!(k8s_node_name(&calico[2]), Some("n3"));
        assert_eq!(k8s_node_name(&calico[3]), None);
        assert_eq!(k8s_node_name(&calico[5]), None);
    }

    #[test]
    fn a_removed_node_frees_its_endpoints_and_tunnel_addresses() {
        let mut n = node("n2", &[("k8s", "n2")]);
        n.spec.bgp = Some(NodeBgpSpec {
            ipv4_ipip_tunnel_addr: "10.244.1.1".into(),
            ..Default::default()
        });
        n.spec.ipv4_vxlan_tunnel_addr = "10.244.1.2".into();
        let wep = |node: &str, ip: &str| {
            let mut w = WorkloadEndpoint::named("w", Default::default());
            w.spec.node = node.into();
            w.spec.ip_networks = vec![ip.into()];
            w
        };
        let weps = vec![wep("n2", "10.244.1.5/32"), wep("n22", "10.244.9.9/32")];
        let ips: Vec<String> = node_addresses(Some(&n), "n2", &weps)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ips, ["10.244.1.1", "10.244.1.2", "10.244.1.5"]);
        assert_eq!(node_addresses(None, "n2", &weps).len(), 1);
    }
}
