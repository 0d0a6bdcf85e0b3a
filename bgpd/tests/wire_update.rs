//! UPDATE vectors: every attribute both ways, 2- and 4-octet AS, MP
//! families, ADD-PATH, End-of-RIB, unknown attributes, encode limits.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use bgpd::wire::attribute::as4::{merge_from_two_octet, to_two_octet};
use bgpd::wire::{
    Aggregator, AsPath, AsSegment, Community, DecodeContext, EncodeContext, EncodeError,
    ExtCommunity, Family, LargeCommunity, Message, MpReach, MpUnreach, NextHop, Nlri, Origin,
    PathAttributes, RawAttribute, SegmentType, Update, encode_to_vec,
};
use common::*;

fn p(s: &str) -> Nlri {
    Nlri::new(s.parse().unwrap())
}

const ALL_ATTRS_2: &str = "
    40 01 01 00
    40 02 06 02 02 fde9 fdea
    40 03 04 0a000001
    80 04 04 00000064
    40 05 04 000000c8
    40 06 00
    c0 07 06 fde9 0a000001
    c0 08 08 fde90001 ffffff01
    80 09 04 0a000002
    80 0a 08 0a000003 0a000004
    c0 10 08 0002fde9 00000001
    c0 11 0e 02 03 0000fde9 00010000 0000fdea
    c0 12 08 00010000 0a000009
    c0 20 0c 0000fde9 00000001 00000002
    c0 63 02 abcd";

fn all_attrs_value(four_octet: bool) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(vec![65001, 65002])),
        next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
        med: Some(100),
        local_pref: Some(200),
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: 65001,
            address: Ipv4Addr::new(10, 0, 0, 1),
        }),
        communities: vec![Community(0xfde9_0001), Community::NO_EXPORT],
        originator_id: Some(Ipv4Addr::new(10, 0, 0, 2)),
        cluster_list: vec![Ipv4Addr::new(10, 0, 0, 3), Ipv4Addr::new(10, 0, 0, 4)],
        extended_communities: vec![ExtCommunity([0, 2, 0xfd, 0xe9, 0, 0, 0, 1])],
        as4_path: (!four_octet).then(|| AsPath::sequence(vec![65001, 65536, 65002])),
        as4_aggregator: (!four_octet).then_some(Aggregator {
            asn: 65536,
            address: Ipv4Addr::new(10, 0, 0, 9),
        }),
        large_communities: vec![LargeCommunity {
            global: 65001,
            local1: 1,
            local2: 2,
        }],
        unknown: vec![RawAttribute {
            flags: 0xc0,
            type_code: 99,
            value: vec![0xab, 0xcd],
        }],
        ..Default::default()
    }
}

#[test]
fn update_with_every_attribute_two_octet_as() {
    let bytes = update_msg(&h("10 0a01"), &h(ALL_ATTRS_2), &h("18 0a0200 20 0a030001"));
    let Message::Update(u) = roundtrip(&bytes, &dctx()) else {
        panic!()
    };
    assert!(u.errors.is_empty(), "{:?}", u.errors);
    let want = Update {
        withdrawn: vec![p("10.1.0.0/16")],
        attributes: all_attrs_value(false),
        nlri: vec![p("10.2.0.0/24"), p("10.3.0.1/32")],
        errors: vec![],
    };
    assert_eq!(*u, want);
    encodes_to(&Message::Update(Box::new(want)), &bytes, &dctx());
}

#[test]
fn update_with_four_octet_as_path_and_aggregator() {
    let attrs = h("
        40 01 01 02
        40 02 0e 02 03 0000fde9 00010000 fa56ea00
        40 03 04 0a000001
        c0 07 08 fa56ea00 0a000001");
    let bytes = update_msg(&[], &attrs, &h("20 0a030001"));
    let Message::Update(u) = roundtrip(&bytes, &dctx4()) else {
        panic!()
    };
    assert_eq!(u.attributes.origin, Some(Origin::Incomplete));
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::sequence(vec![65001, 65536, 4_200_000_000]))
    );
    assert_eq!(u.attributes.aggregator.unwrap().asn, 4_200_000_000);
    // The same value cannot be sent to a 2-octet speaker without conversion.
    assert_eq!(
        encode_to_vec(&Message::Update(u.clone()), &EncodeContext::default()),
        Err(EncodeError::AsNotMappable(65536))
    );
}

