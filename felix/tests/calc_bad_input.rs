//! Bad input fails closed and is reported (the policy-model issue): a rule that
//! references something missing matches nothing, never everything; a policy felix
//! cannot render or that fails validation drops everything for the endpoints it
//! selects, and the error names the policy and the field.

use config::model::{
    GlobalNetworkPolicy, GlobalNetworkPolicySpec, ObjectMeta, Port, Protocol, Rule, ServiceMatch,
    WorkloadEndpoint, WorkloadEndpointSpec,
};
use felix::calc::{CalcConfig, CalcInput, Calculator, DesiredState, PolicyDef, Update};

fn local_web() -> Update {
    let mut metadata = ObjectMeta {
        name: "node1-k8s-web-eth0".into(),
        namespace: Some("default".into()),
        ..ObjectMeta::default()
    };
    metadata.labels.insert("role".into(), "web".into());
    Update::WepSet(WorkloadEndpoint {
        metadata,
        spec: WorkloadEndpointSpec {
            node: "node1".into(),
            orchestrator: "k8s".into(),
            pod: "web".into(),
            endpoint: "eth0".into(),
            ip_networks: vec!["10.65.0.2/32".into()],
            interface_name: "cali0123456789a".into(),
            ..WorkloadEndpointSpec::default()
        },
    })
}

fn gnp(name: &str, ingress: Vec<Rule>) -> GlobalNetworkPolicy {
    GlobalNetworkPolicy::named(
        name,
        GlobalNetworkPolicySpec {
            selector: "role == 'web'".into(),
            ingress,
            ..Default::default()
        },
    )
}

fn chain<'a>(d: &'a DesiredState, name: &str) -> Vec<&'a str> {
    d.filter
        .chains
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no chain {name}"))
        .rules
        .iter()
        .map(String::as_str)
        .collect()
}

fn calc() -> Calculator {
    let mut calc = Calculator::new(CalcInput::new("node1"), CalcConfig::default());
    calc.apply(local_web());
    calc
}

#[test]
fn missing_references_match_nothing() {
    let mut calc = calc();
    let mut named = Rule {
        protocol: Some(Protocol::Tcp),
        ..Rule::default()
    };
    named.destination.ports = vec![Port::Named("nobody-has-this".into())];
    let mut nobody = Rule::default();
    nobody.source.selector = "role == 'nobody'".into();
    calc.apply(Update::GlobalNetworkPolicySet(gnp(
        "p",
        vec![named, nobody],
    )));
    let d = calc.desired();
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    let rules = chain(&d, "cali-pi-p");
    // Both allow rules go through a set, and each set exists and is empty.
    let sets: Vec<&str> = rules
        .iter()
        .filter_map(|r| r.split("--match-set ").nth(1))
        .map(|rest| rest.split(' ').next().unwrap())
        .collect();
    assert_eq!(sets.len(), 2, "{rules:?}");
    for name in sets {
        let set = d
            .ipsets
            .iter()
            .find(|s| s.name == name)
            .expect("set exists");
        assert!(set.members.is_empty(), "{name}: {:?}", set.members);
    }
}

#[test]
fn unrenderable_rules_fail_the_policy_closed_naming_it_and_the_field() {
    let mut calc = calc();
    let mut to_service = Rule::default();
    to_service.destination.services = Some(ServiceMatch {
        name: "db".into(),
        namespace: "prod".into(),
    });
    calc.apply(Update::GlobalNetworkPolicySet(gnp("svc", vec![to_service])));
    let d = calc.desired();
    assert_eq!(
        chain(&d, "cali-pi-svc"),
        ["-m comment --comment \"Invalid rule in policy; failing closed\" -j DROP"]
    );
    let errors: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("policy svc"), "{}", errors[0]);
    assert!(errors[0].contains("destination.services"), "{}", errors[0]);
}

#[test]
fn a_refused_policy_closes_its_endpoints_both_ways_until_fixed() {
    let mut calc = calc();
    let mut bad = gnp("open", vec![Rule::default()]);
    bad.spec.ingress[0].source.nets = vec!["10.0.0.0/40".into()];
    let reason = "spec.ingress[0].source.nets[0]: invalid CIDR \"10.0.0.0/40\"".to_string();
    calc.apply(Update::PolicyRefused {
        def: PolicyDef::Global(bad),
        reason,
    });
    let d = calc.desired();
    let drop = ["-m comment --comment \"Invalid policy; failing closed\" -j DROP"];
    assert_eq!(chain(&d, "cali-pi-open"), drop);
    assert_eq!(chain(&d, "cali-po-open"), drop);
    // The endpoint's chains both go through it.
    for ep in ["cali-tw-cali0123456789a", "cali-fw-cali0123456789a"] {
        let rules = chain(&d, ep);
        assert!(
            rules.iter().any(|r| r.contains("-j cali-p")),
            "{ep}: {rules:?}"
        );
    }
    let errors: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("policy open is invalid"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].contains("spec.ingress[0].source.nets[0]"),
        "{}",
        errors[0]
    );

    // Fixed: the policy's own rules again (ingress only), no error.
    calc.apply(Update::GlobalNetworkPolicySet(gnp(
        "open",
        vec![Rule::default()],
    )));
    let d = calc.desired();
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert!(!d.filter.chains.iter().any(|c| c.name == "cali-po-open"));
    assert_ne!(chain(&d, "cali-pi-open"), drop);
}
