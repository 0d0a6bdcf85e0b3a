//! The few BGP messages the benches' minimal speakers write, built by hand
//! (RFC 4271 4): independent of the codec under test, and cheap enough that
//! the load they put on a shared 2-core machine is the receiver's, not
//! theirs.

pub const HEADER: usize = 19;
pub const OPEN: u8 = 1;
pub const UPDATE: u8 = 2;
pub const NOTIFICATION: u8 = 3;
pub const KEEPALIVE: u8 = 4;

/// A whole message: marker, length, type, `body` (RFC 4271 4.1).
pub fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((HEADER + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// OPEN (RFC 4271 4.2) advertising IPv4 unicast (RFC 4760), route refresh
/// (RFC 2918) and 4-octet AS numbers (RFC 6793), in one Capabilities
/// parameter (RFC 5492).
pub fn open(id: std::net::Ipv4Addr, asn: u32, hold: u16) -> Vec<u8> {
    let mut caps = vec![1, 4, 0, 1, 0, 1, 2, 0, 65, 4];
    caps.extend_from_slice(&asn.to_be_bytes());
    let my_as: u16 = u16::try_from(asn).unwrap_or(23456); // AS_TRANS, RFC 6793
    let mut b = vec![4];
    b.extend_from_slice(&my_as.to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id.octets());
    b.push(caps.len() as u8 + 2);
    b.push(2);
    b.push(caps.len() as u8);
    b.extend_from_slice(&caps);
    message(OPEN, &b)
}

/// The Hold Time of a received OPEN message (header included).
#[allow(dead_code)] // the fan-out bench's clients use it, the receive bench's speaker not
pub fn open_hold_time(m: &[u8]) -> Option<u16> {
    let b = m.get(HEADER + 3..HEADER + 5)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}
