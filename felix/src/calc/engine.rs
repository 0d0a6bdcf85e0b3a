//! [`Calculator`]: keeps the model and everything derived from it, and after a batch
//! of updates redoes only what the updates touched.
//!
//! Caches: each policy's rendered chains and the local endpoints it selects; each
//! profile's chains; each local endpoint's chain pair; each ipset's members with the
//! endpoints that contributed them. A policy change re-renders that policy, matches
//! its selector against the local endpoints and rebuilds the chains of endpoints it
//! selected before or selects now. An endpoint change re-evaluates that endpoint
//! against every policy selector and every live ipset.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use config::selector::Selector;

use super::desired::ipsets::IpSet;
use super::desired::iptables::{Chain, DesiredTable};
use super::error::CalcError;
use super::ipsets::{EndpointView, NamespaceLabels, NetSetView, SetSpec};
use super::model::{
    CalcInput, Changed, NAMESPACE_PROFILE_PREFIX, NetSetDef, NetSetKey, PolicyKey, PolicyStage,
    Update, WepKey,
};
use super::names::Direction;
use super::overlay::{OverlayPlan, overlay_plan};
use super::policy::endpoint::{
    EndpointPlan, EndpointToHostAction, dispatch_chains, endpoint_chain_for,
};
use super::policy::host::Failsafes;
use super::policy::{RenderedChains, render_policy, render_profile, render_refused};
use super::routes::{LocalNetworking, NeighborSpec, NetworkingCache, RouteSpec};

mod assemble;
mod hosts;
mod sets;
mod tiers;

use hosts::HostState;

use sets::{Contributor, SetState};
use tiers::{Selected, evaluation_order, tier_plans};

/// Settings that change the rendering.
#[derive(Clone, Debug, Default)]
pub struct CalcConfig {
    pub endpoint_to_host: EndpointToHostAction,
    /// Ports host endpoints accept before any policy.
    pub failsafes: Failsafes,
}

/// Everything the dataplane should hold, as its own input types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredState {
    pub filter: DesiredTable,
    pub nat: DesiredTable,
    /// Pre-DNAT policy of host endpoints.
    pub mangle: DesiredTable,
    /// Untracked policy of host endpoints.
    pub raw: DesiredTable,
    /// Sorted by name.
    pub ipsets: Vec<IpSet>,
    pub routes: Vec<RouteSpec>,
    pub neighbors: Vec<NeighborSpec>,
    /// Local workload interfaces, for sysctls.
    pub interfaces: Vec<String>,
    /// Problems found in the model (see [`CalcError`]).
    pub errors: Vec<CalcError>,
}

struct PolicyState {
    /// `spec.tier` (`default` when unset).
    tier: String,
    order: f64,
    /// `None` when the selector does not parse: the policy applies nowhere.
    selector: Option<Selector>,
    namespace_selector: Option<Selector>,
    /// Equal for policies that select the same endpoints (canonical selectors
    /// and the namespace scope): consecutive ones share a group chain.
    selector_key: String,
    applies: (bool, bool),
    stage: PolicyStage,
    rendered: RenderedChains,
    error: Option<CalcError>,
    /// Local endpoints the policy selects.
    local_eps: BTreeSet<WepKey>,
}

#[derive(Default)]
struct Dirty {
    weps: BTreeSet<WepKey>,
    policies: BTreeSet<PolicyKey>,
    profiles: BTreeSet<String>,
    net_sets: BTreeSet<NetSetKey>,
    tiers: BTreeSet<String>,
    host_endpoints: BTreeSet<String>,
    blocks: bool,
    overlay: bool,
}

