//! Capabilities advertised in OPEN (RFC 5492).

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, DecodeReason, EncodeError};
use super::nlri::Family;
use super::notification::{Notification, code};
use super::reader::Reader;

/// Capability codes (IANA "Capability Codes").
pub mod cap_code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const LONG_LIVED_GRACEFUL_RESTART: u8 = 71;
}

/// ADD-PATH Send/Receive field (RFC 7911 section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddPathMode {
    Receive = 1,
    Send = 2,
    Both = 3,
}

impl AddPathMode {
    pub fn receives(self) -> bool {
        matches!(self, AddPathMode::Receive | AddPathMode::Both)
    }
    pub fn sends(self) -> bool {
        matches!(self, AddPathMode::Send | AddPathMode::Both)
    }
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(AddPathMode::Receive),
            2 => Some(AddPathMode::Send),
            3 => Some(AddPathMode::Both),
            _ => None,
        }
    }
}

/// One <AFI, SAFI> entry of the Graceful Restart capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrFamily {
    pub family: Family,
    /// F bit: forwarding state was preserved across the restart.
    pub forwarding_preserved: bool,
}

/// Graceful Restart capability (RFC 4724 section 3, N bit from RFC 8538).
///
/// ```text
/// +--------------------------------------------------+
/// | Restart Flags (4 bits) | Restart Time (12 bits)  |
/// +--------------------------------------------------+
/// | AFI (2 octets) | SAFI (1) | Flags for AFI (1)    |  repeated
/// +--------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// R bit: the sender has restarted.
    pub restarting: bool,
    /// N bit (RFC 8538): the sender supports graceful NOTIFICATION.
    pub notification: bool,
    /// Seconds, 12 bits.
    pub restart_time: u16,
    pub families: Vec<GrFamily>,
}

/// A capability (RFC 5492 section 4):
/// ```text
/// +------------------------------+
/// | Capability Code (1 octet)    |
/// +------------------------------+
/// | Capability Length (1 octet)  |
/// +------------------------------+
/// | Capability Value (variable)  |
/// +------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// RFC 4760 8: AFI (2), Reserved (1), SAFI (1).
    Multiprotocol(Family),
    /// RFC 2918 2.
    RouteRefresh,
    /// RFC 8654 3.
    ExtendedMessage,
    GracefulRestart(GracefulRestart),
    /// RFC 6793 3: the speaker's 4-octet AS number.
    FourOctetAs(u32),
    /// RFC 7911 4: AFI (2), SAFI (1), Send/Receive (1), repeated.
    AddPath(Vec<(Family, AddPathMode)>),
    /// RFC 7313 3.
    EnhancedRouteRefresh,
    /// Anything else (including long-lived GR, 71), kept byte for byte.
    Unknown {
        code: u8,
        value: Vec<u8>,
    },
}

fn malformed(offset: usize, code_: u8, problem: &'static str) -> DecodeError {
    // RFC 5492 does not assign a subcode to a malformed capability value;
    // use the unspecific OPEN Message Error subcode 0.
    DecodeError::new(
        Notification::new(code::OPEN_MESSAGE, 0, Vec::new()),
        offset,
        DecodeReason::MalformedCapability {
            code: code_,
            problem,
        },
    )
}

