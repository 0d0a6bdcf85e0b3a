//! The BFD Control packet (RFC 5880 4.1) and its validation (RFC 5880 6.8.6).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       My Discriminator                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Your Discriminator                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Desired Min TX Interval                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   Required Min RX Interval                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Required Min Echo RX Interval                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! We never use authentication, so a packet with the A bit set is refused
//! (RFC 5880 6.8.6: "If the A bit is set and no authentication is in use").

use super::State;

/// The mandatory section; no authentication section follows in what we send.
pub const PACKET_LEN: usize = 24;
/// RFC 5880 4.1: the version this codec speaks.
pub const VERSION: u8 = 1;

/// RFC 5880 4.1 Diagnostic codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diag {
    None,
    ControlDetectionTimeExpired,
    EchoFunctionFailed,
    NeighborSignaledSessionDown,
    ForwardingPlaneReset,
    PathDown,
    ConcatenatedPathDown,
    AdministrativelyDown,
    ReverseConcatenatedPathDown,
    /// 9-31, reserved.
    Reserved(u8),
}

impl Diag {
    pub fn code(self) -> u8 {
        match self {
            Diag::None => 0,
            Diag::ControlDetectionTimeExpired => 1,
            Diag::EchoFunctionFailed => 2,
            Diag::NeighborSignaledSessionDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdministrativelyDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Reserved(c) => c & 0x1f,
        }
    }

    pub fn from_code(c: u8) -> Diag {
        match c & 0x1f {
            0 => Diag::None,
            1 => Diag::ControlDetectionTimeExpired,
            2 => Diag::EchoFunctionFailed,
            3 => Diag::NeighborSignaledSessionDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdministrativelyDown,
            8 => Diag::ReverseConcatenatedPathDown,
            c => Diag::Reserved(c),
        }
    }
}

impl State {
    /// RFC 5880 4.1 Sta field.
    pub fn code(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }

    pub fn from_code(c: u8) -> State {
        match c & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }
}

/// A BFD Control packet without authentication section. Intervals are in
/// microseconds, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlPacket {
    pub diag: Diag,
    pub state: State,
    /// P: Poll.
    pub poll: bool,
    /// F: Final.
    pub final_: bool,
    /// C: Control Plane Independent.
    pub cpi: bool,
    /// D: Demand.
    pub demand: bool,
    pub detect_mult: u8,
    pub my_discr: u32,
    pub your_discr: u32,
    pub desired_min_tx_us: u32,
    pub required_min_rx_us: u32,
    pub required_min_echo_rx_us: u32,
}

/// Why a received packet was discarded (RFC 5880 6.8.6); `offset` is the
/// byte of the offending field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{len} bytes, shorter than the {PACKET_LEN}-byte mandatory section")]
    TooShort { len: usize },
    #[error("byte 0: version {0}, not {VERSION}")]
    Version(u8),
    #[error("byte 3: length field {field} below the minimum {min}")]
    LengthTooSmall { field: u8, min: u8 },
    #[error("byte 3: length field {field} beyond the {len} bytes received")]
    LengthBeyondPayload { field: u8, len: usize },
    #[error("byte 2: Detect Mult is zero")]
    ZeroDetectMult,
    #[error("byte 1: Multipoint (M) bit set")]
    Multipoint,
    #[error("byte 4: My Discriminator is zero")]
    ZeroMyDiscriminator,
    #[error("byte 8: Your Discriminator is zero in state {0:?} (only Down or AdminDown may)")]
    ZeroYourDiscriminator(State),
    #[error("byte 1: Authentication (A) bit set, and no authentication is in use")]
    Authenticated,
}

