//! The live ipsets' members, with who contributed each: endpoints (their addresses or
//! named ports), network sets (their nets) and host endpoints (their expected IPs). A change of one contributor is a
//! remove and an add here, which the dataplane turns into an ipset delta.

use std::collections::BTreeMap;

use crate::calc::desired::ipsets::SetMember;
use crate::calc::ipsets::SetSpec;
use crate::calc::model::{NetSetKey, WepKey};

/// Who put members into a set.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Contributor {
    Endpoint(WepKey),
    NetSet(NetSetKey),
    /// A host endpoint's `expectedIPs`, by its name.
    HostEndpoint(String),
}

#[derive(Default)]
pub(super) struct SetState {
    pub spec: Option<SetSpec>,
    /// Members with how many contributors gave each (two endpoints may share an
    /// address briefly while one pod replaces another; network sets may overlap).
    pub members: BTreeMap<SetMember, u32>,
    contributors: BTreeMap<Contributor, Vec<SetMember>>,
}

impl SetState {
    pub fn new(spec: SetSpec) -> Self {
        Self {
            spec: Some(spec),
            ..Self::default()
        }
    }

    pub fn add(&mut self, who: Contributor, members: Vec<SetMember>) {
        if members.is_empty() {
            return;
        }
        for m in &members {
            *self.members.entry(*m).or_default() += 1;
        }
        self.contributors.insert(who, members);
    }

    pub fn remove(&mut self, who: &Contributor) {
        for m in self.contributors.remove(who).unwrap_or_default() {
            if let Some(n) = self.members.get_mut(&m) {
                *n -= 1;
                if *n == 0 {
                    self.members.remove(&m);
                }
            }
        }
    }
}
