//! BGP-4 wire format: message types, decode and encode.
//!
//! Decoding is pure: [`decode`] takes one complete message and a
//! [`DecodeContext`] describing what the session negotiated; [`encode`]
//! appends one message to a buffer. Stream readers use [`peek_header`] to
//! find message boundaries first.

pub mod attribute;
pub mod capability;
pub mod error;
pub mod header;
pub mod nlri;
pub mod notification;
pub mod open;
mod reader;
pub mod rfc7606;
pub mod route_refresh;
pub mod update;

use bytes::BytesMut;

pub use attribute::{
    Aggregator, AsPath, AsSegment, Community, ExtCommunity, LargeCommunity, MpReach, MpUnreach,
    NextHop, Origin, PathAttributes, RawAttribute, SegmentType,
};
pub use capability::{AddPathMode, Capability, GrFamily, GracefulRestart};
pub use error::{AttributeProblem, DecodeError, DecodeReason, EncodeError};
pub use header::{HEADER_LEN, Header, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, peek_header};
pub use nlri::{Afi, Family, Nlri, Safi};
pub use notification::Notification;
pub use open::{AS_TRANS, BGP_VERSION, Open};
pub use rfc7606::{UpdateAction, UpdateError};
pub use route_refresh::{RefreshSubtype, RouteRefresh};
pub use update::Update;

use header::msg_type;
use notification::{code, header_subcode, route_refresh_subcode};
use reader::Reader;

/// One BGP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    /// Boxed: an UPDATE is much larger than the other messages.
    Update(Box<Update>),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Message {
    pub fn msg_type(&self) -> u8 {
        match self {
            Message::Open(_) => msg_type::OPEN,
            Message::Update(_) => msg_type::UPDATE,
            Message::Notification(_) => msg_type::NOTIFICATION,
            Message::Keepalive => msg_type::KEEPALIVE,
            Message::RouteRefresh(_) => msg_type::ROUTE_REFRESH,
        }
    }
}

/// What the session negotiated that changes how received bytes are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeContext {
    /// RFC 6793: AS numbers in AS_PATH/AGGREGATOR are 4 octets.
    pub four_octet_as: bool,
    /// RFC 7911: families whose received NLRI carry path identifiers.
    pub add_path: Vec<Family>,
    /// RFC 8654: messages up to 65535 octets.
    pub extended_message: bool,
    /// The peer is in another AS (LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST
    /// are then discarded, RFC 7606 7.5/7.9/7.10).
    pub external_peer: bool,
}

impl DecodeContext {
    pub fn add_path_for(&self, f: Family) -> bool {
        self.add_path.contains(&f)
    }

    pub fn max_message_len(&self) -> usize {
        max_message_len(self.extended_message)
    }
}

/// RFC 4271 4.1 / RFC 8654: the largest message either side may send.
fn max_message_len(extended_message: bool) -> usize {
    if extended_message {
        MAX_EXTENDED_MESSAGE_LEN
    } else {
        MAX_MESSAGE_LEN
    }
}

/// What the session negotiated that changes how messages are written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodeContext {
    pub four_octet_as: bool,
    /// RFC 7911: families whose sent NLRI carry path identifiers.
    pub add_path: Vec<Family>,
    pub extended_message: bool,
}

impl EncodeContext {
    pub fn add_path_for(&self, f: Family) -> bool {
        self.add_path.contains(&f)
    }

    pub fn max_message_len(&self) -> usize {
        max_message_len(self.extended_message)
    }
}

/// Decode the message at the start of `buf`; returns it and its length.
/// `buf` must hold the whole message (see [`peek_header`]).
pub fn decode(buf: &[u8], ctx: &DecodeContext) -> Result<(Message, usize), DecodeError> {
    let incomplete = |length: usize| {
        DecodeError::new(
            Notification::new(
                code::MESSAGE_HEADER,
                header_subcode::BAD_MESSAGE_LENGTH,
                Vec::new(),
            ),
            buf.len(),
            DecodeReason::Incomplete {
                length,
                available: buf.len(),
            },
        )
    };
    let h = peek_header(buf, ctx.max_message_len())?.ok_or_else(|| incomplete(HEADER_LEN))?;
    let len = h.length as usize;
    if buf.len() < len {
        return Err(incomplete(len));
    }
    let body = &buf[HEADER_LEN..len];
    let msg = match h.msg_type {
        msg_type::OPEN => {
            let mut r = Reader::new(body, HEADER_LEN, (code::OPEN_MESSAGE, 0));
            Message::Open(Open::decode(&mut r)?)
        }
        msg_type::UPDATE => {
            let r = Reader::new(body, HEADER_LEN, (code::UPDATE_MESSAGE, 1));
            Message::Update(Box::new(Update::decode(r, ctx)?))
        }
        msg_type::NOTIFICATION => {
            let mut r = Reader::new(body, HEADER_LEN, (code::MESSAGE_HEADER, 2));
            Message::Notification(Notification::decode(&mut r)?)
        }
        msg_type::KEEPALIVE => Message::Keepalive,
        msg_type::ROUTE_REFRESH => {
            // RFC 7313 5: a length other than 4 (without ORF) is an error
            // with the whole message as data.
            if body.len() != 4 {
                return Err(DecodeError::new(
                    Notification::new(
                        code::ROUTE_REFRESH,
                        route_refresh_subcode::INVALID_MESSAGE_LENGTH,
                        buf[..len].to_vec(),
                    ),
                    16,
                    DecodeReason::RouteRefreshLength(h.length),
                ));
            }
            let mut r = Reader::new(body, HEADER_LEN, (code::ROUTE_REFRESH, 1));
            Message::RouteRefresh(RouteRefresh::decode(&mut r)?)
        }
        _ => unreachable!("peek_header rejects unknown types"),
    };
    Ok((msg, len))
}

/// Append `msg` to `out`. On error nothing is appended.
pub fn encode(msg: &Message, ctx: &EncodeContext, out: &mut BytesMut) -> Result<(), EncodeError> {
    let start = header::begin_message(out, msg.msg_type());
    let result = match msg {
        Message::Open(o) => o.encode_body(out),
        Message::Update(u) => u.encode_body(ctx, out),
        Message::Notification(n) => {
            n.encode_body(out);
            Ok(())
        }
        Message::Keepalive => Ok(()),
        Message::RouteRefresh(rr) => {
            rr.encode_body(out);
            Ok(())
        }
    };
    if let Err(e) = result {
        out.truncate(start);
        return Err(e);
    }
    // RFC 8654 4: OPEN and KEEPALIVE stay within 4096 octets.
    let max = match msg {
        Message::Open(_) | Message::Keepalive => MAX_MESSAGE_LEN,
        _ => ctx.max_message_len(),
    };
    header::finish_message(out, start, max)
}

/// Encode into a fresh buffer.
pub fn encode_to_vec(msg: &Message, ctx: &EncodeContext) -> Result<Vec<u8>, EncodeError> {
    let mut b = BytesMut::new();
    encode(msg, ctx, &mut b)?;
    Ok(b.to_vec())
}