#[test]
fn as_path_all_segment_types() {
    let attrs = h("
        40 01 01 01
        40 02 14 03 01 fdea 04 02 fdeb fdec 02 01 fde9 01 02 0001 0002
        40 03 04 0a000001");
    let bytes = update_msg(&[], &attrs, &h("08 0a"));
    let Message::Update(u) = roundtrip(&bytes, &dctx()) else {
        panic!()
    };
    let path = u.attributes.as_path.as_ref().unwrap();
    let kinds: Vec<_> = path.segments.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            SegmentType::ConfedSequence,
            SegmentType::ConfedSet,
            SegmentType::Sequence,
            SegmentType::Set
        ]
    );
    // Confederation segments count 0, a set counts 1 (RFC 4271 9.1.2.2).
    assert_eq!(path.path_len(), 2);
    assert_eq!(u.attributes.origin, Some(Origin::Egp));
}

#[test]
fn long_as_sequence_is_split_not_truncated() {
    let mut u = Update::default();
    u.attributes.origin = Some(Origin::Igp);
    u.attributes.as_path = Some(AsPath::sequence((1..=300).collect()));
    u.attributes.next_hop = Some(Ipv4Addr::new(10, 0, 0, 1));
    u.nlri = vec![p("10.0.0.0/8")];
    let bytes = encode_to_vec(&Message::Update(Box::new(u)), &EncodeContext::default()).unwrap();
    let back = decode_update(&bytes, &dctx());
    let path = back.attributes.as_path.unwrap();
    assert_eq!(path.segments.len(), 2);
    assert_eq!(path.segments[0].asns.len(), 255);
    assert_eq!(path.path_len(), 300);
    // AS_PATH value is 2*(2) + 300*2 = 604 bytes: Extended Length used.
    let attr_start = 19 + 2 + 2 + 4; // header, lengths, ORIGIN
    assert_eq!(
        bytes[attr_start], 0x50,
        "well-known transitive + extended length"
    );
    // A set of more than 255 cannot be split.
    let mut u = Update::default();
    u.attributes.as_path = Some(AsPath {
        segments: vec![AsSegment {
            kind: SegmentType::Set,
            asns: (1..=256).collect(),
        }],
    });
    assert!(matches!(
        encode_to_vec(&Message::Update(Box::new(u)), &EncodeContext::default()),
        Err(EncodeError::ValueTooLarge { .. })
    ));
}

#[test]
fn ipv6_mp_reach_with_link_local_and_mp_unreach() {
    let reach = h("
        80 0e 35 0002 01 20
          20010db8000000000000000000000001
          fe800000000000000000000000000001
          00
          30 20010db80001
          40 20010db800020000");
    let unreach = h("80 0f 0a 0002 01 30 20010db80003");
    let mut attrs = reach.clone();
    attrs.extend(unreach);
    attrs.extend(h("40 01 01 00 40 02 00"));
    let bytes = update_msg(&[], &attrs, &[]);
    let Message::Update(u) = roundtrip(&bytes, &dctx()) else {
        panic!()
    };
    assert!(u.errors.is_empty(), "{:?}", u.errors);
    assert_eq!(
        u.attributes.mp_reach,
        Some(MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: NextHop::V6 {
                global: "2001:db8::1".parse().unwrap(),
                link_local: Some("fe80::1".parse().unwrap()),
            },
            nlri: vec![p("2001:db8:1::/48"), p("2001:db8:2::/64")],
        })
    );
    assert_eq!(
        u.attributes.mp_unreach,
        Some(MpUnreach {
            family: Family::IPV6_UNICAST,
            withdrawn: vec![p("2001:db8:3::/48")],
        })
    );
    assert_eq!(u.attributes.as_path, Some(AsPath::default()));
}

