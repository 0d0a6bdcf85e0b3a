//! Selector parser fuzz target: any UTF-8 string either fails with an error that points
//! inside the input, or parses to a selector whose canonical text parses back to the same
//! selector, prints identically, and matches identically.

#![no_main]

use std::collections::BTreeMap;

use config::selector::Selector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sel = match Selector::parse(text) {
        Ok(sel) => sel,
        Err(err) => {
            assert!(err.offset <= text.len(), "offset past the input: {err:?}");
            assert!(
                text.is_char_boundary(err.offset),
                "offset inside a char: {err:?}"
            );
            assert!(err.column >= 1 && err.column <= text.chars().count() + 1);
            assert_eq!(err.input, text);
            return;
        }
    };

    let shown = sel.to_string();
    let again = Selector::parse(&shown)
        .unwrap_or_else(|e| panic!("display of {text:?} does not parse: {shown:?}: {e}"));
    assert_eq!(
        again, sel,
        "parse(display) differs for {text:?} -> {shown:?}"
    );
    assert_eq!(
        again.to_string(),
        shown,
        "display is not a fixed point for {text:?}"
    );

    // Label sets built from the selector's own keys, so that its clauses are exercised:
    // none present, all present with an empty value, all present with a value from the input.
    let keys = sel.label_keys();
    let empty: BTreeMap<String, String> = BTreeMap::new();
    let blank: BTreeMap<String, String> = keys
        .iter()
        .map(|k| (k.to_string(), String::new()))
        .collect();
    let word = text.split(['\'', '"']).nth(1).unwrap_or_default();
    let valued: BTreeMap<String, String> = keys
        .iter()
        .map(|k| (k.to_string(), word.to_string()))
        .collect();
    for labels in [&empty, &blank, &valued] {
        assert_eq!(
            sel.matches(labels),
            again.matches(labels),
            "{text:?} on {labels:?}"
        );
    }
});
