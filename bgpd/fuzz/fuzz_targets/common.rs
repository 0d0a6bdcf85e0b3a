// Shared by the fuzz targets: the first input byte picks the session
// context, the rest is one BGP message.

use bgpd::wire::{DecodeContext, EncodeContext, Family};

pub fn contexts(flags: u8) -> (DecodeContext, EncodeContext) {
    let mut add_path = Vec::new();
    if flags & 2 != 0 {
        add_path.push(Family::IPV4_UNICAST);
    }
    if flags & 4 != 0 {
        add_path.push(Family::IPV6_UNICAST);
    }
    let d = DecodeContext {
        four_octet_as: flags & 1 != 0,
        add_path: add_path.clone(),
        extended_message: flags & 8 != 0,
        external_peer: flags & 16 != 0,
    };
    let e = EncodeContext {
        four_octet_as: d.four_octet_as,
        add_path,
        extended_message: d.extended_message,
    };
    (d, e)
}
