//! UPDATE message (RFC 4271 4.3) and End-of-RIB markers (RFC 4724 2).

use bytes::{BufMut, BytesMut};

use super::attribute::{
    MpUnreach, PathAttributes, decode_attributes, encode_attributes, type_code as t,
};
use super::error::{AttributeProblem, DecodeError, DecodeReason, EncodeError};
use super::nlri::{Family, Nlri, decode_prefixes, encode_prefixes};
use super::notification::{Notification, code, update_subcode};
use super::reader::Reader;
use super::rfc7606::{UpdateAction, UpdateError, classify, notification_for, strongest};
use super::{DecodeContext, EncodeContext};

/// ```text
/// RFC 4271 4.3:
/// +-----------------------------------------------------+
/// |   Withdrawn Routes Length (2 octets)                |
/// +-----------------------------------------------------+
/// |   Withdrawn Routes (variable)                       |
/// +-----------------------------------------------------+
/// |   Total Path Attribute Length (2 octets)            |
/// +-----------------------------------------------------+
/// |   Path Attributes (variable)                        |
/// +-----------------------------------------------------+
/// |   Network Layer Reachability Information (variable) |
/// +-----------------------------------------------------+
/// ```
/// `withdrawn` and `nlri` are IPv4 unicast; other families travel in
/// `attributes.mp_reach` / `attributes.mp_unreach`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    pub withdrawn: Vec<Nlri>,
    pub attributes: PathAttributes,
    pub nlri: Vec<Nlri>,
    /// RFC 7606 problems found while decoding (ignored by encode). The
    /// offending attributes are already left out of `attributes`; if
    /// [`Update::action`] is TreatAsWithdraw, every NLRI of this update
    /// must be handled as a withdrawal.
    pub errors: Vec<UpdateError>,
}

impl Update {
    /// End-of-RIB marker (RFC 4724 2): an empty UPDATE for IPv4 unicast,
    /// otherwise an UPDATE with only an empty MP_UNREACH_NLRI.
    pub fn end_of_rib(family: Family) -> Update {
        let mut u = Update::default();
        if family != Family::IPV4_UNICAST {
            u.attributes.mp_unreach = Some(MpUnreach {
                family,
                withdrawn: Vec::new(),
            });
        }
        u
    }

    /// The family this update is the End-of-RIB marker of, if it is one.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        if self.attributes.is_empty() {
            return Some(Family::IPV4_UNICAST);
        }
        let only_unreach = PathAttributes {
            mp_unreach: self.attributes.mp_unreach.clone(),
            ..Default::default()
        };
        match &self.attributes.mp_unreach {
            Some(m) if m.withdrawn.is_empty() && only_unreach == self.attributes => Some(m.family),
            _ => None,
        }
    }

    /// RFC 7606 3.h: the strongest action required by `errors`, if any.
    pub fn action(&self) -> Option<UpdateAction> {
        strongest(&self.errors)
    }

    pub(crate) fn decode(mut r: Reader<'_>, ctx: &DecodeContext) -> Result<Self, DecodeError> {
        let r_len = r.remaining();
        let lengths_err = |at, withdrawn, attributes| {
            // RFC 4271 6.3: lengths too large -> Malformed Attribute List.
            DecodeError::new(
                Notification::new(
                    code::UPDATE_MESSAGE,
                    update_subcode::MALFORMED_ATTRIBUTE_LIST,
                    Vec::new(),
                ),
                at,
                DecodeReason::UpdateLengths {
                    withdrawn,
                    attributes,
                    message: r_len + super::header::HEADER_LEN,
                },
            )
        };
        let at = r.offset();
        let wlen = r.u16()? as usize;
        if wlen + 2 > r.remaining() {
            return Err(lengths_err(at, wlen, 0));
        }
        let mut w = r.sub("withdrawn routes", wlen)?;
        let withdrawn = decode_prefixes(
            &mut w,
            Family::IPV4_UNICAST,
            ctx.add_path_for(Family::IPV4_UNICAST),
        )?;
        let at_attr = r.offset();
        let alen = r.u16()? as usize;
        if alen > r.remaining() {
            return Err(lengths_err(at_attr, wlen, alen));
        }
        let attr_r = r.sub("path attributes", alen)?;
        let mut errors = Vec::new();
        let attributes = decode_attributes(attr_r, ctx, &mut errors)?;
        let nlri = decode_prefixes(
            &mut r,
            Family::IPV4_UNICAST,
            ctx.add_path_for(Family::IPV4_UNICAST),
        )?;

        // RFC 4271 6.3 / RFC 7606 3.d: well-known mandatory attributes must
        // be present when the UPDATE carries reachable NLRI; NEXT_HOP only
        // for the NLRI field (RFC 4760 3). A present-but-malformed one was
        // already reported.
        let mp_nlri = attributes
            .mp_reach
            .as_ref()
            .is_some_and(|m| !m.nlri.is_empty());
        let mut missing = Vec::new();
        if !nlri.is_empty() || mp_nlri {
            if attributes.origin.is_none() {
                missing.push(t::ORIGIN);
            }
            if attributes.as_path.is_none() {
                missing.push(t::AS_PATH);
            }
        }
        if !nlri.is_empty() && attributes.next_hop.is_none() {
            missing.push(t::NEXT_HOP);
        }
        for type_code in missing {
            if errors.iter().any(|e| e.type_code == type_code) {
                continue;
            }
            let problem = AttributeProblem::Missing;
            errors.push(UpdateError {
                type_code,
                notification: notification_for(type_code, &problem, &[]),
                action: classify(type_code, &problem),
                problem,
                offset: at_attr,
            });
        }
        Ok(Update {
            withdrawn,
            attributes,
            nlri,
            errors,
        })
    }

    pub(crate) fn encode_body(
        &self,
        ctx: &EncodeContext,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let v4_add_path = ctx.add_path_for(Family::IPV4_UNICAST);
        let at = out.len();
        out.put_u16(0);
        encode_prefixes(&self.withdrawn, Family::IPV4_UNICAST, v4_add_path, out)?;
        patch_len(out, at, "withdrawn routes length")?;
        let at = out.len();
        out.put_u16(0);
        encode_attributes(&self.attributes, ctx, out)?;
        patch_len(out, at, "total path attribute length")?;
        encode_prefixes(&self.nlri, Family::IPV4_UNICAST, v4_add_path, out)
    }
}

fn patch_len(out: &mut BytesMut, at: usize, what: &'static str) -> Result<(), EncodeError> {
    let len = out.len() - at - 2;
    let v = u16::try_from(len).map_err(|_| EncodeError::ValueTooLarge {
        what,
        value: len,
        max: u16::MAX as usize,
    })?;
    out[at..at + 2].copy_from_slice(&v.to_be_bytes());
    Ok(())
}
