//! Malformed UPDATEs: each asserts the RFC 7606 action or the session-reset
//! NOTIFICATION (code, subcode, data) and where it was found.

mod common;

use bgpd::wire::rfc7606::classify;
use bgpd::wire::{AttributeProblem, DecodeContext, UpdateAction, UpdateError};
use common::*;

use UpdateAction::*;

const ORIGIN: &str = "40 01 01 00";
const AS_PATH: &str = "40 02 04 02 01 fde9";
const NEXT_HOP: &str = "40 03 04 0a000001";
const NLRI: &str = "18 0a0200";

fn attrs(parts: &[&str]) -> Vec<u8> {
    parts.iter().flat_map(|p| h(p)).collect()
}

/// Decode an UPDATE with these attributes and one NLRI; return its errors.
fn errors_of(parts: &[&str], ctx: &DecodeContext) -> Vec<UpdateError> {
    decode_update(&update_msg(&[], &attrs(parts), &h(NLRI)), ctx).errors
}

/// The single error's (type, action, notification).
fn single(parts: &[&str]) -> (u8, UpdateAction, (u8, u8, Vec<u8>)) {
    let e = errors_of(parts, &dctx());
    assert_eq!(e.len(), 1, "{e:?}");
    let n = &e[0].notification;
    (
        e[0].type_code,
        e[0].action,
        (n.code, n.subcode, n.data.clone()),
    )
}

#[test]
fn well_formed_baseline_has_no_errors() {
    assert!(errors_of(&[ORIGIN, AS_PATH, NEXT_HOP], &dctx()).is_empty());
}

#[test]
fn bad_origin_value_and_length_treat_as_withdraw() {
    assert_eq!(
        single(&["40 01 01 03", AS_PATH, NEXT_HOP]),
        (1, TreatAsWithdraw, (3, 6, h("40 01 01 03")))
    );
    assert_eq!(
        single(&["40 01 02 0000", AS_PATH, NEXT_HOP]),
        (1, TreatAsWithdraw, (3, 5, h("40 01 02 0000")))
    );
}

#[test]
fn bad_flags_are_malformed_with_the_attribute_as_data() {
    // ORIGIN marked optional: RFC 7606 3.c, 7.1.
    assert_eq!(
        single(&["c0 01 01 00", AS_PATH, NEXT_HOP]),
        (1, TreatAsWithdraw, (3, 4, h("c0 01 01 00")))
    );
    // AGGREGATOR marked non-transitive: attribute discard (7.7).
    assert_eq!(
        single(&[ORIGIN, AS_PATH, NEXT_HOP, "80 07 06 fde9 0a000001"]),
        (7, AttributeDiscard, (3, 4, h("80 07 06 fde9 0a000001")))
    );
    // Partial bit alone is not a conflict (7606 only checks O and T).
    assert!(errors_of(&[ORIGIN, AS_PATH, NEXT_HOP, "e0 08 04 fde90001"], &dctx()).is_empty());
}

#[test]
fn bad_as_path_segments_treat_as_withdraw_with_3_11() {
    for bad in [
        "40 02 04 05 01 fde9",    // unknown segment type 5
        "40 02 02 02 00",         // zero segment length
        "40 02 04 02 02 fde9",    // segment overruns the attribute
        "40 02 05 02 01 fde9 02", // one dangling octet
    ] {
        assert_eq!(
            single(&[ORIGIN, bad, NEXT_HOP]),
            (2, TreatAsWithdraw, (3, 11, vec![])),
            "{bad}"
        );
    }
}

#[test]
fn bad_next_hop_treat_as_withdraw() {
    for nh in ["00000000", "e0000001", "ffffffff", "f0000001"] {
        let a = format!("40 03 04 {nh}");
        assert_eq!(
            single(&[ORIGIN, AS_PATH, &a]),
            (3, TreatAsWithdraw, (3, 8, h(&a))),
            "{nh}"
        );
    }
    assert_eq!(
        single(&[ORIGIN, AS_PATH, "40 03 05 0a00000100"]),
        (3, TreatAsWithdraw, (3, 5, h("40 03 05 0a00000100")))
    );
}

