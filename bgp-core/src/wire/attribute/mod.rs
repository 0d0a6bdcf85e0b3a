//! Path attributes (RFC 4271 4.3 and 5), decoded into typed fields.
//!
//! ```text
//! Each attribute:
//!  0                   1
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Attr. Flags  |Attr. Type Code|  then 1 or 2 (Extended Length)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  octets of length, then the value
//! Flags: O(ptional) T(ransitive) P(artial) E(xtended length) 0 0 0 0
//! ```

pub mod as4;
pub mod community;
mod decode;
mod encode;
pub mod mp;
pub mod path;
pub mod raw;

use std::net::{IpAddr, Ipv4Addr};

pub use community::{Community, ExtCommunity, LargeCommunity};
pub use mp::{MpReach, MpUnreach, NextHop};
pub use path::{AsPath, AsSegment, Origin, SegmentType};
pub use raw::RawAttribute;

pub(crate) use decode::decode_attributes;
pub(crate) use encode::{encode_attributes, key as order_key};

use super::error::AttributeProblem;

/// Attribute flag bits (RFC 4271 4.3).
pub mod flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes (IANA "BGP Path Attributes").
pub mod type_code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITY: u8 = 32;
}

/// The Optional and Transitive bits a recognized attribute must carry
/// (RFC 4271 5, RFC 4456 8, RFC 4760, RFC 4360 2, RFC 6793 3, RFC 8092 3);
/// `None` for attributes this speaker does not recognize.
pub(crate) fn expected_flags(code: u8) -> Option<u8> {
    use flags::*;
    use type_code::*;
    Some(match code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => TRANSITIVE,
        MULTI_EXIT_DISC | ORIGINATOR_ID | CLUSTER_LIST | MP_REACH_NLRI | MP_UNREACH_NLRI => {
            OPTIONAL
        }
        AGGREGATOR | COMMUNITIES | EXTENDED_COMMUNITIES | AS4_PATH | AS4_AGGREGATOR
        | LARGE_COMMUNITY => OPTIONAL | TRANSITIVE,
        _ => return None,
    })
}

/// AGGREGATOR / AS4_AGGREGATOR value (RFC 4271 5.1.7, RFC 6793 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// All path attributes of one UPDATE. Absent attributes are `None` (or an
/// empty list for list-valued ones, which may not be empty on the wire).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PathAttributes {
    pub origin: Option<Origin>,
    pub as_path: Option<AsPath>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub communities: Vec<Community>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    pub extended_communities: Vec<ExtCommunity>,
    pub as4_path: Option<AsPath>,
    pub as4_aggregator: Option<Aggregator>,
    pub large_communities: Vec<LargeCommunity>,
    /// Unrecognized attributes (and MP attributes of families this codec
    /// does not parse), in the order they are sent: MP first, then by type.
    pub unknown: Vec<RawAttribute>,
}

impl PathAttributes {
    /// True if no attribute at all is present.
    pub fn is_empty(&self) -> bool {
        *self == PathAttributes::default()
    }

    /// The attributes as re-advertised to another peer: unrecognized
    /// optional transitive attributes get the Partial bit, unrecognized
    /// non-transitive ones are dropped (RFC 4271 5), and MP attributes,
    /// which belong to one UPDATE, are removed.
    pub fn for_propagation(&self) -> PathAttributes {
        PathAttributes {
            mp_reach: None,
            mp_unreach: None,
            unknown: self
                .unknown
                .iter()
                .filter_map(RawAttribute::propagated)
                .collect(),
            ..self.clone()
        }
    }
}

/// RFC 4271 6.3: a NEXT_HOP that is not a valid host address (unspecified,
/// limited broadcast, multicast or class E) is invalid.
pub(crate) fn ipv4_next_hop_problem(a: Ipv4Addr) -> Option<AttributeProblem> {
    let bad = a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.octets()[0] >= 240;
    bad.then_some(AttributeProblem::InvalidNextHop(IpAddr::V4(a)))
}
