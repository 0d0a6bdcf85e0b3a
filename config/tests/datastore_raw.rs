//! The raw datastore layer against a real etcd: CRUD, compare-and-swap guards, multi-key
//! transactions, concurrent writers, and failing fast when etcd is not there.

use std::time::{Duration, Instant};

use config::datastore::{Datastore, DatastoreError, EtcdConfig, Read, TxnOp};
use config::testing::EtcdServer;

#[tokio::test]
async fn create_get_list_update_delete() {
    let etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;

    let rev_a = ds.create_raw("/t/crud/a", b"1".to_vec()).await.unwrap();
    let rev_b = ds.create_raw("/t/crud/b", b"2".to_vec()).await.unwrap();
    assert!(rev_b > rev_a);
    // A key outside the prefix that shares its first bytes must not be listed.
    ds.create_raw("/t/crudx", b"x".to_vec()).await.unwrap();

    let a = ds.get_raw("/t/crud/a").await.unwrap().expect("a exists");
    assert_eq!(
        (a.value.as_slice(), a.mod_revision),
        (b"1".as_slice(), rev_a)
    );
    assert_eq!(ds.get_raw("/t/crud/none").await.unwrap(), None);

    let (listed, list_rev) = ds.list_raw("/t/crud/").await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/t/crud/a", "/t/crud/b"]);
    assert!(list_rev >= rev_b);

    let rev_a2 = ds
        .update_raw("/t/crud/a", b"10".to_vec(), rev_a)
        .await
        .unwrap();
    assert!(rev_a2 > rev_b);
    assert_eq!(ds.get_raw("/t/crud/a").await.unwrap().unwrap().value, b"10");

    ds.delete_raw("/t/crud/a", Some(rev_a2)).await.unwrap();
    ds.delete_raw("/t/crud/b", None).await.unwrap();
    assert_eq!(ds.list_raw("/t/crud/").await.unwrap().0, vec![]);
}

#[tokio::test]
async fn several_reads_in_one_round_trip() {
    let etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;
    ds.create_raw("/t/rm/h/a", b"1".to_vec()).await.unwrap();
    ds.create_raw("/t/rm/h/b", b"2".to_vec()).await.unwrap();
    ds.create_raw("/t/rm/hx", b"outside".to_vec())
        .await
        .unwrap();
    ds.create_raw("/t/rm/config", b"c".to_vec()).await.unwrap();
    let got = ds
        .read_many(&[
            Read::Prefix("/t/rm/h/"),
            Read::Key("/t/rm/config"),
            Read::Key("/t/rm/absent"),
        ])
        .await
        .unwrap();
    let keys = |i: usize| -> Vec<&str> { got[i].iter().map(|kv| kv.key.as_str()).collect() };
    assert_eq!(keys(0), ["/t/rm/h/a", "/t/rm/h/b"]);
    assert_eq!(keys(1), ["/t/rm/config"]);
    assert_eq!(got[1][0].value, b"c");
    assert!(got[2].is_empty());
}

#[tokio::test]
async fn listing_pages_through_many_keys_at_one_revision() {
    let etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;
    // More than one page (500 keys per range request).
    let ops: Vec<TxnOp> = (0..120)
        .map(|i| TxnOp::Create {
            key: format!("/t/many/{i:04}"),
            value: vec![b'v'; 10],
        })
        .collect();
    ds.txn(ops).await.unwrap();
    for chunk in 0..5 {
        let ops: Vec<TxnOp> = (0..120)
            .map(|i| TxnOp::Create {
                key: format!("/t/many/{chunk}-{i:04}"),
                value: vec![b'w'; 10],
            })
            .collect();
        ds.txn(ops).await.unwrap();
    }
    let (listed, _) = ds.list_raw("/t/many/").await.unwrap();
    assert_eq!(listed.len(), 720);
    let mut sorted: Vec<String> = listed.iter().map(|kv| kv.key.clone()).collect();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 720, "no key listed twice");
}

