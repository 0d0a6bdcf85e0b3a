//! OPEN message (RFC 4271 4.2) with optional parameters (RFC 5492) in the
//! normal or the extended length encoding (RFC 9072).

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use super::capability::Capability;
use super::error::{DecodeError, DecodeReason, EncodeError};
use super::notification::{Notification, code, open_subcode};
use super::reader::Reader;

/// BGP version this speaker implements.
pub const BGP_VERSION: u8 = 4;
/// RFC 6793 9: AS number used in 2-octet fields for a non-mappable AS.
pub const AS_TRANS: u16 = 23456;
/// Optional parameter type carrying capabilities (RFC 5492 4).
const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072 2: Non-Ext OP Type value announcing the extended encoding.
const PARAM_EXTENDED: u8 = 255;

/// ```text
/// RFC 4271 4.2:
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+
/// |    Version    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     My Autonomous System      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           Hold Time           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         BGP Identifier                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Opt Parm Len  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |             Optional Parameters (variable)                    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///
/// RFC 9072 2 (extended): Opt Parm Len = 255, then Non-Ext OP Type = 255,
/// a 2-octet Extended Opt. Parm. Length, and parameters whose length
/// fields are 2 octets.
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    /// Capabilities, grouped as they were in the optional parameters (some
    /// speakers send one parameter per capability, others one for all).
    pub capability_params: Vec<Vec<Capability>>,
}

impl Open {
    /// An OPEN advertising `capabilities` in one parameter. An AS above
    /// 65535 goes out as AS_TRANS (RFC 6793 4.1); it must then also be in a
    /// FourOctetAs capability, which the caller includes.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, capabilities: Vec<Capability>) -> Self {
        let my_as = u16::try_from(asn).unwrap_or(AS_TRANS);
        Open {
            version: BGP_VERSION,
            my_as,
            hold_time,
            bgp_id,
            capability_params: if capabilities.is_empty() {
                Vec::new()
            } else {
                vec![capabilities]
            },
        }
    }

    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.capability_params.iter().flatten()
    }

    /// The sender's AS: the 4-octet AS capability if present (RFC 6793 4.1),
    /// otherwise My Autonomous System.
    pub fn asn(&self) -> u32 {
        self.capabilities()
            .find_map(|c| match c {
                Capability::FourOctetAs(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(self.my_as as u32)
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let err = |sub: u8, data: Vec<u8>, at: usize, reason| {
            DecodeError::new(Notification::new(code::OPEN_MESSAGE, sub, data), at, reason)
        };
        let at = r.offset();
        let version = r.u8()?;
        if version != BGP_VERSION {
            // RFC 4271 6.2: data is the 2-octet largest supported version.
            return Err(err(
                open_subcode::UNSUPPORTED_VERSION,
                (BGP_VERSION as u16).to_be_bytes().to_vec(),
                at,
                DecodeReason::UnsupportedVersion(version),
            ));
        }
        let my_as = r.u16()?;
        let at = r.offset();
        let hold_time = r.u16()?;
        // RFC 4271 6.2: hold time of one or two seconds MUST be rejected.
        if hold_time == 1 || hold_time == 2 {
            return Err(err(
                open_subcode::UNACCEPTABLE_HOLD_TIME,
                Vec::new(),
                at,
                DecodeReason::UnacceptableHoldTime(hold_time),
            ));
        }
        let at = r.offset();
        let bgp_id = Ipv4Addr::from(r.u32()?);
        // RFC 6286 2.2: any non-zero 32-bit value is a valid identifier.
        if bgp_id.is_unspecified() {
            return Err(err(
                open_subcode::BAD_BGP_IDENTIFIER,
                Vec::new(),
                at,
                DecodeReason::BadBgpIdentifier(bgp_id),
            ));
        }
        let at = r.offset();
        let opt_len = r.u8()? as usize;
        let extended = opt_len != 0 && r.peek_rest().first() == Some(&PARAM_EXTENDED);
        let (params_len, wide) = if extended {
            let _non_ext_type = r.u8()?;
            (r.u16()? as usize, true)
        } else {
            (opt_len, false)
        };
        if r.remaining() != params_len {
            return Err(err(
                0,
                Vec::new(),
                at,
                DecodeReason::LengthMismatch {
                    what: "optional parameters",
                    declared: params_len,
                    actual: r.remaining(),
                },
            ));
        }
        let mut capability_params = Vec::new();
        while !r.is_empty() {
            let at = r.offset();
            let ptype = r.u8()?;
            let plen = if wide {
                r.u16()? as usize
            } else {
                r.u8()? as usize
            };
            let mut p = r.sub("optional parameter", plen)?;
            if ptype != PARAM_CAPABILITIES {
                // RFC 4271 6.2: unrecognized optional parameter.
                return Err(err(
                    open_subcode::UNSUPPORTED_OPTIONAL_PARAMETER,
                    Vec::new(),
                    at,
                    DecodeReason::UnsupportedOptionalParameter(ptype),
                ));
            }
            let mut caps = Vec::new();
            while !p.is_empty() {
                caps.push(Capability::decode(&mut p)?);
            }
            capability_params.push(caps);
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            bgp_id,
            capability_params,
        })
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(self.version);
        out.put_u16(self.my_as);
        out.put_u16(self.hold_time);
        out.put_slice(&self.bgp_id.octets());
        let mut groups = Vec::with_capacity(self.capability_params.len());
        for group in &self.capability_params {
            let mut v = BytesMut::new();
            for c in group {
                c.encode(&mut v)?;
            }
            groups.push(v);
        }
        let short_len: usize = groups.iter().map(|g| 2 + g.len()).sum();
        // RFC 9072 3: use the extended encoding only when needed.
        let wide = short_len > 255 || groups.iter().any(|g| g.len() > 255);
        if wide {
            let total: usize = groups.iter().map(|g| 3 + g.len()).sum();
            let total = u16::try_from(total).map_err(|_| EncodeError::ValueTooLarge {
                what: "extended optional parameters length",
                value: total,
                max: u16::MAX as usize,
            })?;
            out.put_u8(255);
            out.put_u8(PARAM_EXTENDED);
            out.put_u16(total);
            for g in &groups {
                out.put_u8(PARAM_CAPABILITIES);
                out.put_u16(g.len() as u16);
                out.put_slice(g);
            }
        } else {
            out.put_u8(short_len as u8);
            for g in &groups {
                out.put_u8(PARAM_CAPABILITIES);
                out.put_u8(g.len() as u8);
                out.put_slice(g);
            }
        }
        Ok(())
    }
}
