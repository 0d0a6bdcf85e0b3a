//! MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760 sections 3 and 4) for IPv4
//! and IPv6 unicast; IPv6 next hops of 16 or 32 octets (RFC 2545 3).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};

use crate::wire::error::{AttributeProblem, DecodeError, EncodeError};
use crate::wire::nlri::{Afi, Family, Nlri, decode_prefixes, encode_prefixes};
use crate::wire::reader::Reader;

/// Next hop carried in MP_REACH_NLRI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NextHop {
    V4(Ipv4Addr),
    /// RFC 2545 3: a global address, optionally followed by a link-local one.
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

impl NextHop {
    fn encoded_len(&self) -> usize {
        match self {
            NextHop::V4(_) => 4,
            NextHop::V6 {
                link_local: None, ..
            } => 16,
            NextHop::V6 { .. } => 32,
        }
    }

    /// Address a route would be installed with (the global one for IPv6).
    pub fn addr(&self) -> IpAddr {
        match self {
            NextHop::V4(a) => IpAddr::V4(*a),
            NextHop::V6 { global, .. } => IpAddr::V6(*global),
        }
    }
}

/// ```text
/// RFC 4760 3:
/// +---------------------------------------------------------+
/// | Address Family Identifier (2 octets)                    |
/// +---------------------------------------------------------+
/// | Subsequent Address Family Identifier (1 octet)          |
/// +---------------------------------------------------------+
/// | Length of Next Hop Network Address (1 octet)            |
/// +---------------------------------------------------------+
/// | Network Address of Next Hop (variable)                  |
/// +---------------------------------------------------------+
/// | Reserved (1 octet)                                      |
/// +---------------------------------------------------------+
/// | Network Layer Reachability Information (variable)       |
/// +---------------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: NextHop,
    pub nlri: Vec<Nlri>,
}

/// ```text
/// RFC 4760 4:
/// +---------------------------------------------------------+
/// | Address Family Identifier (2 octets)                    |
/// +---------------------------------------------------------+
/// | Subsequent Address Family Identifier (1 octet)          |
/// +---------------------------------------------------------+
/// | Withdrawn Routes (variable)                             |
/// +---------------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: Vec<Nlri>,
}

/// Result of decoding an MP attribute: parsed, or a family this codec does
/// not parse (kept raw by the caller).
pub(crate) enum Mp<T> {
    Parsed(T),
    Unsupported,
}

/// Read AFI/SAFI; unsupported families are left to the caller.
fn family(r: &mut Reader<'_>) -> Result<Family, AttributeProblem> {
    let afi = r
        .u16()
        .map_err(|_| AttributeProblem::Malformed("AFI/SAFI truncated"))?;
    let safi = r
        .u8()
        .map_err(|_| AttributeProblem::Malformed("AFI/SAFI truncated"))?;
    Ok(Family::new(afi, safi))
}

fn nlri_problem(e: DecodeError) -> AttributeProblem {
    let _ = e;
    AttributeProblem::Malformed("NLRI in MP attribute is syntactically incorrect")
}

/// Decode MP_REACH_NLRI. A bad next hop length or NLRI is malformed (RFC
/// 7606 7.11: session reset, as the NLRI cannot be located). A semantically
/// invalid next hop returns the parsed value plus the problem so the NLRI
/// can be treated as withdrawn.
pub(crate) fn decode_reach(
    mut r: Reader<'_>,
    add_path: impl Fn(Family) -> bool,
) -> Result<Mp<(MpReach, Option<AttributeProblem>)>, AttributeProblem> {
    let family = family(&mut r)?;
    if !family.is_supported() {
        return Ok(Mp::Unsupported);
    }
    let nh_len = r
        .u8()
        .map_err(|_| AttributeProblem::Malformed("next hop length truncated"))?
        as usize;
    let nh = r
        .take("next hop", nh_len)
        .map_err(|_| AttributeProblem::Malformed("next hop overruns the attribute"))?;
    let next_hop = match nh_len {
        4 => NextHop::V4(Ipv4Addr::from(<[u8; 4]>::try_from(nh).expect("len 4"))),
        16 | 32 => NextHop::V6 {
            global: Ipv6Addr::from(<[u8; 16]>::try_from(&nh[..16]).expect("len 16")),
            link_local: (nh_len == 32)
                .then(|| Ipv6Addr::from(<[u8; 16]>::try_from(&nh[16..]).expect("len 16"))),
        },
        _ => {
            return Err(AttributeProblem::NextHopLength {
                afi: family.afi.0,
                length: nh_len,
            });
        }
    };
    // IPv6 unicast needs an IPv6 next hop; IPv4 unicast may use either
    // (RFC 8950 for the IPv6 case).
    if family.afi == Afi::IPV6 && nh_len == 4 {
        return Err(AttributeProblem::NextHopLength {
            afi: family.afi.0,
            length: nh_len,
        });
    }
    // RFC 4760 3: Reserved, "SHOULD be ignored upon receipt".
    r.u8()
        .map_err(|_| AttributeProblem::Malformed("reserved octet missing"))?;
    let nlri = decode_prefixes(&mut r, family, add_path(family)).map_err(nlri_problem)?;
    let problem = next_hop_problem(&next_hop);
    Ok(Mp::Parsed((
        MpReach {
            family,
            next_hop,
            nlri,
        },
        problem,
    )))
}

fn next_hop_problem(nh: &NextHop) -> Option<AttributeProblem> {
    match nh {
        NextHop::V4(a) => super::ipv4_next_hop_problem(*a),
        NextHop::V6 { global, link_local } => {
            let bad = global.is_multicast() || (global.is_unspecified() && link_local.is_none());
            bad.then_some(AttributeProblem::InvalidNextHop(IpAddr::V6(*global)))
        }
    }
}

pub(crate) fn decode_unreach(
    mut r: Reader<'_>,
    add_path: impl Fn(Family) -> bool,
) -> Result<Mp<MpUnreach>, AttributeProblem> {
    let family = family(&mut r)?;
    if !family.is_supported() {
        return Ok(Mp::Unsupported);
    }
    let withdrawn = decode_prefixes(&mut r, family, add_path(family)).map_err(nlri_problem)?;
    Ok(Mp::Parsed(MpUnreach { family, withdrawn }))
}

pub(crate) fn encode_reach(
    m: &MpReach,
    add_path: bool,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    out.put_u16(m.family.afi.0);
    out.put_u8(m.family.safi.0);
    out.put_u8(m.next_hop.encoded_len() as u8);
    match m.next_hop {
        NextHop::V4(a) => out.put_slice(&a.octets()),
        NextHop::V6 { global, link_local } => {
            out.put_slice(&global.octets());
            if let Some(ll) = link_local {
                out.put_slice(&ll.octets());
            }
        }
    }
    out.put_u8(0);
    encode_prefixes(&m.nlri, m.family, add_path, out)
}

pub(crate) fn encode_unreach(
    m: &MpUnreach,
    add_path: bool,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    out.put_u16(m.family.afi.0);
    out.put_u8(m.family.safi.0);
    encode_prefixes(&m.withdrawn, m.family, add_path, out)
}
