//! [`CalcInput`]: the consistent slice of the datastore felix calculates from, kept in
//! maps keyed by name so that the syncer can feed it one [`Update`] at a time.

mod netset;

use std::collections::{BTreeMap, BTreeSet};

use config::model::{
    AnyResource, DEFAULT_ALLOW_PROFILE, DEFAULT_TIER, GlobalNetworkPolicy, GlobalNetworkSet,
    HostEndpoint, IPPool, NetworkPolicy, NetworkSet, Node, Profile, Rule, Tier, WorkloadEndpoint,
};
use ipnet::{IpNet, Ipv4Net};

use super::overlay::{OverlayInput, OverlayNode, OverlayPool};

pub use netset::{NetSetDef, NetSetKey};

/// Prefix of the profile Calico keeps per Kubernetes namespace (`kns.<namespace>`).
pub const NAMESPACE_PROFILE_PREFIX: &str = "kns.";
/// Prefix of the namespace's own labels inside that profile's `labelsToApply`
/// (`pcns.<key>`), which is how Calico hands namespace labels to felix.
pub const NAMESPACE_LABEL_PREFIX: &str = "pcns.";

/// A workload endpoint's identity: namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WepKey {
    pub namespace: String,
    pub name: String,
}

impl WepKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn of(wep: &WorkloadEndpoint) -> Self {
        Self::new(
            wep.metadata.namespace.as_deref().unwrap_or_default(),
            &wep.metadata.name,
        )
    }
}

/// A policy's identity. Global policies sort before namespaced ones only by the
/// derive; application order comes from [`PolicyDef::order`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKey {
    Global(String),
    Namespaced { namespace: String, name: String },
}

impl PolicyKey {
    pub fn namespaced(namespace: &str, name: &str) -> Self {
        PolicyKey::Namespaced {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The id chain names are derived from: `<namespace>/<name>` or `<name>`.
    pub fn id(&self) -> String {
        match self {
            PolicyKey::Global(name) => name.clone(),
            PolicyKey::Namespaced { namespace, name } => format!("{namespace}/{name}"),
        }
    }

    pub fn namespace(&self) -> Option<&str> {
        match self {
            PolicyKey::Global(_) => None,
            PolicyKey::Namespaced { namespace, .. } => Some(namespace),
        }
    }
}

/// A NetworkPolicy or a GlobalNetworkPolicy, seen through what the calculation needs.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyDef {
    Namespaced(NetworkPolicy),
    Global(GlobalNetworkPolicy),
}

impl PolicyDef {
    pub fn key(&self) -> PolicyKey {
        match self {
            PolicyDef::Namespaced(p) => PolicyKey::namespaced(
                p.metadata.namespace.as_deref().unwrap_or_default(),
                &p.metadata.name,
            ),
            PolicyDef::Global(p) => PolicyKey::Global(p.metadata.name.clone()),
        }
    }

    /// `spec.tier`, `default` when unset.
    pub fn tier(&self) -> &str {
        let tier = match self {
            PolicyDef::Namespaced(p) => &p.spec.tier,
            PolicyDef::Global(p) => &p.spec.tier,
        };
        if tier.is_empty() { DEFAULT_TIER } else { tier }
    }

    /// Lower first; unset sorts after every set order (Calico).
    pub fn order(&self) -> f64 {
        match self {
            PolicyDef::Namespaced(p) => p.spec.effective_order(),
            PolicyDef::Global(p) => p.spec.effective_order(),
        }
    }

    pub fn selector(&self) -> &str {
        match self {
            PolicyDef::Namespaced(p) => p.spec.effective_selector(),
            PolicyDef::Global(p) => p.spec.effective_selector(),
        }
    }

    /// A GlobalNetworkPolicy's `namespaceSelector` (limits it to endpoints of matching
    /// namespaces); empty for none.
    pub fn namespace_selector(&self) -> &str {
        match self {
            PolicyDef::Namespaced(_) => "",
            PolicyDef::Global(p) => &p.spec.namespace_selector,
        }
    }