/// The incremental calculation: feed [`Update`]s, then ask for the [`DesiredState`].
pub struct Calculator {
    input: CalcInput,
    config: CalcConfig,
    views: HashMap<WepKey, EndpointView>,
    net_set_views: HashMap<NetSetKey, NetSetView>,
    /// Host endpoints with their expected IPs, which selector sets hold like a
    /// global network set's nets (Calico's label index treats them alike).
    host_views: HashMap<String, NetSetView>,
    namespaces: NamespaceLabels,
    policies: HashMap<PolicyKey, PolicyState>,
    /// For each local endpoint, the policies selecting it.
    ep_policies: HashMap<WepKey, BTreeSet<PolicyKey>>,
    profiles: HashMap<String, RenderedChains>,
    sets: HashMap<String, SetState>,
    /// Per local endpoint: interface, its (ingress, egress) chains and the
    /// group chains they jump to.
    ep_chains: BTreeMap<WepKey, EndpointChains>,
    /// Policy group chains with the number of endpoint chains using each.
    groups: HashMap<String, (Chain, usize)>,
    /// `None` when an interface came, went or changed hands since it was built;
    /// built by [`Calculator::assemble`], after the routes went out.
    interfaces: Option<InterfaceIndex>,
    ep_dirty: BTreeSet<WepKey>,
    networking: LocalNetworking,
    net_cache: NetworkingCache,
    /// Profiles of local endpoints (O(local) to list, unlike a scan of every
    /// endpoint).
    local_profiles: BTreeMap<WepKey, Vec<String>>,
    hosts: HostState,
    overlay: OverlayPlan,
    /// The local networking's routes and neighbour entries, then the overlay's (its
    /// ARP and FDB entries): kept between applies, rebuilt only when either changes.
    routes: Vec<RouteSpec>,
    neighbors: Vec<NeighborSpec>,
    dirty: Dirty,
}

impl Calculator {
    /// A calculator over `input`; the first [`Calculator::desired`] computes everything.
    pub fn new(input: CalcInput, config: CalcConfig) -> Self {
        let dirty = Dirty {
            weps: input.weps.keys().cloned().collect(),
            policies: input.policies.keys().cloned().collect(),
            profiles: input.profiles.keys().cloned().collect(),
            net_sets: input.network_sets.keys().cloned().collect(),
            tiers: BTreeSet::new(),
            host_endpoints: input.host_endpoints.keys().cloned().collect(),
            blocks: true,
            overlay: true,
        };
        Self {
            input,
            config,
            views: HashMap::new(),
            net_set_views: HashMap::new(),
            host_views: HashMap::new(),
            namespaces: NamespaceLabels::default(),
            policies: HashMap::new(),
            ep_policies: HashMap::new(),
            profiles: HashMap::new(),
            sets: HashMap::new(),
            ep_chains: BTreeMap::new(),
            groups: HashMap::new(),
            interfaces: None,
            ep_dirty: BTreeSet::new(),
            networking: LocalNetworking::default(),
            net_cache: NetworkingCache::default(),
            local_profiles: BTreeMap::new(),
            hosts: HostState::default(),
            overlay: OverlayPlan::default(),
            routes: Vec::new(),
            neighbors: Vec::new(),
            dirty,
        }
    }

    pub fn input(&self) -> &CalcInput {
        &self.input
    }

    /// Applies one datastore change; the work happens in [`Calculator::desired`].
    pub fn apply(&mut self, update: Update) {
        match self.input.apply_update(update) {
            Changed::Nothing => {}
            Changed::Pools | Changed::Overlay => self.dirty.overlay = true,
            Changed::Wep(key) => {
                self.dirty.weps.insert(key);
            }
            Changed::Policy(key) => {
                self.dirty.policies.insert(key);
            }
            Changed::Profile(name) => {
                self.dirty.profiles.insert(name);
            }
            Changed::NetworkSet(key) => {
                self.dirty.net_sets.insert(key);
            }
            Changed::Tier(name) => {
                self.dirty.tiers.insert(name);
            }
            Changed::HostEndpoint(name) => {
                self.dirty.host_endpoints.insert(name);
            }
            Changed::Blocks => {
                self.dirty.blocks = true;
                self.dirty.overlay = true;
            }
        }
    }

    /// Brings the caches up to date and assembles the desired dataplane.
    pub fn desired(&mut self) -> DesiredState {
        self.recalculate();
        self.assemble()
    }