const P: u8 = 0x20;
const F: u8 = 0x10;
const C: u8 = 0x08;
const A: u8 = 0x04;
const D: u8 = 0x02;
const M: u8 = 0x01;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl ControlPacket {
    /// Decode and validate one UDP payload (RFC 5880 6.8.6, the checks that
    /// need no session; "no session for Your Discriminator" is the
    /// caller's).
    pub fn decode(b: &[u8]) -> Result<ControlPacket, DecodeError> {
        if b.len() < PACKET_LEN {
            return Err(DecodeError::TooShort { len: b.len() });
        }
        // RFC 5880 6.8.6: "If the version number is not correct (1), the packet MUST be
        // discarded."
        let version = b[0] >> 5;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let flags = b[1];
        let length = b[3];
        // "If the Length field is less than the minimum correct value (24 if the A bit is
        // clear, or 26 if the A bit is set), the packet MUST be discarded."
        let min = if flags & A != 0 { 26 } else { 24 };
        if length < min {
            return Err(DecodeError::LengthTooSmall { field: length, min });
        }
        // "If the Length field is greater than the payload of the encapsulating protocol,
        // the packet MUST be discarded."
        if usize::from(length) > b.len() {
            return Err(DecodeError::LengthBeyondPayload {
                field: length,
                len: b.len(),
            });
        }
        // "If the Detect Mult field is zero, the packet MUST be discarded."
        if b[2] == 0 {
            return Err(DecodeError::ZeroDetectMult);
        }
        // "If the Multipoint (M) bit is nonzero, the packet MUST be discarded."
        if flags & M != 0 {
            return Err(DecodeError::Multipoint);
        }
        // "If the My Discriminator field is zero, the packet MUST be discarded."
        let my_discr = be32(b, 4);
        if my_discr == 0 {
            return Err(DecodeError::ZeroMyDiscriminator);
        }
        // "If the Your Discriminator field is zero and the State field is not Down or
        // AdminDown, the packet MUST be discarded."
        let state = State::from_code(flags >> 6);
        let your_discr = be32(b, 8);
        if your_discr == 0 && !matches!(state, State::Down | State::AdminDown) {
            return Err(DecodeError::ZeroYourDiscriminator(state));
        }
        // "If the A bit is set and no authentication is in use (bfd.AuthType is zero), the
        // packet MUST be discarded."
        if flags & A != 0 {
            return Err(DecodeError::Authenticated);
        }
        Ok(ControlPacket {
            diag: Diag::from_code(b[0]),
            state,
            poll: flags & P != 0,
            final_: flags & F != 0,
            cpi: flags & C != 0,
            demand: flags & D != 0,
            detect_mult: b[2],
            my_discr,
            your_discr,
            desired_min_tx_us: be32(b, 12),
            required_min_rx_us: be32(b, 16),
            required_min_echo_rx_us: be32(b, 20),
        })
    }

    /// The 24 bytes on the wire. Every field has a fixed width in the type,
    /// so nothing can be truncated.
    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut b = [0u8; PACKET_LEN];
        b[0] = (VERSION << 5) | self.diag.code();
        b[1] = (self.state.code() << 6)
            | if self.poll { P } else { 0 }
            | if self.final_ { F } else { 0 }
            | if self.cpi { C } else { 0 }
            | if self.demand { D } else { 0 };
        b[2] = self.detect_mult;
        b[3] = PACKET_LEN as u8;
        b[4..8].copy_from_slice(&self.my_discr.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_discr.to_be_bytes());
        b[12..16].copy_from_slice(&self.desired_min_tx_us.to_be_bytes());
        b[16..20].copy_from_slice(&self.required_min_rx_us.to_be_bytes());
        b[20..24].copy_from_slice(&self.required_min_echo_rx_us.to_be_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session coming up: version 1, diag 0, state Down, no flags, detect mult 3,
    /// length 24, my discr 0x12345678, your discr 0, desired min tx 1 s (the RFC 5880
    /// 6.8.3 minimum while not Up), required min rx 100 ms, echo 0.
    const DOWN: [u8; 24] = [
        0x20, 0x40, 0x03, 0x18, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x42,
        0x40, 0x00, 0x01, 0x86, 0xa0, 0x00, 0x00, 0x00, 0x00,
    ];
    /// Up with Poll, after a Detection Time expiry was recorded (diag 1).
    const UP_POLL: [u8; 24] = [
        0x21, 0xe0, 0x05, 0x18, 0x00, 0x00, 0x00, 0x07, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x86,
        0xa0, 0x00, 0x00, 0xc3, 0x50, 0x00, 0x00, 0x00, 0x00,
    ];

    fn down() -> ControlPacket {
        ControlPacket {
            diag: Diag::None,
            state: State::Down,
            poll: false,
            final_: false,
            cpi: false,
            demand: false,
            detect_mult: 3,
            my_discr: 0x1234_5678,
            your_discr: 0,
            desired_min_tx_us: 1_000_000,
            required_min_rx_us: 100_000,
            required_min_echo_rx_us: 0,
        }
    }

    #[test]
    fn vectors_both_ways() {
        assert_eq!(ControlPacket::decode(&DOWN), Ok(down()));
        assert_eq!(down().encode(), DOWN);
        let up = ControlPacket {
            diag: Diag::ControlDetectionTimeExpired,
            state: State::Up,
            poll: true,
            detect_mult: 5,
            my_discr: 7,
            your_discr: 0xdead_beef,
            desired_min_tx_us: 100_000,
            required_min_rx_us: 50_000,
            ..down()
        };
        assert_eq!(ControlPacket::decode(&UP_POLL), Ok(up));
        assert_eq!(up.encode(), UP_POLL);
    }

    /// Captured from BIRD 2.0.12 (Debian bird2, `bfd on` in a BGP protocol, 100 ms x 3)
    /// in a test namespace, by a UDP socket on 3784 (TTL 255 on arrival): the first
    /// packet of a new session, Down, 1 s while not Up ...
    const BIRD_DOWN: &str = "204003188255916f00000000000f4240000186a000000000";
    /// ... and, after an Init from us (discriminator 0x11223344), Up with Poll as it
    /// switches to 100 ms.
    const BIRD_UP_POLL: &str = "20e003188255916f11223344000186a0000186a000000000";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn birds_packets_both_ways() {
        let b = unhex(BIRD_DOWN);
        let p = ControlPacket::decode(&b).unwrap();
        assert_eq!(
            p,
            ControlPacket {
                my_discr: 0x8255_916f,
                ..down()
            }
        );
        assert_eq!(p.encode().as_slice(), b.as_slice());
        let b = unhex(BIRD_UP_POLL);
        let p = ControlPacket::decode(&b).unwrap();
        assert_eq!(
            p,
            ControlPacket {
                state: State::Up,
                poll: true,
                my_discr: 0x8255_916f,
                your_discr: 0x1122_3344,
                desired_min_tx_us: 100_000,
                ..down()
            }
        );
        assert_eq!(p.encode().as_slice(), b.as_slice());
    }

    #[test]
    fn every_field_round_trips() {
        for state in [State::AdminDown, State::Down, State::Init, State::Up] {
            for code in 0..32 {
                let p = ControlPacket {
                    diag: Diag::from_code(code),
                    state,
                    poll: code & 1 != 0,
                    final_: code & 2 != 0,
                    cpi: code & 4 != 0,
                    demand: code & 8 != 0,
                    your_discr: 9,
                    ..down()
                };
                assert_eq!(ControlPacket::decode(&p.encode()), Ok(p));
                assert_eq!(p.diag.code(), code);
            }
        }
    }

    /// Bytes after the length field (padding of the UDP payload) are ignored.
    #[test]
    fn trailing_bytes_beyond_length_are_ignored() {
        let mut b = DOWN.to_vec();
        b.extend_from_slice(&[0xff; 4]);
        assert_eq!(ControlPacket::decode(&b), Ok(down()));
    }

    #[test]
    fn validation_rfc5880_6_8_6() {
        let bad = |f: &dyn Fn(&mut [u8; 24])| {
            let mut b = DOWN;
            f(&mut b);
            ControlPacket::decode(&b).unwrap_err()
        };
        assert_eq!(
            ControlPacket::decode(&DOWN[..23]),
            Err(DecodeError::TooShort { len: 23 })
        );
        assert_eq!(bad(&|b| b[0] = 0x40), DecodeError::Version(2));
        assert_eq!(bad(&|b| b[0] = 0x00), DecodeError::Version(0));
        assert_eq!(
            bad(&|b| b[3] = 23),
            DecodeError::LengthTooSmall { field: 23, min: 24 }
        );
        assert_eq!(
            bad(&|b| {
                b[1] |= A;
                b[3] = 24;
            }),
            DecodeError::LengthTooSmall { field: 24, min: 26 }
        );
        assert_eq!(
            bad(&|b| b[3] = 25),
            DecodeError::LengthBeyondPayload { field: 25, len: 24 }
        );
        assert_eq!(bad(&|b| b[2] = 0), DecodeError::ZeroDetectMult);
        assert_eq!(bad(&|b| b[1] |= M), DecodeError::Multipoint);
        assert_eq!(bad(&|b| b[4..8].fill(0)), DecodeError::ZeroMyDiscriminator);
        assert_eq!(
            bad(&|b| b[1] = 0xc0),
            DecodeError::ZeroYourDiscriminator(State::Up)
        );
        assert_eq!(
            bad(&|b| b[1] = 0x80),
            DecodeError::ZeroYourDiscriminator(State::Init)
        );
        // AdminDown with Your Discriminator zero is fine.
        let mut b = DOWN;
        b[1] = 0x00;
        assert_eq!(ControlPacket::decode(&b).unwrap().state, State::AdminDown);
        let mut b = DOWN.to_vec();
        b[1] |= A;
        b[3] = 26;
        b.extend_from_slice(&[1, 2]);
        assert_eq!(ControlPacket::decode(&b), Err(DecodeError::Authenticated));
    }
}
