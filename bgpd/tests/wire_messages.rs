//! Vectors for OPEN (and every capability), KEEPALIVE, NOTIFICATION and
//! ROUTE-REFRESH, both directions, plus header and OPEN errors.

mod common;

use std::net::Ipv4Addr;

use bgpd::wire::{
    AddPathMode, Capability, DecodeReason, EncodeError, Family, GrFamily, GracefulRestart, Message,
    Notification, Open, RefreshSubtype, RouteRefresh, decode, encode_to_vec, peek_header,
};
use common::*;

const OPEN_CAPS: &str = "
    0104 0001 0001
    0104 0002 0001
    0200
    4104 0000fde9
    4504 0001 0103
    4006 8078 0001 0180
    0600
    4600
    4707 0001 0180 000e10";

fn open_bytes() -> Vec<u8> {
    let caps = h(OPEN_CAPS);
    let mut body = h("04 fde9 00b4 0a000001");
    body.push((caps.len() + 2) as u8);
    body.push(2);
    body.push(caps.len() as u8);
    body.extend_from_slice(&caps);
    msg(1, &body)
}

fn open_value() -> Open {
    Open {
        version: 4,
        my_as: 65001,
        hold_time: 180,
        bgp_id: Ipv4Addr::new(10, 0, 0, 1),
        capability_params: vec![vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(65001),
            Capability::AddPath(vec![(Family::IPV4_UNICAST, AddPathMode::Both)]),
            Capability::GracefulRestart(GracefulRestart {
                restarting: true,
                notification: false,
                restart_time: 120,
                families: vec![GrFamily {
                    family: Family::IPV4_UNICAST,
                    forwarding_preserved: true,
                }],
            }),
            Capability::ExtendedMessage,
            Capability::EnhancedRouteRefresh,
            Capability::Unknown {
                code: 71,
                value: h("0001 0180 000e10"),
            },
        ]],
    }
}

#[test]
fn open_with_every_capability_both_ways() {
    let bytes = open_bytes();
    let m = roundtrip(&bytes, &dctx());
    assert_eq!(m, Message::Open(open_value()));
    encodes_to(&Message::Open(open_value()), &bytes, &dctx());
}

#[test]
fn open_one_parameter_per_capability_keeps_grouping() {
    // GoBGP style: each capability in its own optional parameter.
    let body = h("04 fde9 00b4 0a000001 14 0206 0104 00010001 0206 4104 0000fde9 0202 0200");
    let bytes = msg(1, &body);
    let Message::Open(o) = roundtrip(&bytes, &dctx()) else {
        panic!()
    };
    assert_eq!(o.capability_params.len(), 3);
    assert_eq!(o.asn(), 65001);
}

#[test]
fn open_four_octet_as_uses_as_trans() {
    let o = Open::new(
        4_200_000_000,
        90,
        Ipv4Addr::new(1, 2, 3, 4),
        vec![Capability::FourOctetAs(4_200_000_000)],
    );
    assert_eq!(o.my_as, 23456);
    let bytes = msg(1, &h("04 5ba0 005a 01020304 08 0206 4104 fa56ea00"));
    encodes_to(&Message::Open(o.clone()), &bytes, &dctx());
    assert_eq!(o.asn(), 4_200_000_000);
}

#[test]
fn open_without_parameters() {
    let bytes = msg(1, &h("04 fde9 0000 0a000001 00"));
    let Message::Open(o) = roundtrip(&bytes, &dctx()) else {
        panic!()
    };
    assert_eq!(o.hold_time, 0);
    assert!(o.capability_params.is_empty());
}

#[test]
fn open_extended_optional_parameters_rfc9072() {
    // 40 unknown capabilities of 8 bytes: 320 bytes of parameters.
    let caps: Vec<Capability> = (0..40)
        .map(|i| Capability::Unknown {
            code: 200,
            value: vec![i; 6],
        })
        .collect();
    let o = Open::new(65001, 180, Ipv4Addr::new(10, 0, 0, 1), caps);
    let bytes = encode_to_vec(&Message::Open(o.clone()), &Default::default()).unwrap();
    // Non-Ext OP Len 255, Non-Ext OP Type 255, Extended length 323
    // (one parameter: type 1 + length 2 + 320), parameter type 2, length 320.
    assert_eq!(&bytes[28..35], &h("ff ff 0143 02 0140")[..]);
    let (back, n) = decode(&bytes, &dctx()).unwrap();
    assert_eq!(n, bytes.len());
    assert_eq!(back, Message::Open(o));
}

