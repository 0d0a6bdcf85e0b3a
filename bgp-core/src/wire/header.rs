//! Message header (RFC 4271 section 4.1) and framing.

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, DecodeReason, EncodeError};
use super::notification::{Notification, code, header_subcode};

/// Length of the fixed header.
pub const HEADER_LEN: usize = 19;
/// Maximum message size without the Extended Message capability.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Maximum message size with the Extended Message capability (RFC 8654).
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;

/// Message type codes (RFC 4271 4.1, RFC 2918 3).
pub mod msg_type {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// +                                                               +
/// |                           Marker                              |
/// +                                                               +
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |          Length               |      Type     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub length: u16,
    pub msg_type: u8,
}

fn header_error(subcode: u8, data: Vec<u8>, offset: usize, reason: DecodeReason) -> DecodeError {
    DecodeError::new(
        Notification::new(code::MESSAGE_HEADER, subcode, data),
        offset,
        reason,
    )
}

/// Validate the header at the start of `buf`.
///
/// Returns `Ok(None)` while fewer than 19 bytes are buffered, so a stream
/// reader can call it on a partial buffer: `Ok(Some(h))` means the whole
/// message is `h.length` bytes (which may not all be buffered yet).
pub fn peek_header(buf: &[u8], max_len: usize) -> Result<Option<Header>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    // RFC 4271 6.1: marker not all ones -> Connection Not Synchronized.
    if buf[..16].iter().any(|&b| b != 0xff) {
        return Err(header_error(
            header_subcode::CONNECTION_NOT_SYNCHRONIZED,
            Vec::new(),
            0,
            DecodeReason::BadMarker,
        ));
    }
    let length = u16::from_be_bytes([buf[16], buf[17]]);
    let msg_type = buf[18];
    let min = match msg_type {
        super::header::msg_type::OPEN => 29,
        msg_type::UPDATE => 23,
        msg_type::NOTIFICATION => 21,
        msg_type::KEEPALIVE => 19,
        // RFC 7313 5 reports a bad ROUTE-REFRESH length with its own code;
        // the header check only enforces the generic minimum.
        msg_type::ROUTE_REFRESH => 19,
        t => {
            // RFC 4271 6.1: Bad Message Type, data = the type octet.
            return Err(header_error(
                header_subcode::BAD_MESSAGE_TYPE,
                vec![t],
                18,
                DecodeReason::BadType(t),
            ));
        }
    };
    // RFC 8654 4: OPEN and KEEPALIVE never exceed 4096, whatever was negotiated.
    let max = match msg_type {
        msg_type::OPEN | msg_type::KEEPALIVE => MAX_MESSAGE_LEN,
        _ => max_len,
    };
    let bad = (length as usize) < min
        || (length as usize) > max
        || (msg_type == msg_type::KEEPALIVE && length as usize != HEADER_LEN);
    if bad {
        // RFC 4271 6.1: Bad Message Length, data = the erroneous Length field.
        return Err(header_error(
            header_subcode::BAD_MESSAGE_LENGTH,
            length.to_be_bytes().to_vec(),
            16,
            DecodeReason::BadLength { length, msg_type },
        ));
    }
    Ok(Some(Header { length, msg_type }))
}

/// Write a header with a zero length; [`finish_message`] fills it in.
pub(crate) fn begin_message(out: &mut BytesMut, msg_type: u8) -> usize {
    let start = out.len();
    out.put_slice(&[0xff; 16]);
    out.put_u16(0);
    out.put_u8(msg_type);
    start
}

/// Patch the length of the message started at `start`, refusing sizes over
/// `max` (the message is removed from `out` again on error).
pub(crate) fn finish_message(
    out: &mut BytesMut,
    start: usize,
    max: usize,
) -> Result<(), EncodeError> {
    let size = out.len() - start;
    if size > max {
        out.truncate(start);
        return Err(EncodeError::MessageTooLarge { size, max });
    }
    out[start + 16..start + 18].copy_from_slice(&(size as u16).to_be_bytes());
    Ok(())
}
