//! The incremental calculator must always agree with a calculation from scratch.
//! A seeded pseudo-random walk of updates (endpoints appear, move, relabel and go;
//! policies and namespace profiles change) is applied one at a time, and after each
//! the incremental result is compared with a fresh calculator over the same input.

use config::model::{
    Action, EntityRule, GlobalNetworkPolicy, GlobalNetworkPolicySpec, GlobalNetworkSet,
    HostEndpoint, HostEndpointSpec, LABEL_SERVICE_ACCOUNT, NetworkPolicy, NetworkPolicySpec,
    NetworkSet, NetworkSetSpec, ObjectMeta, Port, Profile, ProfileSpec, Protocol, Rule,
    ServiceAccountMatch, Tier, TierSpec, WorkloadEndpoint, WorkloadEndpointPort,
    WorkloadEndpointSpec,
};
use felix::calc::{
    CalcConfig, CalcInput, Calculator, NetSetKey, PolicyDef, PolicyKey, Update, WepKey,
};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

const NAMESPACES: [&str; 3] = ["a", "b", "c"];
const ROLES: [&str; 3] = ["web", "db", "cache"];
const ACCOUNTS: [&str; 2] = ["api", "batch"];
const TIERS: [&str; 3] = ["default", "security", "platform"];

fn wep(rng: &mut Rng, i: u64) -> WorkloadEndpoint {
    let ns = NAMESPACES[rng.next(3) as usize];
    let node = if rng.next(3) == 0 { "node2" } else { "node1" };
    let mut metadata = ObjectMeta {
        name: format!("{node}-k8s-p{i}-eth0"),
        namespace: Some(ns.into()),
        ..ObjectMeta::default()
    };
    metadata
        .labels
        .insert("role".into(), ROLES[rng.next(3) as usize].into());
    let account = ACCOUNTS[rng.next(2) as usize];
    metadata
        .labels
        .insert(LABEL_SERVICE_ACCOUNT.into(), account.into());
    WorkloadEndpoint {
        metadata,
        spec: WorkloadEndpointSpec {
            node: node.into(),
            orchestrator: "k8s".into(),
            pod: format!("p{i}"),
            endpoint: "eth0".into(),
            ip_networks: vec![format!("10.65.{}.{}/32", i / 200, i % 200 + 1)],
            profiles: vec![format!("kns.{ns}"), format!("ksa.{ns}.{account}")],
            interface_name: format!("cali{ns}{i:010}"),
            mac: "ee:ee:ee:ee:ee:ee".into(),
            ports: vec![WorkloadEndpointPort {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port: 8000 + rng.next(3) as u16,
                host_port: 0,
                host_ip: String::new(),
            }],
            ..WorkloadEndpointSpec::default()
        },
    }
}

fn rule(rng: &mut Rng) -> Rule {
    let mut r = Rule {
        action: [Action::Allow, Action::Deny, Action::Pass, Action::Log][rng.next(4) as usize],
        ..Rule::default()
    };
    let side = EntityRule {
        selector: format!("role == '{}'", ROLES[rng.next(3) as usize]),
        namespace_selector: match rng.next(4) {
            0 | 1 => format!("team == '{}'", rng.next(2)),
            2 => "global()".into(),
            _ => String::new(),
        },
        ..EntityRule::default()
    };
    match rng.next(4) {
        0 => r.source = side,
        1 => {
            r.destination.service_accounts = Some(ServiceAccountMatch {
                names: match rng.next(2) {
                    0 => vec![ACCOUNTS[rng.next(2) as usize].into()],
                    _ => vec![],
                },
                selector: format!("tier == '{}'", rng.next(2)),
            });
            r.destination.selector = side.selector;
        }
        2 => {
            r.protocol = Some(Protocol::Tcp);
            r.destination.ports = vec![Port::Named("http".into()), Port::Number(443)];
        }
        _ => r.destination.nets = vec!["10.0.0.0/8".into(), "192.168.0.0/16".into()],
    }
    r
}

