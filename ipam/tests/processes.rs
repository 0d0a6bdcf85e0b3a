//! Multi-process tests: 8 allocator processes hammering one etcd, and allocators killed at
//! each failpoint between two writes. The processes are this test binary re-run with an
//! environment variable that makes `child_entry` do the work.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::process::ExitStatusExt;

use common::{args, env, pool, spawn_self};
use ipam::{InUse, Problem};

const ROLE: &str = "IPAM_TEST_ROLE";

/// Entry point of the child processes (does nothing when run as a normal test).
#[test]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let get = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match role.as_str() {
        "stress" => rt.block_on(common::allocator::run(common::allocator::AllocatorConfig {
            endpoint: get("IPAM_ETCD"),
            host: get("IPAM_HOST"),
            label: get("IPAM_LABEL"),
            cycles: get("IPAM_CYCLES").parse().unwrap(),
            hold: get("IPAM_HOLD").parse().unwrap(),
            pool: pool(&get("IPAM_POOL"), get("IPAM_BLOCK").parse().unwrap()),
        })),
        "fault" => rt.block_on(async {
            let ds = config::datastore::Datastore::connect(&config::datastore::EtcdConfig {
                endpoints: vec![get("IPAM_ETCD")],
                ..Default::default()
            })
            .await
            .unwrap();
            let ipam = ipam::Ipam::new(
                ds,
                ipam::PoolSource::Static(vec![pool(&get("IPAM_POOL"), 28)]),
            );
            let host = get("IPAM_HOST");
            if std::env::var(ipam::retry::FAILPOINT_ENV).as_deref() == Ok("after-affinity-pending")
            {
                // auto_assign claims in one transaction; the step-by-step claim (pending,
                // then block + confirmed) is what `calicoctl ipam claim` runs.
                let block = pool(&get("IPAM_POOL"), 28).nth_block(0);
                ipam.claim_affinity(block, &host).await.unwrap();
            } else {
                let a = args(&host, &get("IPAM_LABEL"), 1);
                // A fresh host's first allocation claims its block in the same transaction
                // (after-block-claim); the second allocates from that block (after-allocation).
                ipam.auto_assign(&a).await.unwrap();
                ipam.auto_assign(&a).await.unwrap();
            }
        }),
        other => panic!("unknown role {other}"),
    }
}

struct Event {
    ip: IpAddr,
    seq: u64,
    handle: String,
    start: u128,
    end: u128,
}

const PROCS: usize = 8;
const HOLD: usize = 12;
// /28 blocks (16 addresses): hosts outgrow one block, so claims, the FIFO and borrowing all
// run under contention; two processes share each host.
const STRESS_POOL: (&str, u8) = ("10.20.0.0/22", 28);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_never_hold_an_ip_twice() {
    let (cidr, block) = STRESS_POOL;
    let e = env(vec![pool(cidr, block)]).await;
    stress_and_verify(&e.ipam, e.etcd.endpoint(), 10_000, async {}).await;
}

/// The datastore as operators run it: three etcd members, every allocator given all three
/// endpoints, and the leader killed while eight processes allocate and release. No address
/// may be held twice, every allocation must complete, and `ipam check` must be clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_ride_through_the_loss_of_the_etcd_leader() {
    let (cidr, block) = STRESS_POOL;
    let mut cluster = config::testing::EtcdCluster::start(3).await;
    let ipam = ipam::Ipam::new(
        cluster.datastore().await,
        ipam::PoolSource::Static(vec![pool(cidr, block)]),
    );
    let endpoints = cluster.endpoints().join(",");
    let leader = cluster.leader().await.expect("a leader");
    let killed = async {
        // Well into the churn, then the leader goes, as a crash would.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        cluster.kill(leader);
        eprintln!("killed etcd member {leader}, the leader");
    };
    stress_and_verify(&ipam, endpoints, 3_000, killed).await;
    let new_leader = cluster.leader().await.expect("a new leader");
    assert_ne!(new_leader, leader);
}

