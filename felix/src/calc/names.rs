//! Names felix gives its chains and ipsets, and the mark bits its rules use.
//!
//! Names follow Calico's scheme (felix `rules/` and `hashutils.GetLengthLimitedID`):
//! `<prefix><id>` when it fits, else `<prefix>_<base64url(sha224(id))>` cut to the
//! limit, so long policy names still give a unique, stable chain name.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha224};

use super::desired::ipsets::{MAX_SET_NAME, SET_PREFIX};
use super::desired::iptables::MAX_CHAIN_NAME;

/// Set by a policy or profile rule that allows the packet.
pub const MARK_ACCEPT: u32 = 0x10000;
/// Set by a `Pass` rule: skip the remaining policies, go on to the profiles.
pub const MARK_PASS: u32 = 0x20000;
/// Reserved for a drop verdict carried across chains (REFERENCE.md section 4).
pub const MARK_DROP: u32 = 0x40000;
/// Every mark bit felix uses; cleared when a packet enters felix's chains.
pub const MARK_ALL: u32 = MARK_ACCEPT | MARK_PASS | MARK_DROP;

pub const CHAIN_FORWARD: &str = "cali-FORWARD";
pub const CHAIN_INPUT: &str = "cali-INPUT";
pub const CHAIN_OUTPUT: &str = "cali-OUTPUT";
pub const CHAIN_FROM_WL_DISPATCH: &str = "cali-from-wl-dispatch";
pub const CHAIN_TO_WL_DISPATCH: &str = "cali-to-wl-dispatch";
pub const CHAIN_WL_TO_HOST: &str = "cali-wl-to-host";
pub const CHAIN_NAT_POSTROUTING: &str = "cali-POSTROUTING";
/// raw and mangle PREROUTING (untracked and pre-DNAT host endpoint policy).
pub const CHAIN_PREROUTING: &str = "cali-PREROUTING";
/// Host endpoint dispatch by interface, as Calico names them.
pub const CHAIN_FROM_HEP_DISPATCH: &str = "cali-from-host-endpoint";
pub const CHAIN_TO_HEP_DISPATCH: &str = "cali-to-host-endpoint";
pub const CHAIN_FROM_HEP_FORWARD: &str = "cali-from-hep-forward";
pub const CHAIN_TO_HEP_FORWARD: &str = "cali-to-hep-forward";
/// Calico's failsafe ports: accepted on host endpoints before any policy.
pub const CHAIN_FAILSAFE_IN: &str = "cali-failsafe-in";
pub const CHAIN_FAILSAFE_OUT: &str = "cali-failsafe-out";
/// The chain suffix of the all-interfaces host endpoint (`interfaceName: "*"`).
pub const ALL_INTERFACES_SUFFIX: &str = "any";
pub const CHAIN_NAT_OUTGOING: &str = "cali-nat-outgoing";

/// Pools whose addresses are masqueraded on the way out (`natOutgoing`).
pub const SET_MASQ_POOLS: &str = "cali40masq-ipam-pools";
/// Every pool: traffic to these stays inside the cluster and is not masqueraded.
pub const SET_ALL_POOLS: &str = "cali40all-ipam-pools";

/// Marks the name as hashed; an id starting with it is hashed too, so a literal
/// name can never collide with a hashed one.
const HASHED_MARKER: char = '_';

/// Traffic direction from the workload's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// To the workload: ingress policy, `cali-tw-`, `cali-pi-`, `cali-pri-`.
    Ingress,
    /// From the workload: egress policy, `cali-fw-`, `cali-po-`, `cali-pro-`.
    Egress,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// `prefix + id`, or `prefix + "_" + hash(id)` cut to `max` characters when too long
/// (or when `id` itself starts with `_`).
pub fn length_limited(prefix: &str, id: &str, max: usize) -> String {
    if prefix.len() + id.len() <= max && !id.starts_with(HASHED_MARKER) {
        return format!("{prefix}{id}");
    }
    let hash = URL_SAFE_NO_PAD.encode(Sha224::digest(id.as_bytes()));
    let room = max.saturating_sub(prefix.len() + 1);
    format!("{prefix}{HASHED_MARKER}{}", &hash[..room.min(hash.len())])
}

/// `cali-pi-<id>` (ingress rules) or `cali-po-<id>` (egress rules) of a policy.
pub fn policy_chain(dir: Direction, policy_id: &str) -> String {
    let prefix = match dir {
        Direction::Ingress => "cali-pi-",
        Direction::Egress => "cali-po-",
    };
    length_limited(prefix, policy_id, MAX_CHAIN_NAME)
}

