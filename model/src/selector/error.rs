//! The error a selector string can fail to parse with.
//!
//! Every error carries where it happened (byte offset and 1-based character column) and the
//! whole input, so a message read in a log or a `calicoctl` reply points at the exact spot:
//! `expected ')', found end of input at column 20 in "has(a) && (b == 'x'"`.

use std::fmt;

/// What went wrong at [`ParseError::column`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// The grammar required one of `expected` at this point but the input had `found`.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What the grammar allows here, e.g. `')'` or `an operator (==, !=, in, ...)`.
        expected: &'static str,
        /// What the input had instead: a quoted snippet or `end of input`.
        found: Found,
    },
    /// A `'` or `"` was opened at this column and never closed. Calico's string literals
    /// have no escapes: a value runs up to the next quote of the same kind.
    #[error("unterminated string literal")]
    UnterminatedString,
    /// Parentheses nested deeper than [`super::MAX_DEPTH`]; refused so that parsing,
    /// matching and printing (all recursive) have bounded stack use on hostile input.
    #[error("parentheses nested deeper than {limit} levels")]
    TooDeep {
        /// The nesting limit that was exceeded.
        limit: usize,
    },
}

/// The input found where something else was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The selector ended.
    EndOfInput,
    /// The next word (a run of label-key characters) or, failing that, the next character.
    Text(String),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::EndOfInput => f.write_str("end of input"),
            Found::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// A selector string that is not valid in Calico's selector language.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at column {column} in {input:?}")]
pub struct ParseError {
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// Byte offset into `input` where it went wrong.
    pub offset: usize,
    /// 1-based column, counted in characters, of `offset`.
    pub column: usize,
    /// The whole selector string that was being parsed.
    pub input: String,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, input: &str, offset: usize) -> Self {
        // Offsets always sit on a char boundary (the parser only steps over ASCII bytes and
        // whole string literals), but stay panic-free even if that ever stops being true.
        let column = input.get(..offset).map_or(offset, |s| s.chars().count()) + 1;
        ParseError {
            kind,
            offset,
            column,
            input: input.to_owned(),
        }
    }
}
