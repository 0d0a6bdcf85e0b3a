//! A deleted Kubernetes node takes its Calico node, endpoints, BGP peers, block
//! affinities and addresses with it; an address whose pod is gone is released after the
//! grace period; afterwards `ipam check` (computed as calicoctl computes it) is clean.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use config::model::{
    BGPPeer, BGPPeerSpec, IPPool, IPPoolSpec, Node as CalicoNode, NodeBgpSpec, OrchRef,
    WorkloadEndpoint, WorkloadEndpointSpec, wep_name,
};
use ipam::{AutoAssignArgs, InUse, Ipam, PoolSource};
use k8s_openapi::api::core::v1::{Node as K8sNode, Pod};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use kube_controllers::controllers::Kind;
use kube_controllers::controllers::nodes::GcConfig;
use serde_json::json;
use support::{CONVERGE, Cluster, eventually};

async fn k8s_node(c: &Cluster, name: &str) {
    let node: K8sNode = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<K8sNode>::all(c.client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
}

async fn calico_node(c: &Cluster, name: &str, k8s: bool, tunnel: Option<IpAddr>) {
    let mut n = CalicoNode::named(name, Default::default());
    if k8s {
        n.spec.orch_refs = vec![OrchRef {
            node_name: name.into(),
            orchestrator: "k8s".into(),
        }];
    }
    if let Some(ip) = tunnel {
        n.spec.bgp = Some(NodeBgpSpec {
            ipv4_ipip_tunnel_addr: ip.to_string(),
            ..Default::default()
        });
    }
    c.ds.create(&n).await.unwrap();
}

async fn assign(ipam: &Ipam, node: &str, handle: &str, attrs: &[(&str, &str)]) -> IpAddr {
    let mut attrs: BTreeMap<String, String> = attrs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    attrs.insert("node".into(), node.into());
    let got = ipam
        .auto_assign(&AutoAssignArgs {
            num_v4: 1,
            num_v6: 0,
            handle_id: handle.into(),
            attrs,
            hostname: node.into(),
            node_labels: BTreeMap::new(),
            node_labels_from_datastore: false,
            pools: None,
            max_blocks_per_host: None,
        })
        .await
        .unwrap();
    got[0].ip
}

/// A pod on `node` as kubelet and the CNI plugin leave it: the pod, its address, its
/// endpoint.
async fn running_pod(c: &Cluster, ipam: &Ipam, node: &str, pod: &str) -> IpAddr {
    let _: Pod = c
        .create(
            "prod",
            json!({
                "metadata": {"name": pod},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "registry.invalid/pause:1"}]},
            }),
        )
        .await;
    let cid = format!("cid-{pod}");
    let ip = assign(
        ipam,
        node,
        &format!("k8s-pod-network.{cid}"),
        &[("namespace", "prod"), ("pod", pod)],
    )
    .await;
    let mut w = WorkloadEndpoint::named(
        wep_name(node, "k8s", pod, "eth0"),
        WorkloadEndpointSpec {
            orchestrator: "k8s".into(),
            node: node.into(),
            pod: pod.into(),
            endpoint: "eth0".into(),
            container_id: cid,
            interface_name: "cali0123456789a".into(),
            ip_networks: vec![format!("{ip}/32")],
            ..WorkloadEndpointSpec::default()
        },
    );
    w.metadata.namespace = Some("prod".into());
    c.ds.create(&w).await.unwrap();
    ip
}

/// What `calicoctl ipam check` considers in use: endpoint addresses and handles, and
/// node tunnel addresses.
async fn in_use(c: &Cluster) -> InUse {
    let (weps, _) = c.ds.list::<WorkloadEndpoint>(None).await.unwrap();
    let (nodes, _) = c.ds.list::<CalicoNode>(None).await.unwrap();
    let mut used = InUse::default();
    for w in &weps {
        for net in &w.spec.ip_networks {
            used.ips
                .insert(net.split('/').next().unwrap().parse().unwrap());
        }
        used.handles
            .insert(format!("k8s-pod-network.{}", w.spec.container_id));
    }
    for n in &nodes {
        if let Some(ip) = n
            .spec
            .bgp
            .as_ref()
            .and_then(|b| b.ipv4_ipip_tunnel_addr.parse().ok())
        {
            used.ips.insert(ip);
        }
    }
    used
}