fn policy(rng: &mut Rng, i: u64) -> Update {
    let selector = format!("role == '{}'", ROLES[rng.next(3) as usize]);
    let ingress = (0..rng.next(3)).map(|_| rule(rng)).collect();
    let egress = (0..rng.next(2)).map(|_| rule(rng)).collect();
    let order = Some(rng.next(4) as f64 * 10.0).filter(|_| rng.next(4) != 0);
    // A tiered policy is named <tier>.<name>.
    let tier = TIERS[rng.next(3) as usize];
    let name = |base: String| match tier {
        "default" => base,
        t => format!("{t}.{base}"),
    };
    let tier = tier.to_string();
    if rng.next(2) == 0 {
        // Host endpoint stages: untracked, pre-DNAT (ingress only), forward.
        let (do_not_track, pre_dnat, apply_on_forward) = match rng.next(6) {
            0 => (true, false, true),
            1 => (false, true, true),
            2 => (false, false, true),
            _ => (false, false, false),
        };
        let egress = if pre_dnat { Vec::new() } else { egress };
        Update::GlobalNetworkPolicySet(GlobalNetworkPolicy::named(
            name(format!("g{i}")),
            GlobalNetworkPolicySpec {
                tier,
                order,
                selector,
                ingress,
                egress,
                do_not_track,
                pre_dnat,
                apply_on_forward,
                ..Default::default()
            },
        ))
    } else {
        let mut p = NetworkPolicy::named(
            name(format!("n{i}")),
            NetworkPolicySpec {
                tier,
                order,
                selector,
                ingress,
                egress,
                ..Default::default()
            },
        );
        p.metadata.namespace = Some(NAMESPACES[rng.next(3) as usize].into());
        Update::NetworkPolicySet(p)
    }
}

fn namespace_profile(rng: &mut Rng) -> Update {
    let ns = NAMESPACES[rng.next(3) as usize];
    let mut spec = ProfileSpec {
        ingress: vec![Rule::default()],
        egress: vec![Rule::default()],
        ..ProfileSpec::default()
    };
    spec.labels_to_apply
        .insert("pcns.team".into(), rng.next(2).to_string());
    Update::ProfileSet(Profile::named(format!("kns.{ns}"), spec))
}

/// A service account's profile: `ksa.<ns>.<account>`, applying `pcsa.` labels.
fn account_profile(rng: &mut Rng) -> Update {
    let ns = NAMESPACES[rng.next(3) as usize];
    let account = ACCOUNTS[rng.next(2) as usize];
    let mut spec = ProfileSpec::default();
    spec.labels_to_apply
        .insert("pcsa.projectcalico.org/name".into(), account.into());
    spec.labels_to_apply
        .insert("pcsa.tier".into(), rng.next(2).to_string());
    Update::ProfileSet(Profile::named(format!("ksa.{ns}.{account}"), spec))
}

/// A NetworkSet or GlobalNetworkSet with a role label and one or two nets.
fn network_set(rng: &mut Rng) -> Update {
    let name = format!("s{}", rng.next(4));
    let mut metadata = ObjectMeta {
        name,
        ..ObjectMeta::default()
    };
    metadata
        .labels
        .insert("role".into(), ROLES[rng.next(3) as usize].into());
    let nets = (0..=rng.next(2))
        .map(|_| format!("192.168.{}.0/{}", rng.next(8), 24 + rng.next(3)))
        .collect();
    let spec = NetworkSetSpec { nets };
    if rng.next(2) == 0 {
        Update::GlobalNetworkSetSet(GlobalNetworkSet { metadata, spec })
    } else {
        metadata.namespace = Some(NAMESPACES[rng.next(3) as usize].into());
        Update::NetworkSetSet(NetworkSet { metadata, spec })
    }
}

/// A host endpoint of node1 or node2 on eth0, eth1 or every interface, with a
/// role (policy selectors and rule selectors see it) and sometimes a profile.
fn host_endpoint(rng: &mut Rng) -> Update {
    let node = if rng.next(3) == 0 { "node2" } else { "node1" };
    let iface = ["eth0", "eth1", "*"][rng.next(3) as usize];
    let mut metadata = ObjectMeta {
        name: format!("h{}", rng.next(4)),
        ..ObjectMeta::default()
    };
    metadata
        .labels
        .insert("role".into(), ROLES[rng.next(3) as usize].into());
    Update::HostEndpointSet(HostEndpoint {
        metadata,
        spec: HostEndpointSpec {
            node: node.into(),
            interface_name: iface.into(),
            expected_ips: vec![format!("10.0.0.{}", rng.next(5) + 1)],
            profiles: match rng.next(2) {
                0 => vec!["ksa.a.api".into()],
                _ => Vec::new(),
            },
            ports: Vec::new(),
        },
    })
}

/// A tier with a random order (sometimes unset) and default action.
fn tier(rng: &mut Rng) -> Update {
    let name = TIERS[rng.next(3) as usize];
    Update::TierSet(Tier::named(
        name,
        TierSpec {
            order: Some(rng.next(3) as f64 * 100.0).filter(|_| rng.next(4) != 0),
            default_action: Some([Action::Deny, Action::Pass][rng.next(2) as usize]),
        },
    ))
}