    /// Where the policy is enforced: untracked and pre-DNAT policies only on host
    /// endpoints (raw and mangle tables), the rest in the filter table.
    pub fn stage(&self) -> PolicyStage {
        match self {
            PolicyDef::Namespaced(_) => PolicyStage::Normal {
                apply_on_forward: false,
            },
            PolicyDef::Global(p) if p.spec.do_not_track => PolicyStage::Untracked,
            PolicyDef::Global(p) if p.spec.pre_dnat => PolicyStage::PreDnat,
            PolicyDef::Global(p) => PolicyStage::Normal {
                apply_on_forward: p.spec.apply_on_forward,
            },
        }
    }

    /// Whether the policy applies to (ingress, egress) traffic.
    pub fn applies(&self) -> (bool, bool) {
        use config::model::PolicyType;
        let types = match self {
            PolicyDef::Namespaced(p) => p.spec.effective_types(),
            PolicyDef::Global(p) => p.spec.effective_types(),
        };
        (
            types.contains(&PolicyType::Ingress),
            types.contains(&PolicyType::Egress),
        )
    }

    pub fn ingress(&self) -> &[Rule] {
        match self {
            PolicyDef::Namespaced(p) => &p.spec.ingress,
            PolicyDef::Global(p) => &p.spec.ingress,
        }
    }

    pub fn egress(&self) -> &[Rule] {
        match self {
            PolicyDef::Namespaced(p) => &p.spec.egress,
            PolicyDef::Global(p) => &p.spec.egress,
        }
    }
}

/// Where a policy takes effect (GlobalNetworkPolicy `doNotTrack`, `preDNAT`,
/// `applyOnForward`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyStage {
    /// Filter table: workload endpoints, and host endpoints for traffic to and
    /// from the host (also forwarded traffic with `applyOnForward`).
    Normal { apply_on_forward: bool },
    /// `preDNAT`: mangle PREROUTING, ingress of host endpoints only.
    PreDnat,
    /// `doNotTrack`: raw table, host endpoints only; an allow also skips conntrack.
    Untracked,
}

/// One change from the datastore.
#[derive(Clone, Debug)]
pub enum Update {
    /// A workload endpoint anywhere in the cluster (remote ones feed ipsets).
    WepSet(WorkloadEndpoint),
    WepDeleted(WepKey),
    NetworkPolicySet(NetworkPolicy),
    GlobalNetworkPolicySet(GlobalNetworkPolicy),
    /// A policy that fails validation (`reason` names the field). Felix cannot trust
    /// its rules but can still find the endpoints its selector picks: they drop
    /// everything in both directions until the policy is fixed (fail closed).
    PolicyRefused {
        def: PolicyDef,
        reason: String,
    },
    PolicyDeleted(PolicyKey),
    ProfileSet(Profile),
    ProfileDeleted(String),
    PoolSet(IPPool),
    PoolDeleted(String),
    NetworkSetSet(NetworkSet),
    GlobalNetworkSetSet(GlobalNetworkSet),
    NetworkSetDeleted(NetSetKey),
    TierSet(Tier),
    TierDeleted(String),
    /// A host endpoint anywhere in the cluster (this node's get chains).
    HostEndpointSet(HostEndpoint),
    HostEndpointDeleted(String),
    /// This node's affinity for a block reached `confirmed`.
    BlockAffinityConfirmed(IpNet),
    /// This node's affinity for a block is gone (or no longer confirmed).
    BlockAffinityRemoved(IpNet),
    /// A Node anywhere in the cluster (the overlay's addresses and VTEPs).
    NodeSet(Node),
    NodeDeleted(String),
    /// Another node's affinity for a block reached `confirmed` (the overlay routes
    /// the block to it).
    RemoteBlockConfirmed {
        node: String,
        block: IpNet,
    },
    /// Another node's affinity for a block is gone (or no longer confirmed).
    RemoteBlockRemoved {
        node: String,
        block: IpNet,
    },
}

