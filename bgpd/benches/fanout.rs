//! System benchmark: route-reflector fan-out (issue 17). One reflector,
//! N clients (200, 500, 1,000) each announcing 4 /26 blocks, against bgpd
//! and against BIRD 2 as the reflector, same addresses and same clients, in
//! throwaway namespaces (needs root):
//!
//! ```text
//!  reflector ns  172.21.0.1/30 ---- 172.21.0.2/30  generator ns
//!  (bgpd or BIRD)    route 172.20.0.0/16 via .2     clients 172.20.0.1.. (local
//!                                                   route on lo), one thread
//! ```
//!
//! The clients are this process (`fanout/clients.rs`: one current-thread
//! runtime, so the generator uses one core at most and the reflector has
//! the other). Measured per reflector, from the generator's side:
//!
//! 1. sessions: from start until all N sessions are Established;
//! 2. fan-out: from the clients' announcements until every client holds
//!    the other clients' 4(N-1) blocks (so all 4N routes with its own), with
//!    the reflector's CPU time (utime + stime) over that interval and its
//!    peak RSS (VmHWM) after it;
//! 3. one client withdraws its blocks: until no other client holds them;
//!    then it announces them again: until every client holds them again.
//!
//! Times are polled every millisecond. `cargo bench -p bgpd --bench fanout
//! [-- [N,N,...] [--only bgpd|bird]]`; it does nothing unless run by `cargo
//! bench` (which passes `--bench`).

#[path = "common/bgp_msg.rs"]
mod bgp_msg;
#[path = "fanout/clients.rs"]
mod clients;
#[path = "../tests/netns/mod.rs"]
mod netns;
#[path = "common/proc_stats.rs"]
mod proc_stats;
#[path = "fanout/reflectors.rs"]
mod reflectors;

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use clients::{BLOCKS_PER_CLIENT, Clients, Plan};
use netns::Netns;
use proc_stats::{cpu_time, ratio, thread_cpu_time, vm_hwm_kb, vm_rss_kb};
use reflectors::{ALL, Reflector};

/// The clients' addresses: a local route on the generator's loopback.
pub const CLIENT_NET: &str = "172.20.0.0/16";
const FIRST_CLIENT: Ipv4Addr = Ipv4Addr::new(172, 20, 0, 1);
const REFLECTOR: Ipv4Addr = Ipv4Addr::new(172, 21, 0, 1);
const GENERATOR: Ipv4Addr = Ipv4Addr::new(172, 21, 0, 2);
const ASN: u32 = 64512;
/// Bound on every phase: a reflector that never gets there fails the run.
const PHASE_TIMEOUT: Duration = Duration::from_secs(300);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    netns::cleanup_on_signal();
    for n in netns::sweep_stale(&["fref", "fgen"]) {
        println!("removed namespace {n} left by an earlier run");
    }
    let sizes: Vec<usize> = args
        .iter()
        .skip(1)
        .find(|a| a.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map_or(vec![200, 500, 1000], |a| {
            a.split(',')
                .map(|n| n.parse().expect("N,N,...: numbers of clients"))
                .collect()
        });
    if let Some(&n) = sizes.iter().find(|&&n| !(2..=60_000).contains(&n)) {
        panic!("{n} clients: between 2 and 60,000 (the clients' /16)");
    }
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.to_ascii_lowercase());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("loadavg at start: {}", load.trim());
    let mut failed = false;
    for n in sizes {
        let mut rows = Vec::new();
        for r in ALL {
            if only
                .as_deref()
                .is_some_and(|o| o != r.name().to_ascii_lowercase())
            {
                continue;
            }
            match run(r, n) {
                Ok(row) => {
                    println!("{n} clients, {}: {row:?}", r.name());
                    rows.push(row);
                }
                Err(e) => {
                    println!("{n} clients, {}: FAILED: {e}", r.name());
                    failed = true;
                }
            }
        }
        print_table(n, &rows);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("loadavg at end: {}", load.trim());
    if failed {
        std::process::exit(1);
    }
}

/// One reflector's figures for N clients.
#[derive(Debug)]
struct Row {
    name: &'static str,
    sessions: Duration,
    /// Resident memory with every session up and no route yet.
    sessions_rss_kb: u64,
    fanout: Duration,
    /// The reflector's utime + stime over the fan-out.
    fanout_cpu: Duration,
    /// The generator's (this bench's client thread) over the same interval.
    generator_cpu: Duration,
    /// Peak RSS after the fan-out.
    hwm_kb: u64,
    withdraw: Duration,
    reannounce: Duration,
}

