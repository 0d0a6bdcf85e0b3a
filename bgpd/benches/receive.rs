//! System benchmark: 1,000,000 IPv4 /32 routes into each receiver — bgpd,
//! BIRD 2, GoBGP 3 (FIB install off in all) — in throwaway network
//! namespaces (needs root). Two modes:
//!
//! - `bird`: a BIRD sender announces the routes (the definition).
//!   BIRD's sending speed bounds every receiver here.
//! - `replay`: the UPDATE stream BIRD sends is recorded once, then a
//!   minimal speaker (this binary, `--speaker`, see `receive/speaker.rs`)
//!   writes it to each receiver as fast as the socket takes it, so the
//!   receiver's own speed is what is measured.
//!
//! Measured per receiver: time from Established to all routes in its RIB
//! (polled, see `receive/receivers.rs`), its CPU time (utime + stime)
//! over that interval, and its peak RSS (VmHWM).
//!
//! `cargo bench -p bgpd --bench receive [-- [ROUTES] [--mode bird|replay] [--only bgpd|bird|gobgp]]`;
//! it does nothing unless run by `cargo bench` (which passes `--bench`).

#[path = "common/bgp_msg.rs"]
mod bgp_msg;
#[path = "../tests/netns/mod.rs"]
mod netns;
#[path = "common/proc_stats.rs"]
mod proc_stats;
#[path = "receive/receivers.rs"]
mod receivers;
#[path = "receive/report.rs"]
mod report;
#[path = "receive/speaker.rs"]
mod speaker;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netns::{Netns, Proc, birdc, link};
use proc_stats::{cpu_time, vm_hwm_kb};
use receivers::{ALL, Receiver, number_after, wait};
use report::{Row, print_table};

