//! Address families and NLRI prefixes (RFC 4271 4.3, RFC 4760 section 5,
//! ADD-PATH path identifiers per RFC 7911 section 3).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::error::{DecodeError, DecodeReason};
use super::notification::{Notification, code, update_subcode};
use super::reader::Reader;

/// Address Family Identifier (IANA registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Afi(pub u16);

impl Afi {
    pub const IPV4: Afi = Afi(1);
    pub const IPV6: Afi = Afi(2);
}

/// Subsequent Address Family Identifier (IANA registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Safi(pub u8);

impl Safi {
    pub const UNICAST: Safi = Safi(1);
}

/// An <AFI, SAFI> pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    pub afi: Afi,
    pub safi: Safi,
}

impl Family {
    pub const IPV4_UNICAST: Family = Family {
        afi: Afi::IPV4,
        safi: Safi::UNICAST,
    };
    pub const IPV6_UNICAST: Family = Family {
        afi: Afi::IPV6,
        safi: Safi::UNICAST,
    };

    pub fn new(afi: u16, safi: u8) -> Self {
        Family {
            afi: Afi(afi),
            safi: Safi(safi),
        }
    }

    /// The families whose NLRI this codec understands.
    pub fn is_supported(self) -> bool {
        self == Self::IPV4_UNICAST || self == Self::IPV6_UNICAST
    }

    /// Maximum prefix length of the family's addresses.
    fn max_bits(self) -> u8 {
        if self.afi == Afi::IPV6 { 128 } else { 32 }
    }

    pub fn of(prefix: &IpNet) -> Family {
        match prefix {
            IpNet::V4(_) => Self::IPV4_UNICAST,
            IpNet::V6(_) => Self::IPV6_UNICAST,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::IPV4_UNICAST => f.write_str("ipv4-unicast"),
            Self::IPV6_UNICAST => f.write_str("ipv6-unicast"),
            Family { afi, safi } => write!(f, "afi{}/safi{}", afi.0, safi.0),
        }
    }
}

/// One NLRI entry: a prefix, with its path identifier when ADD-PATH is in
/// use for the family in that direction.
///
/// ```text
/// RFC 4271 4.3 / RFC 7911 3:
/// +--------------------------------+
/// | Path Identifier (4 octets)     |   only with ADD-PATH
/// +--------------------------------+
/// | Length (1 octet)               |   prefix length in bits
/// +--------------------------------+
/// | Prefix (variable)              |   ceil(Length / 8) octets
/// +--------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    pub path_id: Option<u32>,
    pub prefix: IpNet,
}

impl Nlri {
    pub fn new(prefix: IpNet) -> Self {
        Nlri {
            path_id: None,
            prefix,
        }
    }

    pub fn with_path_id(prefix: IpNet, path_id: u32) -> Self {
        Nlri {
            path_id: Some(path_id),
            prefix,
        }
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        let bits = self.prefix.prefix_len() as usize;
        1 + bits.div_ceil(8) + if self.path_id.is_some() { 4 } else { 0 }
    }
}

fn invalid_network(offset: usize, reason: DecodeReason) -> DecodeError {
    // RFC 4271 6.3 / RFC 7606 5.3: a syntactically incorrect NLRI or
    // Withdrawn Routes field means "session reset" with Invalid Network Field.
    DecodeError::new(
        Notification::new(
            code::UPDATE_MESSAGE,
            update_subcode::INVALID_NETWORK_FIELD,
            Vec::new(),
        ),
        offset,
        reason,
    )
}

/// Decode a run of prefixes filling `r` completely.
pub(crate) fn decode_prefixes(
    r: &mut Reader<'_>,
    family: Family,
    add_path: bool,
) -> Result<Vec<Nlri>, DecodeError> {
    let mut out = Vec::with_capacity(r.remaining() / 4);
    let max = family.max_bits();
    while !r.is_empty() {
        let start = r.offset();
        let path_id = if add_path {
            Some(r.u32().map_err(|e| invalid_network(start, e.reason))?)
        } else {
            None
        };
        let len_at = r.offset();
        let bits = r.u8().map_err(|e| invalid_network(len_at, e.reason))?;
        if bits > max {
            return Err(invalid_network(
                len_at,
                DecodeReason::InvalidPrefixLength { length: bits, max },
            ));
        }
        let n = (bits as usize).div_ceil(8);
        let bytes = r
            .take("prefix", n)
            .map_err(|e| invalid_network(len_at, e.reason))?;
        let prefix = if max == 32 {
            let mut a = [0u8; 4];
            a[..n].copy_from_slice(bytes);
            // Bits past the prefix length are ignored (RFC 4271 4.3 says
            // trailing bits are irrelevant); trunc() normalises them to zero.
            IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(a), bits).trunc())
        } else {
            let mut a = [0u8; 16];
            a[..n].copy_from_slice(bytes);
            IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(a), bits).trunc())
        };
        out.push(Nlri { path_id, prefix });
    }
    Ok(out)
}

/// Encode prefixes; `add_path` says whether path identifiers are sent, and
/// then every entry must carry one (RFC 7911 3). Without ADD-PATH for the
/// family a path identifier is not part of the wire format and is not sent
/// (the RIB has already picked the single path to advertise).
pub(crate) fn encode_prefixes(
    nlri: &[Nlri],
    family: Family,
    add_path: bool,
    out: &mut BytesMut,
) -> Result<(), super::EncodeError> {
    for n in nlri {
        if Family::of(&n.prefix) != family {
            return Err(super::EncodeError::Invalid(
                "prefix address family differs from the NLRI's family",
            ));
        }
        if add_path {
            let id = n.path_id.ok_or(super::EncodeError::Invalid(
                "ADD-PATH negotiated for sending but NLRI has no path identifier",
            ))?;
            out.put_u32(id);
        }
        let bits = n.prefix.prefix_len();
        out.put_u8(bits);
        let n_bytes = (bits as usize).div_ceil(8);
        match n.prefix.network() {
            IpAddr::V4(a) => out.put_slice(&a.octets()[..n_bytes]),
            IpAddr::V6(a) => out.put_slice(&a.octets()[..n_bytes]),
        }
    }
    Ok(())
}