#[test]
fn ipv6_next_hop_of_16_bytes_and_ipv4_in_mp_reach() {
    let attrs = h("
        80 0e 1c 0002 01 10 20010db8000000000000000000000001 00 30 20010db80001
        80 0f 07 0001 01 18 0a0b0c
        40 01 01 00 40 02 00");
    let bytes = update_msg(&[], &attrs, &[]);
    let Message::Update(u) = roundtrip(&bytes, &dctx()) else {
        panic!()
    };
    let reach = u.attributes.mp_reach.as_ref().unwrap();
    assert_eq!(
        reach.next_hop,
        NextHop::V6 {
            global: "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
            link_local: None
        }
    );
    assert_eq!(
        u.attributes.mp_unreach.as_ref().unwrap().withdrawn,
        vec![p("10.11.12.0/24")]
    );
}

#[test]
fn add_path_identifiers_per_family_and_direction() {
    let ctx = DecodeContext {
        add_path: vec![Family::IPV4_UNICAST],
        ..dctx()
    };
    let attrs = h("40 01 01 00 40 02 00 40 03 04 0a000001");
    let bytes = update_msg(
        &h("00000007 10 0a01"),
        &attrs,
        &h("00000001 18 0a0200 00000002 18 0a0200"),
    );
    let Message::Update(u) = roundtrip(&bytes, &ctx) else {
        panic!()
    };
    assert_eq!(
        u.withdrawn,
        vec![Nlri::with_path_id("10.1.0.0/16".parse().unwrap(), 7)]
    );
    assert_eq!(
        u.nlri,
        vec![
            Nlri::with_path_id("10.2.0.0/24".parse().unwrap(), 1),
            Nlri::with_path_id("10.2.0.0/24".parse().unwrap(), 2)
        ]
    );
    // Without ADD-PATH for the family the same bytes mean something else.
    match bgpd::wire::decode(&bytes, &dctx()) {
        Ok((Message::Update(plain), _)) => assert_ne!(plain.nlri, u.nlri),
        Ok(other) => panic!("{other:?}"),
        Err(e) => assert_eq!(e.notification.subcode, 10, "{e}"),
    }
    // ADD-PATH for IPv6 inside MP_REACH.
    let ctx6 = DecodeContext {
        add_path: vec![Family::IPV6_UNICAST],
        ..dctx()
    };
    let reach = h(
        "80 0e 20 0002 01 10 20010db8000000000000000000000001 00 0000000a 30 20010db80001 40 01 01 00 40 02 00",
    );
    let Message::Update(u) = roundtrip(&update_msg(&[], &reach, &[]), &ctx6) else {
        panic!()
    };
    assert_eq!(u.attributes.mp_reach.unwrap().nlri[0].path_id, Some(10));
    // Sending with ADD-PATH requires a path id on every NLRI.
    let missing = Update {
        nlri: vec![p("10.0.0.0/8")],
        ..Default::default()
    };
    let e = encode_to_vec(
        &Message::Update(Box::new(missing)),
        &EncodeContext {
            add_path: vec![Family::IPV4_UNICAST],
            ..Default::default()
        },
    );
    assert!(matches!(e, Err(EncodeError::Invalid(_))));
}

#[test]
fn end_of_rib_markers() {
    let v4 = update_msg(&[], &[], &[]);
    assert_eq!(v4, h("ffffffffffffffffffffffffffffffff 0017 02 0000 0000"));
    let Message::Update(u) = roundtrip(&v4, &dctx()) else {
        panic!()
    };
    assert_eq!(u.end_of_rib_family(), Some(Family::IPV4_UNICAST));
    encodes_to(
        &Message::Update(Box::new(Update::end_of_rib(Family::IPV4_UNICAST))),
        &v4,
        &dctx(),
    );

    let v6 = update_msg(&[], &h("80 0f 03 0002 01"), &[]);
    let Message::Update(u) = roundtrip(&v6, &dctx()) else {
        panic!()
    };
    assert_eq!(u.end_of_rib_family(), Some(Family::IPV6_UNICAST));
    encodes_to(
        &Message::Update(Box::new(Update::end_of_rib(Family::IPV6_UNICAST))),
        &v6,
        &dctx(),
    );

    // A withdrawal is not an End-of-RIB.
    let w = decode_update(&update_msg(&h("08 0a"), &[], &[]), &dctx());
    assert_eq!(w.end_of_rib_family(), None);
    let w6 = decode_update(&update_msg(&[], &h("80 0f 05 0002 01 08 20"), &[]), &dctx());
    assert_eq!(w6.end_of_rib_family(), None);
}

#[test]
fn unsupported_family_mp_attributes_are_kept_raw() {
    // AFI 1 SAFI 128 (VPN): not parsed, preserved.
    let attrs = h("80 0f 03 0001 80");
    let bytes = update_msg(&[], &attrs, &[]);
    let Message::Update(u) = roundtrip(&bytes, &dctx()) else {
        panic!()
    };
    assert_eq!(u.attributes.unknown[0].type_code, 15);
    assert!(u.attributes.mp_unreach.is_none());
}

#[test]
fn unknown_transitive_attribute_gets_partial_bit_when_propagated() {
    let mut a = all_attrs_value(true);
    a.unknown.push(RawAttribute {
        flags: 0x80,
        type_code: 100,
        value: vec![1],
    });
    let out = a.for_propagation();
    assert_eq!(
        out.unknown,
        vec![RawAttribute {
            flags: 0xe0,
            type_code: 99,
            value: vec![0xab, 0xcd]
        }]
    );
}

#[test]
fn extended_length_flag_on_input_is_accepted() {
    // ORIGIN sent with Extended Length (legal, unusual): decodes the same,
    // re-encodes in the short form.
    let attrs = h("50 01 0001 00 40 02 00 40 03 04 0a000001");
    let u = decode_update(&update_msg(&[], &attrs, &h("08 0a")), &dctx());
    assert!(u.errors.is_empty());
    assert_eq!(u.attributes.origin, Some(Origin::Igp));
}

#[test]
fn update_size_limit_is_an_encode_error_not_truncation() {
    let mut u = Update::default();
    u.attributes.origin = Some(Origin::Igp);
    u.attributes.as_path = Some(AsPath::default());
    u.attributes.next_hop = Some(Ipv4Addr::new(10, 0, 0, 1));
    u.nlri = (0..1000u32)
        .map(|i| {
            Nlri::new(
                ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32)
                    .unwrap()
                    .into(),
            )
        })
        .collect();
    let m = Message::Update(Box::new(u));
    let e = encode_to_vec(&m, &EncodeContext::default());
    assert!(
        matches!(e, Err(EncodeError::MessageTooLarge { max: 4096, .. })),
        "{e:?}"
    );
    let ext = EncodeContext {
        extended_message: true,
        ..Default::default()
    };
    let bytes = encode_to_vec(&m, &ext).unwrap();
    let back = decode_update(
        &bytes,
        &DecodeContext {
            extended_message: true,
            ..dctx()
        },
    );
    assert_eq!(back.nlri.len(), 1000);
    // Nothing is left in the buffer after a failed encode.
    let mut buf = bytes::BytesMut::new();
    assert!(bgpd::wire::encode(&m, &EncodeContext::default(), &mut buf).is_err());
    assert!(buf.is_empty());
}