#[test]
fn bad_lengths_per_attribute() {
    // (attribute, type code, action, subcode). RFC 4271 6.3: a length that
    // conflicts with the type's expected length is Attribute Length Error
    // (5); an AS4_PATH whose segments do not parse is Malformed AS_PATH
    // (11, as for AS_PATH; RFC 6793 6, RFC 7606 7.2).
    let cases: &[(&str, u8, UpdateAction, u8)] = &[
        ("80 04 03 000064", 4, TreatAsWithdraw, 5), // MED (7.4)
        ("40 05 02 0064", 5, TreatAsWithdraw, 5),   // LOCAL_PREF (7.5)
        ("40 06 01 00", 6, AttributeDiscard, 5),    // ATOMIC_AGGREGATE (7.6)
        ("c0 07 07 fde9 0a000001 00", 7, AttributeDiscard, 5), // AGGREGATOR (7.7)
        ("c0 08 03 fde900", 8, TreatAsWithdraw, 5), // COMMUNITIES (7.8)
        ("c0 08 00", 8, TreatAsWithdraw, 5),        // zero length
        ("80 09 03 0a0000", 9, TreatAsWithdraw, 5), // ORIGINATOR_ID (7.9)
        ("80 0a 06 0a0000010a00", 10, TreatAsWithdraw, 5), // CLUSTER_LIST (7.10)
        ("c0 10 04 00020001", 16, TreatAsWithdraw, 5), // EXT COMMUNITIES (7.14)
        ("c0 20 08 0000fde900000001", 32, TreatAsWithdraw, 5), // LARGE (RFC 8092 5)
        ("c0 11 03 02 01 00", 17, AttributeDiscard, 11), // AS4_PATH (RFC 6793 7)
        ("c0 12 06 fde9 0a000001", 18, AttributeDiscard, 5), // AS4_AGGREGATOR
    ];
    for (a, code, action, subcode) in cases {
        let e = errors_of(&[ORIGIN, AS_PATH, NEXT_HOP, a], &dctx());
        assert_eq!(e.len(), 1, "{a}: {e:?}");
        let n = &e[0].notification;
        assert_eq!(
            (e[0].type_code, e[0].action, n.code, n.subcode),
            (*code, *action, 3, *subcode),
            "{a}"
        );
    }
}

#[test]
fn discarded_attribute_is_absent_from_the_result() {
    let u = decode_update(
        &update_msg(
            &[],
            &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "40 06 01 00"]),
            &h(NLRI),
        ),
        &dctx(),
    );
    assert_eq!(u.action(), Some(AttributeDiscard));
    assert!(!u.attributes.atomic_aggregate);
    assert_eq!(u.nlri.len(), 1);
}

#[test]
fn duplicate_attributes() {
    // A second ORIGIN is discarded, the first kept (RFC 7606 3.g).
    let u = decode_update(
        &update_msg(
            &[],
            &attrs(&[ORIGIN, "40 01 01 02", AS_PATH, NEXT_HOP]),
            &h(NLRI),
        ),
        &dctx(),
    );
    assert_eq!(u.attributes.origin, Some(bgpd::wire::Origin::Igp));
    assert_eq!(u.errors.len(), 1);
    assert_eq!(u.errors[0].problem, AttributeProblem::Duplicate);
    assert_eq!(u.errors[0].action, AttributeDiscard);
    assert_eq!(u.errors[0].offset, 19 + 4 + 4);
    // A second MP_UNREACH_NLRI resets the session with 3/1.
    let e = decode_err(
        &update_msg(&[], &h("80 0f 03 0002 01 80 0f 03 0002 01"), &[]),
        &dctx(),
    );
    assert_eq!((notif(&e), e.offset), ((3, 1, vec![]), 29));
}

