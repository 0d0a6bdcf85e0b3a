//! Property test: randomly generated selectors, written with random spacing and quoting,
//! parse to the canonical form an independent model predicts, survive
//! `parse(display(sel)) == sel`, and match exactly as the model evaluates them.

use std::collections::BTreeMap;

use config::selector::Selector;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The test's own model of a selector, independent of the crate's tree.
#[derive(Debug, Clone)]
enum Model {
    All,
    Has(String),
    Op(String, Op, String),
    Set(String, bool, Vec<String>),
    Not(Box<Model>),
    And(Vec<Model>),
    Or(Vec<Model>),
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Contains,
    StartsWith,
    EndsWith,
}

const KEYS: &[&str] = &[
    "a",
    "b",
    "app",
    "projectcalico.org/namespace",
    "x.io/k-1_2",
    "in",
    "has",
];
const VALUES: &[&str] = &["", "x", "y", "db", "it's", "say \"hi\"", "a b", "\u{e9}"];

struct Gen {
    rng: StdRng,
}

impl Gen {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.rng.random_range(0..from.len())]
    }

    /// Whitespace that may appear between two tokens (possibly none).
    fn ws(&mut self) -> &'static str {
        ["", "", " ", "  ", "\t", "\n "][self.rng.random_range(0..6)]
    }

    /// Whitespace that must separate two words.
    fn ws1(&mut self) -> &'static str {
        [" ", "  ", "\t", "\r\n"][self.rng.random_range(0..4)]
    }

    /// A value quoted in a style that can hold it, picked at random when both can.
    fn quoted(&mut self, v: &str) -> String {
        let single_ok = !v.contains('\'');
        let double_ok = !v.contains('"');
        if single_ok && (!double_ok || self.rng.random_bool(0.5)) {
            format!("'{v}'")
        } else {
            format!("\"{v}\"")
        }
    }

    /// Returns (text as a user might write it, model).
    fn expr(&mut self, depth: u32) -> (String, Model) {
        let n = if depth == 0 {
            1
        } else {
            self.rng.random_range(1..4)
        };
        let mut parts = Vec::new();
        let mut models = Vec::new();
        for _ in 0..n {
            let (t, m) = self.and(depth);
            parts.push(t);
            models.push(m);
        }
        let sep = format!("{}||{}", self.ws(), self.ws());
        let model = if models.len() == 1 {
            models.remove(0)
        } else {
            Model::Or(models)
        };
        (parts.join(&sep), model)
    }

    fn and(&mut self, depth: u32) -> (String, Model) {
        let n = if depth == 0 {
            1
        } else {
            self.rng.random_range(1..4)
        };
        let mut parts = Vec::new();
        let mut models = Vec::new();
        for _ in 0..n {
            let (t, m) = self.operation(depth);
            parts.push(t);
            models.push(m);
        }
        let sep = format!("{}&&{}", self.ws(), self.ws());
        let model = if models.len() == 1 {
            models.remove(0)
        } else {
            Model::And(models)
        };
        (parts.join(&sep), model)
    }

    fn operation(&mut self, depth: u32) -> (String, Model) {
        let bangs = self.rng.random_range(0..4);
        let (text, model) = self.term(depth);
        let mut prefix = String::new();
        for _ in 0..bangs {
            prefix.push('!');
            prefix.push_str(self.ws());
        }
        // Calico collapses runs of '!': only the parity matters.
        // "!(!x)" is x too.
        let model = match (bangs % 2 == 1, model) {
            (false, m) => m,
            (true, Model::Not(inner)) => *inner,
            (true, m) => Model::Not(Box::new(m)),
        };
        (format!("{prefix}{text}"), model)
    }

    fn term(&mut self, depth: u32) -> (String, Model) {
        let choice = self.rng.random_range(0..if depth == 0 { 9 } else { 10 });
        let key = self.pick(KEYS).to_string();
        let (w0, w1) = (self.ws(), self.ws());
        match choice {
            0 => (format!("all({w0})"), Model::All),
            1 => (format!("has({w0}{key}{w1})"), Model::Has(key)),
            2..=6 => {
                let (op, word) = [
                    (Op::Eq, "=="),
                    (Op::Ne, "!="),
                    (Op::Contains, "contains"),
                    (Op::StartsWith, "starts with"),
                    (Op::EndsWith, "ends with"),
                ][choice - 2];
                let value = self.pick(VALUES).to_string();
                let lead = if word.starts_with(char::is_alphabetic) {
                    self.ws1()
                } else {
                    w0
                };
                let text = format!("{key}{lead}{word}{w1}{}", self.quoted(&value));
                (text, Model::Op(key, op, value))
            }
            7 | 8 => {
                let negated = choice == 8;
                let count = self.rng.random_range(0..5);
                let values: Vec<String> =
                    (0..count).map(|_| self.pick(VALUES).to_string()).collect();
                let items: Vec<String> = values.iter().map(|v| self.quoted(v)).collect();
                let sep = format!("{},{}", self.ws(), self.ws());
                let word = if negated { "not in" } else { "in" };
                let trailing = if !items.is_empty() && self.rng.random_bool(0.2) {
                    ","
                } else {
                    ""
                };
                let text = format!(
                    "{key}{}{word}{w0}{{{w1}{}{trailing}{}}}",
                    self.ws1(),
                    items.join(&sep),
                    self.ws()
                );
                (text, Model::Set(key, negated, values))
            }
            _ => {
                let (inner, model) = self.expr(depth - 1);
                (format!("({w0}{inner}{w1})"), model)
            }
        }
    }
}

