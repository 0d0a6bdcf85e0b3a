//! Parsing: what is accepted, its canonical form (Calico's `String()`), and where and why
//! invalid selectors are refused.

use config::selector::{Found, MAX_DEPTH, ParseErrorKind, Selector};

/// (input, canonical display). Canonical forms follow libcalico-go `parser/ast.go`.
const VALID: &[(&str, &str)] = &[
    ("", "all()"),
    ("   \t\n ", "all()"),
    ("all()", "all()"),
    (" all ( ) ", "all()"),
    ("((all()))", "all()"),
    ("global()", "global()"),
    ("a == 'x'", r#"a == "x""#),
    ("a=='x'", r#"a == "x""#),
    (r#"a == "x""#, r#"a == "x""#),
    ("a != 'x'", r#"a != "x""#),
    ("a == ''", r#"a == """#),
    (r#"a == "it's""#, r#"a == "it's""#),
    (r#"a == 'say "hi"'"#, r#"a == 'say "hi"'"#),
    ("a == 'x y  z'", r#"a == "x y  z""#),
    ("a == '\u{e9}t\u{e9}'", "a == \"\u{e9}t\u{e9}\""),
    ("has(a)", "has(a)"),
    ("has( a )", "has(a)"),
    ("has (a)", "has(a)"),
    ("!has(a)", "!has(a)"),
    ("! ! has(a)", "has(a)"),
    ("!!!has(a)", "!has(a)"),
    ("!(a == 'x')", r#"!a == "x""#),
    ("!a == 'x'", r#"!a == "x""#),
    ("!all()", "!all()"),
    ("a contains 'x'", r#"a contains "x""#),
    ("a starts with 'x'", r#"a starts with "x""#),
    ("a starts   with'x'", r#"a starts with "x""#),
    ("a ends with 'x'", r#"a ends with "x""#),
    ("a in {'b', 'a'}", r#"a in {"a", "b"}"#),
    ("a in {'a','a','a'}", r#"a in {"a"}"#),
    ("a in {}", "a in {}"),
    ("a in { }", "a in {}"),
    ("a in {'x',}", r#"a in {"x"}"#),
    (r#"a not in {'x', "y"}"#, r#"a not in {"x", "y"}"#),
    ("a not  in{'x'}", r#"a not in {"x"}"#),
    (r#"a in {'"', "'"}"#, r#"a in {'"', "'"}"#),
    (
        "projectcalico.org/namespace == 'default'",
        r#"projectcalico.org/namespace == "default""#,
    ),
    (
        "example.com/my-key_1.2 == 'v'",
        r#"example.com/my-key_1.2 == "v""#,
    ),
    // Words that are operators or functions elsewhere are ordinary keys here.
    ("has == 'x'", r#"has == "x""#),
    ("all == 'x'", r#"all == "x""#),
    ("in in {'x'}", r#"in in {"x"}"#),
    ("contains contains 'x'", r#"contains contains "x""#),
    ("hasx == 'y'", r#"hasx == "y""#),
    // Precedence: && binds tighter than ||.
    (
        "a == 'x' || b == 'y' && c == 'z'",
        r#"(a == "x" || (b == "y" && c == "z"))"#,
    ),
    (
        "a == 'x' && b == 'y' || c == 'z'",
        r#"((a == "x" && b == "y") || c == "z")"#,
    ),
    (
        "(a == 'x' || b == 'y') && c == 'z'",
        r#"((a == "x" || b == "y") && c == "z")"#,
    ),
    ("has(a)&&has(b)&&has(c)", "(has(a) && has(b) && has(c))"),
    ("has(a)||has(b)||has(c)", "(has(a) || has(b) || has(c))"),
    (
        "(has(a) && has(b)) && has(c)",
        "((has(a) && has(b)) && has(c))",
    ),
    ("!(has(a) || has(b))", "!(has(a) || has(b))"),
    ("!(!has(a))", "has(a)"),
    ("!(!(!has(a)))", "!has(a)"),
    ("!(!(has(a) && has(b)))", "(has(a) && has(b))"),
    ("\thas(a)\n&&\r\nhas(b) ", "(has(a) && has(b))"),
];

#[test]
fn valid_selectors_parse_to_their_canonical_form() {
    for (input, canonical) in VALID {
        let sel = Selector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(sel.to_string(), *canonical, "display of {input:?}");
        let again = Selector::parse(canonical).unwrap_or_else(|e| panic!("{canonical:?}: {e}"));
        assert_eq!(again, sel, "re-parse of {canonical:?}");
        assert_eq!(again.to_string(), *canonical);
    }
}

/// (input, 1-based column, expected-text fragment or "" for a non-Expected error kind).
const INVALID: &[(&str, usize, &str)] = &[
    ("has(a) && (b == 'x'", 20, "')'"),
    ("a", 2, "an operator"),
    ("a = 'x'", 3, "an operator"),
    ("a == x", 6, "a quoted string"),
    ("a == 'x", 6, ""),
    (r#"a == "x"#, 6, ""),
    ("a == 'x' b == 'y'", 10, "'&&', '||' or end"),
    ("a == 'x' &", 10, "'&&', '||' or end"),
    ("a == 'x' &&", 12, "a label key"),
    ("a == 'x' || ", 13, "a label key"),
    ("&& a == 'x'", 1, "a label key"),
    ("()", 2, "a label key"),
    ("(has(a)", 8, "')'"),
    ("has(a))", 7, "'&&', '||' or end"),
    ("has()", 5, "a label key inside 'has('"),
    ("has(a b)", 7, "')' after the label key"),
    ("all(x)", 5, "')' after 'all('"),
    ("global(", 8, "')' after 'global('"),
    ("a in 'x'", 6, "'{'"),
    ("a in {'x' 'y'}", 11, "',' or '}'"),
    ("a in {,}", 7, "a quoted string or '}'"),
    ("a in {'x',,}", 11, "a quoted string or '}'"),
    ("a in {'x'", 10, "',' or '}'"),
    ("a not 'x'", 7, "'in' after 'not'"),
    ("a starts 'x'", 10, "'with' after 'starts'"),
    ("a ends x", 8, "'with' after 'ends'"),
    ("!= 'x'", 1, "a label key"),
    ("a == 'x' && !", 14, "a label key"),
    ("k\u{e9}y == 'x'", 2, "an operator"),
    ("\u{e9}\u{e9} == 'x' ||", 1, "a label key"),
    ("a == 'x' || \u{e9}", 13, "a label key"),
];

#[test]
fn invalid_selectors_report_column_and_expectation() {
    for (input, column, expected) in INVALID {
        let err = Selector::parse(input).expect_err(input);
        assert_eq!(err.column, *column, "column for {input:?}: {err}");
        assert_eq!(err.input, *input);
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("at column {column} in {input:?}")),
            "{msg}"
        );
        match &err.kind {
            ParseErrorKind::Expected { expected: e, .. } => {
                assert!(!expected.is_empty(), "{input:?}: unexpected {msg}");
                assert!(e.contains(expected), "{input:?}: {msg}");
            }
            ParseErrorKind::UnterminatedString => assert!(expected.is_empty(), "{msg}"),
            other => panic!("{input:?}: unexpected kind {other:?}"),
        }
    }
}

#[test]
fn error_message_names_what_was_found() {
    let err = Selector::parse("has(a) && (b == 'x'").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"expected ')', found end of input at column 20 in "has(a) && (b == 'x'""#
    );
    let err = Selector::parse("a == 'x' oops").unwrap_err();
    assert!(
        matches!(&err.kind, ParseErrorKind::Expected { found: Found::Text(t), .. } if t == "oops"),
        "{err:?}"
    );
    assert_eq!(err.offset, 9);
    let err = Selector::parse("a == 'x").unwrap_err().to_string();
    assert_eq!(
        err,
        r#"unterminated string literal at column 6 in "a == 'x""#
    );
}

#[test]
fn nesting_is_bounded() {
    let ok = format!("{}has(a){}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert_eq!(Selector::parse(&ok).unwrap().to_string(), "has(a)");
    let negated = format!("{}has(a){}", "!(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(Selector::parse(&negated).is_ok());

    let deep = format!(
        "{}has(a){}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    let err = Selector::parse(&deep).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::TooDeep { limit: MAX_DEPTH });
    assert_eq!(err.column, MAX_DEPTH + 1);

    // Far beyond the limit, and unbalanced: still an error, not a stack overflow.
    let absurd = "(".repeat(1_000_000);
    assert!(Selector::parse(&absurd).is_err());
    let bangs = format!("{}has(a)", "!".repeat(1_000_001));
    assert_eq!(Selector::parse(&bangs).unwrap().to_string(), "!has(a)");
}

#[test]
fn long_flat_chains_parse_without_recursion() {
    let chain = vec!["has(a)"; 100_000].join(" && ");
    let sel = Selector::parse(&chain).unwrap();
    assert_eq!(sel.label_keys(), vec!["a"]);
}

#[test]
fn all_and_global() {
    assert!(Selector::all().is_all());
    assert!(Selector::default().is_all());
    assert!(Selector::parse("").unwrap().is_all());
    assert!(Selector::parse("(all())").unwrap().is_all());
    assert!(!Selector::parse("global()").unwrap().is_all());
    assert!(!Selector::parse("has(a)").unwrap().is_all());
    assert_eq!(Selector::parse("").unwrap(), Selector::all());
    assert_ne!(Selector::parse("global()").unwrap(), Selector::all());
}

#[test]
fn equal_selectors_compare_and_print_equal() {
    let variants = [
        "a in {'y','x'} && !!has(b)",
        r#"a   in {"x", 'y', 'x'}&&has( b )"#,
        "((a in {'x','y'})) && (has(b))",
    ];
    let first = Selector::parse(variants[0]).unwrap();
    for v in variants {
        let sel = Selector::parse(v).unwrap();
        assert_eq!(sel, first, "{v}");
        assert_eq!(sel.to_string(), first.to_string());
    }
    // Operand order is significant, as in Calico.
    assert_ne!(
        Selector::parse("has(a) && has(b)").unwrap(),
        Selector::parse("has(b) && has(a)").unwrap()
    );
}

#[test]
fn label_keys_are_sorted_and_unique() {
    let sel = Selector::parse(
        "z == 'x' && (has(a) || !m in {'1'}) && a != 'q' && global() && x.io/k ends with 'e'",
    )
    .unwrap();
    assert_eq!(sel.label_keys(), vec!["a", "m", "x.io/k", "z"]);
    assert!(Selector::all().label_keys().is_empty());
}

#[test]
fn from_str_serde_and_debug() {
    let sel: Selector = "role == 'db'".parse().unwrap();
    assert_eq!(format!("{sel:?}"), r#"Selector("role == \"db\"")"#);
    let json = serde_json::to_string(&sel).unwrap();
    assert_eq!(json, r#""role == \"db\"""#);
    let back: Selector = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sel);
    let err = serde_json::from_str::<Selector>(r#""role ==""#).unwrap_err();
    assert!(
        err.to_string().contains("expected a quoted string"),
        "{err}"
    );
    assert!(Selector::try_from("a ==").is_err());
}