#[test]
fn open_extended_encoding_of_small_parameters_is_accepted() {
    let ext = msg(
        1,
        &h("04 fde9 00b4 0a000001 ff ff 0009 02 0006 4104 0000fde9"),
    );
    let short = msg(1, &h("04 fde9 00b4 0a000001 08 02 06 4104 0000fde9"));
    let (a, _) = decode(&ext, &dctx()).unwrap();
    let (b, _) = decode(&short, &dctx()).unwrap();
    assert_eq!(a, b);
    // Re-encoded in the normal form, as RFC 9072 3 asks when it fits.
    assert_eq!(encode_to_vec(&a, &Default::default()).unwrap(), short);
}

#[test]
fn open_errors_carry_rfc4271_notifications() {
    let cases: &[(&str, Notif, usize)] = &[
        // Version 3: 2/1 with the largest supported version as data.
        ("03 fde9 00b4 0a000001 00", (2, 1, h("0004")), 19),
        ("04 fde9 0001 0a000001 00", (2, 6, vec![]), 22),
        ("04 fde9 0002 0a000001 00", (2, 6, vec![]), 22),
        ("04 fde9 00b4 00000000 00", (2, 3, vec![]), 24),
        // Optional parameter type 1 (authentication, deprecated).
        ("04 fde9 00b4 0a000001 03 01 01 00", (2, 4, vec![]), 29),
        // Opt Parm Len says 5, 3 present.
        ("04 fde9 00b4 0a000001 05 02 01 02", (2, 0, vec![]), 28),
    ];
    for (body, want, offset) in cases {
        let e = decode_err(&msg(1, &h(body)), &dctx());
        assert_eq!(&notif(&e), want, "{body}: {e}");
        assert_eq!(e.offset, *offset, "{body}: {e}");
    }
    // Multiprotocol capability with length 3.
    let e = decode_err(
        &msg(1, &h("04 fde9 00b4 0a000001 07 02 05 0103 000100")),
        &dctx(),
    );
    assert_eq!(notif(&e).0, 2);
    assert!(matches!(
        e.reason,
        DecodeReason::MalformedCapability { code: 1, .. }
    ));
}

#[test]
fn add_path_with_invalid_mode_is_kept_as_unknown() {
    // RFC 7911 4: Send/Receive value 0 -> capability treated as not received.
    let bytes = msg(1, &h("04 fde9 00b4 0a000001 08 02 06 4504 00010100"));
    let Message::Open(o) = roundtrip(&bytes, &dctx()) else {
        panic!()
    };
    assert_eq!(
        o.capability_params[0][0],
        Capability::Unknown {
            code: 69,
            value: h("00010100")
        }
    );
}

#[test]
fn graceful_restart_time_over_12_bits_is_an_encode_error() {
    let o = Open::new(
        1,
        90,
        Ipv4Addr::new(1, 1, 1, 1),
        vec![Capability::GracefulRestart(GracefulRestart {
            restarting: false,
            notification: true,
            restart_time: 4096,
            families: vec![],
        })],
    );
    assert!(matches!(
        encode_to_vec(&Message::Open(o), &Default::default()),
        Err(EncodeError::ValueTooLarge { max: 4095, .. })
    ));
}

#[test]
fn graceful_restart_notification_bit_and_no_families() {
    let bytes = msg(1, &h("04 fde9 00b4 0a000001 06 02 04 4002 4078"));
    let Message::Open(o) = roundtrip(&bytes, &dctx()) else {
        panic!()
    };
    let Capability::GracefulRestart(gr) = &o.capability_params[0][0] else {
        panic!()
    };
    assert!(gr.notification && !gr.restarting);
    assert_eq!(gr.restart_time, 120);
}

#[test]
fn keepalive_both_ways() {
    let bytes = h("ffffffffffffffffffffffffffffffff 0013 04");
    assert_eq!(roundtrip(&bytes, &dctx()), Message::Keepalive);
    encodes_to(&Message::Keepalive, &bytes, &dctx());
}