/// `cali-pri-<profile>` or `cali-pro-<profile>`.
pub fn profile_chain(dir: Direction, profile: &str) -> String {
    let prefix = match dir {
        Direction::Ingress => "cali-pri-",
        Direction::Egress => "cali-pro-",
    };
    length_limited(prefix, profile, MAX_CHAIN_NAME)
}

/// `cali-tw-<iface>` (to the workload) or `cali-fw-<iface>` (from it).
pub fn endpoint_chain(dir: Direction, ifname: &str) -> String {
    let prefix = match dir {
        Direction::Ingress => "cali-tw-",
        Direction::Egress => "cali-fw-",
    };
    length_limited(prefix, ifname, MAX_CHAIN_NAME)
}

/// A host endpoint's chains, by where the traffic goes (Calico's prefixes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostChain {
    /// `cali-fh-`: from the endpoint into the host (ingress policy).
    From,
    /// `cali-th-`: from the host out of the endpoint (egress policy).
    To,
    /// `cali-fhfw-`: forwarded, arriving through the endpoint.
    FromForward,
    /// `cali-thfw-`: forwarded, leaving through the endpoint.
    ToForward,
}

impl HostChain {
    /// The policy direction the chain runs.
    pub fn direction(self) -> Direction {
        match self {
            HostChain::From | HostChain::FromForward => Direction::Ingress,
            HostChain::To | HostChain::ToForward => Direction::Egress,
        }
    }
}

/// The chain of a host endpoint on `ifname` (`any` for the `*` endpoint).
pub fn host_endpoint_chain(which: HostChain, ifname: &str) -> String {
    let prefix = match which {
        HostChain::From => "cali-fh-",
        HostChain::To => "cali-th-",
        HostChain::FromForward => "cali-fhfw-",
        HostChain::ToForward => "cali-thfw-",
    };
    length_limited(prefix, ifname, MAX_CHAIN_NAME)
}

/// `cali40s:<hash>` for a selector or net list, from its canonical identity string
/// (Calico hashes the canonical selector text, so equal selectors share one set).
pub fn selector_set(identity: &str) -> String {
    hashed_set_name('s', identity)
}

/// `cali40n:<hash>`: a named-port set (`hash:ip,port`) of the given identity.
pub fn named_port_set(identity: &str) -> String {
    hashed_set_name('n', identity)
}

fn hashed_set_name(kind: char, identity: &str) -> String {
    let prefix = format!("{SET_PREFIX}{kind}:");
    let hash = URL_SAFE_NO_PAD.encode(Sha224::digest(identity.as_bytes()));
    format!("{prefix}{}", &hash[..MAX_SET_NAME - prefix.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept() {
        assert_eq!(
            policy_chain(Direction::Ingress, "allow-db"),
            "cali-pi-allow-db"
        );
        assert_eq!(
            endpoint_chain(Direction::Egress, "cali1234567890a"),
            "cali-fw-cali1234567890a"
        );
    }

    #[test]
    fn long_names_are_hashed_to_the_limit() {
        let long = "default/knp.default.allow-frontend-to-backend";
        let a = policy_chain(Direction::Ingress, long);
        assert_eq!(a.len(), MAX_CHAIN_NAME);
        assert!(a.starts_with("cali-pi-_"), "{a}");
        assert_ne!(a, policy_chain(Direction::Ingress, &format!("{long}x")));
        // Exactly at the limit stays literal; one more character is hashed.
        let fits = "a".repeat(MAX_CHAIN_NAME - "cali-pi-".len());
        assert_eq!(
            policy_chain(Direction::Ingress, &fits),
            format!("cali-pi-{fits}")
        );
        assert!(policy_chain(Direction::Ingress, &format!("{fits}a")).starts_with("cali-pi-_"));
        // A name that looks hashed is hashed, so it cannot collide with a hashed one.
        assert!(policy_chain(Direction::Ingress, "_x").starts_with("cali-pi-_"));
        assert_ne!(policy_chain(Direction::Ingress, "_x"), "cali-pi-_x");
    }

    #[test]
    fn set_names_fill_the_limit() {
        let n = selector_set("role == \"db\"");
        assert_eq!(n.len(), MAX_SET_NAME);
        assert!(n.starts_with("cali40s:"));
        assert_ne!(n, selector_set("role == \"web\""));
    }
}
