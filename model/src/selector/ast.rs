//! The parsed form of a selector.
//!
//! The tree mirrors Calico's (libcalico-go `selector/parser/ast.go`) node for node, so that the
//! canonical string printed from it (see `display.rs`) is the one Calico prints, and selector
//! hashes derived from it agree with Calico's.

/// One node of a parsed selector.
///
/// Strings are `Box<str>` rather than `String`: the tree is built once and never grows, so the
/// spare capacity word would be wasted in every one of the thousands of selectors felix holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Node {
    /// `all()` or the empty selector: matches every label set.
    All,
    /// `global()`: also matches every label set. Kept apart from `all()` because Calico
    /// gives it its own meaning in namespace selectors (non-namespaced endpoints) and prints
    /// it back as written.
    Global,
    /// `key == "value"`: the label is present and equal.
    Eq { key: Box<str>, value: Box<str> },
    /// `key != "value"`: the label is absent or different.
    Ne { key: Box<str>, value: Box<str> },
    /// `key contains "value"`: the label is present and contains the substring.
    Contains { key: Box<str>, value: Box<str> },
    /// `key starts with "value"`: the label is present with that prefix.
    StartsWith { key: Box<str>, value: Box<str> },
    /// `key ends with "value"`: the label is present with that suffix.
    EndsWith { key: Box<str>, value: Box<str> },
    /// `has(key)`: the label is present, whatever its value.
    Has { key: Box<str> },
    /// `key in {...}`: the label is present and its value is in the set.
    /// `set` is sorted and free of duplicates (see [`SortedSet`]).
    In { key: Box<str>, set: SortedSet },
    /// `key not in {...}`: the label is absent or its value is not in the set.
    NotIn { key: Box<str>, set: SortedSet },
    /// `!term`.
    Not(Box<Node>),
    /// `a && b && ...`, at least two operands.
    And(Box<[Node]>),
    /// `a || b || ...`, at least two operands.
    Or(Box<[Node]>),
}

/// The string set of `in`/`not in`: sorted and deduplicated at parse time, as Calico's
/// `ConvertToStringSetInPlace` does, so that `{'b','a','a'}` and `{'a','b'}` are the same
/// selector, print the same, and membership is a binary search.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SortedSet(Box<[Box<str>]>);

/// Below this many members a linear scan beats binary search: it compares lengths first and
/// has no unpredictable branches. Sets in real policies are mostly 1-5 values.
const LINEAR_SCAN_MAX: usize = 8;

impl SortedSet {
    pub(crate) fn new(mut values: Vec<Box<str>>) -> Self {
        values.sort_unstable();
        values.dedup();
        SortedSet(values.into_boxed_slice())
    }

    pub(crate) fn contains(&self, value: &str) -> bool {
        if self.0.len() <= LINEAR_SCAN_MAX {
            self.0.iter().any(|v| **v == *value)
        } else {
            self.0.binary_search_by(|v| (**v).cmp(value)).is_ok()
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|v| &**v)
    }
}

impl Node {
    /// The same tree with `prefix` put before every label key (Calico's
    /// `parseSelectorAttachPrefix`, used for `pcns.`/`pcsa.` selectors).
    pub(crate) fn with_key_prefix(&self, prefix: &str) -> Node {
        let k = |key: &str| -> Box<str> { format!("{prefix}{key}").into() };
        match self {
            Node::All => Node::All,
            Node::Global => Node::Global,
            Node::Eq { key, value } => Node::Eq {
                key: k(key),
                value: value.clone(),
            },
            Node::Ne { key, value } => Node::Ne {
                key: k(key),
                value: value.clone(),
            },
            Node::Contains { key, value } => Node::Contains {
                key: k(key),
                value: value.clone(),
            },
            Node::StartsWith { key, value } => Node::StartsWith {
                key: k(key),
                value: value.clone(),
            },
            Node::EndsWith { key, value } => Node::EndsWith {
                key: k(key),
                value: value.clone(),
            },
            Node::Has { key } => Node::Has { key: k(key) },
            Node::In { key, set } => Node::In {
                key: k(key),
                set: set.clone(),
            },
            Node::NotIn { key, set } => Node::NotIn {
                key: k(key),
                set: set.clone(),
            },
            Node::Not(inner) => Node::Not(Box::new(inner.with_key_prefix(prefix))),
            Node::And(nodes) => {
                Node::And(nodes.iter().map(|n| n.with_key_prefix(prefix)).collect())
            }
            Node::Or(nodes) => Node::Or(nodes.iter().map(|n| n.with_key_prefix(prefix)).collect()),
        }
    }

    /// Appends every label key this node refers to (with repeats) to `out`.
    pub(crate) fn collect_keys<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Node::All | Node::Global => {}
            Node::Eq { key, .. }
            | Node::Ne { key, .. }
            | Node::Contains { key, .. }
            | Node::StartsWith { key, .. }
            | Node::EndsWith { key, .. }
            | Node::Has { key }
            | Node::In { key, .. }
            | Node::NotIn { key, .. } => out.push(key),
            Node::Not(inner) => inner.collect_keys(out),
            Node::And(nodes) | Node::Or(nodes) => {
                for n in nodes.iter() {
                    n.collect_keys(out);
                }
            }
        }
    }
}