fn random_update(rng: &mut Rng, input: &CalcInput) -> Update {
    let pick = |rng: &mut Rng, n: usize| rng.next(n.max(1) as u64) as usize;
    match rng.next(18) {
        16 => host_endpoint(rng),
        17 => match input
            .host_endpoints
            .keys()
            .nth(pick(rng, input.host_endpoints.len()))
        {
            Some(name) => Update::HostEndpointDeleted(name.clone()),
            None => Update::HostEndpointDeleted("none".into()),
        },
        0..=2 => {
            let i = rng.next(40);
            Update::WepSet(wep(rng, i))
        }
        3 => match input.weps.keys().nth(pick(rng, input.weps.len())) {
            Some(k) => Update::WepDeleted(k.clone()),
            None => Update::WepDeleted(WepKey::new("a", "none")),
        },
        4..=6 => {
            let i = rng.next(15);
            policy(rng, i)
        }
        7 => match input.policies.keys().nth(pick(rng, input.policies.len())) {
            Some(k) => Update::PolicyDeleted(k.clone()),
            None => Update::PolicyDeleted(PolicyKey::Global("none".into())),
        },
        8 => namespace_profile(rng),
        9 => account_profile(rng),
        10 => network_set(rng),
        12 => tier(rng),
        13 => Update::TierDeleted(TIERS[rng.next(3) as usize].into()),
        14 => {
            // A policy that fails validation: its endpoints drop everything.
            let i = rng.next(15);
            let def = match policy(rng, i) {
                Update::GlobalNetworkPolicySet(p) => PolicyDef::Global(p),
                Update::NetworkPolicySet(p) => PolicyDef::Namespaced(p),
                other => unreachable!("{other:?}"),
            };
            let reason = "spec.order: order must be a finite number".into();
            Update::PolicyRefused { def, reason }
        }
        11 => match input
            .network_sets
            .keys()
            .nth(pick(rng, input.network_sets.len()))
        {
            Some(k) => Update::NetworkSetDeleted(k.clone()),
            None => Update::NetworkSetDeleted(NetSetKey::global("none")),
        },
        _ => Update::BlockAffinityConfirmed(format!("10.65.{}.0/26", rng.next(4)).parse().unwrap()),
    }
}

#[test]
fn incremental_equals_from_scratch() {
    let mut host_total = 0;
    for seed in [1u64, 7, 42, 2024] {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut calc = Calculator::new(CalcInput::new("node1"), CalcConfig::default());
        for step in 0..300 {
            let update = random_update(&mut rng, calc.input());
            let shown = format!("{update:?}");
            calc.apply(update);
            // Batches: recalculate after most updates, sometimes after several.
            if rng.next(3) == 0 {
                continue;
            }
            let incremental = calc.desired();
            let fresh = Calculator::new(calc.input().clone(), CalcConfig::default()).desired();
            assert_eq!(
                incremental, fresh,
                "seed {seed}, step {step}, after {shown}"
            );
        }
        // The walk must have exercised policies on local endpoints, without
        // errors hiding endpoints.
        let last = calc.desired();
        // A deleted tier or a refused policy is reported for each active policy it
        // concerns; nothing else.
        let errors: Vec<_> = last
            .errors
            .iter()
            .filter(|e| {
                !matches!(
                    e,
                    felix::calc::CalcError::UnknownTier { .. }
                        | felix::calc::CalcError::PolicyRefused { .. }
                        | felix::calc::CalcError::HostEndpoint { .. }
                )
            })
            .collect();
        assert!(errors.is_empty(), "seed {seed}: {errors:?}");
        let endpoint_calls = last
            .filter
            .chains
            .iter()
            .filter(|c| c.name.starts_with("cali-tw-") || c.name.starts_with("cali-fw-"))
            .flat_map(|c| c.rules.iter())
            .filter(|r| r.contains("-j cali-pi-") || r.contains("-j cali-po-"))
            .count();
        assert!(
            endpoint_calls > 5,
            "seed {seed}: only {endpoint_calls} policy calls at the end"
        );
        // ... and host endpoints with policies of every stage at some point.
        let host_calls = [&last.filter, &last.mangle, &last.raw]
            .iter()
            .flat_map(|t| t.chains.iter())
            .filter(|c| c.name.starts_with("cali-fh-") || c.name.starts_with("cali-th-"))
            .flat_map(|c| c.rules.iter())
            .filter(|r| r.contains("-j cali-pi-") || r.contains("-j cali-po-"))
            .count();
        host_total += host_calls;
    }
    assert!(
        host_total > 10,
        "only {host_total} host endpoint policy calls"
    );
}