async fn allocated(ipam: &Ipam, ip: IpAddr) -> bool {
    ipam.get_assignment_attributes(ip).await.unwrap().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_node_is_cleaned_up_and_ipam_check_is_clean() {
    let c = Cluster::start().await;
    c.create_namespace("prod", json!({})).await;
    c.ds.create(&IPPool::named(
        "pool",
        IPPoolSpec {
            cidr: "10.244.0.0/16".into(),
            ..IPPoolSpec::default()
        },
    ))
    .await
    .unwrap();
    let ipam = Ipam::new(c.ds.clone(), PoolSource::Datastore);
    for n in ["n1", "n2"] {
        k8s_node(&c, n).await;
    }
    let tunnel = assign(
        &ipam,
        "n2",
        "ipip-tunnel-addr-n2",
        &[("type", "ipipTunnelAddress")],
    )
    .await;
    calico_node(&c, "n1", true, None).await;
    calico_node(&c, "n2", true, Some(tunnel)).await;
    // A route reflector registered by hand: not Kubernetes', never removed.
    calico_node(&c, "rr1", false, None).await;
    let peer = BGPPeer::named(
        "n2-to-tor",
        BGPPeerSpec {
            node: "n2".into(),
            peer_ip: "192.0.2.1".into(),
            ..BGPPeerSpec::default()
        },
    );
    c.ds.create(&peer).await.unwrap();
    let web1 = running_pod(&c, &ipam, "n1", "web-1").await;
    let web2 = running_pod(&c, &ipam, "n2", "web-2").await;
    // An address whose pod is gone (a CNI DEL that never came): a leak.
    let ghost = assign(
        &ipam,
        "n1",
        "k8s-pod-network.cid-ghost",
        &[("namespace", "prod"), ("pod", "ghost")],
    )
    .await;
    let before = ipam.check(Some(&in_use(&c).await)).await.unwrap();
    assert_eq!(
        before.problems.len(),
        1,
        "the ghost leak: {:?}",
        before.problems
    );

    let started = std::time::Instant::now();
    let running = c.controllers_with_gc(
        &[Kind::Node],
        GcConfig {
            interval: Duration::from_millis(500),
            leak_grace: Some(Duration::from_secs(2)),
        },
    );
    eventually(
        "the ghost address released after the grace period",
        CONVERGE,
        || async { (!allocated(&ipam, ghost).await).then_some(()) },
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "released only after the grace period ({:?})",
        started.elapsed()
    );
    assert!(allocated(&ipam, web1).await && allocated(&ipam, web2).await);
    assert!(c.ds.get::<CalicoNode>(None, "n2").await.unwrap().is_some());

    Api::<K8sNode>::all(c.client.clone())
        .delete("n2", &DeleteParams::default())
        .await
        .unwrap();
    eventually("Calico node n2 removed", CONVERGE, || async {
        c.ds.get::<CalicoNode>(None, "n2")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(!allocated(&ipam, web2).await, "n2's pod address released");
    assert!(
        !allocated(&ipam, tunnel).await,
        "n2's tunnel address released"
    );
    assert!(allocated(&ipam, web1).await, "n1's pod keeps its address");
    assert!(ipam.host_affinities("n2", 4).await.unwrap().is_empty());
    assert_eq!(ipam.host_affinities("n1", 4).await.unwrap().len(), 1);
    let (weps, _) = c.ds.list::<WorkloadEndpoint>(None).await.unwrap();
    let names: Vec<&str> = weps.iter().map(|w| w.spec.pod.as_str()).collect();
    assert_eq!(names, ["web-1"]);
    assert!(
        c.ds.get::<BGPPeer>(None, "n2-to-tor")
            .await
            .unwrap()
            .is_none()
    );
    assert!(c.ds.get::<CalicoNode>(None, "n1").await.unwrap().is_some());
    assert!(c.ds.get::<CalicoNode>(None, "rr1").await.unwrap().is_some());

    let after = ipam.check(Some(&in_use(&c).await)).await.unwrap();
    assert!(after.is_consistent(), "ipam check: {:?}", after.problems);
    assert_eq!(after.allocated_ips, 1, "only web-1's address is left");
    let metrics = running.metrics.render();
    assert!(
        metrics.contains("kube_controllers_nodes_deleted 1"),
        "{metrics}"
    );
    running.stop().await;
}