impl Capability {
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol(_) => cap_code::MULTIPROTOCOL,
            Capability::RouteRefresh => cap_code::ROUTE_REFRESH,
            Capability::ExtendedMessage => cap_code::EXTENDED_MESSAGE,
            Capability::GracefulRestart(_) => cap_code::GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => cap_code::FOUR_OCTET_AS,
            Capability::AddPath(_) => cap_code::ADD_PATH,
            Capability::EnhancedRouteRefresh => cap_code::ENHANCED_ROUTE_REFRESH,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Decode one capability TLV.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        let code_ = r.u8()?;
        let len = r.u8()? as usize;
        let mut v = r.sub("capability value", len)?;
        let fixed = |want: usize| {
            if len == want {
                Ok(())
            } else {
                Err(malformed(at, code_, "length does not match the capability"))
            }
        };
        let cap = match code_ {
            cap_code::MULTIPROTOCOL => {
                fixed(4)?;
                let afi = v.u16()?;
                let _reserved = v.u8()?;
                let safi = v.u8()?;
                Capability::Multiprotocol(Family::new(afi, safi))
            }
            cap_code::ROUTE_REFRESH => {
                fixed(0)?;
                Capability::RouteRefresh
            }
            cap_code::EXTENDED_MESSAGE => {
                fixed(0)?;
                Capability::ExtendedMessage
            }
            cap_code::ENHANCED_ROUTE_REFRESH => {
                fixed(0)?;
                Capability::EnhancedRouteRefresh
            }
            cap_code::FOUR_OCTET_AS => {
                fixed(4)?;
                Capability::FourOctetAs(v.u32()?)
            }
            cap_code::GRACEFUL_RESTART => {
                if len < 2 || !(len - 2).is_multiple_of(4) {
                    return Err(malformed(at, code_, "length is not 2 + 4n"));
                }
                let word = v.u16()?;
                let mut families = Vec::new();
                while !v.is_empty() {
                    let afi = v.u16()?;
                    let safi = v.u8()?;
                    let flags = v.u8()?;
                    families.push(GrFamily {
                        family: Family::new(afi, safi),
                        forwarding_preserved: flags & 0x80 != 0,
                    });
                }
                Capability::GracefulRestart(GracefulRestart {
                    restarting: word & 0x8000 != 0,
                    notification: word & 0x4000 != 0,
                    restart_time: word & 0x0fff,
                    families,
                })
            }
            cap_code::ADD_PATH => {
                if !len.is_multiple_of(4) {
                    return Err(malformed(at, code_, "length is not a multiple of 4"));
                }
                let mut entries = Vec::new();
                let raw = v.peek_rest().to_vec();
                while !v.is_empty() {
                    let afi = v.u16()?;
                    let safi = v.u8()?;
                    let mode = v.u8()?;
                    match AddPathMode::from_u8(mode) {
                        Some(m) => entries.push((Family::new(afi, safi), m)),
                        // RFC 7911 4: any other value -> treat the capability
                        // as not received; keep the bytes so nothing is lost.
                        None => {
                            return Ok(Capability::Unknown {
                                code: code_,
                                value: raw,
                            });
                        }
                    }
                }
                Capability::AddPath(entries)
            }
            _ => Capability::Unknown {
                code: code_,
                value: v.rest().to_vec(),
            },
        };
        Ok(cap)
    }

    /// Encode one capability TLV.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let mut v = BytesMut::new();
        match self {
            Capability::Multiprotocol(f) => {
                v.put_u16(f.afi.0);
                v.put_u8(0);
                v.put_u8(f.safi.0);
            }
            Capability::RouteRefresh
            | Capability::ExtendedMessage
            | Capability::EnhancedRouteRefresh => {}
            Capability::FourOctetAs(asn) => v.put_u32(*asn),
            Capability::GracefulRestart(gr) => {
                if gr.restart_time > 0x0fff {
                    return Err(EncodeError::ValueTooLarge {
                        what: "graceful restart time",
                        value: gr.restart_time as usize,
                        max: 0x0fff,
                    });
                }
                let mut word = gr.restart_time;
                if gr.restarting {
                    word |= 0x8000;
                }
                if gr.notification {
                    word |= 0x4000;
                }
                v.put_u16(word);
                for f in &gr.families {
                    v.put_u16(f.family.afi.0);
                    v.put_u8(f.family.safi.0);
                    v.put_u8(if f.forwarding_preserved { 0x80 } else { 0 });
                }
            }
            Capability::AddPath(entries) => {
                for (f, m) in entries {
                    v.put_u16(f.afi.0);
                    v.put_u8(f.safi.0);
                    v.put_u8(*m as u8);
                }
            }
            Capability::Unknown { value, .. } => v.put_slice(value),
        }
        if v.len() > 255 {
            return Err(EncodeError::ValueTooLarge {
                what: "capability value length",
                value: v.len(),
                max: 255,
            });
        }
        out.put_u8(self.code());
        out.put_u8(v.len() as u8);
        out.put_slice(&v);
        Ok(())
    }
}
