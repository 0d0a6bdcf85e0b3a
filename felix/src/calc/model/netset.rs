//! Network sets as the calculation sees them: labels (matched by rule selectors like an
//! endpoint's) and the networks they stand for.

use std::collections::BTreeMap;

use config::model::{GlobalNetworkSet, LABEL_NAMESPACE, NetworkSet};

/// A NetworkSet (`namespace` set) or a GlobalNetworkSet (`namespace` none).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetSetKey {
    pub namespace: Option<String>,
    pub name: String,
}

impl NetSetKey {
    pub fn namespaced(namespace: &str, name: &str) -> Self {
        Self {
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    pub fn global(name: &str) -> Self {
        Self {
            namespace: None,
            name: name.into(),
        }
    }
}

/// What the calculation keeps of a network set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetSetDef {
    /// The set's labels; a NetworkSet also carries `projectcalico.org/namespace`, as
    /// workload endpoints do, so the same selectors see both.
    pub labels: BTreeMap<String, String>,
    /// `spec.nets` as written (CIDRs or addresses, both families).
    pub nets: Vec<String>,
}

impl NetSetDef {
    pub fn of_namespaced(set: &NetworkSet) -> (NetSetKey, NetSetDef) {
        let ns = set.metadata.namespace.clone().unwrap_or_default();
        let mut labels = set.metadata.labels.clone();
        labels.insert(LABEL_NAMESPACE.to_string(), ns.clone());
        let key = NetSetKey::namespaced(&ns, &set.metadata.name);
        let def = NetSetDef {
            labels,
            nets: set.spec.nets.clone(),
        };
        (key, def)
    }

    pub fn of_global(set: &GlobalNetworkSet) -> (NetSetKey, NetSetDef) {
        let key = NetSetKey::global(&set.metadata.name);
        let def = NetSetDef {
            labels: set.metadata.labels.clone(),
            nets: set.spec.nets.clone(),
        };
        (key, def)
    }
}
