//! Calico's label selector language: `role == 'db' && env in {'prod', 'staging'}`.
//!
//! Selectors pick endpoints for policies, nodes for IP pools and BGP peers, and so on.
//! [`Selector::parse`] reads the language exactly as Calico does (libcalico-go
//! `lib/selector`), [`Selector::matches`] evaluates it against any [`Labels`] without
//! allocating, and [`Display`](std::fmt::Display) prints the canonical form Calico prints,
//! which is what selector-derived names (ipsets) are hashed from.
//!
//! ```
//! use std::collections::BTreeMap;
//! use calico_model::selector::Selector;
//!
//! let sel: Selector = "role == 'db' && !has(quarantine)".parse().unwrap();
//! let labels = BTreeMap::from([("role".to_string(), "db".to_string())]);
//! assert!(sel.matches(&labels));
//! assert_eq!(sel.to_string(), r#"(role == "db" && !has(quarantine))"#);
//! ```

mod ast;
mod display;
mod error;
mod matcher;
mod parse;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

pub use error::{Found, ParseError, ParseErrorKind};
pub use matcher::{Labels, LabelsWithParent};

use ast::Node;

/// How deeply parentheses may nest. Real selectors use a handful of levels; the limit keeps
/// the recursive parser, matcher and printer within a small, fixed stack on hostile input.
pub const MAX_DEPTH: usize = 128;

/// A parsed label selector. Cloning shares the parsed tree (one reference count increment).
///
/// Equality and hashing are structural: two selectors are equal exactly when they print the
/// same canonical string (whitespace, quote style, `in` set order and duplicate `!`s do not
/// matter; operand order does, as in Calico).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Selector {
    root: Arc<Node>,
}

impl Selector {
    /// Parses a selector; the empty (or all-whitespace) string is `all()`, as in Calico.
    pub fn parse(s: &str) -> Result<Selector, ParseError> {
        parse::parse(s).map(|root| Selector {
            root: Arc::new(root),
        })
    }

    /// The selector matching every label set: `all()`.
    pub fn all() -> Selector {
        Selector {
            root: Arc::new(Node::All),
        }
    }

    /// Whether this is `all()` (written as `all()`, `(all())` or the empty string).
    /// `global()` also matches everything but is not `all()`: Calico treats it differently
    /// in namespace selectors.
    pub fn is_all(&self) -> bool {
        matches!(*self.root, Node::All)
    }

    /// Whether `labels` satisfy the selector. Allocates nothing.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.root.matches(labels)
    }

    /// The selector with `prefix` before every label key: `k == 'v'` becomes
    /// `pcsa.k == 'v'` for prefix `pcsa.` (Calico's `parseSelectorAttachPrefix`, which turns a
    /// service-account or namespace selector into one over the labels profiles apply).
    pub fn with_key_prefix(&self, prefix: &str) -> Selector {
        Selector {
            root: Arc::new(self.root.with_key_prefix(prefix)),
        }
    }

    /// The label keys the selector looks at, sorted and without repeats. A label set whose
    /// labels under these keys are unchanged gets the same answer from [`Selector::matches`],
    /// so an index only needs to re-evaluate on changes to these keys.
    pub fn label_keys(&self) -> Vec<&str> {
        let mut keys = Vec::new();
        self.root.collect_keys(&mut keys);
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

impl Default for Selector {
    /// An absent selector means `all()` throughout Calico's resources.
    fn default() -> Self {
        Selector::all()
    }
}

impl FromStr for Selector {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

impl TryFrom<&str> for Selector {
    type Error = ParseError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Selector::parse(s)
    }
}

impl fmt::Display for Selector {
    /// The canonical form, identical to Calico's `Selector.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.root, f)
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Selector({:?})", self.to_string())
    }
}

impl serde::Serialize for Selector {
    /// Serialises as the canonical string.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Selector {
    /// Parses a string, failing deserialisation with the [`ParseError`] message.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Selector::parse(&s).map_err(serde::de::Error::custom)
    }
}
