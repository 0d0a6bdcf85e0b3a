//! RIB micro-benchmarks: best path selection over N candidates, and
//! inserting /32s into the Loc-RIB in address order and in scrambled order
//! (as BIRD sends them: its own hash order); first prints the memory a
//! million single-path /32s take (RSS growth / routes, and peak RSS).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use bgpd::rib::{Candidate, Changes, PeerId, PeerInfo, Rib, RouteAttrs, select};
use bgpd::wire::{AsPath, NextHop, Origin, PathAttributes};
use criterion::{BenchmarkId, Criterion};
use ipnet::{IpNet, Ipv4Net};

fn attrs(path: Vec<u32>, med: u32, nh: Ipv4Addr) -> RouteAttrs {
    RouteAttrs::new(
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(path)),
            med: Some(med),
            ..Default::default()
        },
        NextHop::V4(nh),
    )
}

fn infos(n: u32) -> Vec<PeerInfo> {
    (0..n)
        .map(|i| PeerInfo {
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, i as u8 + 1)),
            router_id: Ipv4Addr::new(10, 0, 0, (i * 7 % 200) as u8 + 1),
            asn: 65000 + i % 3,
            internal: false,
        })
        .collect()
}

fn bench_select(c: &mut Criterion) {
    let mut g = c.benchmark_group("best_path_select");
    for n in [2u32, 4, 8, 16] {
        let infos = infos(n);
        let attrs: Vec<RouteAttrs> = (0..n)
            .map(|i| {
                attrs(
                    vec![65000 + i % 3, 1],
                    i % 4,
                    Ipv4Addr::new(10, 1, 0, i as u8),
                )
            })
            .collect();
        let cands: Vec<Candidate<'_>> = (0..n as usize)
            .map(|i| Candidate {
                peer: PeerId(i as u32 + 1),
                info: &infos[i],
                path_id: 0,
                attrs: &attrs[i],
            })
            .collect();
        g.bench_with_input(BenchmarkId::from_parameter(n), &cands, |b, c| {
            b.iter(|| select(black_box(c), 64512))
        });
    }
    g.finish();
}

/// The `i`th address: in order, or scrambled by an odd multiplier (a
/// bijection on the low 24 bits, so still `n` distinct /32s).
fn host(i: u32, scrambled: bool) -> Ipv4Addr {
    let low = if scrambled {
        i.wrapping_mul(0x9E37_79B1) & 0x00ff_ffff
    } else {
        i
    };
    Ipv4Addr::from(0x0b00_0000 + low)
}

fn rib_with(n: u32, scrambled: bool) -> Rib {
    let mut rib = Rib::new(64512, Ipv4Addr::new(10, 0, 0, 100));
    rib.set_peer(PeerId(1), infos(1).remove(0));
    let a = rib.intern(attrs(vec![65000], 0, Ipv4Addr::new(192, 0, 2, 1)));
    for i in 0..n {
        let p = IpNet::V4(Ipv4Net::new_assert(host(i, scrambled), 32));
        rib.announce(PeerId(1), p, 0, a.clone());
    }
    rib
}

/// As [`rib_with`] (scrambled), but 256 routes per [`Rib::announce_all`]:
/// what one UPDATE of /32s from BIRD brings.
fn rib_batched(n: u32) -> Rib {
    let mut rib = Rib::new(64512, Ipv4Addr::new(10, 0, 0, 100));
    rib.set_peer(PeerId(1), infos(1).remove(0));
    let a = rib.intern(attrs(vec![65000], 0, Ipv4Addr::new(192, 0, 2, 1)));
    let mut changes = Changes::new();
    let mut batch = Vec::with_capacity(256);
    for start in (0..n).step_by(256) {
        batch.clear();
        batch.extend((start..n.min(start + 256)).map(|i| {
            let p = IpNet::V4(Ipv4Net::new_assert(host(i, true), 32));
            (p, 0)
        }));
        rib.announce_all(PeerId(1), &a, batch.iter().copied(), &mut changes);
        changes = Changes::new();
    }
    rib
}

fn bench_insert(c: &mut Criterion) {
    let mut g = c.benchmark_group("rib_insert");
    g.sample_size(10);
    g.bench_function("100k_v4_host_routes", |b| {
        b.iter(|| black_box(rib_with(100_000, false)))
    });
    g.bench_function("100k_v4_host_routes_scrambled", |b| {
        b.iter(|| black_box(rib_with(100_000, true)))
    });
    g.bench_function("1m_v4_host_routes_scrambled", |b| {
        b.iter(|| black_box(rib_with(1_000_000, true)))
    });
    g.bench_function("1m_v4_host_routes_scrambled_256_per_update", |b| {
        b.iter(|| black_box(rib_batched(1_000_000)))
    });
    g.finish();
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn memory_per_route() {
    const N: u32 = 1_000_000;
    let before = status_kb("VmRSS:");
    let rib = rib_with(N, true);
    let after = status_kb("VmRSS:");
    assert_eq!(rib.len(), N as usize);
    println!(
        "memory: {} single-path /32 routes: {:.1} MB RSS growth, {:.1} bytes/route (Path {} bytes); peak RSS {:.1} MB, {:.1} MB before",
        N,
        (after - before) as f64 / 1024.0,
        (after - before) as f64 * 1024.0 / N as f64,
        std::mem::size_of::<bgpd::rib::Path>(),
        status_kb("VmHWM:") as f64 / 1024.0,
        before as f64 / 1024.0,
    );
    drop(rib);
}

fn main() {
    memory_per_route();
    let mut c = Criterion::default().configure_from_args();
    bench_select(&mut c);
    bench_insert(&mut c);
    c.final_summary();
}
