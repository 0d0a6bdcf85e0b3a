//! decode -> encode -> decode gives the same message (RFC 7606 findings
//! aside: attributes they removed are gone from both values).
#![no_main]

use bgpd::wire::{Message, decode, encode_to_vec};
use libfuzzer_sys::fuzz_target;

mod common;

fn without_errors(m: Message) -> Message {
    match m {
        Message::Update(mut u) => {
            u.errors.clear();
            Message::Update(u)
        }
        other => other,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, msg)) = data.split_first() else {
        return;
    };
    let (d, e) = common::contexts(flags);
    let Ok((first, _)) = decode(msg, &d) else {
        return;
    };
    let bytes = encode_to_vec(&first, &e).expect("a decoded message must encode");
    let (second, n) = decode(&bytes, &d).expect("our own encoding must decode");
    assert_eq!(n, bytes.len());
    assert_eq!(without_errors(first), without_errors(second));
});