#[tokio::test]
async fn guards_map_to_already_exists_conflict_and_not_found() {
    let etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;
    let rev = ds.create_raw("/t/g/a", b"1".to_vec()).await.unwrap();

    let err = ds.create_raw("/t/g/a", b"2".to_vec()).await.unwrap_err();
    assert!(
        matches!(&err, DatastoreError::AlreadyExists { key } if key == "/t/g/a"),
        "{err}"
    );
    assert!(err.is_conflict());

    let newer = ds.update_raw("/t/g/a", b"2".to_vec(), rev).await.unwrap();
    let err = ds
        .update_raw("/t/g/a", b"3".to_vec(), rev)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DatastoreError::Conflict { keys } if keys == &["/t/g/a"]),
        "{err}"
    );
    assert_eq!(
        ds.get_raw("/t/g/a").await.unwrap().unwrap().value,
        b"2",
        "stale update wrote nothing"
    );

    let err = ds.delete_raw("/t/g/a", Some(rev)).await.unwrap_err();
    assert!(matches!(err, DatastoreError::Conflict { .. }), "{err}");
    ds.delete_raw("/t/g/a", Some(newer)).await.unwrap();

    let err = ds
        .update_raw("/t/g/a", b"4".to_vec(), newer)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DatastoreError::NotFound { key } if key == "/t/g/a"),
        "{err}"
    );
    let err = ds.delete_raw("/t/g/a", None).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = ds.delete_raw("/t/g/a", Some(newer)).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn one_failed_guard_writes_nothing() {
    let etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;
    let rev_x = ds.create_raw("/t/txn/x", b"x1".to_vec()).await.unwrap();
    let rev_gone = ds.create_raw("/t/txn/gone", b"g".to_vec()).await.unwrap();
    ds.update_raw("/t/txn/x", b"x2".to_vec(), rev_x)
        .await
        .unwrap();

    let err = ds
        .txn(vec![
            TxnOp::Create {
                key: "/t/txn/y".into(),
                value: b"y".to_vec(),
            },
            TxnOp::Update {
                key: "/t/txn/x".into(),
                value: b"x3".to_vec(),
                mod_revision: rev_x,
            },
            TxnOp::Delete {
                key: "/t/txn/gone".into(),
                mod_revision: Some(rev_gone),
            },
            TxnOp::CheckRevision {
                key: "/t/txn/absent".into(),
                mod_revision: 0,
            },
        ])
        .await
        .unwrap_err();
    match &err {
        DatastoreError::Conflict { keys } => assert_eq!(keys, &["/t/txn/x"]),
        other => panic!("expected Conflict on /t/txn/x, got {other}"),
    }
    assert_eq!(ds.get_raw("/t/txn/y").await.unwrap(), None);
    assert_eq!(ds.get_raw("/t/txn/x").await.unwrap().unwrap().value, b"x2");
    assert!(ds.get_raw("/t/txn/gone").await.unwrap().is_some());

    // A guard-only op that fails blocks the writes too.
    let err = ds
        .txn(vec![
            TxnOp::Create {
                key: "/t/txn/y".into(),
                value: b"y".to_vec(),
            },
            TxnOp::CheckRevision {
                key: "/t/txn/gone".into(),
                mod_revision: 0,
            },
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DatastoreError::Conflict { keys } if keys == &["/t/txn/gone"]),
        "{err}"
    );
    assert_eq!(ds.get_raw("/t/txn/y").await.unwrap(), None);

    // With every guard holding, all writes land at one revision.
    let current_x = ds.get_raw("/t/txn/x").await.unwrap().unwrap().mod_revision;
    let rev = ds
        .txn(vec![
            TxnOp::Create {
                key: "/t/txn/y".into(),
                value: b"y".to_vec(),
            },
            TxnOp::Update {
                key: "/t/txn/x".into(),
                value: b"x3".to_vec(),
                mod_revision: current_x,
            },
            TxnOp::Delete {
                key: "/t/txn/gone".into(),
                mod_revision: Some(rev_gone),
            },
            TxnOp::CheckRevision {
                key: "/t/txn/absent".into(),
                mod_revision: 0,
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        ds.get_raw("/t/txn/y").await.unwrap().unwrap().mod_revision,
        rev
    );
    assert_eq!(
        ds.get_raw("/t/txn/x").await.unwrap().unwrap().mod_revision,
        rev
    );
    assert_eq!(ds.get_raw("/t/txn/gone").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_are_never_lost() {
    const TASKS: u64 = 8;
    const INCREMENTS: u64 = 25;
    let etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;
    ds.create_raw("/t/counter", b"0".to_vec()).await.unwrap();

    let workers: Vec<_> = (0..TASKS)
        .map(|_| {
            let ds = ds.clone();
            tokio::spawn(async move {
                let mut conflicts = 0u64;
                for _ in 0..INCREMENTS {
                    loop {
                        let kv = ds.get_raw("/t/counter").await.unwrap().unwrap();
                        let n: u64 = String::from_utf8(kv.value).unwrap().parse().unwrap();
                        match ds
                            .update_raw(
                                "/t/counter",
                                (n + 1).to_string().into_bytes(),
                                kv.mod_revision,
                            )
                            .await
                        {
                            Ok(_) => break,
                            Err(err) if err.is_conflict() => conflicts += 1,
                            Err(err) => panic!("increment failed: {err}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let mut conflicts = 0;
    for worker in workers {
        conflicts += worker.await.unwrap();
    }
    let total = ds.get_raw("/t/counter").await.unwrap().unwrap();
    assert_eq!(
        String::from_utf8(total.value).unwrap(),
        (TASKS * INCREMENTS).to_string()
    );
    println!(
        "{} increments by {TASKS} tasks, {conflicts} CAS conflicts retried",
        TASKS * INCREMENTS
    );
}

#[tokio::test]
async fn connect_to_a_dead_endpoint_fails_fast() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let cfg = EtcdConfig {
        endpoints: vec![endpoint.clone()],
        ..EtcdConfig::default()
    };
    let err = Datastore::connect(&cfg)
        .await
        .err()
        .expect("connect must fail");
    let took = started.elapsed();
    assert!(
        matches!(&err, DatastoreError::Unavailable { endpoints, .. } if endpoints == &endpoint),
        "{err}"
    );
    assert!(err.to_string().contains(&endpoint), "{err}");
    assert!(took < Duration::from_secs(7), "took {took:?}");
}

#[tokio::test]
async fn bad_configuration_is_refused_before_connecting() {
    let err = Datastore::connect(&EtcdConfig::default())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, DatastoreError::Config { .. }), "{err}");
    let cfg = EtcdConfig {
        endpoints: vec!["https://127.0.0.1:1".into()],
        ca_cert_file: Some("/nonexistent/ca.pem".into()),
        ..EtcdConfig::default()
    };
    let err = Datastore::connect(&cfg).await.err().unwrap();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

#[tokio::test]
async fn client_recovers_after_etcd_restart() {
    let mut etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;
    ds.create_raw("/t/restart/a", b"1".to_vec()).await.unwrap();
    etcd.stop();
    let err = ds.get_raw("/t/restart/a").await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    etcd.restart().await;
    // The same handle works again (the data survived the restart).
    let kv = ds.get_raw("/t/restart/a").await.unwrap().unwrap();
    assert_eq!(kv.value, b"1");
    ds.create_raw("/t/restart/b", b"2".to_vec()).await.unwrap();
}