fn quote_canonical(v: &str) -> String {
    if v.contains('"') {
        format!("'{v}'")
    } else {
        format!("\"{v}\"")
    }
}

/// Calico's `String()` as the model sees it.
fn canonical(m: &Model) -> String {
    match m {
        Model::All => "all()".into(),
        Model::Has(k) => format!("has({k})"),
        Model::Op(k, op, v) => {
            let word = match op {
                Op::Eq => "==",
                Op::Ne => "!=",
                Op::Contains => "contains",
                Op::StartsWith => "starts with",
                Op::EndsWith => "ends with",
            };
            format!("{k} {word} {}", quote_canonical(v))
        }
        Model::Set(k, negated, values) => {
            let mut vs = values.clone();
            vs.sort();
            vs.dedup();
            let items: Vec<String> = vs.iter().map(|v| quote_canonical(v)).collect();
            let word = if *negated { "not in" } else { "in" };
            format!("{k} {word} {{{}}}", items.join(", "))
        }
        Model::Not(inner) => format!("!{}", canonical(inner)),
        Model::And(ms) => format!(
            "({})",
            ms.iter().map(canonical).collect::<Vec<_>>().join(" && ")
        ),
        Model::Or(ms) => format!(
            "({})",
            ms.iter().map(canonical).collect::<Vec<_>>().join(" || ")
        ),
    }
}

fn eval(m: &Model, labels: &BTreeMap<String, String>) -> bool {
    let get = |k: &str| labels.get(k).map(String::as_str);
    match m {
        Model::All => true,
        Model::Has(k) => get(k).is_some(),
        Model::Op(k, Op::Eq, v) => get(k) == Some(v.as_str()),
        Model::Op(k, Op::Ne, v) => get(k) != Some(v.as_str()),
        Model::Op(k, Op::Contains, v) => get(k).is_some_and(|l| l.contains(v.as_str())),
        Model::Op(k, Op::StartsWith, v) => get(k).is_some_and(|l| l.starts_with(v.as_str())),
        Model::Op(k, Op::EndsWith, v) => get(k).is_some_and(|l| l.ends_with(v.as_str())),
        Model::Set(k, negated, vs) => {
            let inside = get(k).is_some_and(|l| vs.iter().any(|v| v == l));
            inside != *negated
        }
        Model::Not(inner) => !eval(inner, labels),
        Model::And(ms) => ms.iter().all(|m| eval(m, labels)),
        Model::Or(ms) => ms.iter().any(|m| eval(m, labels)),
    }
}

fn random_labels(rng: &mut StdRng) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for key in KEYS {
        if rng.random_bool(0.5) {
            let v = VALUES[rng.random_range(0..VALUES.len())];
            labels.insert(key.to_string(), v.to_string());
        }
    }
    labels
}

#[test]
fn random_selectors_round_trip_and_match_the_model() {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(0x5e1ec7),
    };
    for i in 0..600 {
        let depth = i % 4;
        let (text, model) = g.expr(depth);
        let text = format!("{}{text}{}", g.ws(), g.ws());
        let sel = Selector::parse(&text).unwrap_or_else(|e| panic!("case {i}: {text:?}: {e}"));

        let shown = sel.to_string();
        assert_eq!(shown, canonical(&model), "case {i}: display of {text:?}");
        let again = Selector::parse(&shown).unwrap_or_else(|e| panic!("case {i}: {shown:?}: {e}"));
        assert_eq!(again, sel, "case {i}: parse(display) of {text:?}");
        assert_eq!(
            again.to_string(),
            shown,
            "case {i}: display is a fixed point"
        );

        for _ in 0..20 {
            let labels = random_labels(&mut g.rng);
            assert_eq!(
                sel.matches(&labels),
                eval(&model, &labels),
                "case {i}: {shown} on {labels:?}"
            );
        }
    }
}

/// A stable-toolchain stand-in for the cargo-fuzz target: token soup, mostly invalid.
/// Whatever parses must round trip; whatever fails must point inside the input.
#[test]
fn token_soup_never_panics_and_round_trips() {
    const FRAGMENTS: &[&str] = &[
        "(",
        ")",
        "!",
        "&&",
        "||",
        "&",
        "|",
        "has(",
        "all(",
        "global(",
        "a",
        "b.c/d",
        "==",
        "!=",
        "=",
        " in ",
        " not ",
        "in",
        "contains ",
        " starts",
        "with",
        " ends ",
        "{",
        "}",
        ",",
        "'x'",
        "\"y\"",
        "''",
        "'",
        "\"",
        " ",
        "\t",
        "\u{e9}",
        "'it\"s'",
        "-",
    ];
    let mut rng = StdRng::seed_from_u64(7);
    let mut parsed = 0;
    for _ in 0..20_000 {
        let len = rng.random_range(0..16);
        let text: String = (0..len)
            .map(|_| FRAGMENTS[rng.random_range(0..FRAGMENTS.len())])
            .collect();
        match Selector::parse(&text) {
            Ok(sel) => {
                parsed += 1;
                let shown = sel.to_string();
                let again = Selector::parse(&shown)
                    .unwrap_or_else(|e| panic!("{text:?} -> {shown:?}: {e}"));
                assert_eq!(again, sel, "{text:?} -> {shown:?}");
                assert_eq!(again.to_string(), shown);
            }
            Err(err) => {
                assert!(err.offset <= text.len() && text.is_char_boundary(err.offset));
                assert!(err.column >= 1 && err.column <= text.chars().count() + 1);
            }
        }
    }
    // The soup must reach the success path often enough to test the round trip.
    assert!(parsed > 200, "only {parsed} of 20000 parsed");
}
