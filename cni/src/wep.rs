//! The WorkloadEndpoint the plugin writes for each pod interface, which felix turns into
//! routes and policy.

use config::datastore::Datastore;
use config::model::k8s::{ORCHESTRATOR_K8S, pod_endpoint_labels, pod_endpoint_profiles};
use config::model::{ObjectMeta, WorkloadEndpoint, WorkloadEndpointSpec, wep_name};
use ipnet::IpNet;

use crate::error::Result;
use crate::k8s::PodInfo;

pub const ORCHESTRATOR: &str = ORCHESTRATOR_K8S;

/// Who the endpoint belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub node: String,
    pub namespace: String,
    pub pod: String,
    /// CNI_IFNAME, Calico's "endpoint".
    pub endpoint: String,
    pub container_id: String,
}

impl Identity {
    pub fn wep_name(&self) -> String {
        wep_name(&self.node, ORCHESTRATOR, &self.pod, &self.endpoint)
    }
}

/// The endpoint as Calico's k8s plugin writes it: the pod's labels, service account and
/// named ports when it was read from the API (else only Calico's own labels), profiles
/// `kns.<namespace>` (+ `ksa.<namespace>.<account>`).
pub fn build(
    id: &Identity,
    host_ifname: &str,
    pod_mac: &str,
    ips: &[IpNet],
    pod: &PodInfo,
) -> WorkloadEndpoint {
    let sa = pod.service_account.as_deref();
    let labels = pod_endpoint_labels(&id.namespace, sa, &pod.labels);
    WorkloadEndpoint {
        metadata: ObjectMeta {
            name: id.wep_name(),
            namespace: Some(id.namespace.clone()),
            labels,
            ..ObjectMeta::default()
        },
        spec: WorkloadEndpointSpec {
            orchestrator: ORCHESTRATOR.to_string(),
            node: id.node.clone(),
            pod: id.pod.clone(),
            endpoint: id.endpoint.clone(),
            container_id: id.container_id.clone(),
            interface_name: host_ifname.to_string(),
            mac: pod_mac.to_string(),
            ip_networks: ips.iter().map(ToString::to_string).collect(),
            profiles: pod_endpoint_profiles(&id.namespace, sa),
            service_account_name: sa.unwrap_or_default().to_string(),
            ports: pod.ports.clone(),
            ..WorkloadEndpointSpec::default()
        },
    }
}

/// Deletes the endpoint if it still belongs to `container_id` (a newer sandbox of the same
/// pod may own it by now). Returns whether it was deleted; a missing one is no error.
pub async fn delete_if_owned(ds: &Datastore, id: &Identity) -> Result<bool> {
    let name = id.wep_name();
    let Some(wep) = ds
        .get::<WorkloadEndpoint>(Some(&id.namespace), &name)
        .await?
    else {
        return Ok(false);
    };
    if wep.spec.container_id != id.container_id {
        tracing::info!(wep = %name, owner = %wep.spec.container_id, "endpoint belongs to another container; kept");
        return Ok(false);
    }
    let revision = wep
        .metadata
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok());
    match ds
        .delete::<WorkloadEndpoint>(Some(&id.namespace), &name, revision)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use config::model::{LABEL_NAMESPACE, LABEL_ORCHESTRATOR};

    use super::*;

    #[test]
    fn endpoint_matches_calico() {
        let id = Identity {
            node: "node-1".into(),
            namespace: "web".into(),
            pod: "nginx-1".into(),
            endpoint: "eth0".into(),
            container_id: "abc".into(),
        };
        let ips = ["10.244.0.5/32".parse().unwrap()];
        let wep = build(
            &id,
            "cali123",
            "0a:58:0a:f4:00:05",
            &ips,
            &PodInfo::default(),
        );
        assert_eq!(wep.metadata.name, "node--1-k8s-nginx--1-eth0");
        assert_eq!(wep.metadata.namespace.as_deref(), Some("web"));
        assert_eq!(wep.metadata.labels[LABEL_NAMESPACE], "web");
        assert_eq!(wep.metadata.labels[LABEL_ORCHESTRATOR], "k8s");
        assert_eq!(wep.spec.ip_networks, vec!["10.244.0.5/32"]);
        assert_eq!(wep.spec.profiles, vec!["kns.web"]);
        assert_eq!(wep.spec.container_id, "abc");
        let json = serde_json::to_value(&wep).unwrap();
        assert_eq!(json["spec"]["containerID"], "abc");
        assert_eq!(json["spec"]["interfaceName"], "cali123");
        assert!(json["spec"].get("serviceAccountName").is_none());

        let pod = PodInfo {
            labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
            service_account: Some("api".into()),
            ..PodInfo::default()
        };
        let wep = build(&id, "cali123", "0a:58:0a:f4:00:05", &ips, &pod);
        assert_eq!(wep.metadata.labels["app"], "web");
        assert_eq!(
            wep.metadata.labels["projectcalico.org/serviceaccount"],
            "api"
        );
        assert_eq!(wep.spec.profiles, vec!["kns.web", "ksa.web.api"]);
        assert_eq!(wep.spec.service_account_name, "api");
    }
}
