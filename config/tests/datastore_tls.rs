//! The client against an etcd that serves TLS and requires client certificates.

use config::datastore::{Datastore, DatastoreError, EtcdConfig};
use config::testing::EtcdServer;

#[tokio::test]
async fn tls_with_client_certificate() {
    let etcd = EtcdServer::start_tls().await;
    assert!(etcd.endpoint().starts_with("https://"));
    let ds = etcd.datastore().await;
    let rev = ds.create_raw("/t/tls/a", b"1".to_vec()).await.unwrap();
    assert_eq!(
        ds.get_raw("/t/tls/a").await.unwrap().unwrap().mod_revision,
        rev
    );

    // Trusting the CA but presenting no client certificate: the server refuses the handshake.
    let no_identity = EtcdConfig {
        cert_file: None,
        key_file: None,
        ..etcd.etcd_config()
    };
    let err = Datastore::connect(&no_identity)
        .await
        .err()
        .expect("connect must fail");
    assert!(matches!(err, DatastoreError::Unavailable { .. }), "{err}");

    // Not trusting etcd's CA (its own client certificate is no CA): the client refuses.
    let tls = etcd.tls_files().unwrap();
    let wrong_ca = EtcdConfig {
        ca_cert_file: Some(tls.client_cert.clone()),
        ..etcd.etcd_config()
    };
    let err = Datastore::connect(&wrong_ca)
        .await
        .err()
        .expect("connect must fail");
    assert!(matches!(err, DatastoreError::Unavailable { .. }), "{err}");
}