/// Runs `PROCS` allocator processes for `total_cycles` allocations in all against
/// `endpoints` (comma-separated) while `disturb` runs, then checks the whole history.
async fn stress_and_verify(
    ipam: &ipam::Ipam,
    endpoints: String,
    total_cycles: usize,
    disturb: impl std::future::Future<Output = ()>,
) {
    let (cidr, block) = STRESS_POOL;
    let endpoint = endpoints;
    let mut children: Vec<_> = (0..PROCS)
        .map(|i| {
            spawn_self(
                "child_entry",
                &[
                    (ROLE, "stress".into()),
                    ("IPAM_ETCD", endpoint.clone()),
                    ("IPAM_HOST", format!("stress-node-{}", i / 2)),
                    ("IPAM_LABEL", format!("p{i}")),
                    ("IPAM_CYCLES", (total_cycles / PROCS).to_string()),
                    ("IPAM_HOLD", HOLD.to_string()),
                    ("IPAM_POOL", cidr.into()),
                    ("IPAM_BLOCK", block.to_string()),
                ],
            )
        })
        .collect();
    let waited = tokio::task::spawn_blocking(move || {
        children
            .iter_mut()
            .map(|g| {
                let mut c = g.take();
                let mut s = String::new();
                c.stdout.take().unwrap().read_to_string(&mut s).unwrap();
                let status = c.wait().unwrap();
                assert!(status.success(), "allocator process failed: {status:?}");
                s
            })
            .collect::<Vec<String>>()
    });
    disturb.await;
    let outputs = waited.await.unwrap();

    let mut intervals: BTreeMap<IpAddr, Vec<Event>> = BTreeMap::new();
    let mut open: HashMap<(IpAddr, u64), Event> = HashMap::new();
    let mut held: Vec<(IpAddr, String)> = Vec::new();
    let mut allocs = 0;
    let mut seen: BTreeSet<(IpAddr, u64)> = BTreeSet::new();
    for out in &outputs {
        for line in out.lines() {
            // libtest may print "test child_entry ... " in front of the first line.
            let Some(at) = ["ALLOC ", "FREE ", "HELD "]
                .iter()
                .filter_map(|m| line.find(m))
                .min()
            else {
                continue;
            };
            let line = &line[at..];
            let f: Vec<&str> = line.split(' ').collect();
            match f[0] {
                "ALLOC" => {
                    allocs += 1;
                    let ev = Event {
                        ip: f[1].parse().unwrap(),
                        seq: f[2].parse().unwrap(),
                        handle: f[3].into(),
                        start: f[4].parse().unwrap(),
                        end: u128::MAX,
                    };
                    assert!(
                        seen.insert((ev.ip, ev.seq)),
                        "(ip, sequence) handed out twice: {line}"
                    );
                    open.insert((ev.ip, ev.seq), ev);
                }
                "FREE" => {
                    let mut ev = open
                        .remove(&(f[1].parse().unwrap(), f[2].parse().unwrap()))
                        .expect("free of unknown allocation");
                    ev.end = f[4].parse().unwrap();
                    intervals.entry(ev.ip).or_default().push(ev);
                }
                "HELD" => held.push((f[1].parse().unwrap(), f[3].to_string())),
                _ => {}
            }
        }
    }
    assert_eq!(allocs, total_cycles, "every cycle allocated");
    // The longest time no allocation completed anywhere (what a disturbance cost).
    let mut done: Vec<u128> = intervals
        .values()
        .flatten()
        .chain(open.values())
        .map(|e| e.start)
        .collect();
    done.sort_unstable();
    let stall = done.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    eprintln!(
        "{allocs} allocations; longest stall between two: {:.1} ms",
        stall as f64 / 1e6
    );
    for (_, ev) in open.drain() {
        intervals.entry(ev.ip).or_default().push(ev);
    }
    // Recorded intervals lie inside the real ones (start after commit, end before release),
    // so any overlap is a real double allocation.
    let mut reused = 0;
    for (ip, evs) in &mut intervals {
        evs.sort_by_key(|e| e.start);
        for w in evs.windows(2) {
            assert!(
                w[0].end <= w[1].start,
                "{ip} held by {} and {} at once",
                w[0].handle,
                w[1].handle
            );
            reused += 1;
        }
    }
    assert!(
        reused > total_cycles / 10,
        "addresses were reused often enough to test anything ({reused})"
    );
    assert_eq!(held.len(), PROCS * HOLD);
    assert_eq!(
        held.iter().map(|h| h.0).collect::<BTreeSet<_>>().len(),
        held.len(),
        "final sets overlap"
    );
    for (ip, handle) in &held {
        let a = ipam
            .get_assignment_attributes(*ip)
            .await
            .unwrap()
            .expect("held address allocated");
        assert_eq!(
            a.handle(),
            Some(handle.as_str()),
            "{ip} owned by its holder in etcd"
        );
    }
    let in_use = InUse {
        ips: Default::default(),
        handles: held.iter().map(|h| h.1.clone()).collect(),
    };
    let report = ipam.check(Some(&in_use)).await.unwrap();
    assert!(report.is_consistent(), "{report:#?}");
    assert_eq!(
        report.allocated_ips,
        PROCS * HOLD,
        "released addresses are free"
    );
    for (_, handle) in &held {
        ipam.release_by_handle(handle).await.unwrap();
    }
    let report = ipam.check(Some(&InUse::default())).await.unwrap();
    assert!(
        report.is_consistent() && report.allocated_ips == 0,
        "{report:#?}"
    );
}

