//! IPAM throughput and latency against a real etcd, beside the raw rate of single-key CAS
//! transactions on the same etcd in the same run.
//!
//! `cargo bench -p ipam --bench alloc` (env `IPAM_BENCH_OPS` = allocations per client).
//!
//! Besides rates and latencies it prints, per operation, the etcd requests that etcd itself
//! counted (its `/metrics`) and the reads and writes the clients sent, and the latency of
//! the allocations that opened a new block (the slow path: a block claim), so round trips
//! are measured rather than guessed.
//!
//! The cold rows are the CNI plugin's case: a fresh client per operation, pools and node
//! labels from etcd, release by handle; with and without the per-host hint of the block
//! allocated from last.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use config::datastore::{Datastore, RequestCounts, TxnOp};
use config::testing::EtcdServer;
use ipam::{AutoAssignArgs, Ipam, PoolSource, PoolSpec, ReleaseOptions};

const POOL: &str = "10.0.0.0/12";

struct Stats {
    ops: usize,
    wall: Duration,
    lat: Vec<Duration>,
}

/// gRPC requests etcd has handled, by method (Range, Txn, ...), from its Prometheus metrics.
fn etcd_requests(endpoint: &str) -> std::collections::BTreeMap<String, f64> {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect to etcd metrics");
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for line in body.lines() {
        let Some(rest) = line.strip_prefix("grpc_server_handled_total{") else {
            continue;
        };
        let Some(m) = rest.split("grpc_method=\"").nth(1) else {
            continue;
        };
        let method = m.split('"').next().unwrap_or_default().to_string();
        let n: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *out.entry(method).or_insert(0.0) += n;
    }
    out
}

