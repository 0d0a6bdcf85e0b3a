//! RFC 7606 ("Revised Error Handling for BGP UPDATE Messages") as a pure
//! classification step: a defect in an attribute -> the action to take.

use super::attribute::type_code as t;
use super::error::AttributeProblem;
use super::notification::{Notification, code, update_subcode};

/// RFC 7606 2: the approaches, weakest first; `Ord` follows strength so the
/// strongest of several errors wins (RFC 7606 3.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UpdateAction {
    /// Drop the attribute and process the UPDATE without it.
    AttributeDiscard,
    /// Treat every NLRI in the UPDATE (NLRI field and MP_REACH_NLRI) as
    /// withdrawn.
    TreatAsWithdraw,
    /// Send the NOTIFICATION and close the session.
    SessionReset,
}

/// One attribute-level problem found while decoding an UPDATE that did not
/// stop decoding; the update is still returned alongside.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attribute {type_code} at byte {offset}: {problem} -> {action:?}")]
pub struct UpdateError {
    /// Attribute type code (0 when the attribute list itself overran).
    pub type_code: u8,
    pub problem: AttributeProblem,
    /// The NOTIFICATION RFC 4271 6.3 would have sent (for logs; not sent
    /// unless `action` is SessionReset).
    pub notification: Notification,
    pub offset: usize,
    pub action: UpdateAction,
}

/// The action for `problem` in attribute `type_code` (RFC 7606 sections
/// 3, 4 and 7; RFC 6793 7 for AS4_*; RFC 8092 5 for large communities).
pub fn classify(type_code: u8, problem: &AttributeProblem) -> UpdateAction {
    use AttributeProblem as P;
    use UpdateAction::*;
    match problem {
        // 3.g: later copies of a repeated attribute are discarded.
        P::Duplicate => AttributeDiscard,
        // RFC 6793 4.1: AS4_* from a NEW speaker are discarded.
        P::FromNewSpeaker => AttributeDiscard,
        // 7.5, 7.9, 7.10: LOCAL_PREF / ORIGINATOR_ID / CLUSTER_LIST from
        // an external peer are discarded.
        P::FromExternalPeer => AttributeDiscard,
        // 3.d: missing well-known mandatory attribute; 4: attribute list
        // overrun (Total Attribute Length still locates the NLRI).
        P::Missing | P::ListOverrun => TreatAsWithdraw,
        // 7.11: a next hop we could parse but is not a usable address.
        P::InvalidNextHop(_) if type_code == t::MP_REACH_NLRI => TreatAsWithdraw,
        _ => match type_code {
            // 3.i / 7.11: if the MP attributes cannot be parsed the NLRI
            // cannot be located, so only a session reset is safe.
            t::MP_REACH_NLRI | t::MP_UNREACH_NLRI => SessionReset,
            // 7.6, 7.7; RFC 6793 7.
            t::ATOMIC_AGGREGATE | t::AGGREGATOR | t::AS4_PATH | t::AS4_AGGREGATOR => {
                AttributeDiscard
            }
            // 7.1-7.5, 7.8-7.10, 7.14, RFC 8092 5; anything else malformed
            // defaults to treat-as-withdraw (3.a).
            _ => TreatAsWithdraw,
        },
    }
}

/// The NOTIFICATION RFC 4271 6.3 associates with `problem`; `attr` is the
/// whole attribute (flags, type, length, value) used as data where the RFC
/// asks for it.
pub fn notification_for(type_code: u8, problem: &AttributeProblem, attr: &[u8]) -> Notification {
    use AttributeProblem as P;
    let (sub, data) = match problem {
        P::FlagsConflict { .. } => (update_subcode::ATTRIBUTE_FLAGS, attr.to_vec()),
        P::BadLength { .. } => (update_subcode::ATTRIBUTE_LENGTH, attr.to_vec()),
        P::InvalidOrigin(_) => (update_subcode::INVALID_ORIGIN, attr.to_vec()),
        P::MalformedAsPath(_) => (update_subcode::MALFORMED_AS_PATH, Vec::new()),
        P::InvalidNextHop(_) if type_code == t::NEXT_HOP => {
            (update_subcode::INVALID_NEXT_HOP, attr.to_vec())
        }
        P::Missing => (update_subcode::MISSING_WELL_KNOWN, vec![type_code]),
        P::Duplicate | P::ListOverrun => (update_subcode::MALFORMED_ATTRIBUTE_LIST, Vec::new()),
        P::NextHopLength { .. }
        | P::InvalidNextHop(_)
        | P::Malformed(_)
        | P::FromNewSpeaker
        | P::FromExternalPeer => (update_subcode::OPTIONAL_ATTRIBUTE, attr.to_vec()),
    };
    Notification::new(code::UPDATE_MESSAGE, sub, data)
}

/// RFC 7606 3.h: the strongest action among `errors`, if any.
pub fn strongest(errors: &[UpdateError]) -> Option<UpdateAction> {
    errors.iter().map(|e| e.action).max()
}
