//! Decode and encode errors. Every decode error carries the NOTIFICATION
//! (code, subcode, data) that RFC 4271 section 6 prescribes for it and the
//! byte offset (from the first marker octet) where the problem was found.

use std::net::IpAddr;

use super::notification::Notification;

/// A message that cannot be accepted; the session sends `notification`
/// and closes (RFC 4271 section 6), except where RFC 7606 lets UPDATE
/// processing continue (those cases become [`super::UpdateError`]s instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at byte {offset} (NOTIFICATION {}/{})", notification.code, notification.subcode)]
pub struct DecodeError {
    pub notification: Notification,
    pub offset: usize,
    pub reason: DecodeReason,
}

impl DecodeError {
    pub fn new(notification: Notification, offset: usize, reason: DecodeReason) -> Self {
        DecodeError {
            notification,
            offset,
            reason,
        }
    }
}

/// What was wrong, independent of the NOTIFICATION it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeReason {
    #[error("{what} needs {needed} bytes, only {available} left")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("marker is not all ones (RFC 4271 4.1)")]
    BadMarker,
    #[error("message length {length} invalid for type {msg_type} (RFC 4271 6.1)")]
    BadLength { length: u16, msg_type: u8 },
    #[error("buffer holds {available} bytes but header says {length}")]
    Incomplete { length: usize, available: usize },
    #[error("unknown message type {0} (RFC 4271 6.1)")]
    BadType(u8),
    #[error("unsupported BGP version {0}, only 4 (RFC 4271 6.2)")]
    UnsupportedVersion(u8),
    #[error("hold time {0}s is neither 0 nor at least 3 (RFC 4271 6.2)")]
    UnacceptableHoldTime(u16),
    #[error("BGP identifier {0} is zero (RFC 6286 2.2)")]
    BadBgpIdentifier(std::net::Ipv4Addr),
    #[error("optional parameter type {0} is not supported (RFC 4271 6.2)")]
    UnsupportedOptionalParameter(u8),
    #[error("{what}: length {declared} disagrees with the {actual} bytes present")]
    LengthMismatch {
        what: &'static str,
        declared: usize,
        actual: usize,
    },
    #[error("capability {code}: {problem}")]
    MalformedCapability { code: u8, problem: &'static str },
    #[error(
        "withdrawn ({withdrawn}) + attribute ({attributes}) lengths + 23 exceed message length {message} (RFC 4271 6.3)"
    )]
    UpdateLengths {
        withdrawn: usize,
        attributes: usize,
        message: usize,
    },
    #[error("prefix length {length} exceeds {max} bits (RFC 7606 5.3)")]
    InvalidPrefixLength { length: u8, max: u8 },
    #[error("path attribute {0} appears more than once (RFC 7606 3.g)")]
    DuplicateMpAttribute(u8),
    #[error("unrecognized well-known attribute {0} (RFC 4271 6.3)")]
    UnrecognizedWellKnown(u8),
    #[error("path attribute {type_code}: {problem}")]
    Attribute {
        type_code: u8,
        problem: AttributeProblem,
    },
    #[error("ROUTE-REFRESH length {0} is not 23 (RFC 7313 5)")]
    RouteRefreshLength(u16),
    #[error("{what}: {count} unexpected trailing bytes")]
    TrailingBytes { what: &'static str, count: usize },
}

/// A defect in one path attribute (or the attribute list), before RFC 7606
/// decides what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeProblem {
    #[error("flags {flags:#04x} conflict with the attribute's optional/transitive bits")]
    FlagsConflict { flags: u8 },
    #[error("length {length} is invalid, expected {expected}")]
    BadLength {
        length: usize,
        expected: &'static str,
    },
    #[error("undefined ORIGIN value {0}")]
    InvalidOrigin(u8),
    #[error("malformed AS_PATH: {0}")]
    MalformedAsPath(&'static str),
    #[error("next hop {0} is not a valid host address")]
    InvalidNextHop(IpAddr),
    #[error("next hop length {length} invalid for AFI {afi}")]
    NextHopLength { afi: u16, length: usize },
    #[error("attribute repeated; later copies discarded (RFC 7606 3.g)")]
    Duplicate,
    #[error("well-known mandatory attribute missing")]
    Missing,
    #[error("attribute header or length overruns the attribute list (RFC 7606 4)")]
    ListOverrun,
    #[error("{0}")]
    Malformed(&'static str),
    #[error("AS4_PATH/AS4_AGGREGATOR from a 4-octet-AS speaker (RFC 6793 4.1)")]
    FromNewSpeaker,
    #[error("attribute not allowed from an external peer (RFC 7606 7.5/7.9/7.10)")]
    FromExternalPeer,
}

/// An encode request that cannot be represented on the wire. Encoding never
/// truncates or silently rewrites a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {size} bytes exceeds the maximum {max} (RFC 4271 4.1 / RFC 8654)")]
    MessageTooLarge { size: usize, max: usize },
    #[error("{what} is {value}, maximum {max}")]
    ValueTooLarge {
        what: &'static str,
        value: usize,
        max: usize,
    },
    #[error("AS {0} does not fit 2 octets; convert with as4::to_two_octet first (RFC 6793 4.2.2)")]
    AsNotMappable(u32),
    #[error("{0}")]
    Invalid(&'static str),
}
