//! The client against an etcd with authentication enabled (ETCD_USERNAME / ETCD_PASSWORD).

use config::datastore::{Datastore, DatastoreError, EtcdConfig};
use config::testing::EtcdServer;

#[tokio::test]
async fn user_and_password() {
    let etcd = EtcdServer::start().await;
    let mut admin = etcd.datastore().await.etcd_client();
    admin.user_add("root", "root-pw", None).await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.auth_enable().await.unwrap();

    let with_user = |password: &str| EtcdConfig {
        username: Some("root".into()),
        password: Some(password.into()),
        ..etcd.etcd_config()
    };
    let ds = Datastore::connect(&with_user("root-pw")).await.unwrap();
    let rev = ds.create_raw("/t/auth/a", b"1".to_vec()).await.unwrap();
    assert_eq!(
        ds.get_raw("/t/auth/a").await.unwrap().unwrap().mod_revision,
        rev
    );

    // A wrong password is refused by etcd (not a reachability problem).
    let err = Datastore::connect(&with_user("wrong"))
        .await
        .err()
        .expect("connect must fail");
    assert!(matches!(err, DatastoreError::Etcd(_)), "{err}");
    assert!(err.to_string().contains("authentication failed"), "{err}");

    // Without credentials every request is refused.
    let anonymous = etcd.datastore().await;
    let err = anonymous.get_raw("/t/auth/a").await.unwrap_err();
    assert!(matches!(err, DatastoreError::Etcd(_)), "{err}");
}
