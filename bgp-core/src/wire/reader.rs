//! A cursor over one message that remembers absolute byte offsets, built on
//! nom's number parsers, so every decode error can name where it happened.

use nom::Parser;
use nom::bytes::complete::take;
use nom::number::complete::{be_u8, be_u16, be_u32};

use super::error::{DecodeError, DecodeReason};
use super::notification::Notification;

type NomResult<'a, T> = nom::IResult<&'a [u8], T, nom::error::Error<&'a [u8]>>;

#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    /// Offset of `input[0]` from the start of the BGP message.
    base: usize,
    /// NOTIFICATION (code, subcode) to send when a field runs past the end.
    truncated: (u8, u8),
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8], base: usize, truncated: (u8, u8)) -> Self {
        Reader {
            input,
            base,
            truncated,
        }
    }

    pub(crate) fn offset(&self) -> usize {
        self.base
    }

    pub(crate) fn remaining(&self) -> usize {
        self.input.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    /// Bytes not yet consumed, without consuming them.
    pub(crate) fn peek_rest(&self) -> &'a [u8] {
        self.input
    }

    fn run<T>(
        &mut self,
        what: &'static str,
        needed: usize,
        parser: impl FnOnce(&'a [u8]) -> NomResult<'a, T>,
    ) -> Result<T, DecodeError> {
        match parser(self.input) {
            Ok((rest, v)) => {
                self.base += self.input.len() - rest.len();
                self.input = rest;
                Ok(v)
            }
            Err(_) => Err(self.truncated_error(what, needed)),
        }
    }

    pub(crate) fn truncated_error(&self, what: &'static str, needed: usize) -> DecodeError {
        DecodeError::new(
            Notification::new(self.truncated.0, self.truncated.1, Vec::new()),
            self.base,
            DecodeReason::Truncated {
                what,
                needed,
                available: self.input.len(),
            },
        )
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.run("u8 field", 1, |i| be_u8.parse(i))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.run("u16 field", 2, |i| be_u16.parse(i))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.run("u32 field", 4, |i| be_u32.parse(i))
    }

    pub(crate) fn take(&mut self, what: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        self.run(what, n, |i| take(n).parse(i))
    }

    /// Split off the next `n` bytes as their own reader (same error kind).
    pub(crate) fn sub(&mut self, what: &'static str, n: usize) -> Result<Reader<'a>, DecodeError> {
        let base = self.base;
        let bytes = self.take(what, n)?;
        Ok(Reader::new(bytes, base, self.truncated))
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let r = self.input;
        self.base += r.len();
        self.input = &[];
        r
    }
}
