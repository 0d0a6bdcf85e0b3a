//! `install-cni`: puts the CNI plugins, their kubeconfig and the network config on the
//! host (see `cni::install`). Run as the first (init) step of the calico-node pod.

use std::process::ExitCode;

use cni::install::{Config, install};

fn main() -> ExitCode {
    let cfg = match Config::from_lookup(
        |name| std::env::var(name).ok(),
        || {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_lowercase())
                .filter(|h| !h.is_empty())
        },
    ) {
        Ok(cfg) => cfg,
        Err(e) => return fail(&e),
    };
    match install(&cfg) {
        Ok(report) => {
            for (path, outcome) in &report.files {
                eprintln!("install-cni: {:?} {}", outcome, path.display());
            }
            for path in &report.removed {
                eprintln!("install-cni: Removed {}", path.display());
            }
            eprintln!("install-cni: done");
        }
        Err(e) => return fail(&e),
    }
    if cfg.sleep {
        // Calico's default: stay up so that a plain (non-init) container is not
        // restarted over and over; end cleanly on SIGTERM (PID 1 has no default action).
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => return fail(&e),
        };
        runtime.block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
    }
    ExitCode::SUCCESS
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("install-cni: {}", e.to_string().replace('\n', " "));
    ExitCode::FAILURE
}
