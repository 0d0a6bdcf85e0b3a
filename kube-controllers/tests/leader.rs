//! Leader election on a real Lease: of two replicas exactly one writes; when the leader
//! is dropped (crashes, no release) the other takes over after the lease expires, and
//! when it stops cleanly (releases) at once. At no sampled instant do both lead.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use config::model::Profile;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_controllers::controllers::Kind;
use kube_controllers::leader::Leadership;
use kube_controllers::run::Running;
use serde_json::json;
use support::{CONVERGE, Cluster, eventually};

/// Samples both replicas every 10 ms and records whether they ever both led.
fn watch_overlap(a: Leadership, b: Leadership) -> (Arc<AtomicBool>, Arc<AtomicBool>) {
    let overlap = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let (o, d) = (overlap.clone(), done.clone());
    tokio::spawn(async move {
        while !d.load(Ordering::Relaxed) {
            if a.is_leading() && b.is_leading() {
                o.store(true, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    (overlap, done)
}

async fn leader_of<'a>(a: &'a Running, b: &'a Running) -> (&'a str, &'a str) {
    eventually("one replica leads", CONVERGE, || async {
        match (a.leadership.is_leading(), b.leadership.is_leading()) {
            (true, false) => Some(("a", "b")),
            (false, true) => Some(("b", "a")),
            _ => None,
        }
    })
    .await
}

async fn lease_holder(c: &Cluster) -> Option<String> {
    Api::<Lease>::namespaced(c.client.clone(), "kube-system")
        .get_opt("calico-kube-controllers")
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

async fn wait_profile(c: &Cluster, name: &str) {
    eventually(&format!("profile {name}"), CONVERGE, || async {
        c.ds.get::<Profile>(None, name).await.unwrap().map(|_| ())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_leader_is_replaced_and_never_overlaps() {
    let c = Cluster::start().await;
    let a = c.elected(&[Kind::Namespace], "replica-a");
    let b = c.elected(&[Kind::Namespace], "replica-b");
    let (overlap, done) = watch_overlap(a.leadership.clone(), b.leadership.clone());
    let (leader, _) = leader_of(&a, &b).await;
    assert_eq!(
        lease_holder(&c).await.as_deref(),
        Some(format!("replica-{leader}").as_str())
    );
    c.create_namespace("one", json!({})).await;
    wait_profile(&c, "kns.one").await;
    assert!(
        eventually("the follower is ready too", CONVERGE, || async {
            (a.health.ready() && b.health.ready()).then_some(true)
        })
        .await
    );

    // The leader crashes: it does not give the lease up.
    let (old, new) = if leader == "a" { (a, b) } else { (b, a) };
    let dropped_at = Instant::now();
    let old_leadership = old.leadership.clone();
    old.abort();
    eventually("the follower takes over", CONVERGE, || async {
        new.leadership.is_leading().then_some(())
    })
    .await;
    let took = dropped_at.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "not before the old leader's renew deadline ({took:?})"
    );
    assert!(
        !old_leadership.is_leading(),
        "the dropped leader stopped writing"
    );
    c.create_namespace("two", json!({})).await;
    wait_profile(&c, "kns.two").await;
    done.store(true, Ordering::Relaxed);
    assert!(
        !overlap.load(Ordering::Relaxed),
        "both replicas led at once"
    );
    new.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_stops_releases_the_lease_at_once() {
    let c = Cluster::start().await;
    let a = c.elected(&[Kind::Namespace], "replica-a");
    let b = c.elected(&[Kind::Namespace], "replica-b");
    let (leader, _) = leader_of(&a, &b).await;
    let (old, new) = if leader == "a" { (a, b) } else { (b, a) };
    let stopped_at = Instant::now();
    old.stop().await;
    eventually("the follower takes over", CONVERGE, || async {
        new.leadership.is_leading().then_some(())
    })
    .await;
    assert!(
        stopped_at.elapsed() < Duration::from_secs(3),
        "took over before the 3 s lease would have expired ({:?})",
        stopped_at.elapsed()
    );
    c.create_namespace("three", json!({})).await;
    wait_profile(&c, "kns.three").await;
    new.stop().await;
}
