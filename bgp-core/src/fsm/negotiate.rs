//! OPEN validation and capability negotiation (RFC 4271 6.2, RFC 5492,
//! RFC 4760 8, RFC 6793, RFC 7911 4, RFC 8654, RFC 4724, RFC 7313).

use std::net::Ipv4Addr;

use bytes::BytesMut;

use super::config::{Config, PeerAs};
use crate::wire::notification::{code, open_subcode};
use crate::wire::{
    AS_TRANS, AddPathMode, Capability, DecodeContext, EncodeContext, Family, GracefulRestart,
    Notification, Open,
};

/// What both sides agreed on, from our Config and the peer's OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedSession {
    pub local_as: u32,
    pub local_id: Ipv4Addr,
    pub peer_as: u32,
    pub peer_id: Ipv4Addr,
    /// iBGP session (same AS).
    pub internal: bool,
    /// Negotiated hold time; 0 means no hold timer and no keepalives.
    pub hold_time: u16,
    pub keepalive: u16,
    pub four_octet_as: bool,
    /// Families both sides support (RFC 4760 8; IPv4 unicast implied when a
    /// side advertises no Multiprotocol capability).
    pub families: Vec<Family>,
    /// Families where we receive path identifiers (RFC 7911 4).
    pub add_path_receive: Vec<Family>,
    /// Families where we send path identifiers.
    pub add_path_send: Vec<Family>,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    pub extended_message: bool,
    /// Peer's Graceful Restart capability, if it sent one.
    pub peer_graceful_restart: Option<GracefulRestart>,
    /// Whether we offered Graceful Restart too (GR is in effect if both).
    pub local_graceful_restart: bool,
    pub peer_capabilities: Vec<Capability>,
}

impl NegotiatedSession {
    pub fn decode_context(&self) -> DecodeContext {
        DecodeContext {
            four_octet_as: self.four_octet_as,
            add_path: self.add_path_receive.clone(),
            extended_message: self.extended_message,
            external_peer: !self.internal,
        }
    }

    pub fn encode_context(&self) -> EncodeContext {
        EncodeContext {
            four_octet_as: self.four_octet_as,
            add_path: self.add_path_send.clone(),
            extended_message: self.extended_message,
        }
    }

    pub fn graceful_restart(&self) -> bool {
        self.local_graceful_restart && self.peer_graceful_restart.is_some()
    }
}

fn open_error(subcode: u8, data: Vec<u8>) -> Notification {
    Notification::new(code::OPEN_MESSAGE, subcode, data)
}

fn families(caps: &[Capability]) -> Vec<Family> {
    let f: Vec<Family> = caps
        .iter()
        .filter_map(|c| match c {
            Capability::Multiprotocol(f) => Some(*f),
            _ => None,
        })
        .collect();
    if f.is_empty() {
        vec![Family::IPV4_UNICAST]
    } else {
        f
    }
}

