//! Any input: decode never panics, and whatever decodes can be encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, msg)) = data.split_first() else {
        return;
    };
    let (d, e) = common::contexts(flags);
    if let Ok((m, n)) = bgpd::wire::decode(msg, &d) {
        assert!(n <= msg.len());
        let _ = bgpd::wire::encode_to_vec(&m, &e);
    }
    let _ = bgpd::wire::peek_header(msg, d.max_message_len());
});