    /// Brings the caches up to date (the incremental part of [`Calculator::desired`]).
    pub fn recalculate(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        let mut weps = dirty.weps;
        let policies = dirty.policies;
        let mut net_sets = dirty.net_sets;
        let mut heps = dirty.host_endpoints;
        if !dirty.profiles.is_empty() {
            self.profile_changes(&dirty.profiles, &mut weps, &mut net_sets, &mut heps);
        }
        for key in &weps {
            self.net_cache.endpoint_changed(&self.input, key);
            match self.input.weps.get(key).filter(|w| self.input.is_local(w)) {
                Some(wep) => {
                    self.local_profiles
                        .insert(key.clone(), wep.spec.profiles.clone());
                }
                None => {
                    self.local_profiles.remove(key);
                }
            }
        }
        if dirty.blocks {
            self.net_cache.blocks_changed(&self.input);
        }
        let networking_changed = dirty.blocks || !weps.is_empty();
        if networking_changed {
            self.networking = self.net_cache.build();
        }
        if dirty.overlay {
            self.overlay = overlay_plan(&self.input.overlay_input());
        }
        if networking_changed || dirty.overlay {
            self.routes = self.networking.routes.clone();
            self.routes.extend(self.overlay.route_specs());
            self.neighbors = self.networking.neighbors.clone();
            self.neighbors.extend(self.overlay.neighbor_specs());
        }
        for key in &weps {
            self.endpoint_changed(key);
        }
        for key in &net_sets {
            self.net_set_changed(key);
        }
        for name in &heps {
            self.host_endpoint_changed(name);
        }
        for key in &policies {
            self.policy_changed(key);
        }
        if !dirty.tiers.is_empty() {
            self.tiers_changed(&dirty.tiers);
        }
        // Profiles carry host endpoint labels too.
        if !heps.is_empty()
            || !policies.is_empty()
            || !dirty.tiers.is_empty()
            || !dirty.profiles.is_empty()
        {
            self.hosts = self.host_state();
        }
        self.refresh_profiles_and_sets();
        for key in std::mem::take(&mut self.ep_dirty) {
            self.render_endpoint(&key);
        }
    }

    /// Local endpoints by interface, the endpoints left out because an earlier
    /// one (in key order) already uses their interface, and the dispatch chains.
    fn interface_index(&self) -> InterfaceIndex {
        let mut by_ifname: BTreeMap<&str, &WepKey> = BTreeMap::new();
        let mut errors = Vec::new();
        for (key, ep) in &self.ep_chains {
            if let Some(first) = by_ifname.get(ep.ifname.as_str()) {
                errors.push(CalcError::Endpoint {
                    endpoint: format!("{}/{}", key.namespace, key.name),
                    reason: format!(
                        "interface {} is already used by {}/{}",
                        ep.ifname, first.namespace, first.name
                    ),
                });
                continue;
            }
            by_ifname.insert(&ep.ifname, key);
        }
        InterfaceIndex {
            dispatch: dispatch_chains(by_ifname.keys().copied()),
            order: by_ifname.into_values().cloned().collect(),
            errors,
        }
    }

    fn profile_changes(
        &mut self,
        names: &BTreeSet<String>,
        weps: &mut BTreeSet<WepKey>,
        net_sets: &mut BTreeSet<NetSetKey>,
        heps: &mut BTreeSet<String>,
    ) {
        let mut namespaces = BTreeSet::new();
        for name in names {
            self.profiles.remove(name);
            if let Some(ns) = name.strip_prefix(NAMESPACE_PROFILE_PREFIX) {
                namespaces.insert(ns.to_string());
                let labels = self.input.namespace_labels(ns);
                self.namespaces.0.insert(ns.to_string(), labels);
            }
        }
        // Endpoints inherit profile labels; namespace labels feed namespace selectors.
        for (key, wep) in &self.input.weps {
            if namespaces.contains(&key.namespace)
                || wep.spec.profiles.iter().any(|p| names.contains(p))
            {
                weps.insert(key.clone());
            }
        }
        for (name, hep) in &self.input.host_endpoints {
            if hep.spec.profiles.iter().any(|p| names.contains(p)) {
                heps.insert(name.clone());
            }
        }
        // Namespace labels decide which NetworkSets namespace selectors pick.
        for key in self.input.network_sets.keys() {
            if key
                .namespace
                .as_ref()
                .is_some_and(|ns| namespaces.contains(ns))
            {
                net_sets.insert(key.clone());
            }
        }
        // A profile's chains change for every local endpoint using it.
        for key in self.ep_chains.keys() {
            if let Some(wep) = self.input.weps.get(key)
                && wep.spec.profiles.iter().any(|p| names.contains(p))
            {
                self.ep_dirty.insert(key.clone());
            }
        }
    }

