//! Selector matching throughput: ~6 realistic selectors against 10,000 generated label sets
//! of 5-10 labels, the shape of felix's and bgpd's inner loop. Each iteration matches one
//! selector against every label set, so criterion's element throughput is matches per second
//! and `time / 10_000` is the cost of one match.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;

use calico_model::selector::{LabelsWithParent, Selector};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const LABEL_SETS: usize = 10_000;

const SELECTORS: &[(&str, &str)] = &[
    ("eq", "app == 'frontend'"),
    (
        "and_chain",
        "app == 'api' && tier == 'backend' && env == 'prod'",
    ),
    (
        "in_sets",
        "env in {'prod', 'staging', 'qa'} && projectcalico.org/namespace in \
         {'ns-0', 'ns-1', 'ns-2', 'ns-3', 'ns-4', 'ns-5', 'ns-6', 'ns-7', 'ns-8', 'ns-9', \
         'ns-10', 'ns-11'}",
    ),
    ("has_not_has", "has(k8s-app) && !has(canary)"),
    (
        "negation",
        "!(team == 'blue') && version not in {'v1', 'v2'}",
    ),
    (
        "or_mix",
        "app == 'db' || tier starts with 'cache' || (team == 'red' && region ends with 'east')",
    ),
];

/// Optional labels and their value pools; `app` and the namespace are always present, as
/// on a Kubernetes pod.
const OPTIONAL: &[(&str, &[&str])] = &[
    (
        "tier",
        &["frontend", "backend", "cache-l1", "cache-l2", "db"],
    ),
    ("env", &["prod", "staging", "qa", "dev"]),
    ("version", &["v1", "v2", "v3", "v4"]),
    ("team", &["blue", "red", "green"]),
    ("k8s-app", &["kube-dns", "metrics", "ingress"]),
    ("canary", &["true"]),
    ("region", &["us-east", "us-west", "eu-east", "eu-west"]),
    (
        "pod-template-hash",
        &["5d8f7c9b4", "7b9c6d8f5", "6c8d9e7f4"],
    ),
    ("projectcalico.org/orchestrator", &["k8s"]),
    ("release", &["stable", "beta"]),
];
const APPS: &[&str] = &["frontend", "api", "db", "worker", "cache", "auth"];

fn label_sets(rng: &mut StdRng) -> Vec<BTreeMap<String, String>> {
    (0..LABEL_SETS)
        .map(|_| {
            let mut labels = BTreeMap::new();
            let app = APPS[rng.random_range(0..APPS.len())];
            labels.insert("app".to_string(), app.to_string());
            let ns = format!("ns-{}", rng.random_range(0..40));
            labels.insert("projectcalico.org/namespace".to_string(), ns);
            let wanted = rng.random_range(5..=10);
            while labels.len() < wanted {
                let (key, values) = OPTIONAL[rng.random_range(0..OPTIONAL.len())];
                let value = values[rng.random_range(0..values.len())];
                labels.insert(key.to_string(), value.to_string());
            }
            labels
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(42);
    let sets = label_sets(&mut rng);
    let selectors: Vec<(&str, Selector)> = SELECTORS
        .iter()
        .map(|(name, s)| {
            (
                *name,
                Selector::parse(s).expect("benchmark selector parses"),
            )
        })
        .collect();

    let mut group = c.benchmark_group("selector_match");
    group.throughput(Throughput::Elements(LABEL_SETS as u64));
    for (name, sel) in &selectors {
        // Print the hit rate once so the figures can be judged (a selector that never
        // matches measures only its first failing clause).
        let hits = sets.iter().filter(|l| sel.matches(*l)).count();
        println!("{name}: {hits} of {LABEL_SETS} label sets match");
        group.bench_function(*name, |b| {
            b.iter(|| black_box(&sets).iter().filter(|l| sel.matches(*l)).count())
        });
    }

    // The same with std HashMap label sets, for callers choosing a representation: a
    // SipHash of the key against a few string compares down a B-tree node.
    let hashed: Vec<HashMap<String, String>> = sets
        .iter()
        .map(|l| l.clone().into_iter().collect())
        .collect();
    for (name, sel) in &selectors {
        group.bench_function(format!("{name}_hashmap"), |b| {
            b.iter(|| {
                black_box(&hashed)
                    .iter()
                    .filter(|l| sel.matches(*l))
                    .count()
            })
        });
    }

    // Endpoint labels layered over profile / namespace labels, as felix evaluates them.
    let parent = BTreeMap::from([
        ("team".to_string(), "blue".to_string()),
        ("region".to_string(), "eu-east".to_string()),
    ]);
    let (_, or_mix) = &selectors[5];
    group.bench_function("or_mix_with_parent", |b| {
        b.iter(|| {
            black_box(&sets)
                .iter()
                .filter(|l| or_mix.matches(&LabelsWithParent::new(*l, &parent)))
                .count()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("selector_parse");
    for (name, text) in SELECTORS {
        group.bench_function(*name, |b| b.iter(|| Selector::parse(black_box(text))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
