//! Watch semantics against a real etcd: events after a revision, a snapshot from 0, an etcd
//! restart, and a compaction while the watcher was cut off (through a TCP proxy the test
//! controls), each checked for exactly the expected events: none missed, none repeated.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use config::datastore::{
    Datastore, DatastoreError, EtcdConfig, Kv, TxnOp, WatchEvent, WatchStream,
};
use config::testing::EtcdServer;
use futures::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Upper bound for one expected event (covers a reconnect at the maximum backoff).
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

async fn next_event(stream: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(err))) => panic!("watch yielded an error: {err}"),
        Ok(None) => panic!("watch stream ended"),
        Err(_) => panic!("no watch event within {EVENT_TIMEOUT:?}"),
    }
}

fn put(key: &str, value: &[u8], mod_revision: i64) -> WatchEvent {
    WatchEvent::Put(Kv {
        key: key.into(),
        value: value.to_vec(),
        mod_revision,
    })
}

/// Proves the stream has nothing else queued: writes a fresh sentinel key under the prefix
/// and requires it to be the very next event.
async fn assert_nothing_pending(ds: &Datastore, stream: &mut WatchStream, prefix: &str) {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let key = format!("{prefix}~sentinel-{}", SEQ.fetch_add(1, Ordering::Relaxed));
    let rev = ds.create_raw(&key, b"s".to_vec()).await.unwrap();
    assert_eq!(
        next_event(stream).await,
        put(&key, b"s", rev),
        "unexpected event before the sentinel"
    );
}

#[tokio::test]
async fn watch_from_a_revision_and_from_zero() {
    let etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;
    let p = "/t/w1/";
    ds.create_raw("/t/w1/a", b"a1".to_vec()).await.unwrap();
    let rev_b = ds.create_raw("/t/w1/b", b"b1".to_vec()).await.unwrap();
    ds.create_raw("/t/w1x", b"outside".to_vec()).await.unwrap();
    let (_, listed_at) = ds.list_raw(p).await.unwrap();

    let a = ds.get_raw("/t/w1/a").await.unwrap().unwrap();
    let rev_a2 = ds
        .update_raw("/t/w1/a", b"a2".to_vec(), a.mod_revision)
        .await
        .unwrap();
    let delete_b = TxnOp::Delete {
        key: "/t/w1/b".into(),
        mod_revision: Some(rev_b),
    };
    let rev_del = ds.txn(vec![delete_b]).await.unwrap();
    let rev_c = ds.create_raw("/t/w1/c", b"c1".to_vec()).await.unwrap();

    let mut from_listing = ds.watch_prefix(p, listed_at);
    assert_eq!(
        next_event(&mut from_listing).await,
        put("/t/w1/a", b"a2", rev_a2)
    );
    assert_eq!(
        next_event(&mut from_listing).await,
        WatchEvent::Delete {
            key: "/t/w1/b".into(),
            mod_revision: rev_del
        }
    );
    assert_eq!(
        next_event(&mut from_listing).await,
        put("/t/w1/c", b"c1", rev_c)
    );
    assert_nothing_pending(&ds, &mut from_listing, p).await;

    // From 0: the current contents as a snapshot (mod revision order), then live changes.
    let mut snapshot = ds.watch_prefix(p, 0);
    assert_eq!(
        next_event(&mut snapshot).await,
        put("/t/w1/a", b"a2", rev_a2)
    );
    assert_eq!(
        next_event(&mut snapshot).await,
        put("/t/w1/c", b"c1", rev_c)
    );
    let sentinel = next_event(&mut snapshot).await;
    assert!(
        sentinel.key().starts_with("/t/w1/~sentinel-"),
        "{sentinel:?}"
    );
    let rev_d = ds.create_raw("/t/w1/d", b"d1".to_vec()).await.unwrap();
    assert_eq!(
        next_event(&mut snapshot).await,
        put("/t/w1/d", b"d1", rev_d)
    );
    assert_eq!(
        next_event(&mut from_listing).await,
        put("/t/w1/d", b"d1", rev_d)
    );
}