#[test]
fn missing_well_known_attributes() {
    let e = errors_of(&[ORIGIN, AS_PATH], &dctx());
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].type_code, e[0].action), (3, TreatAsWithdraw));
    assert_eq!(notif_of(&e[0]), (3, 3, vec![3]));
    // All three missing.
    let e = errors_of(&[], &dctx());
    let codes: Vec<u8> = e.iter().map(|x| x.type_code).collect();
    assert_eq!(codes, [1, 2, 3]);
    // MP_REACH needs ORIGIN and AS_PATH but not NEXT_HOP.
    let reach = "80 0e 15 0002 01 10 20010db8000000000000000000000001 00";
    let no_nlri = decode_update(&update_msg(&[], &h(reach), &[]), &dctx());
    assert!(no_nlri.errors.is_empty(), "no NLRI, nothing required");
    let with = "80 0e 1c 0002 01 10 20010db8000000000000000000000001 00 30 20010db80001";
    let u = decode_update(&update_msg(&[], &h(with), &[]), &dctx());
    let codes: Vec<u8> = u.errors.iter().map(|x| x.type_code).collect();
    assert_eq!(codes, [1, 2]);
    // A withdrawal-only UPDATE needs nothing.
    assert!(
        decode_update(&update_msg(&h("08 0a"), &[], &[]), &dctx())
            .errors
            .is_empty()
    );
}

fn notif_of(e: &UpdateError) -> (u8, u8, Vec<u8>) {
    (
        e.notification.code,
        e.notification.subcode,
        e.notification.data.clone(),
    )
}

#[test]
fn malformed_mp_reach_resets_the_session() {
    // IPv6 next hop length 8: NLRI cannot be located (RFC 7606 7.11).
    let bad = "80 0e 0f 0002 01 08 2001 0db8 0000 0001 00 08 20";
    let e = decode_err(&update_msg(&[], &h(bad), &[]), &dctx());
    assert_eq!(notif(&e), (3, 9, h(bad)));
    assert_eq!(e.offset, 23);
    // Prefix length 129 inside MP_REACH.
    let bad = "80 0e 17 0002 01 10 20010db8000000000000000000000001 00 81 20010db80001";
    assert_eq!(
        notif(&decode_err(&update_msg(&[], &h(bad), &[]), &dctx())).1,
        9
    );
    // Truncated AFI/SAFI in MP_UNREACH.
    let bad = "80 0f 02 0002";
    assert_eq!(
        notif(&decode_err(&update_msg(&[], &h(bad), &[]), &dctx())).1,
        9
    );
}

#[test]
fn multicast_mp_next_hop_treats_as_withdraw_but_keeps_nlri() {
    let reach = "80 0e 1c 0002 01 10 ff020000000000000000000000000001 00 30 20010db80001";
    let u = decode_update(
        &update_msg(&[], &attrs(&[reach, ORIGIN, "40 02 00"]), &[]),
        &dctx(),
    );
    assert_eq!(u.action(), Some(TreatAsWithdraw));
    assert_eq!(
        u.attributes.mp_reach.unwrap().nlri.len(),
        1,
        "NLRI kept so it can be withdrawn"
    );
}

#[test]
fn nlri_and_withdrawn_errors_are_invalid_network_field() {
    // /33 in NLRI.
    let e = decode_err(
        &update_msg(
            &[],
            &attrs(&[ORIGIN, AS_PATH, NEXT_HOP]),
            &h("21 0a000000 00"),
        ),
        &dctx(),
    );
    assert_eq!((notif(&e), e.offset), ((3, 10, vec![]), 19 + 4 + 18));
    // Truncated prefix in withdrawn routes.
    let e = decode_err(&update_msg(&h("18 0a01"), &[], &[]), &dctx());
    assert_eq!((notif(&e), e.offset), ((3, 10, vec![]), 21));
}

#[test]
fn update_length_fields_too_large_are_3_1() {
    // Withdrawn Routes Length 200 in a tiny message.
    let mut bytes = update_msg(&[], &[], &[]);
    bytes[19..21].copy_from_slice(&200u16.to_be_bytes());
    let e = decode_err(&bytes, &dctx());
    assert_eq!((notif(&e), e.offset), ((3, 1, vec![]), 19));
    // Total Path Attribute Length beyond the message.
    let mut bytes = update_msg(&[], &[], &[]);
    bytes[21..23].copy_from_slice(&1u16.to_be_bytes());
    let e = decode_err(&bytes, &dctx());
    assert_eq!((notif(&e), e.offset), ((3, 1, vec![]), 21));
}

