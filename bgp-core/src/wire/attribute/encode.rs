//! Encoding path attributes. MP_REACH_NLRI / MP_UNREACH_NLRI go first (RFC
//! 7606 5.1), the rest in type code order; unknown attributes are merged
//! into that order. Extended Length is used exactly when a value exceeds
//! 255 octets.

use bytes::{BufMut, BytesMut};

use super::community::{encode_communities, encode_ext_communities, encode_large_communities};
use super::mp::{encode_reach, encode_unreach};
use super::type_code as t;
use super::{Aggregator, PathAttributes, expected_flags, flags};
use crate::wire::EncodeContext;
use crate::wire::error::EncodeError;

/// Order key: MP attributes first, then by type code.
pub(crate) fn key(code: u8) -> u16 {
    match code {
        t::MP_REACH_NLRI => 0,
        t::MP_UNREACH_NLRI => 1,
        c => c as u16 + 2,
    }
}

const KNOWN_ORDER: [u8; 16] = [
    t::MP_REACH_NLRI,
    t::MP_UNREACH_NLRI,
    t::ORIGIN,
    t::AS_PATH,
    t::NEXT_HOP,
    t::MULTI_EXIT_DISC,
    t::LOCAL_PREF,
    t::ATOMIC_AGGREGATE,
    t::AGGREGATOR,
    t::COMMUNITIES,
    t::ORIGINATOR_ID,
    t::CLUSTER_LIST,
    t::EXTENDED_COMMUNITIES,
    t::AS4_PATH,
    t::AS4_AGGREGATOR,
    t::LARGE_COMMUNITY,
];

fn put_attr(out: &mut BytesMut, flag_bits: u8, code: u8, value: &[u8]) -> Result<(), EncodeError> {
    let len = value.len();
    if len > u16::MAX as usize {
        return Err(EncodeError::ValueTooLarge {
            what: "path attribute length",
            value: len,
            max: u16::MAX as usize,
        });
    }
    let base = flag_bits & !flags::EXTENDED_LENGTH;
    if len > 255 {
        out.put_u8(base | flags::EXTENDED_LENGTH);
        out.put_u8(code);
        out.put_u16(len as u16);
    } else {
        out.put_u8(base);
        out.put_u8(code);
        out.put_u8(len as u8);
    }
    out.put_slice(value);
    Ok(())
}

fn put_aggregator(a: &Aggregator, four_octet: bool, v: &mut BytesMut) -> Result<(), EncodeError> {
    if four_octet {
        v.put_u32(a.asn);
    } else {
        v.put_u16(u16::try_from(a.asn).map_err(|_| EncodeError::AsNotMappable(a.asn))?);
    }
    v.put_slice(&a.address.octets());
    Ok(())
}

/// Encode one recognized attribute's value into `v`; `false` if absent.
fn value(
    code: u8,
    a: &PathAttributes,
    ctx: &EncodeContext,
    v: &mut BytesMut,
) -> Result<bool, EncodeError> {
    let four = ctx.four_octet_as;
    match code {
        t::ORIGIN => match a.origin {
            Some(o) => v.put_u8(o as u8),
            None => return Ok(false),
        },
        t::AS_PATH => match &a.as_path {
            Some(p) => p.encode(four, v)?,
            None => return Ok(false),
        },
        t::NEXT_HOP => match a.next_hop {
            Some(nh) => v.put_slice(&nh.octets()),
            None => return Ok(false),
        },
        t::MULTI_EXIT_DISC => match a.med {
            Some(m) => v.put_u32(m),
            None => return Ok(false),
        },
        t::LOCAL_PREF => match a.local_pref {
            Some(l) => v.put_u32(l),
            None => return Ok(false),
        },
        t::ATOMIC_AGGREGATE => return Ok(a.atomic_aggregate),
        t::AGGREGATOR => match &a.aggregator {
            Some(agg) => put_aggregator(agg, four, v)?,
            None => return Ok(false),
        },
        t::COMMUNITIES if !a.communities.is_empty() => encode_communities(&a.communities, v),
        t::ORIGINATOR_ID => match a.originator_id {
            Some(id) => v.put_slice(&id.octets()),
            None => return Ok(false),
        },
        t::CLUSTER_LIST if !a.cluster_list.is_empty() => {
            for id in &a.cluster_list {
                v.put_slice(&id.octets());
            }
        }
        t::MP_REACH_NLRI => match &a.mp_reach {
            Some(m) => encode_reach(m, ctx.add_path_for(m.family), v)?,
            None => return Ok(false),
        },
        t::MP_UNREACH_NLRI => match &a.mp_unreach {
            Some(m) => encode_unreach(m, ctx.add_path_for(m.family), v)?,
            None => return Ok(false),
        },
        t::EXTENDED_COMMUNITIES if !a.extended_communities.is_empty() => {
            encode_ext_communities(&a.extended_communities, v)
        }
        t::AS4_PATH | t::AS4_AGGREGATOR
            if four && (a.as4_path.is_some() || a.as4_aggregator.is_some()) =>
        {
            return Err(EncodeError::Invalid(
                "AS4_PATH/AS4_AGGREGATOR must not be sent to a 4-octet-AS speaker (RFC 6793 4.1)",
            ));
        }
        t::AS4_PATH => match &a.as4_path {
            Some(p) => p.encode(true, v)?,
            None => return Ok(false),
        },
        t::AS4_AGGREGATOR => match &a.as4_aggregator {
            Some(agg) => put_aggregator(agg, true, v)?,
            None => return Ok(false),
        },
        t::LARGE_COMMUNITY if !a.large_communities.is_empty() => {
            encode_large_communities(&a.large_communities, v)
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Encode all attributes of `a` into `out` (without the Total Path
/// Attribute Length field).
pub(crate) fn encode_attributes(
    a: &PathAttributes,
    ctx: &EncodeContext,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let mut unknown: Vec<_> = a.unknown.iter().collect();
    unknown.sort_by_key(|u| key(u.type_code));
    let mut unknown = unknown.into_iter().peekable();
    let mut scratch = BytesMut::new();
    for code in KNOWN_ORDER {
        while let Some(u) = unknown.next_if(|u| key(u.type_code) <= key(code)) {
            put_attr(out, u.flags, u.type_code, &u.value)?;
        }
        scratch.clear();
        if value(code, a, ctx, &mut scratch)? {
            let f = expected_flags(code).expect("known attribute has flags");
            put_attr(out, f, code, &scratch)?;
        }
    }
    for u in unknown {
        put_attr(out, u.flags, u.type_code, &u.value)?;
    }
    Ok(())
}
