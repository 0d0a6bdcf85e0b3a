//! System benchmark: a BIRD sender announces 1,000,000 IPv4 /32 routes to
//! each receiver in turn — bgpd, BIRD 2, GoBGP 3 (FIB install off in all) —
//! in throwaway network namespaces (needs root). Measured: time from the
//! session reaching Established to all routes in the receiver's RIB
//! (polled over its CLI), and the receiver's peak RSS (VmHWM).
//!
//! `cargo bench -p bgpd --bench receive [-- ROUTES]`; it does nothing
//! unless run by `cargo bench` (which passes `--bench`).

#[path = "../tests/netns/mod.rs"]
mod netns;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use netns::{Netns, Proc, bgpd_bin, birdc, link};

/// A query against the running receiver.
type Probe<T> = Box<dyn Fn() -> T>;

const TIMEOUT: Duration = Duration::from_secs(300);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let routes: usize = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut rows = Vec::new();
    for r in [Receiver::Bgpd, Receiver::Bird, Receiver::Gobgp] {
        match run_one(r, routes) {
            Ok(row) => {
                println!(
                    "{:<8} {:>8.2} s {:>8.1} MB",
                    row.0,
                    row.1.as_secs_f64(),
                    row.2 as f64 / 1024.0
                );
                rows.push(row)
            }
            Err(e) => println!("{:<8} failed: {e}", r.name()),
        }
    }
    println!("FRR bgpd: not installed, skipped");
    print_table(routes, &rows);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Receiver {
    Bgpd,
    Bird,
    Gobgp,
}

impl Receiver {
    fn name(self) -> &'static str {
        match self {
            Receiver::Bgpd => "bgpd",
            Receiver::Bird => "BIRD",
            Receiver::Gobgp => "GoBGP",
        }
    }
}

