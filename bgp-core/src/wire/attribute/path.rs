//! ORIGIN (RFC 4271 5.1.1) and AS_PATH / AS4_PATH (RFC 4271 4.3,
//! RFC 5065 3 for confederation segments, RFC 6793 for 4-octet ASNs).

use bytes::{BufMut, BytesMut};

use crate::wire::error::{AttributeProblem, EncodeError};

/// ORIGIN value (RFC 4271 4.3 b).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

impl Origin {
    /// RFC 7606 7.1: length other than 1 or an undefined value is malformed.
    pub(crate) fn decode(v: &[u8]) -> Result<Self, AttributeProblem> {
        match v {
            [0] => Ok(Origin::Igp),
            [1] => Ok(Origin::Egp),
            [2] => Ok(Origin::Incomplete),
            [x] => Err(AttributeProblem::InvalidOrigin(*x)),
            _ => Err(AttributeProblem::BadLength {
                length: v.len(),
                expected: "1",
            }),
        }
    }
}

/// AS_PATH segment type (RFC 4271 4.3, RFC 5065 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SegmentType {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

impl SegmentType {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Set),
            2 => Some(Self::Sequence),
            3 => Some(Self::ConfedSequence),
            4 => Some(Self::ConfedSet),
            _ => None,
        }
    }

    pub fn is_confed(self) -> bool {
        matches!(self, Self::ConfedSequence | Self::ConfedSet)
    }
}

/// ```text
/// RFC 4271 4.3: each segment is a triple
/// +------------------+------------------+-------------------------+
/// | type (1 octet)   | length (1 octet) | ASNs (2 or 4 octets each)|
/// +------------------+------------------+-------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsSegment {
    pub kind: SegmentType,
    pub asns: Vec<u32>,
}

/// An AS path: ordered segments. An empty path is valid (iBGP origination).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    pub fn sequence(asns: Vec<u32>) -> Self {
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns,
            }],
        }
    }

    /// Path length for best-path selection (RFC 4271 9.1.2.2 a): a SET
    /// counts 1, confederation segments count 0 (RFC 5065 5.3).
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.len(),
                SegmentType::Set => 1,
                _ => 0,
            })
            .sum()
    }

    /// Neighbouring AS: first AS of a leading AS_SEQUENCE.
    pub fn first_as(&self) -> Option<u32> {
        self.segments
            .first()
            .filter(|s| s.kind == SegmentType::Sequence)
            .and_then(|s| s.asns.first().copied())
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// Prepend `asn` as RFC 4271 5.1.2 b describes for eBGP advertisement.
    pub fn prepend(&mut self, asn: u32) {
        match self.segments.first_mut() {
            Some(s) if s.kind == SegmentType::Sequence && s.asns.len() < 255 => {
                s.asns.insert(0, asn)
            }
            _ => self.segments.insert(
                0,
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![asn],
                },
            ),
        }
    }

    /// Decode with 2- or 4-octet AS numbers. RFC 7606 7.2: unknown segment
    /// type, zero segment length, overrun and a dangling octet are malformed.
    pub(crate) fn decode(mut v: &[u8], four_octet: bool) -> Result<Self, AttributeProblem> {
        let width = if four_octet { 4 } else { 2 };
        let mut segments = Vec::new();
        while !v.is_empty() {
            let [kind, count, rest @ ..] = v else {
                return Err(AttributeProblem::MalformedAsPath(
                    "segment header truncated",
                ));
            };
            let kind = SegmentType::from_u8(*kind)
                .ok_or(AttributeProblem::MalformedAsPath("unknown segment type"))?;
            if *count == 0 {
                return Err(AttributeProblem::MalformedAsPath("zero segment length"));
            }
            let n = *count as usize * width;
            if rest.len() < n {
                return Err(AttributeProblem::MalformedAsPath(
                    "segment overruns the attribute",
                ));
            }
            let asns = rest[..n]
                .chunks_exact(width)
                .map(|c| match c {
                    [a, b] => u16::from_be_bytes([*a, *b]) as u32,
                    [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
                    _ => unreachable!("chunks_exact yields width-sized chunks"),
                })
                .collect();
            segments.push(AsSegment { kind, asns });
            v = &rest[n..];
        }
        Ok(AsPath { segments })
    }

    /// Encode. Sequences longer than 255 are split into consecutive segments
    /// (same meaning, RFC 4271 5.1.2); a longer SET cannot be represented.
    /// With 2-octet encoding an AS above 65535 is an error: the caller
    /// converts with [`super::as4::to_two_octet`] first.
    pub(crate) fn encode(&self, four_octet: bool, out: &mut BytesMut) -> Result<(), EncodeError> {
        for seg in &self.segments {
            if seg.asns.is_empty() {
                return Err(EncodeError::Invalid("AS_PATH segment without AS numbers"));
            }
            if seg.asns.len() > 255 && matches!(seg.kind, SegmentType::Set | SegmentType::ConfedSet)
            {
                return Err(EncodeError::ValueTooLarge {
                    what: "AS_SET size",
                    value: seg.asns.len(),
                    max: 255,
                });
            }
            for chunk in seg.asns.chunks(255) {
                out.put_u8(seg.kind as u8);
                out.put_u8(chunk.len() as u8);
                for &asn in chunk {
                    if four_octet {
                        out.put_u32(asn);
                    } else {
                        let a = u16::try_from(asn).map_err(|_| EncodeError::AsNotMappable(asn))?;
                        out.put_u16(a);
                    }
                }
            }
        }
        Ok(())
    }
}