    /// A tier's order or default action changes the chains of the local endpoints
    /// that have policies in it (and only those: a tier without policies for an
    /// endpoint is not in its chain).
    fn tiers_changed(&mut self, names: &BTreeSet<String>) {
        for p in self.policies.values().filter(|p| names.contains(&p.tier)) {
            self.ep_dirty.extend(p.local_eps.iter().cloned());
        }
    }

    /// A network set came, went or changed: its nets leave every set and join the
    /// sets that select it now. Chains never depend on network sets.
    fn net_set_changed(&mut self, key: &NetSetKey) {
        let who = Contributor::NetSet(key.clone());
        for set in self.sets.values_mut() {
            set.remove(&who);
        }
        let Some(def) = self.input.network_sets.get(key) else {
            self.net_set_views.remove(key);
            return;
        };
        let view = NetSetView::new(key, def);
        for set in self.sets.values_mut() {
            if let Some(spec) = &set.spec {
                let members = spec.members_of_net_set(&view, &self.namespaces);
                set.add(who.clone(), members);
            }
        }
        self.net_set_views.insert(key.clone(), view);
    }

    /// A host endpoint came, went or changed: its expected IPs leave every set
    /// and join the sets whose selectors match it now.
    fn host_endpoint_changed(&mut self, name: &str) {
        let who = Contributor::HostEndpoint(name.to_string());
        for set in self.sets.values_mut() {
            set.remove(&who);
        }
        let Some(hep) = self.input.host_endpoints.get(name) else {
            self.host_views.remove(name);
            return;
        };
        let def = NetSetDef {
            labels: self.input.host_endpoint_labels(hep),
            nets: hep.spec.expected_ips.clone(),
        };
        let view = NetSetView::new(&NetSetKey::global(name), &def);
        for set in self.sets.values_mut() {
            if let Some(spec) = &set.spec {
                set.add(
                    who.clone(),
                    spec.members_of_net_set(&view, &self.namespaces),
                );
            }
        }
        self.host_views.insert(name.to_string(), view);
    }

    fn endpoint_changed(&mut self, key: &WepKey) {
        let who = Contributor::Endpoint(key.clone());
        for set in self.sets.values_mut() {
            set.remove(&who);
        }
        let was_local = self.views.get(key).is_some_and(|v| v.local);
        let view = self
            .input
            .weps
            .get(key)
            .map(|wep| EndpointView::new(&self.input, key, wep));
        match &view {
            Some(v) => {
                for set in self.sets.values_mut() {
                    if let Some(spec) = &set.spec {
                        let members = spec.members_of(v, &self.namespaces);
                        set.add(who.clone(), members);
                    }
                }
            }
            None => {
                self.views.remove(key);
            }
        }
        if was_local || view.as_ref().is_some_and(|v| v.local) {
            self.ep_dirty.insert(key.clone());
            let selecting: BTreeSet<PolicyKey> = match &view {
                Some(v) if v.local => self
                    .policies
                    .iter_mut()
                    .filter_map(|(pk, p)| {
                        let hit = applies_to(p, pk, v, &self.namespaces);
                        if hit {
                            p.local_eps.insert(key.clone());
                        } else {
                            p.local_eps.remove(key);
                        }
                        hit.then(|| pk.clone())
                    })
                    .collect(),
                _ => {
                    for p in self.policies.values_mut() {
                        p.local_eps.remove(key);
                    }
                    BTreeSet::new()
                }
            };
            if selecting.is_empty() {
                self.ep_policies.remove(key);
            } else {
                self.ep_policies.insert(key.clone(), selecting);
            }
        }
        if let Some(v) = view {
            self.views.insert(key.clone(), v);
        }
    }

