//! Parsing Calico's selector language.
//!
//! Grammar (libcalico-go `selector/tokenizer` + `selector/parser`), `&&` binding tighter
//! than `||`:
//!
//! ```text
//! selector  = ws* [ or ws* ]                  (empty = all())
//! or        = and { "||" and }
//! and       = operation { "&&" operation }
//! operation = { "!" } term                    (an even number of '!' cancels out)
//! term      = "(" or ")" | "all(" ")" | "global(" ")" | "has(" key ")"
//!           | key ("==" | "!=" | "contains" | "starts" "with" | "ends" "with") string
//!           | key ("in" | "not" "in") "{" [ string { "," string } [","] ] "}"
//! key       = [a-zA-Z0-9_./-]+
//! string    = "'" [^']* "'" | '"' [^"]* '"'  (no escapes)
//! ```
//! with whitespace allowed between any two tokens.
//!
//! Hand-written recursive descent rather than nom: the language is context-sensitive in a
//! small way (`contains`, `in`, ... are operators only right after a key, keys elsewhere), and
//! the point of this parser is its error messages ("expected ')' at column 20"). With nom
//! every alternative needs `cut` and a custom error type to say what was expected where;
//! here each `expected(...)` call states it directly, and the code reads like the grammar.

use super::MAX_DEPTH;
use super::ast::{Node, SortedSet};
use super::error::{Found, ParseError, ParseErrorKind};

type Result<T> = std::result::Result<T, ParseError>;

/// Parses `src` into a tree. Never panics; every failure is a [`ParseError`].
pub(crate) fn parse(src: &str) -> Result<Node> {
    let mut p = Parser {
        src,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.at_end() {
        return Ok(Node::All);
    }
    let node = p.or_expr()?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.expected("'&&', '||' or end of selector"));
    }
    Ok(node)
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
}