fn print_table(routes: usize, rows: &[(&'static str, Duration, u64)]) {
    let bird = rows.iter().find(|r| r.0 == "BIRD");
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n{routes} IPv4 /32 routes from a BIRD sender, FIB install off"
    );
    let _ = writeln!(
        s,
        "| receiver | time to full RIB | vs BIRD | peak RSS (VmHWM) | vs BIRD | RSS/route (bytes) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for (name, t, kb) in rows {
        let (tr, mr) = match bird {
            Some((_, bt, bkb)) => (
                format!("{:.2}x", t.as_secs_f64() / bt.as_secs_f64()),
                format!("{:.2}x", *kb as f64 / *bkb as f64),
            ),
            None => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            s,
            "| {name} | {:.2} s | {tr} | {:.1} MB | {mr} | {:.0} |",
            t.as_secs_f64(),
            *kb as f64 / 1024.0,
            *kb as f64 * 1024.0 / routes as f64
        );
    }
    println!("{s}");
}

/// BIRD config of the sender: `routes` /32s as static blackholes.
fn sender_conf(dir: &Path, routes: usize) -> String {
    let mut c = String::with_capacity(routes * 40 + 1024);
    c.push_str("router id 192.168.70.2;\nprotocol device {}\nprotocol static s4 { ipv4;\n");
    for i in 0..routes {
        let a = 0x0b00_0000u32 + i as u32; // 11.0.0.0 upwards
        let _ = writeln!(
            c,
            "route {}.{}.{}.{}/32 blackhole;",
            a >> 24,
            (a >> 16) & 255,
            (a >> 8) & 255,
            a & 255
        );
    }
    c.push_str("};\nprotocol bgp toreceiver { local 192.168.70.2 as 64513; neighbor 192.168.70.1 as 64512; ipv4 { import none; export all; }; }\n");
    let p = dir.join("sender.conf");
    std::fs::write(&p, c).unwrap();
    p.to_str().unwrap().into()
}

fn count_in(o: &str, key: &str) -> Option<usize> {
    // "1000000 of 1000000 routes for ..." / "Destination: 1000000, Path: ..."
    let at = o.find(key)?;
    o[at + key.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn run_one(r: Receiver, routes: usize) -> Result<(&'static str, Duration, u64), String> {
    let rx = Netns::new("brx");
    let tx = Netns::new("btx");
    link(&rx, &tx, "192.168.70", "fd70");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sconf = sender_conf(dir.path(), routes);
    let ssock = dir.path().join("sender.ctl");
    let _sender = tx.spawn(
        &["bird", "-f", "-c", &sconf, "-s", ssock.to_str().unwrap()],
        &dir.path().join("sender.log"),
    );
    // The sender has its whole table before the receiver starts.
    wait(TIMEOUT, || {
        count_in(&birdc(&ssock, &["show", "route", "count"]), "Total:").filter(|n| *n >= routes)
    })
    .ok_or("sender did not load its routes")?;

    let rsock = dir.path().join("rx.ctl");
    let (proc_, established, count): (Proc, Probe<bool>, Probe<Option<usize>>) = match r {
        Receiver::Bgpd => {
            let conf = format!(
                "asNumber: 64512\nrouterId: 192.168.70.1\npeers:\n  - address: 192.168.70.2\n    asNumber: 64513\n    families: [ipv4]\nfib: false\ncontrolSocket: {}\n",
                rsock.display()
            );
            let p = dir.path().join("bgpd.yaml");
            std::fs::write(&p, conf).unwrap();
            let proc_ = rx.spawn(
                &[
                    bgpd_bin(),
                    "--config",
                    p.to_str().unwrap(),
                    "--metrics-listen",
                    "off",
                ],
                &dir.path().join("rx.log"),
            );
            let s1 = rsock.clone();
            let s2 = rsock.clone();
            (
                proc_,
                Box::new(move || birdc(&s1, &["show", "protocols"]).contains("Established")),
                Box::new(move || count_in(&birdc(&s2, &["show", "route", "count"]), "Total:")),
            )
        }
        Receiver::Bird => {
            let conf = "router id 192.168.70.1;\nprotocol device {}\nprotocol bgp fromsender { local 192.168.70.1 as 64512; neighbor 192.168.70.2 as 64513; ipv4 { import all; export none; }; }\n";
            let p = dir.path().join("rx.conf");
            std::fs::write(&p, conf).unwrap();
            let proc_ = rx.spawn(
                &[
                    "bird",
                    "-f",
                    "-c",
                    p.to_str().unwrap(),
                    "-s",
                    rsock.to_str().unwrap(),
                ],
                &dir.path().join("rx.log"),
            );
            let s1 = rsock.clone();
            let s2 = rsock.clone();
            (
                proc_,
                Box::new(move || birdc(&s1, &["show", "protocols"]).contains("Established")),
                Box::new(move || count_in(&birdc(&s2, &["show", "route", "count"]), "Total:")),
            )
        }
        Receiver::Gobgp => {
            let conf = "[global.config]\n  as = 64512\n  router-id = \"192.168.70.1\"\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"192.168.70.2\"\n    peer-as = 64513\n";
            let p = dir.path().join("rx.toml");
            std::fs::write(&p, conf).unwrap();
            let proc_ = rx.spawn(
                &["gobgpd", "-f", p.to_str().unwrap()],
                &dir.path().join("rx.log"),
            );
            let ns = rx.name.clone();
            let ns2 = rx.name.clone();
            (
                proc_,
                Box::new(move || {
                    netns::output(&["ip", "netns", "exec", &ns, "gobgp", "neighbor"])
                        .contains("Establ")
                }),
                Box::new(move || {
                    let o = netns::output(&[
                        "ip", "netns", "exec", &ns2, "gobgp", "global", "rib", "summary", "-a",
                        "ipv4",
                    ]);
                    count_in(&o, "Destination:")
                }),
            )
        }
    };
    wait(TIMEOUT, || established().then_some(())).ok_or("session not established")?;
    let t0 = Instant::now();
    wait(TIMEOUT, || count().filter(|n| *n >= routes)).ok_or("routes did not all arrive")?;
    let t = t0.elapsed();
    let kb = vm_hwm_kb(proc_.pid());
    Ok((r.name(), t, kb))
}

/// Poll every 50 ms until `f` gives a value or `t` passes.
fn wait<T>(t: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + t;
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}
