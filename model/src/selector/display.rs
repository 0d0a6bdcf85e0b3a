//! The canonical text of a selector.
//!
//! The output is byte-for-byte what Calico's `Selector.String()` prints (libcalico-go
//! `parser/ast.go` `collectFragments`): `key == "value"` with double quotes unless the value
//! contains one, `in` sets sorted and deduplicated as `{"a", "b"}`, every `&&`/`||` group in
//! parentheses, `!` glued to its operand. Two selectors with the same tree print the same
//! string, and since Calico names ipsets after a hash of this string, matching it keeps our
//! ipset names equal to Calico's for the same policy.

use std::fmt::{self, Write};

use super::ast::{Node, SortedSet};

/// Writes `value` in quotes. Calico's strings have no escapes, so a value holds at most one
/// kind of quote (the parser guarantees it); pick the other kind, preferring `"`.
fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    let quote = if value.contains('"') { '\'' } else { '"' };
    f.write_char(quote)?;
    f.write_str(value)?;
    f.write_char(quote)
}

fn write_op(f: &mut fmt::Formatter<'_>, key: &str, op: &str, value: &str) -> fmt::Result {
    f.write_str(key)?;
    f.write_str(op)?;
    write_quoted(f, value)
}

fn write_set(f: &mut fmt::Formatter<'_>, key: &str, op: &str, set: &SortedSet) -> fmt::Result {
    f.write_str(key)?;
    f.write_str(op)?;
    f.write_char('{')?;
    for (i, v) in set.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_quoted(f, v)?;
    }
    f.write_char('}')
}

fn write_group(f: &mut fmt::Formatter<'_>, nodes: &[Node], sep: &str) -> fmt::Result {
    f.write_char('(')?;
    for (i, n) in nodes.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        fmt::Display::fmt(n, f)?;
    }
    f.write_char(')')
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::All => f.write_str("all()"),
            Node::Global => f.write_str("global()"),
            Node::Eq { key, value } => write_op(f, key, " == ", value),
            Node::Ne { key, value } => write_op(f, key, " != ", value),
            Node::Contains { key, value } => write_op(f, key, " contains ", value),
            Node::StartsWith { key, value } => write_op(f, key, " starts with ", value),
            Node::EndsWith { key, value } => write_op(f, key, " ends with ", value),
            Node::Has { key } => write!(f, "has({key})"),
            Node::In { key, set } => write_set(f, key, " in ", set),
            Node::NotIn { key, set } => write_set(f, key, " not in ", set),
            Node::Not(inner) => {
                f.write_char('!')?;
                fmt::Display::fmt(inner, f)
            }
            Node::And(nodes) => write_group(f, nodes, " && "),
            Node::Or(nodes) => write_group(f, nodes, " || "),
        }
    }
}