#[test]
fn attribute_overrunning_the_list_treats_as_withdraw_and_keeps_nlri() {
    // RFC 7606 4: the last attribute claims 9 bytes, 4 remain.
    let u = decode_update(
        &update_msg(
            &[],
            &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 08 09 fde90001"]),
            &h(NLRI),
        ),
        &dctx(),
    );
    assert_eq!(u.action(), Some(TreatAsWithdraw));
    assert_eq!(u.errors[0].problem, AttributeProblem::ListOverrun);
    assert_eq!(u.nlri.len(), 1);
    // Only two header octets left.
    let u = decode_update(
        &update_msg(&[], &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "c0 08"]), &h(NLRI)),
        &dctx(),
    );
    assert_eq!(u.errors[0].problem, AttributeProblem::ListOverrun);
}

#[test]
fn unrecognized_well_known_attribute_resets_with_3_2() {
    let e = decode_err(
        &update_msg(
            &[],
            &attrs(&[ORIGIN, AS_PATH, NEXT_HOP, "40 63 01 00"]),
            &h(NLRI),
        ),
        &dctx(),
    );
    assert_eq!(notif(&e), (3, 2, h("40 63 01 00")));
}

#[test]
fn as4_attributes_from_a_new_speaker_are_discarded() {
    let as_path4 = "40 02 06 02 01 0000fde9";
    let e = errors_of(
        &[ORIGIN, as_path4, NEXT_HOP, "c0 11 06 02 01 00010000"],
        &dctx4(),
    );
    assert_eq!((e[0].type_code, e[0].action), (17, AttributeDiscard));
    assert_eq!(e[0].problem, AttributeProblem::FromNewSpeaker);
}

#[test]
fn ibgp_only_attributes_from_external_peer_are_discarded() {
    let ctx = DecodeContext {
        external_peer: true,
        ..dctx()
    };
    let e = errors_of(
        &[
            ORIGIN,
            AS_PATH,
            NEXT_HOP,
            "40 05 04 00000064",
            "80 09 04 0a000002",
            "80 0a 04 0a000003",
        ],
        &ctx,
    );
    let got: Vec<_> = e.iter().map(|x| (x.type_code, x.action)).collect();
    assert_eq!(
        got,
        [
            (5, AttributeDiscard),
            (9, AttributeDiscard),
            (10, AttributeDiscard)
        ]
    );
}

#[test]
fn strongest_action_wins() {
    let u = decode_update(
        &update_msg(
            &[],
            &attrs(&["40 06 01 00", "40 01 01 07", AS_PATH, NEXT_HOP]),
            &h(NLRI),
        ),
        &dctx(),
    );
    assert_eq!(u.errors.len(), 2);
    assert_eq!(u.action(), Some(TreatAsWithdraw));
}

#[test]
fn classification_table() {
    use AttributeProblem as P;
    let bad_len = P::BadLength {
        length: 9,
        expected: "4",
    };
    for (code, want) in [
        (1, TreatAsWithdraw),
        (2, TreatAsWithdraw),
        (3, TreatAsWithdraw),
        (4, TreatAsWithdraw),
        (5, TreatAsWithdraw),
        (6, AttributeDiscard),
        (7, AttributeDiscard),
        (8, TreatAsWithdraw),
        (9, TreatAsWithdraw),
        (10, TreatAsWithdraw),
        (14, SessionReset),
        (15, SessionReset),
        (16, TreatAsWithdraw),
        (17, AttributeDiscard),
        (18, AttributeDiscard),
        (32, TreatAsWithdraw),
    ] {
        assert_eq!(classify(code, &bad_len), want, "type {code}");
    }
    assert_eq!(classify(1, &P::Duplicate), AttributeDiscard);
    assert_eq!(classify(3, &P::Missing), TreatAsWithdraw);
    assert!(SessionReset > TreatAsWithdraw && TreatAsWithdraw > AttributeDiscard);
}