#[test]
fn notification_both_ways() {
    // Cease / Administrative Shutdown with an RFC 9003 message "bye".
    let bytes = msg(3, &h("06 02 03 627965"));
    let n = Notification::new(6, 2, h("03 627965"));
    assert_eq!(roundtrip(&bytes, &dctx()), Message::Notification(n.clone()));
    encodes_to(&Message::Notification(n), &bytes, &dctx());
    // Max prefixes: AFI, SAFI, limit (RFC 4486 4).
    let n = Notification::cease_max_prefixes(Family::IPV6_UNICAST, 1000);
    encodes_to(
        &Message::Notification(n),
        &msg(3, &h("06 01 0002 01 000003e8")),
        &dctx(),
    );
}

#[test]
fn route_refresh_subtypes_both_ways() {
    for (sub, byte) in [
        (RefreshSubtype::Request, "00"),
        (RefreshSubtype::BeginOfRefresh, "01"),
        (RefreshSubtype::EndOfRefresh, "02"),
        (RefreshSubtype::Other(9), "09"),
    ] {
        let bytes = msg(5, &h(&format!("0002 {byte} 01")));
        let rr = RouteRefresh {
            family: Family::IPV6_UNICAST,
            subtype: sub,
        };
        assert_eq!(roundtrip(&bytes, &dctx()), Message::RouteRefresh(rr));
        encodes_to(&Message::RouteRefresh(rr), &bytes, &dctx());
    }
}

#[test]
fn route_refresh_bad_length_is_7_1_with_the_message() {
    let bytes = msg(5, &h("0001 00 01 00"));
    let e = decode_err(&bytes, &dctx());
    assert_eq!(notif(&e), (7, 1, bytes.clone()));
}

#[test]
fn header_errors() {
    let mut bad_marker = msg(4, &[]);
    bad_marker[3] = 0;
    let e = decode_err(&bad_marker, &dctx());
    assert_eq!(notif(&e), (1, 1, vec![]));

    let e = decode_err(&msg(9, &[]), &dctx());
    assert_eq!((notif(&e), e.offset), ((1, 3, vec![9]), 18));

    // KEEPALIVE of 20 bytes.
    let e = decode_err(&msg(4, &[0]), &dctx());
    assert_eq!(notif(&e), (1, 2, h("0014")));

    // Length field 18 (< 19).
    let mut short = msg(4, &[]);
    short[17] = 18;
    let e = decode_err(&short, &dctx());
    assert_eq!((notif(&e), e.offset), ((1, 2, h("0012")), 16));

    // OPEN shorter than 29.
    let e = decode_err(&msg(1, &h("04 fde9 00b4 0a000001")), &dctx());
    assert_eq!(notif(&e), (1, 2, h("001c")));

    // NOTIFICATION shorter than 21.
    let e = decode_err(&msg(3, &h("06")), &dctx());
    assert_eq!(notif(&e), (1, 2, h("0014")));
}

#[test]
fn message_size_limits_follow_extended_message() {
    let big = update_msg(&[], &[], &vec![0u8; 5000]); // 5000 default routes
    let e = decode_err(&big, &dctx());
    assert_eq!(notif(&e), (1, 2, (big.len() as u16).to_be_bytes().to_vec()));
    let ext = bgpd::wire::DecodeContext {
        extended_message: true,
        ..dctx()
    };
    // Accepted with the capability (the routes then lack attributes).
    let u = decode_update(&big, &ext);
    assert_eq!(u.nlri.len(), 5000);
    // RFC 8654: OPEN and KEEPALIVE stay at 4096 even then.
    let mut huge_keepalive = msg(4, &[]);
    huge_keepalive[16..18].copy_from_slice(&5000u16.to_be_bytes());
    assert_eq!(notif(&decode_err(&huge_keepalive, &ext)).1, 2);
}

#[test]
fn peek_header_supports_stream_framing() {
    let bytes = msg(4, &[]);
    assert_eq!(peek_header(&bytes[..10], 4096).unwrap(), None);
    let hd = peek_header(&bytes, 4096).unwrap().unwrap();
    assert_eq!((hd.length, hd.msg_type), (19, 4));
    // Complete header, incomplete body: decode reports Incomplete.
    let open = open_bytes();
    let e = decode_err(&open[..40], &dctx());
    assert!(
        matches!(e.reason, DecodeReason::Incomplete { length, available: 40 } if length == open.len())
    );
}
