//! BFD Control packets: decode never panics, and what decodes encodes to the same 24
//! bytes (the Length field aside: we always write 24) and decodes again to the same value.
#![no_main]

use bgpd::bfd::ControlPacket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = ControlPacket::decode(data) else {
        return;
    };
    let bytes = p.encode();
    assert_eq!(bytes[..3], data[..3]);
    assert_eq!(bytes[4..], data[4..24]);
    assert_eq!(ControlPacket::decode(&bytes), Ok(p));
});
