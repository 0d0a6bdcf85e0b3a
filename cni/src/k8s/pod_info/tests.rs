use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};
use kube::api::ObjectMeta;

use super::*;

fn map(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn pod(annotations: &[(&str, &str)], ports: Vec<ContainerPort>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web-1".into()),
            namespace: Some("prod".into()),
            labels: map(&[("app", "web")]),
            annotations: map(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            service_account_name: Some("api".into()),
            containers: vec![Container {
                name: "c".into(),
                ports: Some(ports),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

fn namespace(annotations: &[(&str, &str)]) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some("prod".into()),
            annotations: map(annotations),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

fn port(
    name: Option<&str>,
    number: i32,
    protocol: Option<&str>,
    host: Option<i32>,
) -> ContainerPort {
    ContainerPort {
        name: name.map(Into::into),
        container_port: number,
        protocol: protocol.map(Into::into),
        host_port: host,
        ..ContainerPort::default()
    }
}

#[test]
fn labels_service_account_and_named_ports() {
    let ports = vec![
        port(Some("http"), 8080, None, None),
        port(Some("dns"), 53, Some("UDP"), None),
        port(None, 9000, None, None),
        port(None, 9100, Some("TCP"), Some(30100)),
    ];
    let info = pod_info(&pod(&[], ports), &namespace(&[])).unwrap();
    assert_eq!(info.labels, map(&[("app", "web")]).unwrap());
    assert_eq!(info.service_account.as_deref(), Some("api"));
    let got: Vec<(&str, Protocol, u16, u16)> = info
        .ports
        .iter()
        .map(|p| (p.name.as_str(), p.protocol, p.port, p.host_port))
        .collect();
    // The unnamed port without a host port is not an endpoint port (libcalico-go).
    assert_eq!(
        got,
        [
            ("http", Protocol::Tcp, 8080, 0),
            ("dns", Protocol::Udp, 53, 0),
            ("", Protocol::Tcp, 9100, 30100)
        ]
    );
    assert_eq!(info.ipv4_pools, None);
    assert!(info.ip_addrs.is_empty());
}

#[test]
fn pool_annotations_pod_over_namespace() {
    let ns = namespace(&[(ANNOTATION_IPV4_POOLS, r#"["ns-pool"]"#)]);
    let info = pod_info(&pod(&[], vec![]), &ns).unwrap();
    assert_eq!(info.ipv4_pools, Some(vec!["ns-pool".to_string()]));
    let p = pod(&[(ANNOTATION_IPV4_POOLS, r#"["10.9.0.0/16"]"#)], vec![]);
    let info = pod_info(&p, &ns).unwrap();
    assert_eq!(info.ipv4_pools, Some(vec!["10.9.0.0/16".to_string()]));
    let bad = pod(&[(ANNOTATION_IPV4_POOLS, "pool-a")], vec![]);
    let e = pod_info(&bad, &ns).unwrap_err();
    assert_eq!(e.code, DECODE_FAILURE);
    assert!(e.msg.contains(ANNOTATION_IPV4_POOLS), "{e}");
}

#[test]
fn ip_addrs_at_most_one_per_family() {
    let ok = pod(
        &[(ANNOTATION_IP_ADDRS, r#"["10.244.7.7", "fd00::7"]"#)],
        vec![],
    );
    let info = pod_info(&ok, &namespace(&[])).unwrap();
    assert_eq!(
        info.ip_addrs,
        [
            "10.244.7.7".parse::<IpAddr>().unwrap(),
            "fd00::7".parse().unwrap()
        ]
    );
    for bad in [r#"["10.0.0.1", "10.0.0.2"]"#, r#"["nope"]"#, "[]"] {
        let p = pod(&[(ANNOTATION_IP_ADDRS, bad)], vec![]);
        let e = pod_info(&p, &namespace(&[])).unwrap_err();
        assert_eq!(e.code, INVALID_CONFIG, "{bad}: {e}");
    }
    let p = pod(&[(ANNOTATION_IP_ADDRS_NO_IPAM, r#"["10.0.0.1"]"#)], vec![]);
    assert!(pod_info(&p, &namespace(&[])).is_err());
}

#[test]
fn ipam_request_carries_pools_and_addresses() {
    let stdin = br#"{"cniVersion":"1.0.0","name":"k8s-pod-network","ipam":{"type":"calico-ipam"}}"#;
    let plain = PodInfo::default();
    assert_eq!(ipam_stdin(stdin, &plain).unwrap(), stdin.to_vec());
    let info = PodInfo {
        ipv4_pools: Some(vec!["blue".into()]),
        ip_addrs: vec!["10.244.7.7".parse().unwrap()],
        ..PodInfo::default()
    };
    let out: Value = serde_json::from_slice(&ipam_stdin(stdin, &info).unwrap()).unwrap();
    assert_eq!(out["ipam"]["ipv4_pools"], serde_json::json!(["blue"]));
    assert_eq!(out["ipam"]["type"], "calico-ipam");
    assert_eq!(
        out["runtimeConfig"]["ips"],
        serde_json::json!(["10.244.7.7"])
    );
}
