//! The fixed chains (`cali-FORWARD`, `cali-INPUT`, `cali-OUTPUT`, `cali-wl-to-host`),
//! the dispatch chains, and one `cali-tw-`/`cali-fw-` chain pair per local endpoint.
//!
//! Packet path (as Calico): FORWARD -> cali-FORWARD -> from-wl dispatch (`-i caliX`)
//! -> `cali-fw-caliX` (egress policy of the sender) -> back in cali-FORWARD -> to-wl
//! dispatch (`-o caliY`) -> `cali-tw-caliY` (ingress policy of the receiver) -> accept
//! if the accept mark is set. Workload-to-host traffic (INPUT) runs the sender's
//! egress policy through the same from-wl dispatch.
//!
//! Inside an endpoint chain, as Calico's `rules/endpoints.go`: each tier that has
//! policies for the endpoint (in tier order) starts by clearing the pass mark, jumps
//! to its policies while no `Pass` was set, returns on accept, and ends with a drop
//! unless a policy passed (or the tier's default action is Pass). Then the profiles:
//! reached when no tier applies, or when the last tier passed the packet.

use crate::calc::desired::iptables::Chain;
use crate::calc::names::{
    CHAIN_FORWARD, CHAIN_FROM_HEP_DISPATCH, CHAIN_FROM_HEP_FORWARD, CHAIN_FROM_WL_DISPATCH,
    CHAIN_INPUT, CHAIN_NAT_OUTGOING, CHAIN_NAT_POSTROUTING, CHAIN_OUTPUT, CHAIN_TO_HEP_DISPATCH,
    CHAIN_TO_HEP_FORWARD, CHAIN_TO_WL_DISPATCH, CHAIN_WL_TO_HOST, Direction, MARK_ACCEPT, MARK_ALL,
    MARK_PASS, SET_ALL_POOLS, SET_MASQ_POOLS, endpoint_chain, profile_chain,
};

/// What happens to workload-to-host traffic its egress policy accepted (Calico's
/// `DefaultEndpointToHostAction`; Kubernetes installs use Accept so that pods reach
/// host services such as DNS on the node).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EndpointToHostAction {
    #[default]
    Accept,
    Drop,
}

/// Which chains an endpoint chain calls, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointPlan {
    /// Which profile chains (`cali-pri-` or `cali-pro-`) the plan's profiles are.
    pub direction: Direction,
    /// Tiers with policies for this endpoint and direction, in tier order.
    pub tiers: Vec<TierPlan>,
    /// Profile names, in the endpoint's order.
    pub profiles: Vec<String>,
}

/// One tier's part of an endpoint chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TierPlan {
    pub name: String,
    /// Policy and group chain names, in policy order.
    pub targets: Vec<String>,
    /// The tier's `defaultAction` is Pass: traffic no policy decided goes on to the
    /// next tier (or the profiles) instead of being dropped.
    pub default_pass: bool,
}

