//! Helpers shared by the wire tests.
#![allow(dead_code)]

use bgpd::wire::{
    DecodeContext, DecodeError, EncodeContext, Message, Update, decode, encode_to_vec,
};

/// Hex with any whitespace, to bytes.
pub fn h(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).expect("valid hex in test vector")
}

/// A full message: marker, length (computed), type, body.
pub fn msg(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    v.push(msg_type);
    v.extend_from_slice(body);
    v
}

/// An UPDATE message from its three parts (lengths computed).
pub fn update_msg(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(attrs);
    b.extend_from_slice(nlri);
    msg(2, &b)
}

pub fn dctx() -> DecodeContext {
    DecodeContext::default()
}

pub fn dctx4() -> DecodeContext {
    DecodeContext {
        four_octet_as: true,
        ..Default::default()
    }
}

pub fn ectx_of(d: &DecodeContext) -> EncodeContext {
    EncodeContext {
        four_octet_as: d.four_octet_as,
        add_path: d.add_path.clone(),
        extended_message: d.extended_message,
    }
}

/// bytes -> value -> bytes: decodes, checks all input was consumed and that
/// encoding gives the same bytes back.
pub fn roundtrip(bytes: &[u8], d: &DecodeContext) -> Message {
    let (m, n) = decode(bytes, d).unwrap_or_else(|e| panic!("decode failed: {e}"));
    assert_eq!(n, bytes.len(), "decode must consume the whole message");
    let again = encode_to_vec(&m, &ectx_of(d)).expect("encode");
    assert_eq!(
        hex::encode(&again),
        hex::encode(bytes),
        "re-encoding differs"
    );
    m
}

/// value -> bytes -> value: encodes `m`, compares with `bytes`, decodes back.
pub fn encodes_to(m: &Message, bytes: &[u8], d: &DecodeContext) {
    let got = encode_to_vec(m, &ectx_of(d)).expect("encode");
    assert_eq!(hex::encode(&got), hex::encode(bytes));
    let (back, n) = decode(&got, d).expect("decode of own encoding");
    assert_eq!(n, got.len());
    assert_eq!(&back, m);
}

pub fn decode_update(bytes: &[u8], d: &DecodeContext) -> Update {
    match decode(bytes, d) {
        Ok((Message::Update(u), n)) => {
            assert_eq!(n, bytes.len());
            *u
        }
        other => panic!("expected UPDATE, got {other:?}"),
    }
}

pub fn decode_err(bytes: &[u8], d: &DecodeContext) -> DecodeError {
    match decode(bytes, d) {
        Err(e) => e,
        Ok(m) => panic!("expected an error, decoded {m:?}"),
    }
}

/// (code, subcode, data) of a NOTIFICATION.
pub type Notif = (u8, u8, Vec<u8>);

/// (code, subcode, data) of an error's NOTIFICATION.
pub fn notif(e: &DecodeError) -> Notif {
    (
        e.notification.code,
        e.notification.subcode,
        e.notification.data.clone(),
    )
}