#[tokio::test]
async fn watch_survives_an_etcd_restart() {
    let mut etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;
    let p = "/t/w2/";
    let rev_a = ds.create_raw("/t/w2/a", b"a1".to_vec()).await.unwrap();
    let (_, listed_at) = ds.list_raw(p).await.unwrap();
    let mut watch = ds.watch_prefix(p, listed_at);
    let rev_b = ds.create_raw("/t/w2/b", b"b1".to_vec()).await.unwrap();
    assert_eq!(next_event(&mut watch).await, put("/t/w2/b", b"b1", rev_b));

    // Crash and restart with nothing written meanwhile: nothing is repeated.
    etcd.restart().await;
    assert_nothing_pending(&ds, &mut watch, p).await;

    // Crash, restart, then write: exactly those writes arrive.
    etcd.restart().await;
    let rev_a2 = ds
        .update_raw("/t/w2/a", b"a2".to_vec(), rev_a)
        .await
        .unwrap();
    let rev_del = ds
        .txn(vec![TxnOp::Delete {
            key: "/t/w2/b".into(),
            mod_revision: None,
        }])
        .await
        .unwrap();
    assert_eq!(next_event(&mut watch).await, put("/t/w2/a", b"a2", rev_a2));
    assert_eq!(
        next_event(&mut watch).await,
        WatchEvent::Delete {
            key: "/t/w2/b".into(),
            mod_revision: rev_del
        }
    );
    assert_nothing_pending(&ds, &mut watch, p).await;
}

/// Three members, every endpoint given: the leader dies (twice, the second time the new
/// one), and the watch resumes from its revision on a live member: exactly the writes made
/// meanwhile arrive, none missed, none repeated.
#[tokio::test]
async fn watch_rides_through_the_loss_of_the_etcd_leader() {
    let mut cluster = config::testing::EtcdCluster::start(3).await;
    let ds = cluster.datastore().await;
    let p = "/t/w5/";
    let (_, listed_at) = ds.list_raw(p).await.unwrap();
    let mut watch = ds.watch_prefix(p, listed_at);
    let mut killed = Vec::new();
    for round in 0..2 {
        let leader = cluster.leader().await.expect("a leader");
        cluster.kill(leader);
        killed.push(leader);
        let key = format!("{p}k{round}");
        let started = std::time::Instant::now();
        let rev = ds.create_raw(&key, b"v".to_vec()).await.unwrap();
        let written = started.elapsed();
        assert_eq!(next_event(&mut watch).await, put(&key, b"v", rev));
        eprintln!(
            "round {round}: after the leader's loss the write took {written:?}, its watch event {:?}",
            started.elapsed()
        );
        assert_nothing_pending(&ds, &mut watch, p).await;
        // Back as a follower before the next round, so that a quorum remains.
        cluster.restart(leader).await;
    }
    assert_eq!(killed.len(), 2);
}