#[test]
fn as4_merge_from_old_speaker_rfc6793() {
    // AS_PATH (2-octet view): 65001 AS_TRANS AS_TRANS 65002 ; AS4_PATH:
    // 65536 70000 65002 -> leading 65001 from AS_PATH + AS4_PATH.
    let mut a = PathAttributes {
        as_path: Some(AsPath::sequence(vec![65001, 23456, 23456, 65002])),
        as4_path: Some(AsPath::sequence(vec![65536, 70000, 65002])),
        aggregator: Some(Aggregator {
            asn: 23456,
            address: Ipv4Addr::new(1, 1, 1, 1),
        }),
        as4_aggregator: Some(Aggregator {
            asn: 70000,
            address: Ipv4Addr::new(1, 1, 1, 1),
        }),
        ..Default::default()
    };
    merge_from_two_octet(&mut a);
    assert_eq!(
        a.as_path,
        Some(AsPath::sequence(vec![65001, 65536, 70000, 65002]))
    );
    assert_eq!(a.aggregator.unwrap().asn, 70000);
    assert!(a.as4_path.is_none() && a.as4_aggregator.is_none());

    // AS4_PATH longer than AS_PATH: ignored.
    let mut b = PathAttributes {
        as_path: Some(AsPath::sequence(vec![65001])),
        as4_path: Some(AsPath::sequence(vec![65536, 70000])),
        ..Default::default()
    };
    merge_from_two_octet(&mut b);
    assert_eq!(b.as_path, Some(AsPath::sequence(vec![65001])));

    // AGGREGATOR not AS_TRANS: both AS4 attributes ignored.
    let mut c = PathAttributes {
        as_path: Some(AsPath::sequence(vec![23456])),
        as4_path: Some(AsPath::sequence(vec![65536])),
        aggregator: Some(Aggregator {
            asn: 65010,
            address: Ipv4Addr::new(1, 1, 1, 1),
        }),
        as4_aggregator: Some(Aggregator {
            asn: 70000,
            address: Ipv4Addr::new(1, 1, 1, 1),
        }),
        ..Default::default()
    };
    merge_from_two_octet(&mut c);
    assert_eq!(c.as_path, Some(AsPath::sequence(vec![23456])));
    assert_eq!(c.aggregator.unwrap().asn, 65010);
}

#[test]
fn as4_split_toward_old_speaker_and_back() {
    let orig = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentType::ConfedSequence,
                    asns: vec![65100],
                },
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![65001, 4_200_000_000],
                },
            ],
        }),
        aggregator: Some(Aggregator {
            asn: 4_200_000_000,
            address: Ipv4Addr::new(2, 2, 2, 2),
        }),
        next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
        ..Default::default()
    };
    let old = to_two_octet(&orig);
    assert_eq!(
        old.as_path.as_ref().unwrap().segments[1].asns,
        vec![65001, 23456]
    );
    // No confederation segments in AS4_PATH.
    assert_eq!(
        old.as4_path,
        Some(AsPath::sequence(vec![65001, 4_200_000_000]))
    );
    assert_eq!(old.aggregator.unwrap().asn, 23456);
    // Encodable in 2-octet form, and the receiver reconstructs the original.
    let u = Update {
        attributes: old,
        nlri: vec![p("10.0.0.0/8")],
        ..Default::default()
    };
    let bytes = encode_to_vec(&Message::Update(Box::new(u)), &EncodeContext::default()).unwrap();
    let mut back = decode_update(&bytes, &dctx()).attributes;
    merge_from_two_octet(&mut back);
    assert_eq!(back, orig);
}
