//! Decoding the path attribute list of an UPDATE (RFC 4271 4.3, 6.3)
//! with RFC 7606 error handling.

use std::net::Ipv4Addr;

use super::community::{decode_communities, decode_ext_communities, decode_large_communities};
use super::mp::{self, Mp};
use super::path::{AsPath, Origin};
use super::raw::RawAttribute;
use super::type_code as t;
use super::{Aggregator, PathAttributes, expected_flags, flags, ipv4_next_hop_problem};
use crate::wire::DecodeContext;
use crate::wire::error::{AttributeProblem, DecodeError, DecodeReason};
use crate::wire::notification::{Notification, code, update_subcode};
use crate::wire::reader::Reader;
use crate::wire::rfc7606::{UpdateAction, UpdateError, classify, notification_for};

/// Decode all attributes in `r` (exactly the Total Path Attribute Length
/// bytes). Problems RFC 7606 lets us survive are pushed to `errors`; the
/// rest (session reset) are returned as `Err`.
pub(crate) fn decode_attributes(
    mut r: Reader<'_>,
    ctx: &DecodeContext,
    errors: &mut Vec<UpdateError>,
) -> Result<PathAttributes, DecodeError> {
    let mut attrs = PathAttributes::default();
    let mut seen = [false; 256];
    while !r.is_empty() {
        let at = r.offset();
        let whole = r.peek_rest();
        // RFC 7606 4: fewer than 3 (4 with Extended Length) octets left, or
        // a length running past the list: treat-as-withdraw, and rely on
        // the Total Path Attribute Length to find the NLRI.
        let overrun = |errors: &mut Vec<UpdateError>| {
            let problem = AttributeProblem::ListOverrun;
            errors.push(UpdateError {
                type_code: 0,
                notification: notification_for(0, &problem, &[]),
                action: classify(0, &problem),
                problem,
                offset: at,
            });
        };
        let (flag_bits, code_, hdr, len) = match whole {
            [f, c, l, ..] if f & flags::EXTENDED_LENGTH == 0 => (*f, *c, 3, *l as usize),
            [f, c, a, b, ..] if f & flags::EXTENDED_LENGTH != 0 => {
                (*f, *c, 4, u16::from_be_bytes([*a, *b]) as usize)
            }
            _ => {
                overrun(errors);
                break;
            }
        };
        if whole.len() < hdr + len {
            overrun(errors);
            break;
        }
        let attr_bytes = &whole[..hdr + len];
        r.take("attribute header", hdr)?;
        let value = r.sub("attribute value", len)?;

        if seen[code_ as usize] {
            // RFC 7606 3.g: repeated MP attributes reset the session with
            // Malformed Attribute List; other repeats are discarded.
            if code_ == t::MP_REACH_NLRI || code_ == t::MP_UNREACH_NLRI {
                return Err(DecodeError::new(
                    Notification::new(
                        code::UPDATE_MESSAGE,
                        update_subcode::MALFORMED_ATTRIBUTE_LIST,
                        Vec::new(),
                    ),
                    at,
                    DecodeReason::DuplicateMpAttribute(code_),
                ));
            }
            record(errors, code_, AttributeProblem::Duplicate, attr_bytes, at)?;
            continue;
        }
        seen[code_ as usize] = true;

        let Some(expected) = expected_flags(code_) else {
            if flag_bits & flags::OPTIONAL == 0 {
                // RFC 4271 6.3: unrecognized well-known attribute.
                return Err(DecodeError::new(
                    Notification::new(
                        code::UPDATE_MESSAGE,
                        update_subcode::UNRECOGNIZED_WELL_KNOWN,
                        attr_bytes.to_vec(),
                    ),
                    at,
                    DecodeReason::UnrecognizedWellKnown(code_),
                ));
            }
            attrs.unknown.push(RawAttribute {
                flags: flag_bits & !flags::EXTENDED_LENGTH,
                type_code: code_,
                value: value.peek_rest().to_vec(),
            });
            continue;
        };
        // RFC 7606 3.c: Optional/Transitive bits in conflict -> malformed.
        if flag_bits & (flags::OPTIONAL | flags::TRANSITIVE) != expected {
            record(
                errors,
                code_,
                AttributeProblem::FlagsConflict { flags: flag_bits },
                attr_bytes,
                at,
            )?;
            continue;
        }
        if let Err(problem) = decode_one(code_, value, ctx, &mut attrs, flag_bits) {
            record(errors, code_, problem, attr_bytes, at)?;
        }
    }
    // Canonical order, the one encode uses, so values compare equal
    // whatever order the peer sent.
    attrs.unknown.sort_by_key(|u| super::order_key(u.type_code));
    Ok(attrs)
}

/// Classify a problem; session-reset ones become the returned error.
fn record(
    errors: &mut Vec<UpdateError>,
    type_code: u8,
    problem: AttributeProblem,
    attr: &[u8],
    offset: usize,
) -> Result<(), DecodeError> {
    let notification = notification_for(type_code, &problem, attr);
    let action = classify(type_code, &problem);
    if action == UpdateAction::SessionReset {
        return Err(DecodeError::new(
            notification,
            offset,
            DecodeReason::Attribute { type_code, problem },
        ));
    }
    errors.push(UpdateError {
        type_code,
        problem,
        notification,
        offset,
        action,
    });
    Ok(())
}

fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], AttributeProblem> {
    <[u8; N]>::try_from(v).map_err(|_| AttributeProblem::BadLength {
        length: v.len(),
        expected: match N {
            0 => "0",
            4 => "4",
            _ => "fixed size",
        },
    })
}

fn ipv4_list(v: &[u8]) -> Result<Vec<Ipv4Addr>, AttributeProblem> {
    // RFC 7606 7.10: CLUSTER_LIST length must be a non-zero multiple of 4.
    if v.is_empty() || !v.len().is_multiple_of(4) {
        return Err(AttributeProblem::BadLength {
            length: v.len(),
            expected: "non-zero multiple of 4",
        });
    }
    Ok(v.chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect())
}

fn aggregator(v: &[u8], four_octet: bool) -> Result<Aggregator, AttributeProblem> {
    // RFC 7606 7.7: 6 octets with 2-octet ASNs, 8 with 4-octet ASNs.
    match (v, four_octet) {
        ([a, b, ip @ ..], false) if ip.len() == 4 => Ok(Aggregator {
            asn: u16::from_be_bytes([*a, *b]) as u32,
            address: Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]),
        }),
        ([a, b, c, d, ip @ ..], true) if ip.len() == 4 => Ok(Aggregator {
            asn: u32::from_be_bytes([*a, *b, *c, *d]),
            address: Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]),
        }),
        _ => Err(AttributeProblem::BadLength {
            length: v.len(),
            expected: if four_octet { "8" } else { "6" },
        }),
    }
}

fn decode_one(
    code_: u8,
    r: Reader<'_>,
    ctx: &DecodeContext,
    attrs: &mut PathAttributes,
    flag_bits: u8,
) -> Result<(), AttributeProblem> {
    let v = r.peek_rest();
    let add_path = |f| ctx.add_path_for(f);
    match code_ {
        t::ORIGIN => attrs.origin = Some(Origin::decode(v)?),
        t::AS_PATH => attrs.as_path = Some(AsPath::decode(v, ctx.four_octet_as)?),
        t::NEXT_HOP => {
            let a = Ipv4Addr::from(fixed::<4>(v)?);
            if let Some(p) = ipv4_next_hop_problem(a) {
                return Err(p);
            }
            attrs.next_hop = Some(a);
        }
        t::MULTI_EXIT_DISC => attrs.med = Some(u32::from_be_bytes(fixed::<4>(v)?)),
        t::LOCAL_PREF => {
            let lp = u32::from_be_bytes(fixed::<4>(v)?);
            if ctx.external_peer {
                return Err(AttributeProblem::FromExternalPeer);
            }
            attrs.local_pref = Some(lp);
        }
        t::ATOMIC_AGGREGATE => {
            fixed::<0>(v)?;
            attrs.atomic_aggregate = true;
        }
        t::AGGREGATOR => attrs.aggregator = Some(aggregator(v, ctx.four_octet_as)?),
        t::COMMUNITIES => attrs.communities = decode_communities(v)?,
        t::ORIGINATOR_ID => {
            let id = Ipv4Addr::from(fixed::<4>(v)?);
            if ctx.external_peer {
                return Err(AttributeProblem::FromExternalPeer);
            }
            attrs.originator_id = Some(id);
        }
        t::CLUSTER_LIST => {
            let list = ipv4_list(v)?;
            if ctx.external_peer {
                return Err(AttributeProblem::FromExternalPeer);
            }
            attrs.cluster_list = list;
        }
        t::MP_REACH_NLRI => match mp::decode_reach(r, add_path)? {
            Mp::Parsed((reach, problem)) => {
                attrs.mp_reach = Some(reach);
                if let Some(p) = problem {
                    return Err(p);
                }
            }
            Mp::Unsupported => attrs.unknown.push(raw(flag_bits, code_, v)),
        },
        t::MP_UNREACH_NLRI => match mp::decode_unreach(r, add_path)? {
            Mp::Parsed(unreach) => attrs.mp_unreach = Some(unreach),
            Mp::Unsupported => attrs.unknown.push(raw(flag_bits, code_, v)),
        },
        t::EXTENDED_COMMUNITIES => attrs.extended_communities = decode_ext_communities(v)?,
        t::AS4_PATH | t::AS4_AGGREGATOR if ctx.four_octet_as => {
            return Err(AttributeProblem::FromNewSpeaker);
        }
        t::AS4_PATH => attrs.as4_path = Some(AsPath::decode(v, true)?),
        t::AS4_AGGREGATOR => attrs.as4_aggregator = Some(aggregator(v, true)?),
        t::LARGE_COMMUNITY => attrs.large_communities = decode_large_communities(v)?,
        _ => unreachable!("decode_one is only called for recognized attributes"),
    }
    Ok(())
}

fn raw(flag_bits: u8, type_code: u8, v: &[u8]) -> RawAttribute {
    RawAttribute {
        flags: flag_bits & !flags::EXTENDED_LENGTH,
        type_code,
        value: v.to_vec(),
    }
}
