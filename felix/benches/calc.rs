//! Calculation benchmark: 500 policies over 2,000 local endpoints (plus 500 remote
//! ones feeding ipsets). Measures
//! * `full`: a calculator built from scratch, up to the assembled desired state;
//! * `one_policy_recalc`: one policy's rules change, caches brought up to date;
//! * `one_policy_desired`: the same plus assembling the whole desired state;
//! * `one_endpoint_recalc`: one endpoint relabelled.
//!
//! The `one_*` figures at half the size (250 policies, 1,000 endpoints) show how
//! they depend on the total. `cargo bench -p felix --bench calc`

use std::hint::black_box;
use std::time::Duration;

use config::model::{
    Action, EntityRule, NetworkPolicy, NetworkPolicySpec, ObjectMeta, Port, Profile, ProfileSpec,
    Protocol, Rule, WorkloadEndpoint, WorkloadEndpointSpec,
};
use criterion::{Criterion, criterion_group, criterion_main};
use felix::calc::{CalcConfig, CalcInput, Calculator, Update};

const NAMESPACES: usize = 10;

fn wep(i: usize, node: &str) -> WorkloadEndpoint {
    let ns = format!("ns{}", i % NAMESPACES);
    let mut metadata = ObjectMeta {
        name: format!("{node}-k8s-pod{i}-eth0"),
        namespace: Some(ns.clone()),
        ..ObjectMeta::default()
    };
    metadata
        .labels
        .insert("app".into(), format!("app{}", i % 50));
    metadata
        .labels
        .insert("role".into(), format!("r{}", i % 20));
    WorkloadEndpoint {
        metadata,
        spec: WorkloadEndpointSpec {
            node: node.into(),
            ip_networks: vec![format!(
                "10.{}.{}.{}/32",
                64 + i / 65536,
                (i / 256) % 256,
                i % 256
            )],
            profiles: vec![format!("kns.{ns}")],
            interface_name: format!("cali{i:011}"),
            mac: "ee:ee:ee:ee:ee:ee".into(),
            ..WorkloadEndpointSpec::default()
        },
    }
}

fn policy(i: usize, port: u16) -> NetworkPolicy {
    let from = |sel: String| EntityRule {
        selector: sel,
        ..EntityRule::default()
    };
    let mut p = NetworkPolicy::named(
        format!("pol{i}"),
        NetworkPolicySpec {
            order: Some((i % 7) as f64),
            selector: format!("app == 'app{}'", i % 50),
            ingress: vec![
                Rule {
                    action: Action::Deny,
                    source: EntityRule {
                        nets: vec!["192.168.0.0/16".into(), "172.16.0.0/12".into()],
                        ..EntityRule::default()
                    },
                    ..Rule::default()
                },
                Rule {
                    action: Action::Allow,
                    protocol: Some(Protocol::Tcp),
                    source: from(format!("role == 'r{}'", i % 20)),
                    destination: EntityRule {
                        ports: vec![Port::Number(port), Port::Number(443)],
                        ..EntityRule::default()
                    },
                    ..Rule::default()
                },
            ],
            egress: vec![Rule {
                action: Action::Allow,
                destination: from(format!("app == 'app{}'", (i + 1) % 50)),
                ..Rule::default()
            }],
            ..NetworkPolicySpec::default()
        },
    );
    p.metadata.namespace = Some(format!("ns{}", i % NAMESPACES));
    p
}

fn input(policies: usize, endpoints: usize) -> CalcInput {
    let mut calc = CalcInput::new("node1");
    for ns in 0..NAMESPACES {
        let mut spec = ProfileSpec {
            ingress: vec![Rule::default()],
            egress: vec![Rule::default()],
            ..ProfileSpec::default()
        };
        spec.labels_to_apply
            .insert("pcns.projectcalico.org/name".into(), format!("ns{ns}"));
        calc.apply_update(Update::ProfileSet(Profile::named(
            format!("kns.ns{ns}"),
            spec,
        )));
    }
    for i in 0..endpoints {
        calc.apply_update(Update::WepSet(wep(i, "node1")));
    }
    for i in endpoints..endpoints + endpoints / 4 {
        calc.apply_update(Update::WepSet(wep(i, "node2")));
    }
    for i in 0..policies {
        calc.apply_update(Update::NetworkPolicySet(policy(i, 80)));
    }
    calc
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("calc");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    let big = input(500, 2000);
    g.bench_function("full/500x2000", |b| {
        b.iter(|| Calculator::new(black_box(big.clone()), CalcConfig::default()).desired())
    });
    for (policies, endpoints) in [(250, 1000), (500, 2000)] {
        let mut calc = Calculator::new(input(policies, endpoints), CalcConfig::default());
        let first = calc.desired();
        eprintln!(
            "{policies}x{endpoints}: {} filter chains, {} rules, {} ipsets",
            first.filter.chains.len(),
            first
                .filter
                .chains
                .iter()
                .map(|c| c.rules.len())
                .sum::<usize>(),
            first.ipsets.len()
        );
        let mut port = 80;
        g.bench_function(format!("one_policy_recalc/{policies}x{endpoints}"), |b| {
            b.iter(|| {
                port = if port == 80 { 8080 } else { 80 };
                calc.apply(Update::NetworkPolicySet(policy(3, port)));
                calc.recalculate();
            })
        });
        g.bench_function(format!("one_policy_desired/{policies}x{endpoints}"), |b| {
            b.iter(|| {
                port = if port == 80 { 8080 } else { 80 };
                calc.apply(Update::NetworkPolicySet(policy(3, port)));
                black_box(calc.desired())
            })
        });
        let mut flip = false;
        g.bench_function(format!("one_endpoint_recalc/{policies}x{endpoints}"), |b| {
            b.iter(|| {
                flip = !flip;
                let mut w = wep(5, "node1");
                if flip {
                    w.metadata.labels.insert("role".into(), "r7".into());
                }
                calc.apply(Update::WepSet(w));
                calc.recalculate();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