fn run(r: Reflector, n: usize) -> Result<Row, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (rns, gns) = (Netns::new("fref"), Netns::new("fgen"));
    let err = |e: netns_kit::Error| e.to_string();
    rns.veth_to("fan0", &gns, "fan1").map_err(err)?;
    rns.addr_up("fan0", &format!("{REFLECTOR}/30"))
        .map_err(err)?;
    gns.addr_up("fan1", &format!("{GENERATOR}/30"))
        .map_err(err)?;
    rns.try_ip(&["route", "add", CLIENT_NET, "via", &GENERATOR.to_string()])
        .map_err(err)?;
    // Every address of the /16 is the generator's: one client binds each.
    gns.try_ip(&["route", "add", "local", CLIENT_NET, "dev", "lo"])
        .map_err(err)?;
    let mut plan = Plan {
        clients: n,
        first: FIRST_CLIENT,
        reflector: REFLECTOR,
        asn: ASN,
        reflector_pid: 0,
    };
    let mut reflector = reflectors::start(r, &rns, dir.path(), &plan, GENERATOR);
    plan.reflector_pid = reflector.pid();
    let row = netns_kit::in_ns(&gns, move || drive(r, plan))
        .map_err(|e| format!("{e}\nreflector log:\n{}", reflector.log_tail(20)))?;
    reflector.stop(Duration::from_secs(5));
    Ok(row)
}

/// The phases, run from the generator's thread.
async fn drive(r: Reflector, plan: Plan) -> Result<Row, String> {
    let pid = plan.reflector_pid;
    let start = std::time::Instant::now();
    let clients = Clients::connect(plan, PHASE_TIMEOUT).await?;
    let sessions = start.elapsed();
    let sessions_rss_kb = vm_rss_kb(pid);
    let full = plan.others();

    let (cpu0, gen0) = (cpu_time(pid), thread_cpu_time());
    for c in 0..plan.clients {
        clients.announce(c);
    }
    let fanout = clients
        .wait_for_held("full fan-out", PHASE_TIMEOUT, |_, held| held == full)
        .await?;
    let (fanout_cpu, generator_cpu) = (cpu_time(pid) - cpu0, thread_cpu_time() - gen0);
    let hwm_kb = vm_hwm_kb(pid);

    let without = full - BLOCKS_PER_CLIENT as u32;
    clients.withdraw(0);
    let withdraw = clients
        .wait_for_held("withdrawal seen", PHASE_TIMEOUT, |c, held| {
            c == 0 || held == without
        })
        .await?;
    clients.announce(0);
    let reannounce = clients
        .wait_for_held("re-announcement seen", PHASE_TIMEOUT, |_, held| {
            held == full
        })
        .await?;
    Ok(Row {
        name: r.name(),
        sessions,
        sessions_rss_kb,
        fanout,
        fanout_cpu,
        generator_cpu,
        hwm_kb,
        withdraw,
        reannounce,
    })
}

fn print_table(n: usize, rows: &[Row]) {
    let bird = rows.iter().find(|r| r.name == "BIRD");
    let secs = |d: Duration| d.as_secs_f64();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nroute reflector, {n} clients x {BLOCKS_PER_CLIENT} blocks ({} routes to every client), FIB install off",
        n * BLOCKS_PER_CLIENT
    );
    let _ = writeln!(
        s,
        "| reflector | sessions up | RSS then | full fan-out | vs BIRD | reflector CPU | vs BIRD | peak RSS | vs BIRD | withdraw seen | re-announce seen | generator CPU |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {:.2} s | {:.1} MB | {:.3} s | {} | {:.2} s | {} | {:.1} MB | {} | {:.1} ms | {:.1} ms | {:.2} s |",
            r.name,
            secs(r.sessions),
            r.sessions_rss_kb as f64 / 1024.0,
            secs(r.fanout),
            ratio(secs(r.fanout), bird.map(|b| secs(b.fanout))),
            secs(r.fanout_cpu),
            ratio(secs(r.fanout_cpu), bird.map(|b| secs(b.fanout_cpu))),
            r.hwm_kb as f64 / 1024.0,
            ratio(r.hwm_kb as f64, bird.map(|b| b.hwm_kb as f64)),
            secs(r.withdraw) * 1e3,
            secs(r.reannounce) * 1e3,
            secs(r.generator_cpu),
        );
    }
    if let (Some(b), Some(me)) = (bird, rows.iter().find(|r| r.name == "bgpd")) {
        let t = secs(me.fanout) / secs(b.fanout);
        let m = me.hwm_kb as f64 / b.hwm_kb as f64;
        let _ = writeln!(
            s,
            "target (issue 17, stated at 1,000 clients: bgpd fan-out <= 0.25x BIRD, RSS <= 1x BIRD): time {t:.2}x {}, RSS {m:.2}x {}",
            if t <= 0.25 { "met" } else { "NOT met" },
            if m <= 1.0 { "met" } else { "NOT met" },
        );
    }
    println!("{s}");
}