    fn policy_changed(&mut self, key: &PolicyKey) {
        if let Some(old) = self.policies.remove(key) {
            for ep in old.local_eps {
                if let Some(set) = self.ep_policies.get_mut(&ep) {
                    set.remove(key);
                }
                self.ep_dirty.insert(ep);
            }
        }
        let Some(def) = self.input.policies.get(key) else {
            return;
        };
        let refused = self.input.refused.get(key);
        let parse = |s: &str| Selector::parse(s).map_err(|e| (s.to_string(), e.to_string()));
        let ns_sel = match def.namespace_selector() {
            "" => Ok(None),
            s => parse(s).map(Some),
        };
        let (selector, namespace_selector, error) = match (parse(def.selector()), ns_sel) {
            (Ok(s), Ok(n)) => (Some(s), n, None),
            (Err((selector, reason)), _) | (_, Err((selector, reason))) => (
                None,
                None,
                Some(CalcError::PolicySelector {
                    policy: key.id(),
                    selector,
                    reason,
                }),
            ),
        };
        let selector_key = selector_key(key, selector.as_ref(), namespace_selector.as_ref());
        let mut state = PolicyState {
            tier: def.tier().to_string(),
            order: def.order(),
            selector_key,
            selector,
            namespace_selector,
            applies: match refused {
                Some(_) => (true, true),
                None => def.applies(),
            },
            stage: def.stage(),
            rendered: match refused {
                Some(reason) => render_refused(key, reason),
                None => render_policy(key, def),
            },
            error,
            local_eps: BTreeSet::new(),
        };
        for v in self.views.values().filter(|v| v.local) {
            if applies_to(&state, key, v, &self.namespaces) {
                state.local_eps.insert(v.key.clone());
                self.ep_policies
                    .entry(v.key.clone())
                    .or_default()
                    .insert(key.clone());
                self.ep_dirty.insert(v.key.clone());
            }
        }
        self.policies.insert(key.clone(), state);
    }

    /// Renders profiles local endpoints use, then creates the sets live chains
    /// reference (filled from every endpoint) and forgets the others.
    fn refresh_profiles_and_sets(&mut self) {
        let used: BTreeSet<String> = self.used_profiles();
        self.profiles.retain(|name, _| used.contains(name));
        for name in &used {
            if self.profiles.contains_key(name) {
                continue;
            }
            if let Some(profile) = self.input.profile(name) {
                let rendered = render_profile(&profile);
                self.profiles.insert(name.clone(), rendered);
            }
        }
        let mut live: HashMap<&str, &SetSpec> = HashMap::new();
        let active = self.policies.iter().filter_map(|(key, p)| {
            (!p.local_eps.is_empty() || self.hosts.policies.contains_key(key)).then_some(p)
        });
        for rendered in active.map(|p| &p.rendered).chain(self.profiles.values()) {
            for spec in &rendered.sets {
                live.insert(&spec.name, spec);
            }
        }
        self.sets.retain(|name, _| live.contains_key(name.as_str()));
        for (name, spec) in live {
            if self.sets.contains_key(name) {
                continue;
            }
            let mut state = SetState::new(spec.clone());
            for v in self.views.values() {
                let who = Contributor::Endpoint(v.key.clone());
                state.add(who, spec.members_of(v, &self.namespaces));
            }
            for v in self.net_set_views.values() {
                let who = Contributor::NetSet(v.key.clone());
                state.add(who, spec.members_of_net_set(v, &self.namespaces));
            }
            for (name, v) in &self.host_views {
                let who = Contributor::HostEndpoint(name.clone());
                state.add(who, spec.members_of_net_set(v, &self.namespaces));
            }
            self.sets.insert(name.to_string(), state);
        }
    }

    fn used_profiles(&self) -> BTreeSet<String> {
        let mut used: BTreeSet<String> = self.local_profiles.values().flatten().cloned().collect();
        used.extend(self.hosts.profiles.iter().cloned());
        used
    }

    /// Routes, neighbours and interfaces as of the last recalculation: what
    /// the owner writes first, before the rest of the state is assembled.
    pub fn networking(&self) -> &LocalNetworking {
        &self.networking
    }

    /// Every route felix wants: local workloads and blocks, then the overlay's.
    pub fn routes(&self) -> &[RouteSpec] {
        &self.routes
    }

    /// The overlay's routes, VTEPs and devices.
    pub fn overlay(&self) -> &OverlayPlan {
        &self.overlay
    }

    /// Local endpoints (O(1), unlike counting [`CalcInput::local_weps`]).
    pub fn local_endpoint_count(&self) -> usize {
        self.local_profiles.len()
    }

