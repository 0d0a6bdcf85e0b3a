//! Route programming benchmark: RouteSyncer vs `ip -batch`.
//! NEEDS ROOT: runs in a fresh network namespace (see tests/support).
//!
//! In a namespace with 100 veth pairs, programs 10,000 /32 workload routes
//! (100 per interface) from empty, 3 repetitions each, and prints the median
//! times and the ratio felix / ip. Both sides are timed end to end: felix's
//! apply includes its link dump, route dump and diff; `ip -batch` includes
//! starting the process and reading its file.
//!
//! `cargo bench -p felix --bench routes`

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use felix::calc::routes::RouteSpec;
use felix::dataplane::netlink::Netlink;
use felix::dataplane::routes::{DesiredRoutes, RouteSyncer};
use support::{in_netns, ip, run};

const INTERFACES: usize = 100;
const ROUTES: usize = 10_000;
const REPS: usize = 3;

fn ifname(i: usize) -> String {
    format!("calib{i:04}")
}

fn dst(n: usize) -> String {
    format!("10.{}.{}.{}/32", 100 + n / 65536, (n / 256) % 256, n % 256)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn flush() {
    // A fresh namespace has no main table yet, and flushing it fails.
    if count() > 0 {
        ip("route flush proto 80");
    }
    assert_eq!(ip("route show proto 80").lines().count(), 0);
}

fn count() -> usize {
    ip("route show proto 80").lines().count()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful
    // either way: run the same measurement.
    let results = in_netns(|| async {
        for i in 0..INTERFACES {
            support::veth(&ifname(i));
        }
        let specs: Vec<RouteSpec> = (0..ROUTES)
            .map(|n| RouteSpec::Workload {
                dst: dst(n).parse().unwrap(),
                ifname: ifname(n % INTERFACES),
            })
            .collect();
        let desired = DesiredRoutes::new(specs).unwrap();

        let batch = std::env::temp_dir().join(format!("felix-bench-{}.batch", std::process::id()));
        {
            let mut f = std::fs::File::create(&batch).unwrap();
            for n in 0..ROUTES {
                writeln!(
                    f,
                    "route replace {} dev {} scope link proto 80",
                    dst(n),
                    ifname(n % INTERFACES)
                )
                .unwrap();
            }
        }
        let batch_path = batch.to_str().unwrap().to_string();

        let mut ip_times = Vec::new();
        for _ in 0..REPS {
            flush();
            let t = Instant::now();
            run("ip", &["-batch", &batch_path]);
            ip_times.push(t.elapsed());
            assert_eq!(count(), ROUTES);
        }
        std::fs::remove_file(&batch).unwrap();

        let mut felix_rows = Vec::new();
        for in_flight in [1, 64, 256, 1024] {
            let mut times = Vec::new();
            for _ in 0..REPS {
                flush();
                let mut s = RouteSyncer::new(Netlink::connect().unwrap()).with_in_flight(in_flight);
                s.set_desired(desired.clone());
                let t = Instant::now();
                let r = s.apply().await.unwrap();
                times.push(t.elapsed());
                assert_eq!(r.replaced, ROUTES, "{:?}", r.failures.first());
                assert_eq!(count(), ROUTES);
            }
            felix_rows.push((in_flight, median(times)));
        }
        // No-op apply over 10,000 routes in sync (the periodic refresh cost).
        let mut s = RouteSyncer::new(Netlink::connect().unwrap());
        s.set_desired(desired.clone());
        s.apply().await.unwrap();
        let t = Instant::now();
        let r = s.apply().await.unwrap();
        let noop = t.elapsed();
        assert_eq!((r.replaced, r.deleted), (0, 0));
        (median(ip_times), felix_rows, noop)
    });
    let (ip_median, felix_rows, noop) = results;
    println!(
        "routes: {ROUTES} /32 workload routes over {INTERFACES} veths, from empty, median of {REPS}"
    );
    println!("{:<34} {:>12} {:>10}", "method", "time (ms)", "vs ip");
    println!(
        "{:<34} {:>12.1} {:>10}",
        "ip -batch (route replace)",
        ms(ip_median),
        "1.00x"
    );
    for (in_flight, t) in felix_rows {
        println!(
            "{:<34} {:>12.1} {:>9.2}x",
            format!("RouteSyncer::apply, {in_flight} in flight"),
            ms(t),
            t.as_secs_f64() / ip_median.as_secs_f64()
        );
    }
    println!(
        "{:<34} {:>12.1}",
        "RouteSyncer::apply, in sync (no-op)",
        ms(noop)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
