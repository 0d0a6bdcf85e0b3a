//! Attributes this speaker does not interpret, kept byte for byte.

use super::flags;

/// An unrecognized (or unsupported-family MP) attribute, as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    /// Flags as received; the Extended Length bit is recomputed on encode.
    pub flags: u8,
    pub type_code: u8,
    pub value: Vec<u8>,
}

impl RawAttribute {
    pub fn is_optional(&self) -> bool {
        self.flags & flags::OPTIONAL != 0
    }

    pub fn is_transitive(&self) -> bool {
        self.flags & flags::TRANSITIVE != 0
    }

    /// How the attribute is passed on to other peers. RFC 4271 5: an
    /// unrecognized optional transitive attribute is propagated with the
    /// Partial bit set; an unrecognized optional non-transitive one is
    /// quietly dropped.
    pub fn propagated(&self) -> Option<RawAttribute> {
        if self.is_optional() && self.is_transitive() {
            Some(RawAttribute {
                flags: self.flags | flags::PARTIAL,
                ..self.clone()
            })
        } else {
            None
        }
    }
}
