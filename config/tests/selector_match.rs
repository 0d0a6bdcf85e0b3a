//! Match semantics, case by case against Calico's documented behaviour.

use std::collections::{BTreeMap, HashMap};

use config::selector::{Labels, LabelsWithParent, Selector};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// (selector, labels, expected match).
type Case = (&'static str, &'static [(&'static str, &'static str)], bool);

#[rustfmt::skip]
const CASES: &[Case] = &[
    ("", &[], true),
    ("all()", &[("a", "x")], true),
    ("global()", &[], true),
    ("!all()", &[("a", "x")], false),
    // Equality; absent labels.
    ("a == 'x'", &[("a", "x")], true),
    ("a == 'x'", &[("a", "y")], false),
    ("a == 'x'", &[], false),
    ("a == 'x'", &[("A", "x")], false),
    ("a == ''", &[("a", "")], true),
    ("a == ''", &[], false),
    ("a != 'x'", &[("a", "y")], true),
    ("a != 'x'", &[("a", "x")], false),
    ("a != 'x'", &[], true),
    ("!a == 'x'", &[], true),
    ("!a != 'x'", &[], false),
    // has.
    ("has(a)", &[("a", "")], true),
    ("has(a)", &[("b", "a")], false),
    ("!has(a)", &[], true),
    ("!has(a)", &[("a", "x")], false),
    // Substring operators need the label present, even for an empty operand.
    ("a contains 'ell'", &[("a", "hello")], true),
    ("a contains 'xyz'", &[("a", "hello")], false),
    ("a contains ''", &[("a", "")], true),
    ("a contains ''", &[], false),
    ("a starts with 'he'", &[("a", "hello")], true),
    ("a starts with 'lo'", &[("a", "hello")], false),
    ("a starts with ''", &[], false),
    ("a ends with 'lo'", &[("a", "hello")], true),
    ("a ends with 'he'", &[("a", "hello")], false),
    ("a ends with ''", &[], false),
    // in / not in.
    ("a in {'x', 'y'}", &[("a", "y")], true),
    ("a in {'x', 'y'}", &[("a", "z")], false),
    ("a in {'x', 'y'}", &[], false),
    ("a in {}", &[("a", "")], false),
    ("a in {''}", &[("a", "")], true),
    ("a in {''}", &[], false),
    ("a not in {'x', 'y'}", &[("a", "z")], true),
    ("a not in {'x', 'y'}", &[("a", "x")], false),
    ("a not in {'x', 'y'}", &[], true),
    ("a not in {}", &[], true),
    ("a not in {}", &[("a", "q")], true),
    ("!a in {'x'}", &[], true),
    // Large sets take the binary-search path; check both ends and the middle.
    ("a in {'k01','k02','k03','k04','k05','k06','k07','k08','k09','k10','k11','k12'}", &[("a", "k01")], true),
    ("a in {'k01','k02','k03','k04','k05','k06','k07','k08','k09','k10','k11','k12'}", &[("a", "k07")], true),
    ("a in {'k01','k02','k03','k04','k05','k06','k07','k08','k09','k10','k11','k12'}", &[("a", "k12")], true),
    ("a in {'k01','k02','k03','k04','k05','k06','k07','k08','k09','k10','k11','k12'}", &[("a", "k00")], false),
    ("a in {'k01','k02','k03','k04','k05','k06','k07','k08','k09','k10','k11','k12'}", &[("a", "k13")], false),
    ("a not in {'k01','k02','k03','k04','k05','k06','k07','k08','k09','k10','k11','k12'}", &[("a", "k05")], false),
    ("a not in {'k01','k02','k03','k04','k05','k06','k07','k08','k09','k10','k11','k12'}", &[("a", "k055")], true),
    // Quoting: values are taken literally, no escapes.
    (r#"a == "it's""#, &[("a", "it's")], true),
    (r#"a == 'say "hi"'"#, &[("a", "say \"hi\"")], true),
    (r#"a in {"it's", 'x'}"#, &[("a", "it's")], true),
    ("a == ' x'", &[("a", "x")], false),
    // Odd but valid keys.
    ("projectcalico.org/namespace == 'kube-system'", &[("projectcalico.org/namespace", "kube-system")], true),
    ("projectcalico.org/namespace == 'kube-system'", &[("namespace", "kube-system")], false),
    ("has(example.com/a-b_c.d)", &[("example.com/a-b_c.d", "1")], true),
    // Precedence: a || (b && c).
    ("a == 'x' || b == 'y' && c == 'z'", &[("a", "x")], true),
    ("a == 'x' || b == 'y' && c == 'z'", &[("b", "y")], false),
    ("a == 'x' || b == 'y' && c == 'z'", &[("b", "y"), ("c", "z")], true),
    ("(a == 'x' || b == 'y') && c == 'z'", &[("a", "x")], false),
    ("(a == 'x' || b == 'y') && c == 'z'", &[("a", "x"), ("c", "z")], true),
    ("a == 'x' && b == 'y' || c == 'z'", &[("c", "z")], true),
    ("a == 'x' && b == 'y' || c == 'z'", &[("a", "x")], false),
    // Negation binds to one operation, not to the && chain.
    ("!has(a) && has(b)", &[("b", "1")], true),
    ("!has(a) && has(b)", &[("a", "1"), ("b", "1")], false),
    ("!(has(a) && has(b))", &[("a", "1")], true),
    ("!(has(a) && has(b))", &[("a", "1"), ("b", "1")], false),
    ("!!has(a)", &[("a", "1")], true),
    ("!(!has(a) || !has(b))", &[("a", "1"), ("b", "1")], true),
    ("!(!has(a) || !has(b))", &[("a", "1")], false),
];

#[test]
fn match_semantics() {
    for (sel, pairs, expected) in CASES {
        let selector = Selector::parse(sel).unwrap_or_else(|e| panic!("{sel:?}: {e}"));
        let btree = labels(pairs);
        assert_eq!(selector.matches(&btree), *expected, "{sel:?} on {btree:?}");
        let hash: HashMap<String, String> = btree.clone().into_iter().collect();
        assert_eq!(
            selector.matches(&hash),
            *expected,
            "{sel:?} on HashMap {hash:?}"
        );
        let borrowed: BTreeMap<&str, &str> = pairs.iter().copied().collect();
        assert_eq!(selector.matches(&borrowed), *expected, "{sel:?} borrowed");
        // The canonical form matches the same way.
        let canonical = Selector::parse(&selector.to_string()).unwrap();
        assert_eq!(canonical.matches(&btree), *expected, "canonical of {sel:?}");
    }
}

#[test]
fn layered_labels_prefer_the_child() {
    let endpoint = labels(&[("role", "db"), ("env", "dev")]);
    let profile = labels(&[("env", "prod"), ("team", "blue")]);
    let layered = LabelsWithParent::new(&endpoint, &profile);
    assert_eq!(layered.get("role"), Some("db"));
    assert_eq!(layered.get("env"), Some("dev"));
    assert_eq!(layered.get("team"), Some("blue"));
    assert_eq!(layered.get("none"), None);

    let sel = |s: &str| Selector::parse(s).unwrap();
    assert!(sel("role == 'db' && team == 'blue'").matches(&layered));
    assert!(sel("env == 'dev'").matches(&layered));
    assert!(!sel("env == 'prod'").matches(&layered));
    assert!(sel("env != 'prod'").matches(&layered));
    assert!(!sel("has(none)").matches(&layered));

    // Layers nest, and trait objects work.
    let ns = labels(&[("projectcalico.org/namespace", "kube-system")]);
    let three = LabelsWithParent::new(&layered, &ns as &dyn Labels);
    assert!(sel("projectcalico.org/namespace == 'kube-system' && role == 'db'").matches(&three));
}

#[test]
fn clones_share_and_agree() {
    let a = Selector::parse("has(a) || b in {'1','2'}").unwrap();
    let b = a.clone();
    assert_eq!(a, b);
    let l = labels(&[("b", "2")]);
    assert!(a.matches(&l) && b.matches(&l));
}

#[test]
fn key_prefix_is_put_before_every_key() {
    let sel = Selector::parse("role == 'db' && !has(x) || tier in {'a','b'}").unwrap();
    let prefixed = sel.with_key_prefix("pcsa.");
    assert_eq!(
        prefixed.to_string(),
        "((pcsa.role == \"db\" && !has(pcsa.x)) || pcsa.tier in {\"a\", \"b\"})"
    );
    let labels: std::collections::BTreeMap<String, String> =
        [("pcsa.role".to_string(), "db".to_string())].into();
    assert!(prefixed.matches(&labels));
    assert!(!sel.matches(&labels));
    assert!(Selector::all().with_key_prefix("pcsa.").is_all());
}
