//! The allocator loop run by each process of the stress test (and by
//! `examples/allocator.rs`): allocate, hold up to `hold` addresses, release the oldest with
//! its sequence number; print every event so the parent can check for double allocation.
//!
//! Output lines: `ALLOC <ip> <seq> <handle> <t_ns>` after the allocation returned,
//! `FREE <ip> <seq> <handle> <t_ns>` before its release is sent, `HELD <ip> <seq> <handle>`
//! for addresses still held at the end. Times are wall-clock ns since the epoch.

use std::collections::VecDeque;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use config::datastore::{Datastore, EtcdConfig};
use ipam::{AutoAssignArgs, Ipam, PoolSource, PoolSpec, ReleaseOptions};

pub struct AllocatorConfig {
    pub endpoint: String,
    pub host: String,
    pub label: String,
    pub cycles: usize,
    pub hold: usize,
    pub pool: PoolSpec,
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

pub async fn run(cfg: AllocatorConfig) {
    let ds = Datastore::connect(&EtcdConfig {
        // Comma-separated, like ETCD_ENDPOINTS: several members of one cluster.
        endpoints: cfg.endpoint.split(',').map(str::to_string).collect(),
        ..EtcdConfig::default()
    })
    .await
    .expect("connect to etcd");
    let ipam = Ipam::new(ds, PoolSource::Static(vec![cfg.pool.clone()]));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut held: VecDeque<(std::net::IpAddr, u64, String)> = VecDeque::new();
    for n in 0..cfg.cycles {
        let handle = format!("{}-{n}", cfg.label);
        let args = AutoAssignArgs {
            num_v4: 1,
            handle_id: handle.clone(),
            attrs: [("proc".to_string(), cfg.label.clone())].into(),
            hostname: cfg.host.clone(),
            ..AutoAssignArgs::default()
        };
        let got = ipam
            .auto_assign(&args)
            .await
            .unwrap_or_else(|e| panic!("{}: allocation {n}: {e}", cfg.label));
        assert_eq!(got.len(), 1);
        writeln!(
            out,
            "ALLOC {} {} {handle} {}",
            got[0].ip,
            got[0].sequence,
            now_ns()
        )
        .unwrap();
        held.push_back((got[0].ip, got[0].sequence, handle));
        if held.len() > cfg.hold {
            let (ip, seq, h) = held.pop_front().unwrap();
            writeln!(out, "FREE {ip} {seq} {h} {}", now_ns()).unwrap();
            let opts = ReleaseOptions {
                ip,
                sequence_number: Some(seq),
                handle: Some(h.clone()),
            };
            let missing = ipam
                .release_ips(&[opts])
                .await
                .unwrap_or_else(|e| panic!("{}: release {ip}: {e}", cfg.label));
            assert!(
                missing.is_empty(),
                "{}: {ip} ({h}) was not allocated at release",
                cfg.label
            );
        }
    }
    for (ip, seq, h) in &held {
        writeln!(out, "HELD {ip} {seq} {h}").unwrap();
    }
    out.flush().unwrap();
}