#[tokio::test]
async fn watch_resyncs_after_compaction_while_cut_off() {
    let etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;
    let proxy = Proxy::start(etcd.endpoint()).await;
    let cfg = EtcdConfig {
        endpoints: vec![format!("http://{}", proxy.addr)],
        ..EtcdConfig::default()
    };
    let watcher_ds = Datastore::connect(&cfg).await.unwrap();

    let p = "/t/w3/";
    ds.create_raw("/t/w3/keep", b"k".to_vec()).await.unwrap();
    let rev_change = ds.create_raw("/t/w3/change", b"c1".to_vec()).await.unwrap();
    ds.create_raw("/t/w3/gone", b"g".to_vec()).await.unwrap();
    let (_, listed_at) = ds.list_raw(p).await.unwrap();
    let mut watch = watcher_ds.watch_prefix(p, listed_at);
    let rev_live = ds.create_raw("/t/w3/live", b"l".to_vec()).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        put("/t/w3/live", b"l", rev_live)
    );

    proxy.cut().await;
    let rev_c2 = ds
        .update_raw("/t/w3/change", b"c2".to_vec(), rev_change)
        .await
        .unwrap();
    ds.delete_raw("/t/w3/gone", None).await.unwrap();
    let rev_new = ds.create_raw("/t/w3/new", b"n".to_vec()).await.unwrap();
    let rev_temp = ds.create_raw("/t/w3/temp", b"t".to_vec()).await.unwrap();
    ds.delete_raw("/t/w3/temp", Some(rev_temp)).await.unwrap();
    let rev_c3 = ds
        .update_raw("/t/w3/change", b"c3".to_vec(), rev_c2)
        .await
        .unwrap();
    etcd.compact(rev_c3).await;
    proxy.restore();

    // Exactly the difference: new and changed keys in revision order, then the vanished
    // key; no intermediate value of `change`, nothing of `temp`, nothing repeated.
    assert_eq!(
        next_event(&mut watch).await,
        put("/t/w3/new", b"n", rev_new)
    );
    assert_eq!(
        next_event(&mut watch).await,
        put("/t/w3/change", b"c3", rev_c3)
    );
    match next_event(&mut watch).await {
        WatchEvent::Delete { key, mod_revision } => {
            assert_eq!(key, "/t/w3/gone");
            assert!(
                mod_revision >= rev_c3,
                "deletion reported at {mod_revision} < {rev_c3}"
            );
        }
        other => panic!("expected the deletion of /t/w3/gone, got {other:?}"),
    }
    assert_nothing_pending(&ds, &mut watch, p).await;
}

#[tokio::test]
async fn watch_from_a_compacted_revision_reports_it_and_ends() {
    let etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;
    let first = ds.create_raw("/t/w4/a", b"1".to_vec()).await.unwrap();
    let last = ds
        .update_raw("/t/w4/a", b"2".to_vec(), first)
        .await
        .unwrap();
    etcd.compact(last).await;
    let mut watch = ds.watch_prefix("/t/w4/", first);
    match tokio::time::timeout(EVENT_TIMEOUT, watch.next())
        .await
        .expect("an answer")
    {
        Some(Err(DatastoreError::Compacted {
            revision,
            compact_revision,
            ..
        })) => {
            assert_eq!(revision, first);
            assert_eq!(compact_revision, last);
        }
        other => panic!("expected a Compacted error, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(EVENT_TIMEOUT, watch.next())
            .await
            .expect("stream end")
            .is_none()
    );
}

/// A TCP forwarder to etcd that the test can cut (every connection closed, new ones
/// refused) and restore, to take one client off the network while etcd keeps running.
struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
    accept: JoinHandle<()>,
}

struct ProxyState {
    open: bool,
    connections: Vec<JoinHandle<()>>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let target = target.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ProxyState {
            open: true,
            connections: Vec::new(),
        }));
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                // Checked and registered under one lock, so `cut` cannot miss a connection.
                let mut state = shared.lock().unwrap();
                if !state.open {
                    continue; // dropping `inbound` closes it
                }
                let target = target.clone();
                state.connections.push(tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Proxy {
            addr,
            state,
            accept,
        }
    }

    /// Closes every forwarded connection and refuses new ones; returns once no byte can
    /// pass any more.
    async fn cut(&self) {
        let connections = {
            let mut state = self.state.lock().unwrap();
            state.open = false;
            std::mem::take(&mut state.connections)
        };
        for connection in connections {
            connection.abort();
            let _ = connection.await;
        }
    }

    fn restore(&self) {
        self.state.lock().unwrap().open = true;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for connection in self.state.lock().unwrap().connections.drain(..) {
            connection.abort();
        }
    }
}
