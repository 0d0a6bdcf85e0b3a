//! The result table and the sender's config.

use std::fmt::{self, Write as _};
use std::path::Path;
use std::time::Duration;

use crate::proc_stats::ratio;

/// One receiver's result.
pub struct Row {
    pub name: &'static str,
    /// Established to all routes in the RIB.
    pub time: Duration,
    /// utime + stime over the same interval.
    pub cpu: Duration,
    /// Peak RSS (VmHWM) at the end.
    pub hwm_kb: u64,
    /// Poll interval: the resolution of `time`.
    pub poll: Duration,
    /// The sender's utime + stime over the same interval: near `time`
    /// means the sender, not the receiver, set the pace.
    pub sender_cpu: Option<Duration>,
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<8} {:>8.2} s  cpu {:>7.2} s  {:>8.1} MB",
            self.name,
            self.time.as_secs_f64(),
            self.cpu.as_secs_f64(),
            self.hwm_kb as f64 / 1024.0
        )?;
        if let Some(c) = self.sender_cpu {
            write!(f, "  (sender cpu {:.2} s)", c.as_secs_f64())?;
        }
        Ok(())
    }
}

pub fn print_table(title: &str, routes: usize, rows: &[Row]) {
    let bird = rows.iter().find(|r| r.name == "BIRD");
    let mut s = String::new();
    let _ = writeln!(s, "\n{title}, FIB install off");
    let _ = writeln!(
        s,
        "| receiver | time to full RIB | vs BIRD | CPU time | vs BIRD | peak RSS (VmHWM) | vs BIRD | RSS/route (bytes) | poll | sender CPU |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {:.2} s | {} | {:.2} s | {} | {:.1} MB | {} | {:.0} | {} ms | {} |",
            r.name,
            r.time.as_secs_f64(),
            ratio(r.time.as_secs_f64(), bird.map(|b| b.time.as_secs_f64())),
            r.cpu.as_secs_f64(),
            ratio(r.cpu.as_secs_f64(), bird.map(|b| b.cpu.as_secs_f64())),
            r.hwm_kb as f64 / 1024.0,
            ratio(r.hwm_kb as f64, bird.map(|b| b.hwm_kb as f64)),
            r.hwm_kb as f64 * 1024.0 / routes as f64,
            r.poll.as_millis(),
            r.sender_cpu
                .map_or("-".to_string(), |c| format!("{:.2} s", c.as_secs_f64())),
        );
    }
    if let (Some(b), Some(me)) = (bird, rows.iter().find(|r| r.name == "bgpd")) {
        let t = me.time.as_secs_f64() / b.time.as_secs_f64();
        let m = me.hwm_kb as f64 / b.hwm_kb as f64;
        let _ = writeln!(
            s,
            "target (bgpd time <= 0.5x BIRD, RSS <= 1x BIRD): time {t:.2}x {}, RSS {m:.2}x {}",
            if t <= 0.5 { "met" } else { "NOT met" },
            if m <= 1.0 { "met" } else { "NOT met" },
        );
    }
    println!("{s}");
}

/// BIRD config of the sender: `routes` /32s as static blackholes from
/// 11.0.0.0 upwards; returns its path.
pub fn sender_conf(dir: &Path, routes: usize) -> String {
    let mut c = String::with_capacity(routes * 40 + 1024);
    c.push_str("router id 192.168.70.2;\nprotocol device {}\nprotocol static s4 { ipv4;\n");
    for i in 0..routes {
        let a = 0x0b00_0000u32 + i as u32;
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
    std::fs::write(&p, c).expect("write sender.conf");
    p.to_str().expect("utf-8 temp path").into()
}