#[tokio::test]
async fn allocator_killed_at_each_failpoint_leaves_repairable_state() {
    let cidr = "10.30.0.0/24";
    let e = env(vec![pool(cidr, 28)]).await;
    let mut live: BTreeSet<String> = BTreeSet::new();
    for fp in [
        "after-affinity-pending",
        "after-block-claim",
        "after-allocation",
    ] {
        let host = format!("fault-{fp}");
        let child_handle = format!("child-{fp}");
        let mut g = spawn_self(
            "child_entry",
            &[
                (ROLE, "fault".into()),
                (ipam::retry::FAILPOINT_ENV, fp.into()),
                ("IPAM_ETCD", e.etcd.endpoint()),
                ("IPAM_HOST", host.clone()),
                ("IPAM_LABEL", child_handle.clone()),
                ("IPAM_POOL", cidr.into()),
            ],
        );
        let status = tokio::task::spawn_blocking(move || g.take().wait().unwrap())
            .await
            .unwrap();
        assert_eq!(
            status.signal(),
            Some(6),
            "{fp}: child aborted at the failpoint (SIGABRT): {status:?}"
        );

        let before = e.ipam.check(None).await.unwrap();
        let expect_unfinished = fp == "after-affinity-pending";
        for p in &before.problems {
            assert!(
                expect_unfinished
                    && matches!(p, Problem::UnfinishedAffinity { host: h, .. } if *h == host),
                "{fp}: unexpected problem after crash: {p:?}"
            );
        }
        assert_eq!(
            before.problems.len(),
            usize::from(expect_unfinished),
            "{fp}: {before:?}"
        );

        // The next allocation on that host succeeds and repairs.
        let mine = format!("parent-{fp}");
        let got = e.ipam.auto_assign(&args(&host, &mine, 1)).await.unwrap();
        if fp != "after-affinity-pending" {
            // The child's allocation was committed (block and handle together; at
            // after-block-claim, with the claim itself).
            let h = e
                .ipam
                .datastore()
                .get_raw(&ipam::keys::handle_key(&child_handle))
                .await
                .unwrap();
            assert!(h.is_some(), "{fp}: child's handle written with its address");
            let freed = e.ipam.release_by_handle(&child_handle).await.unwrap();
            let committed = if fp == "after-allocation" { 2 } else { 1 };
            assert_eq!(freed.len(), committed, "{fp}: {freed:?}");
            assert!(
                !freed.contains(&got[0].ip),
                "{fp}: never the same address twice"
            );
        }
        live.insert(mine);
        let in_use = InUse {
            ips: Default::default(),
            handles: live.clone(),
        };
        let after = e.ipam.check(Some(&in_use)).await.unwrap();
        assert!(after.is_consistent(), "{fp}: {after:#?}");
    }
    // Every crashed host got exactly one block (no orphaned claims).
    let usage = e.ipam.ip_usage().await.unwrap();
    assert_eq!(usage.blocks.len(), 3, "{usage:?}");
}