    fn render_endpoint(&mut self, key: &WepKey) {
        let old = self.forget_endpoint_chains(key);
        self.render_endpoint_chains(key);
        if old.as_deref() != self.ep_chains.get(key).map(|ep| ep.ifname.as_str()) {
            self.interfaces = None;
        }
    }

    fn render_endpoint_chains(&mut self, key: &WepKey) {
        let Some(wep) = self.input.weps.get(key).filter(|w| self.input.is_local(w)) else {
            return;
        };
        let ifname = wep.spec.interface_name.clone();
        if !crate::dataplane::netlink::valid_ifname(&ifname) {
            return;
        }
        let mut selecting: Vec<Selected> = self
            .ep_policies
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|k| {
                self.policies
                    .get(k)
                    .map(|p| Selected::new(&self.input, k, p))
            })
            .collect();
        selecting.sort_by(evaluation_order);
        let profiles: Vec<String> = wep
            .spec
            .profiles
            .iter()
            .filter(|p| self.profiles.contains_key(*p))
            .cloned()
            .collect();
        let mut groups = Vec::new();
        let mut plan = |dir: Direction| {
            let (tiers, steps) = tier_plans(dir, &selecting);
            groups.extend(steps.groups);
            EndpointPlan {
                direction: dir,
                tiers,
                profiles: profiles.clone(),
            }
        };
        let chains = [
            endpoint_chain_for(Direction::Ingress, &ifname, &plan(Direction::Ingress)),
            endpoint_chain_for(Direction::Egress, &ifname, &plan(Direction::Egress)),
        ];
        let group_names = groups.iter().map(|g| g.name.clone()).collect();
        for group in groups {
            self.groups
                .entry(group.name.clone())
                .or_insert((group, 0))
                .1 += 1;
        }
        let entry = EndpointChains {
            ifname,
            chains,
            groups: group_names,
        };
        self.ep_chains.insert(key.clone(), entry);
    }

    /// Drops an endpoint's chains and its uses of group chains; returns its
    /// interface.
    fn forget_endpoint_chains(&mut self, key: &WepKey) -> Option<String> {
        let old = self.ep_chains.remove(key)?;
        for name in old.groups {
            if let Some((_, users)) = self.groups.get_mut(&name) {
                *users -= 1;
                if *users == 0 {
                    self.groups.remove(&name);
                }
            }
        }
        Some(old.ifname)
    }
}

/// See [`Calculator::interface_index`].
struct InterfaceIndex {
    /// Endpoints whose chains are used, in interface order.
    order: Vec<WepKey>,
    errors: Vec<CalcError>,
    dispatch: [Chain; 2],
}

/// A local endpoint's rendered chains.
struct EndpointChains {
    ifname: String,
    /// (ingress `cali-tw-`, egress `cali-fw-`).
    chains: [Chain; 2],
    /// Group chains the two chains jump to (a name once per use).
    groups: Vec<String>,
}

/// See [`PolicyState::selector_key`]: a NetworkPolicy selects inside its
/// namespace, a GlobalNetworkPolicy in the namespaces its namespaceSelector picks.
fn selector_key(key: &PolicyKey, sel: Option<&Selector>, ns_sel: Option<&Selector>) -> String {
    let show = |s: Option<&Selector>| s.map(ToString::to_string).unwrap_or_default();
    match key.namespace() {
        Some(ns) => format!("namespace {ns}\n{}", show(sel)),
        None => format!("global\n{}\n{}", show(sel), show(ns_sel)),
    }
}

/// Whether policy `p` applies to workload endpoint `v`: a NetworkPolicy only in its
/// namespace, a GlobalNetworkPolicy in namespaces its `namespaceSelector` picks;
/// untracked and pre-DNAT policies only ever apply to host endpoints (Calico).
fn applies_to(p: &PolicyState, key: &PolicyKey, v: &EndpointView, ns: &NamespaceLabels) -> bool {
    let Some(sel) = &p.selector else {
        return false;
    };
    if !matches!(p.stage, PolicyStage::Normal { .. }) {
        return false;
    }
    if key.namespace().is_some_and(|n| n != v.key.namespace) {
        return false;
    }
    if let Some(nss) = &p.namespace_selector
        && !ns.matches(nss, &v.key.namespace)
    {
        return false;
    }
    sel.matches(&v.labels)
}
