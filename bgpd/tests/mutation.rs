//! A deterministic, always-on cousin of the fuzz targets: mutate captured
//! and hand-written messages and check decode never panics and that
//! decode -> encode -> decode is stable.

use bgpd::wire::{Message, decode, encode_to_vec};

// The fuzz targets' own context decoder, so this stand-in exercises exactly what they do.
#[path = "../fuzz/fuzz_targets/common.rs"]
mod common;
use common::contexts;

fn seeds() -> Vec<Vec<u8>> {
    let files = [
        include_str!("vectors/bird2_session.txt"),
        include_str!("vectors/gobgp_session.txt"),
    ];
    let mut v: Vec<Vec<u8>> = files
        .iter()
        .flat_map(|f| f.lines())
        .map(|l| hex::decode(l.split_once(' ').unwrap().1).unwrap())
        .collect();
    // Every attribute type, MP_UNREACH, AS4_*, an unknown attribute and
    // a ROUTE-REFRESH / NOTIFICATION.
    let extra = [
        "ffffffffffffffffffffffffffffffff00b6020003100a010093400101004002060202fde9fdea4003040a00000180040400000064400504000000c8400600c00706fde90a000001c00808fde90001ffffff018009040a000002800a080a0000030a000004c010080002fde900000001c0110e02030000fde9000100000000fdeac01208000100000a000009c0200c0000fde90000000100000002c06302abcd800f0a0002013020010db80003180a0200200a030001",
        "ffffffffffffffffffffffffffffffff003d0104fde900b40a00000120021e010400010001450400010103400680780001018041040000fde906004600",
        "ffffffffffffffffffffffffffffffff00170500020101",
        "ffffffffffffffffffffffffffffffff0016030602ff",
    ];
    v.extend(extra.iter().map(|x| hex::decode(x).unwrap()));
    v
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn without_errors(m: Message) -> Message {
    match m {
        Message::Update(mut u) => {
            u.errors.clear();
            Message::Update(u)
        }
        other => other,
    }
}

fn mutate(rng: &mut Rng, v: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            2 if v.len() > 19 => {
                let i = 19 + rng.below(v.len() - 19);
                v.remove(i);
            }
            3 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.next() as u8);
            }
            _ => {}
        }
    }
    // Keep the header length consistent half of the time so bodies get
    // exercised rather than stopping at the length check.
    if v.len() >= 19 && rng.below(2) == 0 {
        let len = (v.len() as u16).to_be_bytes();
        v[16..18].copy_from_slice(&len);
    }
}

#[test]
fn mutated_messages_decode_safely_and_roundtrip() {
    let seeds = seeds();
    for s in &seeds {
        let ok = (0..32).any(|f| decode(s, &contexts(f).0).is_ok());
        assert!(ok, "seed must decode: {}", hex::encode(s));
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut decoded = 0;
    for _ in 0..300_000 {
        let mut v = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut v);
        let (d, e) = contexts(rng.next() as u8);
        let Ok((first, _)) = decode(&v, &d) else {
            continue;
        };
        decoded += 1;
        let bytes = encode_to_vec(&first, &e)
            .unwrap_or_else(|err| panic!("{err}: {}\n{first:?}", hex::encode(&v)));
        let (second, n) = decode(&bytes, &d)
            .unwrap_or_else(|err| panic!("{err}: {}\n{first:?}", hex::encode(&v)));
        assert_eq!(n, bytes.len());
        assert_eq!(
            without_errors(first),
            without_errors(second),
            "{}",
            hex::encode(&v)
        );
    }
    assert!(
        decoded > 10_000,
        "mutations should often still decode ({decoded})"
    );
}
