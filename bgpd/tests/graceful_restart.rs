//! Graceful Restart (RFC 4724) against BIRD 2 with `graceful restart on`, in throwaway
//! network namespaces (needs root). Forwarding must not notice either side restarting:
//!
//! - bgpd restarts (SIGTERM, start): BIRD keeps bgpd's route the whole time, and bgpd's
//!   kernel keeps BIRD's routes (left at exit, adopted and kept at start). The restarted
//!   bgpd sets the Restart State bit and holds its End-of-RIB until BIRD's (RFC 4724 4.1).
//! - BIRD restarts gracefully (`birdc graceful restart`, then `bird -R`), twice in a row:
//!   bgpd keeps BIRD's routes in its RIB and kernel, stale, until BIRD is back and has
//!   sent them again.
//!
//! Every check polls for a few seconds and fails at the first poll that misses a route.

mod netns;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netns::{BgpRoutes, Netns, Proc, bgpd_bin, birdc, link, wait_for, wait_output};

const T: Duration = Duration::from_secs(30);
const BIRD_ROUTE: &str = "10.1.0.0/24 via 192.168.52.2";
const OUR_ROUTE: &str = "10.244.3.0/26";

fn bird_conf(dir: &Path) -> String {
    let conf = r#"router id 192.168.52.2;
protocol device {}
protocol static s4 { ipv4; route 10.1.0.0/24 blackhole; }
protocol bgp peer4 { local 192.168.52.2 as 64513; neighbor 192.168.52.1 as 64512;
  graceful restart on; graceful restart time 120;
  ipv4 { import all; export all; }; }
"#;
    let path = dir.join("bird.conf");
    std::fs::write(&path, conf).unwrap();
    path.to_str().unwrap().to_string()
}

fn bgpd_conf(dir: &Path) -> String {
    let conf = format!(
        r#"asNumber: 64512
routerId: 192.168.52.1
peers:
  - address: 192.168.52.2
    asNumber: 64513
    families: [ipv4]
    gracefulRestartTime: 120
originate: [{OUR_ROUTE}]
keepFibOnExit: true
controlSocket: {}
"#,
        dir.join("bgpd.ctl").display()
    );
    let path = dir.join("bgpd.yaml");
    std::fs::write(&path, conf).unwrap();
    path.to_str().unwrap().to_string()
}

struct Setup {
    a: Netns,
    b: Netns,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let a = Netns::new("bggra");
        let b = Netns::new("bggrb");
        link(&a, &b, "192.168.52", "fd52");
        Setup {
            a,
            b,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn bird_sock(&self) -> PathBuf {
        self.dir.path().join("bird.ctl")
    }

    /// BIRD; `recover`: after a graceful restart (`-R`).
    fn bird(&self, recover: bool) -> Proc {
        let cfg = bird_conf(self.dir.path());
        let sock = self.bird_sock();
        let mut argv = vec!["bird", "-f", "-c", &cfg, "-s", sock.to_str().unwrap()];
        if recover {
            argv.push("-R");
        }
        self.b.spawn(&argv, &self.dir.path().join("bird.log"))
    }

    fn bgpd(&self) -> Proc {
        let cfg = bgpd_conf(self.dir.path());
        self.a.spawn(
            &[bgpd_bin(), "--config", &cfg],
            &self.dir.path().join("bgpd.log"),
        )
    }

    fn wait_established(&self) {
        wait_output("BIRD Established", T, "Established", false, || {
            birdc(&self.bird_sock(), &["show", "protocols", "peer4"])
        });
        wait_output("BIRD's route in our kernel", T, BIRD_ROUTE, false, || {
            self.a.bgp_routes(false)
        });
        wait_output("our route in BIRD", T, OUR_ROUTE, false, || {
            birdc(&self.bird_sock(), &["show", "route", "for", "10.244.3.1"])
        });
    }

    /// BIRD's route stays in our kernel for all of `d` (polled every 20 ms).
    fn kernel_keeps_birds_route(&self, d: Duration, what: &str) {
        let start = Instant::now();
        while start.elapsed() < d {
            let routes = self.a.bgp_routes(false);
            assert!(
                routes.contains(BIRD_ROUTE),
                "{what}: BIRD's route left our kernel after {:?}:\n{routes}",
                start.elapsed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn bgpd_restart_keeps_forwarding_on_both_sides() {
    let s = Setup::new();
    let mut bird = s.bird(false);
    let mut bgpd = s.bgpd();
    s.wait_established();

    bgpd.signal("TERM");
    assert!(bgpd.wait_exit(T), "{}", bgpd.log_text());
    // No NOTIFICATION went out: BIRD holds our route as stale, and our kernel kept BIRD's.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        let r = birdc(&s.bird_sock(), &["show", "route", "for", "10.244.3.1"]);
        assert!(r.contains(OUR_ROUTE), "BIRD dropped our route:\n{r}");
        assert!(s.a.bgp_routes(false).contains(BIRD_ROUTE));
        std::thread::sleep(Duration::from_millis(50));
    }

    // Back: the kept route is adopted, never removed, and the session comes up again.
    let mut bgpd = s.bgpd();
    s.kernel_keeps_birds_route(Duration::from_secs(2), "bgpd starting");
    s.wait_established();
    s.kernel_keeps_birds_route(Duration::from_secs(2), "after End-of-RIB");
    // RFC 4724 4.1: BIRD saw the Restart State bit in our OPEN, and our End-of-RIB waited
    // for BIRD's, not for the deferral timer.
    let caps = birdc(&s.bird_sock(), &["show", "protocols", "all", "peer4"]);
    assert!(caps.contains("Restart recovery"), "no R bit seen:\n{caps}");
    wait_output(
        "deferral over",
        T,
        "End-of-RIB from every peer",
        false,
        || bgpd.log_text(),
    );
    // Once the restart is over, a new session must not claim one (RFC 4724 4.2).
    birdc(&s.bird_sock(), &["restart", "peer4"]);
    wait_for("a new session without the R bit", T, || {
        let caps = birdc(&s.bird_sock(), &["show", "protocols", "all", "peer4"]);
        if caps.contains("Established") && !caps.contains("Restart recovery") {
            Ok(())
        } else {
            Err(caps)
        }
    });

    bgpd.signal("TERM");
    assert!(bgpd.wait_exit(T), "{}", bgpd.log_text());
    bird.signal("TERM");
    assert!(bird.wait_exit(T));
}

#[test]
fn bird_graceful_restarts_in_a_row_keep_its_routes_in_our_kernel() {
    let s = Setup::new();
    let mut bird = s.bird(false);
    let mut bgpd = s.bgpd();
    s.wait_established();

    for round in 0..2 {
        birdc(&s.bird_sock(), &["graceful", "restart"]);
        assert!(bird.wait_exit(T), "round {round}: BIRD did not exit");
        s.kernel_keeps_birds_route(Duration::from_secs(2), "BIRD down");
        bird = s.bird(true);
        s.kernel_keeps_birds_route(Duration::from_secs(1), "BIRD starting");
        s.wait_established();
        s.kernel_keeps_birds_route(Duration::from_secs(1), "BIRD back");
    }
    let log = bgpd.log_text();
    assert!(
        log.contains("peer restarting gracefully"),
        "helper mode not entered:\n{log}"
    );

    bgpd.signal("TERM");
    assert!(bgpd.wait_exit(T), "{}", bgpd.log_text());
    bird.signal("TERM");
    assert!(bird.wait_exit(T));
}
