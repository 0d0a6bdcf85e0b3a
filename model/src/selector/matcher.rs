//! Evaluating a selector against a label set.
//!
//! This runs in felix's and bgpd's inner loops (every selector against every endpoint or node
//! on each change), so it allocates nothing: label lookups borrow, string comparisons work on
//! borrowed slices, and `in` sets were sorted at parse time.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use super::ast::Node;

/// A set of labels a selector can be evaluated against.
///
/// Implemented for the usual maps and for [`LabelsWithParent`]; implement it for any other
/// representation (e.g. labels computed on the fly) to avoid building a map per evaluation.
pub trait Labels {
    /// The value of label `key`, or `None` when the label is absent.
    fn get(&self, key: &str) -> Option<&str>;
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<&str, &str, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).copied()
    }
}

impl Labels for BTreeMap<&str, &str> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).copied()
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }
}

/// Two label sets seen as one: a label of `labels` wins over a label of `parent` with the same
/// key. This is how Calico evaluates selectors against an endpoint, whose own labels override
/// those inherited from its profiles / namespace.
#[derive(Debug, Clone, Copy)]
pub struct LabelsWithParent<'a, A: ?Sized, B: ?Sized> {
    /// The labels that win (e.g. the endpoint's own).
    pub labels: &'a A,
    /// The labels consulted when `labels` lacks a key (e.g. the profile's).
    pub parent: &'a B,
}

impl<'a, A: Labels + ?Sized, B: Labels + ?Sized> LabelsWithParent<'a, A, B> {
    /// `labels` layered over `parent`.
    pub fn new(labels: &'a A, parent: &'a B) -> Self {
        LabelsWithParent { labels, parent }
    }
}

impl<A: Labels + ?Sized, B: Labels + ?Sized> Labels for LabelsWithParent<'_, A, B> {
    fn get(&self, key: &str) -> Option<&str> {
        self.labels.get(key).or_else(|| self.parent.get(key))
    }
}

impl Node {
    /// Calico's semantics (libcalico-go `parser/ast.go` `Evaluate`): the negative operators
    /// `!=` and `not in` match an absent label; every other label operator needs it present.
    pub(crate) fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        match self {
            Node::All | Node::Global => true,
            Node::Eq { key, value } => labels.get(key) == Some(&**value),
            Node::Ne { key, value } => labels.get(key) != Some(&**value),
            Node::Contains { key, value } => labels.get(key).is_some_and(|v| v.contains(&**value)),
            Node::StartsWith { key, value } => {
                labels.get(key).is_some_and(|v| v.starts_with(&**value))
            }
            Node::EndsWith { key, value } => labels.get(key).is_some_and(|v| v.ends_with(&**value)),
            Node::Has { key } => labels.get(key).is_some(),
            Node::In { key, set } => labels.get(key).is_some_and(|v| set.contains(v)),
            Node::NotIn { key, set } => !labels.get(key).is_some_and(|v| set.contains(v)),
            Node::Not(inner) => !inner.matches(labels),
            Node::And(nodes) => nodes.iter().all(|n| n.matches(labels)),
            Node::Or(nodes) => nodes.iter().any(|n| n.matches(labels)),
        }
    }
}