/// Which endpoint chain is being built: what it starts with and how it ends
/// (Calico's `endpointIptablesChain` chain types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainKind {
    /// A workload's `cali-tw-`/`cali-fw-`: policies, then profiles, then drop.
    Workload,
    /// A host endpoint's `cali-fh-`/`cali-th-` (filter): as a workload's, after a
    /// jump to the failsafe chain, which no policy can override.
    Host { failsafe: &'static str },
    /// A host endpoint's `cali-fhfw-`/`cali-thfw-` (forwarded traffic): policies
    /// with `applyOnForward`; with none, forwarded traffic is allowed.
    Forward,
    /// A host endpoint's pre-DNAT chain (mangle): allows end the chain, traffic no
    /// policy decided goes on to the filter table.
    PreDnat { failsafe: &'static str },
    /// A host endpoint's untracked chain (raw): no conntrack rules (conntrack has
    /// not seen the packet yet); an allow is also a NOTRACK.
    Untracked { failsafe: &'static str },
}

/// `cali-tw-<ifname>` (ingress plan) or `cali-fw-<ifname>` (egress plan).
pub fn endpoint_chain_for(dir: Direction, ifname: &str, plan: &EndpointPlan) -> Chain {
    Chain {
        name: endpoint_chain(dir, ifname),
        rules: endpoint_rules(plan, ChainKind::Workload).into(),
    }
}

/// The rules of an endpoint chain of `kind` that runs `plan`.
pub fn endpoint_rules(plan: &EndpointPlan, kind: ChainKind) -> Vec<String> {
    let accept = format!("-m mark --mark {MARK_ACCEPT:#x}/{MARK_ACCEPT:#x}");
    let mut rules = Vec::new();
    if !matches!(kind, ChainKind::Untracked { .. }) {
        rules.push("-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".to_string());
        rules.push("-m conntrack --ctstate INVALID -j DROP".into());
    }
    if let ChainKind::Host { failsafe }
    | ChainKind::PreDnat { failsafe }
    | ChainKind::Untracked { failsafe } = kind
    {
        rules.push(format!("-j {failsafe}"));
    }
    // Marks left by the other endpoint's chain on the same packet must not count here.
    rules.push(format!(
        "-j MARK --set-xmark 0x0/{:#x}",
        MARK_ACCEPT | MARK_PASS
    ));
    let drop_at_tier_end = matches!(
        kind,
        ChainKind::Workload | ChainKind::Host { .. } | ChainKind::Forward
    );
    let tiers: Vec<&TierPlan> = plan
        .tiers
        .iter()
        .filter(|t| !t.targets.is_empty())
        .collect();
    for (i, tier) in tiers.iter().enumerate() {
        // Calico clears the pass mark at the start of every tier; the first tier
        // finds it clear already (the MARK above), so its rule is left out: one
        // rule less per endpoint chain in the common one-tier case, and every rule
        // reachable from the base chains costs in each nf_tables commit.
        if i > 0 {
            rules.push(format!(
                "-m comment --comment \"Start of tier {}\" -j MARK --set-xmark 0x0/{MARK_PASS:#x}",
                tier.name
            ));
        }
        for chain in &tier.targets {
            // A Pass in an earlier policy skips the remaining ones of the tier.
            rules.push(format!("-m mark --mark 0x0/{MARK_PASS:#x} -j {chain}"));
            if matches!(kind, ChainKind::Untracked { .. }) {
                rules.push(format!("{accept} -j NOTRACK"));
            }
            rules.push(format!(
                "-m comment --comment \"Return if policy accepted\" {accept} -j RETURN"
            ));
        }
        // Pre-DNAT and untracked policies leave what they did not decide to the
        // filter table's policies.
        if drop_at_tier_end && !tier.default_pass {
            rules.push(format!(
                "-m comment --comment \"Drop if no policies passed packet\" -m mark --mark 0x0/{MARK_PASS:#x} -j DROP"
            ));
        }
    }
    match kind {
        ChainKind::Workload | ChainKind::Host { .. } => {
            for profile in &plan.profiles {
                rules.push(format!("-j {}", profile_chain(plan.direction, profile)));
                rules.push(format!(
                    "-m comment --comment \"Return if profile accepted\" {accept} -j RETURN"
                ));
            }
            rules.push("-m comment --comment \"Drop if no profiles matched\" -j DROP".into());
        }
        ChainKind::Forward if tiers.is_empty() => {
            rules.push(format!(
                "-m comment --comment \"Allow forwarded traffic by default\" -j MARK --set-xmark {MARK_ACCEPT:#x}/{MARK_ACCEPT:#x}"
            ));
            rules.push(
                "-m comment --comment \"Return for accepted forward traffic\" -j RETURN".into(),
            );
        }
        ChainKind::Forward | ChainKind::PreDnat { .. } | ChainKind::Untracked { .. } => {}
    }
    rules
}

/// `cali-from-wl-dispatch` and `cali-to-wl-dispatch` over the local interfaces
/// (sorted). Packets of an interface felix does not know are dropped.
pub fn dispatch_chains<'a>(ifnames: impl IntoIterator<Item = &'a str> + Clone) -> [Chain; 2] {
    let build = |name: &str, flag: &str, dir: Direction| {
        let mut rules: Vec<String> = ifnames
            .clone()
            .into_iter()
            .map(|i| format!("{flag} {i} -g {}", endpoint_chain(dir, i)))
            .collect();
        rules.push("-m comment --comment \"Unknown interface\" -j DROP".into());
        Chain {
            name: name.into(),
            rules: rules.into(),
        }
    };
    [
        build(CHAIN_FROM_WL_DISPATCH, "-i", Direction::Egress),
        build(CHAIN_TO_WL_DISPATCH, "-o", Direction::Ingress),
    ]
}

/// `cali-FORWARD`, `cali-INPUT`, `cali-OUTPUT` and `cali-wl-to-host` (Calico's
/// `static.go`): workload traffic goes to the workload dispatch chains, the
/// host's own traffic to the host endpoint ones; a packet that untracked or
/// pre-DNAT policy accepted (accept mark set in raw or mangle) is accepted.
pub fn static_filter_chains(to_host: EndpointToHostAction) -> Vec<Chain> {
    let chain = |name: &str, rules: &[String]| Chain {
        name: name.into(),
        rules: rules.to_vec().into(),
    };
    let to_host_verdict = match to_host {
        EndpointToHostAction::Accept => "ACCEPT",
        EndpointToHostAction::Drop => "DROP",
    };
    let accept = format!("-m mark --mark {MARK_ACCEPT:#x}/{MARK_ACCEPT:#x}");
    let already = format!(
        "-m comment --comment \"Accepted by untracked or pre-DNAT policy\" {accept} -j ACCEPT"
    );
    let host_accepted = format!(
        "-m comment --comment \"Host endpoint policy accepted packet.\" {accept} -j ACCEPT"
    );
    let clear_all = format!("-j MARK --set-xmark 0x0/{MARK_ALL:#x}");
    vec![
        chain(
            CHAIN_FORWARD,
            &[
                // The accept bit stays: it says raw or mangle accepted the packet.
                format!("-j MARK --set-xmark 0x0/{:#x}", MARK_ALL & !MARK_ACCEPT),
                format!("-m mark --mark 0x0/{MARK_ACCEPT:#x} -j {CHAIN_FROM_HEP_FORWARD}"),
                format!("-i cali+ -j {CHAIN_FROM_WL_DISPATCH}"),
                format!("-o cali+ -j {CHAIN_TO_WL_DISPATCH}"),
                format!("-j {CHAIN_TO_HEP_FORWARD}"),
                format!(
                    "-m comment --comment \"Policy explicitly accepted packet.\" {accept} -j ACCEPT"
                ),
            ],
        ),
        chain(
            CHAIN_INPUT,
            &[
                format!("-i cali+ -g {CHAIN_WL_TO_HOST}"),
                already.clone(),
                clear_all.clone(),
                format!("-j {CHAIN_FROM_HEP_DISPATCH}"),
                host_accepted.clone(),
            ],
        ),
        // Traffic the host sends to its workloads is not policed, as in Calico.
        chain(
            CHAIN_OUTPUT,
            &[
                already,
                "-o cali+ -j RETURN".into(),
                clear_all,
                format!("-j {CHAIN_TO_HEP_DISPATCH}"),
                host_accepted,
            ],
        ),
        chain(
            CHAIN_WL_TO_HOST,
            &[
                format!("-j {CHAIN_FROM_WL_DISPATCH}"),
                format!(
                    "-m comment --comment \"Configured DefaultEndpointToHostAction\" -j {to_host_verdict}"
                ),
            ],
        ),
    ]
}

/// `cali-POSTROUTING` -> `cali-nat-outgoing`, which masquerades traffic from
/// natOutgoing pools to anywhere outside all pools.
pub fn nat_chains(any_masquerade: bool) -> Vec<Chain> {
    let outgoing = if any_masquerade {
        vec![format!(
            "-m set --match-set {SET_MASQ_POOLS} src -m set ! --match-set {SET_ALL_POOLS} dst -j MASQUERADE"
        )]
    } else {
        Vec::new()
    };
    vec![
        Chain {
            name: CHAIN_NAT_POSTROUTING.into(),
            rules: vec![format!("-j {CHAIN_NAT_OUTGOING}")].into(),
        },
        Chain {
            name: CHAIN_NAT_OUTGOING.into(),
            rules: outgoing.into(),
        },
    ]
}