/// A policy that stops selecting an endpoint disappears from its chain.
#[test]
fn policy_moving_off_an_endpoint_updates_its_chain() {
    let mut rng = Rng(3);
    let mut calc = Calculator::new(CalcInput::new("node1"), CalcConfig::default());
    let mut ep = wep(&mut rng, 1);
    ep.spec.node = "node1".into();
    ep.metadata.labels.insert("role".into(), "web".into());
    calc.apply(Update::WepSet(ep));
    let gnp = |sel: &str| {
        Update::GlobalNetworkPolicySet(GlobalNetworkPolicy::named(
            "p",
            GlobalNetworkPolicySpec {
                selector: sel.into(),
                ..Default::default()
            },
        ))
    };
    calc.apply(gnp("role == 'web'"));
    let calls = |calc: &mut Calculator| {
        calc.desired()
            .filter
            .chains
            .iter()
            .filter(|c| c.name.starts_with("cali-tw-"))
            .flat_map(|c| c.rules.to_vec())
            .filter(|r| r.contains("cali-pi-p"))
            .count()
    };
    assert_eq!(calls(&mut calc), 1);
    calc.apply(gnp("role == 'db'"));
    assert_eq!(calls(&mut calc), 0);
}

/// An endpoint that renumbers its named port changes one named-port set's members;
/// the chains stay as they were (Calico's per-endpoint `hash:ip,port` sets).
#[test]
fn renumbering_a_named_port_changes_set_members_not_chains() {
    let mut rng = Rng(5);
    let mut calc = Calculator::new(CalcInput::new("node1"), CalcConfig::default());
    let mut ep = wep(&mut rng, 1);
    ep.spec.node = "node1".into();
    ep.metadata.labels.insert("role".into(), "web".into());
    ep.spec.ports[0].port = 8080;
    calc.apply(Update::WepSet(ep.clone()));
    let mut r = Rule {
        protocol: Some(Protocol::Tcp),
        ..Rule::default()
    };
    r.destination.ports = vec![Port::Named("http".into())];
    calc.apply(Update::GlobalNetworkPolicySet(GlobalNetworkPolicy::named(
        "p",
        GlobalNetworkPolicySpec {
            selector: "role == 'web'".into(),
            ingress: vec![r],
            ..Default::default()
        },
    )));
    let before = calc.desired();
    ep.spec.ports[0].port = 9090;
    calc.apply(Update::WepSet(ep));
    let after = calc.desired();
    assert_eq!(before.filter, after.filter, "chains must not change");
    let named = |d: &felix::calc::DesiredState| {
        d.ipsets
            .iter()
            .filter(|s| s.name.starts_with("cali40n:"))
            .map(|s| {
                let members: Vec<String> = s.members.iter().map(ToString::to_string).collect();
                (s.name.clone(), members)
            })
            .collect::<Vec<_>>()
    };
    let (b, a) = (named(&before), named(&after));
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].0, a[0].0, "the same set");
    assert_eq!(b[0].1, ["10.65.0.2,tcp:8080"]);
    assert_eq!(a[0].1, ["10.65.0.2,tcp:9090"]);
}

/// A network set that changes its nets or labels changes selector set members only:
/// the chains stay as they were.
#[test]
fn a_network_set_change_is_a_set_delta_not_a_chain_change() {
    let mut rng = Rng(9);
    let mut calc = Calculator::new(CalcInput::new("node1"), CalcConfig::default());
    let mut ep = wep(&mut rng, 1);
    ep.spec.node = "node1".into();
    ep.metadata.labels.insert("role".into(), "web".into());
    calc.apply(Update::WepSet(ep));
    let mut r = Rule::default();
    r.destination.selector = "role == 'ext'".into();
    calc.apply(Update::GlobalNetworkPolicySet(GlobalNetworkPolicy::named(
        "p",
        GlobalNetworkPolicySpec {
            selector: "role == 'web'".into(),
            egress: vec![r],
            ..Default::default()
        },
    )));
    let gns = |role: &str, nets: &[&str]| {
        let mut s = GlobalNetworkSet::named(
            "ext",
            NetworkSetSpec {
                nets: nets.iter().map(|n| n.to_string()).collect(),
            },
        );
        s.metadata.labels.insert("role".into(), role.into());
        Update::GlobalNetworkSetSet(s)
    };
    let members = |d: &felix::calc::DesiredState| -> Vec<String> {
        d.ipsets
            .iter()
            .filter(|s| s.name.starts_with("cali40s:"))
            .flat_map(|s| s.members.iter().map(ToString::to_string))
            .collect()
    };
    let before = calc.desired();
    assert!(members(&before).is_empty());
    calc.apply(gns("ext", &["198.51.100.0/24", "0.0.0.0/0"]));
    let with = calc.desired();
    assert_eq!(before.filter, with.filter, "chains must not change");
    assert_eq!(
        members(&with),
        ["0.0.0.0/1", "128.0.0.0/1", "198.51.100.0/24"]
    );
    calc.apply(gns("ext", &["203.0.113.0/24"]));
    assert_eq!(members(&calc.desired()), ["203.0.113.0/24"]);
    calc.apply(gns("other", &["203.0.113.0/24"]));
    let relabelled = calc.desired();
    assert!(members(&relabelled).is_empty());
    assert_eq!(before.filter, relabelled.filter);
}