/// Requests per operation between two metric snapshots, e.g. "Range 0.31 Txn 1.02".
fn per_op(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
    ops: usize,
) -> String {
    after
        .iter()
        .filter(|(m, _)| *m == "Range" || *m == "Txn")
        .map(|(m, n)| {
            let d = n - before.get(m).copied().unwrap_or(0.0);
            format!("{m} {:.3}", d / ops as f64)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Stats {
    fn merge(parts: Vec<Vec<Duration>>, wall: Duration) -> Stats {
        let mut lat: Vec<Duration> = parts.into_iter().flatten().collect();
        lat.sort();
        Stats {
            ops: lat.len(),
            wall,
            lat,
        }
    }
    fn rate(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }
    fn pct(&self, p: usize) -> f64 {
        self.lat[(self.lat.len() * p / 100).min(self.lat.len() - 1)].as_secs_f64() * 1e3
    }
}

async fn raw_cas(ds: &Datastore, tag: &str, clients: usize, ops: usize) -> Stats {
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let ds = ds.clone();
            let key = format!("/bench/cas/{tag}-{c}");
            tokio::spawn(async move {
                let mut rev = ds.create_raw(&key, b"0".to_vec()).await.unwrap();
                let mut lat = Vec::with_capacity(ops);
                for n in 0..ops {
                    let t = Instant::now();
                    let op = TxnOp::Update {
                        key: key.clone(),
                        value: n.to_string().into_bytes(),
                        mod_revision: rev,
                    };
                    rev = ds.txn(vec![op]).await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut parts = Vec::new();
    for t in tasks {
        parts.push(t.await.unwrap());
    }
    Stats::merge(parts, start.elapsed())
}

/// What one run of allocations and releases measured.
struct Run {
    alloc: Stats,
    release: Stats,
    /// Latencies of the allocations that landed in a block other than the previous one.
    new_block: Vec<Duration>,
    /// Requests the clients sent to etcd, per allocation and per release.
    alloc_requests: RequestCounts,
    release_requests: RequestCounts,
}

/// Each client is one node allocating `ops` addresses, then releasing them all.
/// `cold`: as the one-shot CNI plugin does it: a fresh `Ipam` (empty cache) per call, the
/// pools read from the IPPools in etcd, and DEL releasing by handle.
/// `hint_dir`: the cold clients keep the CNI plugin's per-host hint of the last block there.
async fn ipam_run(
    ds: &Datastore,
    tag: &str,
    clients: usize,
    ops: usize,
    cold: bool,
    hint_dir: Option<&std::path::Path>,
) -> Run {
    let pools = if cold {
        PoolSource::Datastore
    } else {
        PoolSource::Static(vec![PoolSpec::new(POOL.parse().unwrap(), 26)])
    };
    let counter = ds.clone();
    let ds = ds.clone();
    let counts0 = counter.request_counts();
    let hint_dir = hint_dir.map(|d| d.to_path_buf());
    let mk = move || {
        let ipam = Ipam::new(ds.clone(), pools.clone());
        match &hint_dir {
            Some(d) => ipam.with_hint_dir(d),
            None => ipam,
        }
    };
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let ipam = mk();
            let mk = mk.clone();
            let tag = tag.to_string();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(ops);
                let mut got = Vec::with_capacity(ops);
                // Latencies of the allocations that landed in a block other than the previous one.
                let mut new_block = Vec::new();
                let mut last_block = None;
                for n in 0..ops {
                    let args = AutoAssignArgs {
                        num_v4: 1,
                        handle_id: format!("k8s-pod-network.{tag}-{c}-{n}"),
                        attrs: [("pod".to_string(), format!("p{n}"))].into(),
                        hostname: format!("{tag}-node-{c}"),
                        node_labels_from_datastore: cold,
                        ..AutoAssignArgs::default()
                    };
                    let t = Instant::now();
                    let ipam = if cold { mk() } else { ipam.clone() };
                    let a = ipam.auto_assign(&args).await.unwrap();
                    lat.push(t.elapsed());
                    if last_block != Some(a[0].block) {
                        new_block.push(t.elapsed());
                        last_block = Some(a[0].block);
                    }
                    got.push((a[0], args.handle_id));
                }
                (lat, got, ipam, new_block)
            })
        })
        .collect();
    let mut parts = Vec::new();
    let mut held = Vec::new();
    let mut new_block = Vec::new();
    for t in tasks {
        let (lat, got, ipam, nb) = t.await.unwrap();
        parts.push(lat);
        held.push((got, ipam));
        new_block.extend(nb);
    }
    let alloc = Stats::merge(parts, start.elapsed());
    let counts1 = counter.request_counts();
    let start = Instant::now();
    let tasks: Vec<_> = held
        .into_iter()
        .map(|(got, ipam)| {
            let mk = mk.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(got.len());
                for (a, h) in got {
                    let ipam = if cold { mk() } else { ipam.clone() };
                    let t = Instant::now();
                    if cold {
                        assert_eq!(ipam.release_by_handle(&h).await.unwrap(), vec![a.ip]);
                    } else {
                        let opts = ReleaseOptions {
                            ip: a.ip,
                            sequence_number: Some(a.sequence),
                            handle: Some(h),
                        };
                        assert!(ipam.release_ips(&[opts]).await.unwrap().is_empty());
                    }
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut parts = Vec::new();
    for t in tasks {
        parts.push(t.await.unwrap());
    }
    let release = Stats::merge(parts, start.elapsed());
    let counts2 = counter.request_counts();
    let per_op = |a: RequestCounts, b: RequestCounts, n: usize| RequestCounts {
        reads: (b.reads - a.reads) * 1000 / n as u64,
        writes: (b.writes - a.writes) * 1000 / n as u64,
    };
    Run {
        alloc_requests: per_op(counts0, counts1, alloc.ops),
        release_requests: per_op(counts1, counts2, release.ops),
        alloc,
        release,
        new_block,
    }
}

/// Requests per operation, from counts scaled by 1000.
fn requests(c: RequestCounts) -> String {
    format!(
        "{:.2} reads + {:.2} writes",
        c.reads as f64 / 1e3,
        c.writes as f64 / 1e3
    )
}

fn row(name: &str, s: &Stats, base: Option<&Stats>) {
    let ratio = base
        .map(|b| format!("{:>6.0}%", 100.0 * s.rate() / b.rate()))
        .unwrap_or_else(|| "      -".into());
    println!(
        "{name:<44} {:>7} {:>9.0} {:>8.2} {:>8.2} {ratio}",
        s.ops,
        s.rate(),
        s.pct(50),
        s.pct(99)
    );
}

fn main() {
    let ops: usize = std::env::var("IPAM_BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let etcd = EtcdServer::start().await;
        let ds = etcd.datastore().await;
        // Warm up connections and etcd.
        raw_cas(&ds, "warm", 8, 50).await;
        let ep = etcd.endpoint();
        let cas1 = raw_cas(&ds, "one", 1, ops).await;
        let cas8 = raw_cas(&ds, "eight", 8, ops).await;
        // The cold clients read the pool from etcd, as the CNI plugin does.
        let pool: config::model::IPPool = serde_json::from_value(serde_json::json!({
            "apiVersion": "projectcalico.org/v3", "kind": "IPPool",
            "metadata": {"name": "bench-pool"},
            "spec": {"cidr": POOL, "blockSize": 26}
        }))
        .unwrap();
        ds.create(&pool).await.unwrap();
        let m0 = etcd_requests(&ep);
        let w1 = ipam_run(&ds, "w1", 1, ops, false, None).await;
        let m1 = etcd_requests(&ep);
        let w8 = ipam_run(&ds, "w8", 8, ops, false, None).await;
        let m2 = etcd_requests(&ep);
        let hints = std::env::temp_dir().join(format!("ipam-bench-hints-{}", std::process::id()));
        let c8 = ipam_run(&ds, "c8", 8, ops / 2, true, Some(&hints)).await;
        let m3 = etcd_requests(&ep);
        let _ = std::fs::remove_dir_all(&hints);
        let n8 = ipam_run(&ds, "n8", 8, ops / 2, true, None).await;
        println!();
        println!(
            "etcd requests per allocate+release cycle, as etcd counted them: 1 client: {}; \
             8 clients: {}; cold with hint: {}",
            per_op(&m0, &m1, ops),
            per_op(&m1, &m2, 8 * ops),
            per_op(&m2, &m3, 8 * (ops / 2)),
        );
        for (name, r) in [
            ("1 client", &w1),
            ("8 clients", &w8),
            ("8 cold clients", &c8),
            ("8 cold clients without hint", &n8),
        ] {
            println!(
                "{name}: per allocation {}, per release {}",
                requests(r.alloc_requests),
                requests(r.release_requests)
            );
        }
        if !w8.new_block.is_empty() {
            let mut nb = w8.new_block.clone();
            nb.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            println!(
                "8 clients: {} allocations opened a new block: p50 {:.2} ms, max {:.2} ms",
                nb.len(),
                ms(nb[nb.len() / 2]),
                ms(nb[nb.len() - 1]),
            );
        }
        println!();
        println!(
            "{:<44} {:>7} {:>9} {:>8} {:>8} {:>7}",
            "operation (one etcd, same run)", "ops", "ops/s", "p50 ms", "p99 ms", "vs CAS"
        );
        row("raw single-key CAS txn, 1 client", &cas1, None);
        row("raw single-key CAS txn, 8 clients", &cas8, None);
        row("auto_assign, 1 client", &w1.alloc, Some(&cas1));
        row("auto_assign, 8 clients (8 nodes)", &w8.alloc, Some(&cas8));
        row("release_ips, 1 client", &w1.release, Some(&cas1));
        row("release_ips, 8 clients", &w8.release, Some(&cas8));
        row(
            "auto_assign, 8 clients, cold client/op",
            &c8.alloc,
            Some(&cas8),
        );
        row(
            "release_by_handle, 8 clients, cold/op",
            &c8.release,
            Some(&cas8),
        );
        row(
            "auto_assign, 8 cold clients, no hint",
            &n8.alloc,
            Some(&cas8),
        );
    });
}
