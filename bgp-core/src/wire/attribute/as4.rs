//! Interworking with 2-octet-AS ("OLD") speakers, RFC 6793 section 4.2.

use super::path::{AsPath, AsSegment, SegmentType};
use super::{Aggregator, PathAttributes};
use crate::wire::open::AS_TRANS;

/// RFC 6793 4.2.3: rebuild the real AS path and aggregator from an UPDATE
/// received from an OLD speaker, then drop AS4_PATH and AS4_AGGREGATOR.
pub fn merge_from_two_octet(attrs: &mut PathAttributes) {
    let as4_path = attrs.as4_path.take();
    let as4_aggregator = attrs.as4_aggregator.take();
    if let (Some(agg), Some(agg4)) = (attrs.aggregator, as4_aggregator) {
        if agg.asn != AS_TRANS as u32 {
            // The aggregation happened at an OLD speaker after the path was
            // built: both AS4 attributes are stale and are ignored.
            return;
        }
        attrs.aggregator = Some(agg4);
    }
    let Some(mut path4) = as4_path else { return };
    // RFC 6793 6: confederation segments in AS4_PATH are discarded.
    path4.segments.retain(|s| !s.kind.is_confed());
    let Some(path) = attrs.as_path.as_ref() else {
        return;
    };
    let (n, n4) = (path.path_len(), path4.path_len());
    if n < n4 {
        // RFC 6793 4.2.3: AS4_PATH longer than AS_PATH is ignored.
        return;
    }
    let mut need = n - n4;
    let mut merged: Vec<AsSegment> = Vec::new();
    for seg in &path.segments {
        match seg.kind {
            // RFC 6793 4.2.3: a confederation segment is prepended if it
            // leads or is adjacent to a prepended segment (it counts 0).
            SegmentType::ConfedSequence | SegmentType::ConfedSet => merged.push(seg.clone()),
            _ if need == 0 => break,
            SegmentType::Set => {
                merged.push(seg.clone());
                need -= 1;
            }
            SegmentType::Sequence => {
                let k = need.min(seg.asns.len());
                merged.push(AsSegment {
                    kind: SegmentType::Sequence,
                    asns: seg.asns[..k].to_vec(),
                });
                need -= k;
            }
        }
    }
    let mut rest = path4.segments.into_iter();
    if let (Some(last), Some(first)) = (merged.last_mut(), rest.as_slice().first())
        && last.kind == SegmentType::Sequence
        && first.kind == SegmentType::Sequence
        && last.asns.len() + first.asns.len() <= 255
    {
        last.asns.extend_from_slice(&first.asns);
        rest.next();
    }
    merged.extend(rest);
    attrs.as_path = Some(AsPath { segments: merged });
}

/// RFC 6793 4.2.2: attributes as sent to an OLD speaker: non-mappable ASNs
/// become AS_TRANS in AS_PATH/AGGREGATOR and the real values travel in
/// AS4_PATH/AS4_AGGREGATOR (confederation segments never go in AS4_PATH).
pub fn to_two_octet(attrs: &PathAttributes) -> PathAttributes {
    let mut out = attrs.clone();
    out.as4_path = None;
    out.as4_aggregator = None;
    let big = |a: &u32| *a > u16::MAX as u32;
    if let Some(path) = &attrs.as_path
        && path.segments.iter().any(|s| s.asns.iter().any(big))
    {
        let mapped = path
            .segments
            .iter()
            .map(|s| AsSegment {
                kind: s.kind,
                asns: s
                    .asns
                    .iter()
                    .map(|a| if big(a) { AS_TRANS as u32 } else { *a })
                    .collect(),
            })
            .collect();
        out.as_path = Some(AsPath { segments: mapped });
        let segments: Vec<_> = path
            .segments
            .iter()
            .filter(|s| !s.kind.is_confed())
            .cloned()
            .collect();
        out.as4_path = Some(AsPath { segments });
    }
    if let Some(agg) = attrs.aggregator
        && big(&agg.asn)
    {
        out.aggregator = Some(Aggregator {
            asn: AS_TRANS as u32,
            address: agg.address,
        });
        out.as4_aggregator = Some(agg);
    }
    out
}
