//! UPDATE codec throughput: decode and encode of UPDATEs carrying many IPv4
//! /32 NLRI (reported as prefixes per second via Throughput::Elements).

use std::hint::black_box;
use std::net::Ipv4Addr;

use bgpd::wire::{
    AsPath, Community, DecodeContext, EncodeContext, Family, Message, Nlri, Origin, Update, decode,
    encode,
};
use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::Ipv4Net;

fn update(n: u32, add_path: bool) -> Message {
    let mut u = Update::default();
    u.attributes.origin = Some(Origin::Igp);
    u.attributes.as_path = Some(AsPath::sequence(vec![64512, 64513]));
    u.attributes.next_hop = Some(Ipv4Addr::new(10, 0, 0, 1));
    u.attributes.local_pref = Some(100);
    u.attributes.communities = vec![Community(0xfc00_0001)];
    u.nlri = (0..n)
        .map(|i| {
            let p = Ipv4Net::new(Ipv4Addr::from(0x0af4_0000 + i), 32)
                .unwrap()
                .into();
            Nlri {
                path_id: add_path.then_some(1),
                prefix: p,
            }
        })
        .collect();
    Message::Update(Box::new(u))
}

fn bench(c: &mut Criterion) {
    // 800 /32s (440 with path ids) fill a 4096-byte UPDATE; 12000 need
    // extended messages.
    for (n, extended, add_path) in [
        (800, false, false),
        (440, false, true),
        (12_000, true, false),
    ] {
        let families = if add_path {
            vec![Family::IPV4_UNICAST]
        } else {
            vec![]
        };
        let ectx = EncodeContext {
            four_octet_as: true,
            add_path: families.clone(),
            extended_message: extended,
        };
        let dctx = DecodeContext {
            four_octet_as: true,
            add_path: families,
            extended_message: extended,
            external_peer: false,
        };
        let msg = update(n, add_path);
        let mut buf = BytesMut::new();
        encode(&msg, &ectx, &mut buf).unwrap();
        let bytes = buf.to_vec();
        let label = format!("{n}x/32{}", if add_path { "+addpath" } else { "" });

        let mut g = c.benchmark_group("update");
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("decode/{label}"), |b| {
            b.iter(|| decode(black_box(&bytes), &dctx).unwrap())
        });
        g.bench_function(format!("encode/{label}"), |b| {
            let mut out = BytesMut::with_capacity(bytes.len());
            b.iter(|| {
                out.clear();
                encode(black_box(&msg), &ectx, &mut out).unwrap();
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
