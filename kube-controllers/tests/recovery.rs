//! The controllers survive their dependencies failing:
//! * the API server goes away and its watch history is compacted (the watch resumes
//!   from a resourceVersion that is gone: 410 Gone), and a namespace vanished meanwhile
//!   without a watch event: the relist notices and removes its profile;
//! * Calico's etcd goes away while namespaces change: the writes are retried until it
//!   is back, none is lost.

mod support;

use std::time::Duration;

use config::model::Profile;
use kube_controllers::controllers::Kind;
use serde_json::json;
use support::{CONVERGE, Cluster, eventually};

async fn has_profile(c: &Cluster, name: &str) -> Option<bool> {
    c.ds.get::<Profile>(None, name)
        .await
        .ok()
        .map(|p| p.is_some())
}

async fn wait_profile(c: &Cluster, name: &str, present: bool) {
    eventually(
        &format!(
            "profile {name} {}",
            if present { "present" } else { "absent" }
        ),
        CONVERGE,
        || async { (has_profile(c, name).await == Some(present)).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_whose_history_was_compacted_lists_again() {
    let mut c = Cluster::start().await;
    c.create_namespace("a", json!({})).await;
    c.create_namespace("b", json!({})).await;
    let running = c.controllers(&[Kind::Namespace]);
    wait_profile(&c, "kns.a", true).await;
    wait_profile(&c, "kns.b", true).await;

    c.api.stop();
    // Namespace b disappears with no watch event (removed under the API server), then
    // history is compacted past everything the controller has seen.
    let mut etcd = c.ds.etcd_client();
    etcd.delete("/registry/namespaces/b", None).await.unwrap();
    let revision = etcd
        .put("/kube-controllers-test/bump", "x", None)
        .await
        .unwrap()
        .header()
        .expect("a response header")
        .revision();
    c.etcd.compact(revision).await;
    c.api.restart().await;

    c.create_namespace("c", json!({})).await;
    wait_profile(&c, "kns.c", true).await;
    wait_profile(&c, "kns.b", false).await;
    assert_eq!(has_profile(&c, "kns.a").await, Some(true));
    eventually("ready again", CONVERGE, || async {
        running.health.ready().then_some(())
    })
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_missed_while_etcd_is_down_are_made_when_it_is_back() {
    let mut c = Cluster::start_apart().await;
    c.create_namespace("a", json!({})).await;
    let running = c.controllers(&[Kind::Namespace]);
    wait_profile(&c, "kns.a", true).await;

    let calico = c.calico_etcd.as_mut().expect("a separate Calico etcd");
    calico.stop();
    c.create_namespace("b", json!({})).await;
    c.delete_namespace("a").await;
    // Long enough for several failed attempts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!running.health.ready(), "not synced while etcd is down");
    c.calico_etcd.as_mut().unwrap().restart().await;

    wait_profile(&c, "kns.b", true).await;
    wait_profile(&c, "kns.a", false).await;
    let metrics = running.metrics.render();
    assert!(
        metrics.contains("kube_controllers_datastore_errors{controller=\"namespace\"}"),
        "the failed writes were counted:\n{metrics}"
    );
    running.stop().await;
}