fn add_path_modes(caps: &[Capability]) -> Vec<(Family, AddPathMode)> {
    caps.iter()
        .filter_map(|c| match c {
            Capability::AddPath(e) => Some(e.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn has(caps: &[Capability], code_: u8) -> bool {
    caps.iter().any(|c| c.code() == code_)
}

/// Hold time and keepalive interval (RFC 4271 4.2, 10): the smaller of the
/// two proposals; keepalive a third of it unless configured lower.
pub fn negotiate_timers(local_hold: u16, peer_hold: u16, keepalive: Option<u16>) -> (u16, u16) {
    let hold = local_hold.min(peer_hold);
    if hold == 0 {
        return (0, 0);
    }
    let ka = match keepalive {
        Some(k) if k > 0 && k < hold => k,
        _ => (hold / 3).max(1),
    };
    (hold, ka)
}

/// Check the peer's OPEN against our config; on success the negotiated
/// session, otherwise the NOTIFICATION to send. (Version, hold time 1-2 s
/// and a zero identifier were already refused by the decoder.)
pub fn validate_open(cfg: &Config, open: &Open) -> Result<NegotiatedSession, Notification> {
    let peer_caps: Vec<Capability> = open.capabilities().cloned().collect();
    let peer_four = peer_caps
        .iter()
        .any(|c| matches!(c, Capability::FourOctetAs(_)));
    let peer_as = open.asn();
    // RFC 6793 4.1: AS_TRANS only makes sense with the 4-octet capability.
    if !peer_four && open.my_as == AS_TRANS {
        return Err(open_error(open_subcode::BAD_PEER_AS, Vec::new()));
    }
    let as_ok = match cfg.peer_as {
        PeerAs::Exact(a) => a == peer_as,
        PeerAs::Internal => peer_as == cfg.local_as,
        PeerAs::External => peer_as != cfg.local_as,
        PeerAs::Any => true,
    };
    if !as_ok {
        return Err(open_error(open_subcode::BAD_PEER_AS, Vec::new()));
    }
    let internal = peer_as == cfg.local_as;
    // RFC 6286 2.2: the identifier must differ from ours on iBGP sessions;
    // between ASes equal identifiers are allowed (collisions then compare
    // AS numbers, see collision.rs).
    if internal && open.bgp_id == cfg.router_id {
        return Err(open_error(open_subcode::BAD_BGP_IDENTIFIER, Vec::new()));
    }
    // RFC 5492 5: data lists the capabilities we require but did not get.
    let missing: Vec<u8> = cfg
        .required_capabilities
        .iter()
        .copied()
        .filter(|c| !has(&peer_caps, *c))
        .collect();
    if !missing.is_empty() {
        let mut data = BytesMut::new();
        for code_ in missing {
            match cfg.capabilities.iter().find(|c| c.code() == code_) {
                Some(c) => c
                    .encode(&mut data)
                    .map_err(|_| open_error(open_subcode::UNSUPPORTED_CAPABILITY, Vec::new()))?,
                None => data.extend_from_slice(&[code_, 0]),
            }
        }
        return Err(open_error(
            open_subcode::UNSUPPORTED_CAPABILITY,
            data.to_vec(),
        ));
    }

    let local_caps = &cfg.capabilities;
    let (hold_time, keepalive) = negotiate_timers(cfg.hold_time, open.hold_time, cfg.keepalive);
    let local_f = families(local_caps);
    let peer_f = families(&peer_caps);
    let families: Vec<Family> = local_f.into_iter().filter(|f| peer_f.contains(f)).collect();
    let local_ap = add_path_modes(local_caps);
    let peer_ap = add_path_modes(&peer_caps);
    let ap = |we: fn(AddPathMode) -> bool, they: fn(AddPathMode) -> bool| -> Vec<Family> {
        families
            .iter()
            .copied()
            .filter(|f| {
                local_ap.iter().any(|(lf, m)| lf == f && we(*m))
                    && peer_ap.iter().any(|(pf, m)| pf == f && they(*m))
            })
            .collect()
    };
    let add_path_receive = ap(AddPathMode::receives, AddPathMode::sends);
    let add_path_send = ap(AddPathMode::sends, AddPathMode::receives);
    let both = |code_| has(local_caps, code_) && has(&peer_caps, code_);
    use crate::wire::capability::cap_code;
    Ok(NegotiatedSession {
        local_as: cfg.local_as,
        local_id: cfg.router_id,
        peer_as,
        peer_id: open.bgp_id,
        internal,
        hold_time,
        keepalive,
        four_octet_as: both(cap_code::FOUR_OCTET_AS),
        add_path_receive,
        add_path_send,
        route_refresh: both(cap_code::ROUTE_REFRESH),
        enhanced_route_refresh: both(cap_code::ENHANCED_ROUTE_REFRESH)
            && both(cap_code::ROUTE_REFRESH),
        extended_message: both(cap_code::EXTENDED_MESSAGE),
        peer_graceful_restart: peer_caps.iter().find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(g.clone()),
            _ => None,
        }),
        local_graceful_restart: has(local_caps, cap_code::GRACEFUL_RESTART),
        families,
        peer_capabilities: peer_caps,
    })
}