impl Update {
    /// The update for a resource read from the datastore; `None` for kinds the
    /// calculation does not use.
    pub fn from_resource(resource: AnyResource) -> Option<Update> {
        match resource {
            AnyResource::WorkloadEndpoint(w) => Some(Update::WepSet(w)),
            AnyResource::NetworkPolicy(p) => Some(Update::NetworkPolicySet(p)),
            AnyResource::GlobalNetworkPolicy(p) => Some(Update::GlobalNetworkPolicySet(p)),
            AnyResource::Profile(p) => Some(Update::ProfileSet(p)),
            AnyResource::IPPool(p) => Some(Update::PoolSet(p)),
            AnyResource::NetworkSet(s) => Some(Update::NetworkSetSet(s)),
            AnyResource::Tier(t) => Some(Update::TierSet(t)),
            AnyResource::GlobalNetworkSet(s) => Some(Update::GlobalNetworkSetSet(s)),
            AnyResource::HostEndpoint(h) => Some(Update::HostEndpointSet(h)),
            AnyResource::Node(n) => Some(Update::NodeSet(n)),
            _ => None,
        }
    }
}

/// What an [`Update`] changed, for incremental recalculation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Changed {
    Nothing,
    Wep(WepKey),
    Policy(PolicyKey),
    Profile(String),
    NetworkSet(NetSetKey),
    Tier(String),
    HostEndpoint(String),
    Pools,
    Blocks,
    /// Nodes' overlay fields or other nodes' blocks.
    Overlay,
}

/// The model felix calculates from.
#[derive(Clone, Debug, Default)]
pub struct CalcInput {
    /// This node's name; endpoints with `spec.node` equal to it are local.
    pub node: String,
    /// Every workload endpoint in the cluster.
    pub weps: BTreeMap<WepKey, WorkloadEndpoint>,
    pub policies: BTreeMap<PolicyKey, PolicyDef>,
    /// Policies in `policies` that failed validation, with why.
    pub refused: BTreeMap<PolicyKey, String>,
    pub profiles: BTreeMap<String, Profile>,
    pub pools: BTreeMap<String, IPPool>,
    /// NetworkSets and GlobalNetworkSets: their nets join the selector sets that
    /// match their labels.
    pub network_sets: BTreeMap<NetSetKey, NetSetDef>,
    pub tiers: BTreeMap<String, Tier>,
    /// Every host endpoint, by name; those with `spec.node` equal to this node get
    /// chains.
    pub host_endpoints: BTreeMap<String, HostEndpoint>,
    /// This node's confirmed affine IPAM blocks.
    pub local_blocks: BTreeSet<IpNet>,
    /// Every node's overlay fields (address, VXLAN tunnel address and MAC).
    pub nodes: BTreeMap<String, OverlayNode>,
    /// Other nodes' confirmed IPv4 blocks: block -> node.
    pub remote_blocks: BTreeMap<Ipv4Net, String>,
}

impl CalcInput {
    pub fn new(node: &str) -> Self {
        Self {
            node: node.into(),
            ..Self::default()
        }
    }

    pub fn is_local(&self, wep: &WorkloadEndpoint) -> bool {
        wep.spec.node == self.node
    }

    pub fn local_weps(&self) -> impl Iterator<Item = (&WepKey, &WorkloadEndpoint)> {
        self.weps.iter().filter(|(_, w)| self.is_local(w))
    }

    /// A tier by name; `default` exists even when not stored (Calico creates it with
    /// order 1,000,000 and default action Deny). `None` for a tier that does not exist.
    pub fn tier(&self, name: &str) -> Option<Tier> {
        match self.tiers.get(name) {
            Some(t) => Some(t.clone()),
            None if name == DEFAULT_TIER => Some(Tier::default_tier()),
            None => None,
        }
    }

    pub fn tier_exists(&self, name: &str) -> bool {
        name == DEFAULT_TIER || self.tiers.contains_key(name)
    }

    /// A profile by name; `projectcalico-default-allow` exists even when not stored.
    pub fn profile(&self, name: &str) -> Option<Profile> {
        match self.profiles.get(name) {
            Some(p) => Some(p.clone()),
            None if name == DEFAULT_ALLOW_PROFILE => Some(Profile::default_allow()),
            None => None,
        }
    }

