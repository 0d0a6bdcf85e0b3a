//! Assembling the [`DesiredState`] from the calculator's caches: the part of a
//! recalculation whose cost grows with the total, kept to a name and a shared
//! rule list per chain (the rules themselves are not copied).

use std::collections::BTreeSet;

use super::{Calculator, DesiredState};
use crate::calc::desired::Family;
use crate::calc::desired::ipsets::{IpSet, SetMember};
use crate::calc::desired::iptables::{DesiredTable, Table, standard_jumps};
use crate::calc::error::CalcError;
use crate::calc::ipsets::pool_sets;
use crate::calc::model::{PolicyKey, PolicyStage};
use crate::calc::policy::endpoint::{nat_chains, static_filter_chains};
use crate::calc::policy::host::host_tables;

impl Calculator {
    /// Builds the output from the caches.
    pub fn assemble(&mut self) -> DesiredState {
        let interfaces = match self.interfaces.take() {
            Some(index) => index,
            None => self.interface_index(),
        };
        let mut errors = interfaces.errors.clone();
        let ep_chains = interfaces
            .order
            .iter()
            .flat_map(|key| self.ep_chains[key].chains.iter().cloned());
        let mut ep_chains: Vec<_> = ep_chains.collect();
        let mut chains = static_filter_chains(self.config.endpoint_to_host);
        chains.extend(interfaces.dispatch.iter().cloned());
        ep_chains.sort_by(|a, b| a.name.cmp(&b.name));
        chains.extend(ep_chains);
        let hosts = host_tables(&self.hosts.plans, &self.config.failsafes);
        chains.extend(hosts.filter);
        errors.extend(self.hosts.errors.iter().cloned());
        let mut policy_keys: Vec<&PolicyKey> = self.policies.keys().collect();
        policy_keys.sort();
        let mut policy_chains = Vec::new();
        let (mut mangle_chains, mut raw_chains) = (hosts.mangle, hosts.raw);
        for key in policy_keys {
            let p = &self.policies[key];
            errors.extend(p.error.iter().cloned());
            let for_hosts = self.hosts.policies.contains_key(key);
            if !p.local_eps.is_empty() || for_hosts {
                if !self.input.tier_exists(&p.tier) {
                    errors.push(CalcError::UnknownTier {
                        policy: key.id(),
                        tier: p.tier.clone(),
                    });
                }
                errors.extend(p.rendered.errors.iter().cloned());
                let table = match p.stage {
                    PolicyStage::Normal { .. } => &mut policy_chains,
                    PolicyStage::PreDnat => &mut mangle_chains,
                    PolicyStage::Untracked => &mut raw_chains,
                };
                table.extend(p.rendered.chains.iter().cloned());
            }
        }
        policy_chains.extend(self.groups.values().map(|(chain, _)| chain.clone()));
        policy_chains.sort_by(|a, b| a.name.cmp(&b.name));
        chains.extend(policy_chains);
        let mut profile_names: Vec<&String> = self.profiles.keys().collect();
        profile_names.sort();
        for name in profile_names {
            errors.extend(self.profiles[name].errors.iter().cloned());
            chains.extend(self.profiles[name].chains.iter().cloned());
        }
        let filter = DesiredTable::new(Table::Filter, chains, standard_jumps(Table::Filter));
        let mangle = DesiredTable::new(Table::Mangle, mangle_chains, standard_jumps(Table::Mangle));
        let raw = DesiredTable::new(Table::Raw, raw_chains, standard_jumps(Table::Raw));

        let [masq, all] = pool_sets(self.input.pools.values());
        let nat = DesiredTable::new(
            Table::Nat,
            nat_chains(!masq.members.is_empty()),
            standard_jumps(Table::Nat),
        );
        let mut ipsets: Vec<IpSet> = self
            .sets
            .iter()
            .filter_map(|(name, state)| {
                let spec = state.spec.as_ref()?;
                let mut members: BTreeSet<SetMember> = state.members.keys().copied().collect();
                members.extend(spec.fixed_members());
                Some(IpSet {
                    name: name.clone(),
                    kind: spec.kind(),
                    family: Family::V4,
                    members,
                })
            })
            .collect();
        ipsets.extend([masq, all]);
        ipsets.sort_by(|a, b| a.name.cmp(&b.name));
        errors.extend(self.networking.errors.iter().cloned());
        errors.extend(
            self.overlay
                .unroutable
                .iter()
                .map(|u| CalcError::UnroutableBlock {
                    block: u.block.to_string(),
                    node: u.node.clone(),
                    reason: u.why.reason(),
                }),
        );
        self.interfaces = Some(interfaces);
        DesiredState {
            filter,
            nat,
            mangle,
            raw,
            ipsets,
            routes: self.routes.clone(),
            neighbors: self.neighbors.clone(),
            interfaces: self.networking.interfaces.clone(),
            errors,
        }
    }
}