struct Parser<'a> {
    src: &'a str,
    /// Byte offset of the next unread byte; always on a char boundary.
    pos: usize,
    /// Parentheses currently open.
    depth: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &[u8] {
        self.src.as_bytes().get(self.pos..).unwrap_or_default()
    }

    fn at_end(&self) -> bool {
        self.rest().is_empty()
    }

    fn peek(&self) -> Option<u8> {
        self.rest().first().copied()
    }

    fn skip_ws(&mut self) {
        let n = self
            .rest()
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        self.pos += n;
    }

    /// Consumes `lit` (ASCII) if the input continues with it.
    fn eat(&mut self, lit: &str) -> bool {
        if self.rest().starts_with(lit.as_bytes()) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    /// Skips whitespace, then consumes `lit` or fails saying it was expected.
    fn expect(&mut self, lit: &str, what: &'static str) -> Result<()> {
        self.skip_ws();
        if self.eat(lit) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn error_at(&self, kind: ParseErrorKind, offset: usize) -> ParseError {
        ParseError::new(kind, self.src, offset)
    }

    /// An error at the current position naming what the grammar wanted and what is there.
    fn expected(&self, expected: &'static str) -> ParseError {
        let rest = self.src.get(self.pos..).unwrap_or_default();
        let found = match rest.chars().next() {
            None => Found::EndOfInput,
            Some(c) => {
                let word: String = rest
                    .bytes()
                    .take_while(|b| is_key_byte(*b))
                    .take(32)
                    .map(char::from)
                    .collect();
                Found::Text(if word.is_empty() { c.to_string() } else { word })
            }
        };
        self.error_at(ParseErrorKind::Expected { expected, found }, self.pos)
    }

    fn or_expr(&mut self) -> Result<Node> {
        let first = self.and_expr()?;
        self.skip_ws();
        if !self.eat("||") {
            return Ok(first);
        }
        let mut nodes = vec![first, self.and_expr()?];
        loop {
            self.skip_ws();
            if !self.eat("||") {
                return Ok(Node::Or(nodes.into_boxed_slice()));
            }
            nodes.push(self.and_expr()?);
        }
    }

    fn and_expr(&mut self) -> Result<Node> {
        let first = self.operation()?;
        self.skip_ws();
        if !self.eat("&&") {
            return Ok(first);
        }
        let mut nodes = vec![first, self.operation()?];
        loop {
            self.skip_ws();
            if !self.eat("&&") {
                return Ok(Node::And(nodes.into_boxed_slice()));
            }
            nodes.push(self.operation()?);
        }
    }

    fn operation(&mut self) -> Result<Node> {
        // Calico collapses any run of '!' into one boolean, so "!!a == 'x'" is "a == 'x'".
        // "!=" is never a negation: it can only follow a key.
        let mut negated = false;
        loop {
            self.skip_ws();
            let rest = self.rest();
            if rest.first() == Some(&b'!') && rest.get(1) != Some(&b'=') {
                self.pos += 1;
                negated = !negated;
            } else {
                break;
            }
        }
        let term = self.term()?;
        Ok(match (negated, term) {
            (false, term) => term,
            // "!(!x)" is x. Calico would keep both and print "!!x", which it then parses
            // as x: folding here keeps parse(display(s)) == s.
            (true, Node::Not(inner)) => *inner,
            (true, term) => Node::Not(Box::new(term)),
        })
    }

    fn term(&mut self) -> Result<Node> {
        const TERM: &str = "a label key, 'has(', 'all()', 'global()', '!' or '('";
        let start = self.pos;
        if self.eat("(") {
            if self.depth >= MAX_DEPTH {
                let kind = ParseErrorKind::TooDeep { limit: MAX_DEPTH };
                return Err(self.error_at(kind, start));
            }
            self.depth += 1;
            let inner = self.or_expr()?;
            self.depth -= 1;
            self.expect(")", "')'")?;
            return Ok(inner);
        }
        if self.function("all") {
            self.expect(")", "')' after 'all('")?;
            return Ok(Node::All);
        }
        if self.function("global") {
            self.expect(")", "')' after 'global('")?;
            return Ok(Node::Global);
        }
        if self.function("has") {
            self.skip_ws();
            let key = self.key("a label key inside 'has('")?;
            self.expect(")", "')' after the label key of 'has('")?;
            return Ok(Node::Has { key });
        }
        let key = self.key(TERM)?;
        self.label_operation(key)
    }

    /// Consumes `name` followed by optional whitespace and '(' (e.g. `has (`), leaving the
    /// input untouched otherwise: `has == 'x'` compares a label named "has".
    fn function(&mut self, name: &str) -> bool {
        let start = self.pos;
        if self.eat(name) {
            self.skip_ws();
            if self.eat("(") {
                return true;
            }
        }
        self.pos = start;
        false
    }

    fn key(&mut self, what: &'static str) -> Result<Box<str>> {
        let len = self.rest().iter().take_while(|b| is_key_byte(**b)).count();
        if len == 0 {
            return Err(self.expected(what));
        }
        let key = self.src.get(self.pos..self.pos + len).unwrap_or_default();
        self.pos += len;
        Ok(key.into())
    }

    /// The operator and operand after a label key. Operator words are matched as prefixes,
    /// as Calico's tokenizer does; what follows must then be a string or '{' anyway.
    fn label_operation(&mut self, key: Box<str>) -> Result<Node> {
        const OPERATOR: &str = "an operator (==, !=, in, not in, contains, starts with, ends with)";
        self.skip_ws();
        if self.eat("==") {
            let value = self.string()?;
            Ok(Node::Eq { key, value })
        } else if self.eat("!=") {
            let value = self.string()?;
            Ok(Node::Ne { key, value })
        } else if self.eat("contains") {
            let value = self.string()?;
            Ok(Node::Contains { key, value })
        } else if self.eat("starts") {
            self.expect("with", "'with' after 'starts'")?;
            let value = self.string()?;
            Ok(Node::StartsWith { key, value })
        } else if self.eat("ends") {
            self.expect("with", "'with' after 'ends'")?;
            let value = self.string()?;
            Ok(Node::EndsWith { key, value })
        } else if self.eat("not") {
            self.expect("in", "'in' after 'not'")?;
            let set = self.set()?;
            Ok(Node::NotIn { key, set })
        } else if self.eat("in") {
            let set = self.set()?;
            Ok(Node::In { key, set })
        } else {
            Err(self.expected(OPERATOR))
        }
    }

    /// A quoted string literal. Calico has no escapes: the value is everything up to the next
    /// quote of the same kind, so `"it's"` holds an apostrophe and `'say "hi"'` quotes.
    fn string(&mut self) -> Result<Box<str>> {
        self.skip_ws();
        let start = self.pos;
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(self.expected("a quoted string")),
        };
        let body = self.src.get(start + 1..).unwrap_or_default();
        match body.bytes().position(|b| b == quote) {
            Some(len) => {
                self.pos = start + 1 + len + 1;
                Ok(body.get(..len).unwrap_or_default().into())
            }
            None => Err(self.error_at(ParseErrorKind::UnterminatedString, start)),
        }
    }

    /// `{ 'a', "b" }`: possibly empty, trailing comma allowed (both as in Calico).
    fn set(&mut self) -> Result<SortedSet> {
        self.expect("{", "'{' to open the value set")?;
        let mut values = Vec::new();
        loop {
            self.skip_ws();
            if self.eat("}") {
                break;
            }
            if !matches!(self.peek(), Some(b'\'' | b'"')) {
                return Err(self.expected("a quoted string or '}'"));
            }
            values.push(self.string()?);
            self.skip_ws();
            if !self.eat(",") {
                self.expect("}", "',' or '}'")?;
                break;
            }
        }
        Ok(SortedSet::new(values))
    }
}