    /// The labels of namespace `ns`: the `pcns.`-prefixed `labelsToApply` of its
    /// `kns.<ns>` profile, prefix removed. Empty when the profile is unknown.
    pub fn namespace_labels(&self, ns: &str) -> BTreeMap<String, String> {
        let Some(profile) = self
            .profiles
            .get(&format!("{NAMESPACE_PROFILE_PREFIX}{ns}"))
        else {
            return BTreeMap::new();
        };
        profile
            .spec
            .labels_to_apply
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(NAMESPACE_LABEL_PREFIX)
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect()
    }

    /// Host endpoints of this node, by name.
    pub fn local_host_endpoints(&self) -> impl Iterator<Item = (&String, &HostEndpoint)> {
        self.host_endpoints
            .iter()
            .filter(|(_, h)| h.spec.node == self.node)
    }

    /// A host endpoint's labels as selectors see them: its own over its profiles'
    /// `labelsToApply` (earlier profiles win), as for workload endpoints.
    pub fn host_endpoint_labels(&self, hep: &HostEndpoint) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        for name in hep.spec.profiles.iter().rev() {
            if let Some(p) = self.profiles.get(name) {
                labels.extend(p.spec.labels_to_apply.clone());
            }
        }
        labels.extend(hep.metadata.labels.clone());
        labels
    }

    /// An endpoint's labels as selectors see them: its own labels over the
    /// `labelsToApply` of its profiles (earlier profiles win over later ones), plus
    /// `projectcalico.org/namespace` when the endpoint does not carry it.
    pub fn endpoint_labels(&self, wep: &WorkloadEndpoint) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        for name in wep.spec.profiles.iter().rev() {
            if let Some(p) = self.profiles.get(name) {
                labels.extend(p.spec.labels_to_apply.clone());
            }
        }
        if let Some(ns) = &wep.metadata.namespace {
            labels.insert(config::model::LABEL_NAMESPACE.to_string(), ns.clone());
        }
        labels.extend(wep.metadata.labels.clone());
        labels
    }

    /// Applies one datastore change and says what it touched.
    pub fn apply_update(&mut self, update: Update) -> Changed {
        match update {
            Update::WepSet(wep) => {
                let key = WepKey::of(&wep);
                if self.weps.get(&key) == Some(&wep) {
                    return Changed::Nothing;
                }
                self.weps.insert(key.clone(), wep);
                Changed::Wep(key)
            }
            Update::WepDeleted(key) => match self.weps.remove(&key) {
                Some(_) => Changed::Wep(key),
                None => Changed::Nothing,
            },
            Update::NetworkPolicySet(p) => self.set_policy(PolicyDef::Namespaced(p), None),
            Update::GlobalNetworkPolicySet(p) => self.set_policy(PolicyDef::Global(p), None),
            Update::PolicyRefused { def, reason } => self.set_policy(def, Some(reason)),
            Update::PolicyDeleted(key) => {
                self.refused.remove(&key);
                match self.policies.remove(&key) {
                    Some(_) => Changed::Policy(key),
                    None => Changed::Nothing,
                }
            }
            Update::ProfileSet(p) => {
                let name = p.metadata.name.clone();
                if self.profiles.get(&name) == Some(&p) {
                    return Changed::Nothing;
                }
                self.profiles.insert(name.clone(), p);
                Changed::Profile(name)
            }
            Update::ProfileDeleted(name) => match self.profiles.remove(&name) {
                Some(_) => Changed::Profile(name),
                None => Changed::Nothing,
            },
            Update::PoolSet(pool) => {
                let name = pool.metadata.name.clone();
                if self.pools.get(&name) == Some(&pool) {
                    return Changed::Nothing;
                }
                self.pools.insert(name, pool);
                Changed::Pools
            }
            Update::PoolDeleted(name) => match self.pools.remove(&name) {
                Some(_) => Changed::Pools,
                None => Changed::Nothing,
            },
            Update::NetworkSetSet(s) => self.set_network_set(NetSetDef::of_namespaced(&s)),
            Update::GlobalNetworkSetSet(s) => self.set_network_set(NetSetDef::of_global(&s)),
            Update::NetworkSetDeleted(key) => match self.network_sets.remove(&key) {
                Some(_) => Changed::NetworkSet(key),
                None => Changed::Nothing,
            },
            Update::TierSet(t) => {
                let name = t.metadata.name.clone();
                if self.tiers.get(&name) == Some(&t) {
                    return Changed::Nothing;
                }
                self.tiers.insert(name.clone(), t);
                Changed::Tier(name)
            }
            Update::TierDeleted(name) => match self.tiers.remove(&name) {
                Some(_) => Changed::Tier(name),
                None => Changed::Nothing,
            },
            Update::HostEndpointSet(h) => {
                let name = h.metadata.name.clone();
                if self.host_endpoints.get(&name) == Some(&h) {
                    return Changed::Nothing;
                }
                self.host_endpoints.insert(name.clone(), h);
                Changed::HostEndpoint(name)
            }
            Update::HostEndpointDeleted(name) => match self.host_endpoints.remove(&name) {
                Some(_) => Changed::HostEndpoint(name),
                None => Changed::Nothing,
            },
            Update::BlockAffinityConfirmed(block) => match self.local_blocks.insert(block) {
                true => Changed::Blocks,
                false => Changed::Nothing,
            },
            Update::BlockAffinityRemoved(block) => match self.local_blocks.remove(&block) {
                true => Changed::Blocks,
                false => Changed::Nothing,
            },
            Update::NodeSet(node) => {
                // Only the overlay's fields: a label or BGP change costs nothing.
                let overlay = OverlayNode::of(&node);
                match self.nodes.insert(node.metadata.name, overlay.clone()) {
                    Some(old) if old == overlay => Changed::Nothing,
                    _ => Changed::Overlay,
                }
            }
            Update::NodeDeleted(name) => match self.nodes.remove(&name) {
                Some(_) => Changed::Overlay,
                None => Changed::Nothing,
            },
            Update::RemoteBlockConfirmed { node, block } => match block {
                IpNet::V4(block) => match self.remote_blocks.insert(block.trunc(), node.clone()) {
                    Some(old) if old == node => Changed::Nothing,
                    _ => Changed::Overlay,
                },
                // The overlay is IPv4 only (as Calico's VXLAN is per family).
                IpNet::V6(_) => Changed::Nothing,
            },
            Update::RemoteBlockRemoved { node, block } => match block {
                // Only the affinity that routed the block there: a stale removal from
                // a node the block has since moved away from changes nothing.
                IpNet::V4(block) if self.remote_blocks.get(&block.trunc()) == Some(&node) => {
                    self.remote_blocks.remove(&block.trunc());
                    Changed::Overlay
                }
                _ => Changed::Nothing,
            },
        }
    }

    /// The overlay's view of the model: nodes, every node's blocks, IPv4 pools.
    pub fn overlay_input(&self) -> OverlayInput {
        let mut blocks = self.remote_blocks.clone();
        blocks.extend(self.local_blocks.iter().filter_map(|b| match b {
            IpNet::V4(b) => Some((b.trunc(), self.node.clone())),
            IpNet::V6(_) => None,
        }));
        OverlayInput {
            local_node: self.node.clone(),
            nodes: self.nodes.clone(),
            blocks,
            // Disabled pools too: they allocate nothing new, but their addresses in
            // use still need a path.
            pools: self.pools.values().filter_map(OverlayPool::of).collect(),
        }
    }

    fn set_network_set(&mut self, (key, def): (NetSetKey, NetSetDef)) -> Changed {
        if self.network_sets.get(&key) == Some(&def) {
            return Changed::Nothing;
        }
        self.network_sets.insert(key.clone(), def);
        Changed::NetworkSet(key)
    }

    fn set_policy(&mut self, def: PolicyDef, refused: Option<String>) -> Changed {
        let key = def.key();
        if self.policies.get(&key) == Some(&def) && self.refused.get(&key) == refused.as_ref() {
            return Changed::Nothing;
        }
        self.policies.insert(key.clone(), def);
        match refused {
            Some(reason) => self.refused.insert(key.clone(), reason),
            None => self.refused.remove(&key),
        };
        Changed::Policy(key)
    }
}