const TIMEOUT: Duration = Duration::from_secs(300);
const SENDER_AS: &str = "64513";
const RECEIVER_AS: &str = "64512";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--speaker") {
        if let Err(e) = speaker::main(&args[2..]) {
            eprintln!("speaker: {e}");
            std::process::exit(1);
        }
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    netns::cleanup_on_signal();
    for n in netns::sweep_stale(&["brx", "btx"]) {
        println!("removed namespace {n} left by an earlier run");
    }
    let routes: usize = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mode = args
        .iter()
        .position(|a| a == "--mode")
        .and_then(|i| args.get(i + 1))
        .map_or("both", String::as_str);
    // `--only NAME`: just that receiver (e.g. to profile it).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.to_ascii_lowercase());
    let each = |f: &mut dyn FnMut(Receiver) -> Result<Row, String>| each(only.as_deref(), f);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("loadavg at start: {}", load.trim());
    if !Path::new("/usr/lib/frr/bgpd").exists() {
        println!("FRR bgpd: not installed, skipped");
    }
    if mode != "replay" {
        let rows = each(&mut |r| run_bird_sender(r, routes));
        print_table(
            &format!("{routes} IPv4 /32 routes from a BIRD sender"),
            routes,
            &rows,
        );
    }
    if mode != "bird" {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("updates.bin");
        match record(&file, routes) {
            Ok(line) => {
                println!("recorded BIRD's stream: {line}");
                let rows = each(&mut |r| run_replay(r, &file, routes));
                print_table(
                    &format!(
                        "{routes} IPv4 /32 routes replayed at wire speed (recorded from BIRD)"
                    ),
                    routes,
                    &rows,
                );
            }
            Err(e) => println!("recording failed: {e}"),
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("loadavg at end: {}", load.trim());
}

fn each(only: Option<&str>, f: &mut dyn FnMut(Receiver) -> Result<Row, String>) -> Vec<Row> {
    let mut rows = Vec::new();
    for r in ALL {
        if only.is_some_and(|o| o != r.name().to_ascii_lowercase()) {
            continue;
        }
        match f(r) {
            Ok(row) => {
                println!("{row}");
                rows.push(row)
            }
            Err(e) => println!("{:<8} failed: {e}", r.name()),
        }
    }
    rows
}

/// A receiver namespace and a sender namespace joined by a veth:
/// receiver 192.168.70.1, sender 192.168.70.2.
fn namespaces() -> (Netns, Netns) {
    let rx = Netns::new("brx");
    let tx = Netns::new("btx");
    link(&rx, &tx, "192.168.70", "fd70");
    (rx, tx)
}

/// Start a BIRD sender with `routes` static /32s in `tx` and wait until
/// it holds them all (before any receiver connects).
fn start_sender(tx: &Netns, dir: &Path, routes: usize) -> Result<Proc, String> {
    let conf = report::sender_conf(dir, routes);
    let sock = dir.join("sender.ctl");
    let p = tx.spawn(
        &["bird", "-f", "-c", &conf, "-s", sock.to_str().unwrap()],
        &dir.join("sender.log"),
    );
    wait(TIMEOUT, Duration::from_millis(100), || {
        number_after(&birdc(&sock, &["show", "route", "count"]), "Total:").filter(|n| *n >= routes)
    })
    .ok_or("sender did not load its routes")?;
    Ok(p)
}

/// Poll until the receiver is Established; then until it holds `routes`.
/// `t0`: when the session came up, if the caller knows it better than a poll.
fn measure(
    r: Receiver,
    rx: &mut receivers::Running,
    routes: usize,
    sender: Option<u32>,
    up: impl FnOnce() -> Result<Instant, String>,
) -> Result<Row, String> {
    let every = r.poll_interval();
    let t0 = up()?;
    let pid = rx.proc_.pid();
    let cpu0 = cpu_time(pid);
    let sender_cpu0 = sender.map(cpu_time);
    let mut last = Err(String::from("not polled"));
    wait(TIMEOUT, every, || {
        last = rx.poll();
        last.as_ref()
            .ok()
            .filter(|s| s.routes >= routes)
            .map(|_| ())
    })
    .ok_or_else(|| format!("routes did not all arrive; last poll: {last:?}"))?;
    let time = t0.elapsed();
    Ok(Row {
        name: r.name(),
        time,
        cpu: cpu_time(pid).saturating_sub(cpu0),
        hwm_kb: vm_hwm_kb(pid),
        poll: every,
        sender_cpu: sender
            .zip(sender_cpu0)
            .map(|(p, c0)| cpu_time(p).saturating_sub(c0)),
    })
}

fn run_bird_sender(r: Receiver, routes: usize) -> Result<Row, String> {
    let (rx, tx) = namespaces();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sender = start_sender(&tx, dir.path(), routes)?;
    let mut recv = receivers::start(r, &rx, dir.path(), false)?;
    let every = r.poll_interval();
    let up = |recv: &mut receivers::Running| {
        wait(TIMEOUT, every, || {
            recv.poll()
                .ok()
                .filter(|s| s.established)
                .map(|_| Instant::now())
        })
        .ok_or_else(|| "session not established".to_string())
    };
    let t0 = up(&mut recv)?;
    measure(r, &mut recv, routes, Some(sender.pid()), || Ok(t0))
}

/// Record the UPDATE stream a BIRD sender with `routes` /32s sends to a
/// fresh peer into `file`; returns the recorder's summary line.
fn record(file: &Path, routes: usize) -> Result<String, String> {
    let (rx, tx) = namespaces();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let _sender = start_sender(&tx, dir.path(), routes)?;
    let rec = speaker_proc(
        &rx,
        dir.path(),
        [
            "record",
            file.to_str().unwrap(),
            "192.168.70.1",
            "192.168.70.2",
            RECEIVER_AS,
        ],
    );
    expect_line(&rec, "established", Duration::from_secs(60))?;
    let done = expect_line(&rec, "recorded", TIMEOUT)?;
    Ok(done)
}

fn run_replay(r: Receiver, file: &Path, routes: usize) -> Result<Row, String> {
    let (rx, tx) = namespaces();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut recv = receivers::start(r, &rx, dir.path(), true)?;
    let speaker = speaker_proc(
        &tx,
        dir.path(),
        [
            "replay",
            file.to_str().unwrap(),
            "192.168.70.2",
            "192.168.70.1",
            SENDER_AS,
        ],
    );
    let row = measure(r, &mut recv, routes, None, || {
        expect_line(&speaker, "established", Duration::from_secs(60))?;
        Ok(Instant::now())
    })?;
    // Written long before the receiver is done unless the receiver stalls
    // the socket; reported to show the stream was not the bottleneck.
    if let Ok(sent) = expect_line(&speaker, "sent", Duration::from_secs(1)) {
        println!("  ({}: speaker finished writing: {sent})", r.name());
    }
    Ok(row)
}

/// Start this binary as a `--speaker` in `ns`; its stdout lines arrive on
/// the channel.
fn speaker_proc(ns: &Netns, dir: &Path, args: [&str; 5]) -> (Proc, mpsc::Receiver<String>) {
    let exe: PathBuf = std::env::current_exe().expect("own path");
    let mut cmd = vec![exe.to_str().unwrap(), "--speaker"];
    cmd.extend(args);
    let log = dir.join(format!("speaker-{}.log", args[0]));
    let (p, out) = ns.spawn_piped(&cmd, &log);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    (p, rx)
}

/// The next line from the speaker `p`; it must start with `word`.
fn expect_line(
    (p, lines): &(Proc, mpsc::Receiver<String>),
    word: &str,
    t: Duration,
) -> Result<String, String> {
    match lines.recv_timeout(t) {
        Ok(l) if l.starts_with(word) => Ok(l),
        Ok(l) => Err(format!("speaker said {l:?}, expected {word}")),
        Err(_) => Err(format!(
            "speaker: no {word:?} within {t:?}; its log: {}",
            p.log_text().trim()
        )),
    }
}
