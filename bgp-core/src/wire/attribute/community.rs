//! COMMUNITIES (RFC 1997), EXTENDED_COMMUNITIES (RFC 4360) and
//! LARGE_COMMUNITY (RFC 8092).

use bytes::{BufMut, BytesMut};

use crate::wire::error::AttributeProblem;

/// A 32-bit community: high 16 bits AS, low 16 bits value (RFC 1997).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);
    /// RFC 7999.
    pub const BLACKHOLE: Community = Community(0xFFFF_029A);
    /// RFC 8326.
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xFFFF_0000);
    /// RFC 9494 (long-lived graceful restart).
    pub const LLGR_STALE: Community = Community(0xFFFF_0006);
    pub const NO_LLGR: Community = Community(0xFFFF_0007);
}

/// An 8-octet extended community (RFC 4360 2), kept opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtCommunity(pub [u8; 8]);

/// A large community (RFC 8092 3): Global Administrator, two local parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

/// Split `v` into `width`-sized items; RFC 7606 7.8 / 7.14 and RFC 8092 5:
/// a length that is not a non-zero multiple of the item size is malformed.
fn items<'a>(
    v: &'a [u8],
    width: usize,
    expected: &'static str,
) -> Result<std::slice::ChunksExact<'a, u8>, AttributeProblem> {
    if v.is_empty() || !v.len().is_multiple_of(width) {
        return Err(AttributeProblem::BadLength {
            length: v.len(),
            expected,
        });
    }
    Ok(v.chunks_exact(width))
}

fn be32(c: &[u8]) -> u32 {
    u32::from_be_bytes([c[0], c[1], c[2], c[3]])
}

pub(crate) fn decode_communities(v: &[u8]) -> Result<Vec<Community>, AttributeProblem> {
    Ok(items(v, 4, "non-zero multiple of 4")?
        .map(|c| Community(be32(c)))
        .collect())
}

pub(crate) fn decode_ext_communities(v: &[u8]) -> Result<Vec<ExtCommunity>, AttributeProblem> {
    Ok(items(v, 8, "non-zero multiple of 8")?
        .map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            ExtCommunity(a)
        })
        .collect())
}

pub(crate) fn decode_large_communities(v: &[u8]) -> Result<Vec<LargeCommunity>, AttributeProblem> {
    Ok(items(v, 12, "non-zero multiple of 12")?
        .map(|c| LargeCommunity {
            global: be32(&c[0..4]),
            local1: be32(&c[4..8]),
            local2: be32(&c[8..12]),
        })
        .collect())
}

pub(crate) fn encode_communities(c: &[Community], out: &mut BytesMut) {
    for x in c {
        out.put_u32(x.0);
    }
}

pub(crate) fn encode_ext_communities(c: &[ExtCommunity], out: &mut BytesMut) {
    for x in c {
        out.put_slice(&x.0);
    }
}

pub(crate) fn encode_large_communities(c: &[LargeCommunity], out: &mut BytesMut) {
    for x in c {
        out.put_u32(x.global);
        out.put_u32(x.local1);
        out.put_u32(x.local2);
    }
}
