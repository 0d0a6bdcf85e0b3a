//! The typed layer against a real etcd, with two test-only resource kinds (one cluster-scoped,
//! one namespaced) so that it does not depend on the real kinds.

use config::datastore::{Datastore, DatastoreError};
use config::model::{ObjectMeta, Resource};
use config::testing::EtcdServer;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Widget {
    metadata: ObjectMeta,
    size: u32,
}

impl Resource for Widget {
    const KIND: &'static str = "Widget";
    const PLURAL: &'static str = "widgets";
    const NAMESPACED: bool = false;
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Gadget {
    metadata: ObjectMeta,
    colour: String,
}

impl Resource for Gadget {
    const KIND: &'static str = "Gadget";
    const PLURAL: &'static str = "gadgets";
    const NAMESPACED: bool = true;
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

fn widget(name: &str, size: u32) -> Widget {
    Widget {
        metadata: ObjectMeta {
            name: name.into(),
            ..ObjectMeta::default()
        },
        size,
    }
}

fn gadget(ns: Option<&str>, name: &str, colour: &str) -> Gadget {
    Gadget {
        metadata: ObjectMeta {
            name: name.into(),
            namespace: ns.map(Into::into),
            ..ObjectMeta::default()
        },
        colour: colour.into(),
    }
}

#[test]
fn keys_follow_calicos_layout() {
    assert_eq!(
        Datastore::key_of::<Widget>(None, "w1"),
        "/calico/resources/v3/projectcalico.org/widgets/w1"
    );
    assert_eq!(
        Datastore::key_of::<Gadget>(Some("ns1"), "g1"),
        "/calico/resources/v3/projectcalico.org/gadgets/ns1/g1"
    );
    assert_eq!(
        Datastore::key_of::<Gadget>(None, "g1"),
        "/calico/resources/v3/projectcalico.org/gadgets/default/g1"
    );
}

#[tokio::test]
async fn create_get_update_delete_with_resource_versions() {
    let etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;

    let created = ds.create(&widget("w1", 1)).await.unwrap();
    let rev: i64 = created
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(created.size, 1);

    // Stored JSON is the object without resourceVersion; the revision is etcd's.
    let raw = ds
        .get_raw(&Datastore::key_of::<Widget>(None, "w1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw.mod_revision, rev);
    let stored: serde_json::Value = serde_json::from_slice(&raw.value).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"metadata": {"name": "w1"}, "size": 1})
    );

    let got: Widget = ds.get(None, "w1").await.unwrap().unwrap();
    assert_eq!(got, created);
    assert_eq!(ds.get::<Widget>(None, "nope").await.unwrap(), None);

    let err = ds.create(&widget("w1", 2)).await.unwrap_err();
    assert!(matches!(err, DatastoreError::AlreadyExists { .. }), "{err}");

    let mut changed = got.clone();
    changed.size = 2;
    let updated = ds.update(&changed).await.unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        got.metadata.resource_version
    );

    // The version read before the update is stale now.
    let mut stale = got.clone();
    stale.size = 3;
    let err = ds.update(&stale).await.unwrap_err();
    assert!(matches!(err, DatastoreError::Conflict { .. }), "{err}");
    assert_eq!(ds.get::<Widget>(None, "w1").await.unwrap().unwrap().size, 2);

    // Updating without a resourceVersion is refused with a clear message.
    let err = ds.update(&widget("w1", 4)).await.unwrap_err();
    assert!(
        matches!(err, DatastoreError::InvalidRequest { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("metadata.resourceVersion"),
        "{err}"
    );
    let mut garbage = widget("w1", 4);
    garbage.metadata.resource_version = Some("abc".into());
    assert!(
        ds.update(&garbage)
            .await
            .unwrap_err()
            .to_string()
            .contains("\"abc\"")
    );

    let stale_rev = rev;
    let err = ds
        .delete::<Widget>(None, "w1", Some(stale_rev))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    let deleted: Widget = ds.delete(None, "w1", None).await.unwrap();
    assert_eq!(deleted, updated);
    assert_eq!(ds.get::<Widget>(None, "w1").await.unwrap(), None);
    let err = ds.delete::<Widget>(None, "w1", None).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = ds.update(&updated).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn apply_creates_then_replaces() {
    let etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;
    let first = ds.apply(&widget("a", 1)).await.unwrap();
    // apply ignores the object's own (here stale) resourceVersion.
    let mut again = widget("a", 2);
    again.metadata.resource_version = Some("1".into());
    let second = ds.apply(&again).await.unwrap();
    assert_eq!(second.size, 2);
    assert!(
        second
            .metadata
            .resource_version
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > first
                .metadata
                .resource_version
                .unwrap()
                .parse::<i64>()
                .unwrap()
    );
    assert_eq!(ds.get::<Widget>(None, "a").await.unwrap().unwrap().size, 2);
}

#[tokio::test]
async fn namespaced_kinds_list_per_namespace_or_all() {
    let etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;
    ds.create(&gadget(Some("ns1"), "g1", "red")).await.unwrap();
    ds.create(&gadget(Some("ns1"), "g2", "blue")).await.unwrap();
    ds.create(&gadget(Some("ns2"), "g1", "green"))
        .await
        .unwrap();
    // A missing namespace means Kubernetes' default one.
    let defaulted = ds.create(&gadget(None, "g3", "grey")).await.unwrap();
    assert_eq!(defaulted.metadata.namespace.as_deref(), Some("default"));
    // A namespace whose name extends another's must not leak into its listing.
    ds.create(&gadget(Some("ns10"), "g9", "black"))
        .await
        .unwrap();

    let (ns1, rev) = ds.list::<Gadget>(Some("ns1")).await.unwrap();
    let names: Vec<(&str, &str)> = ns1
        .iter()
        .map(|g| (g.metadata.name.as_str(), g.colour.as_str()))
        .collect();
    assert_eq!(names, [("g1", "red"), ("g2", "blue")]);
    assert!(rev > 0);
    assert!(ns1.iter().all(|g| g.metadata.resource_version.is_some()));

    let (all, _) = ds.list::<Gadget>(None).await.unwrap();
    let mut keys: Vec<String> = all
        .iter()
        .map(|g| {
            format!(
                "{}/{}",
                g.metadata.namespace.as_deref().unwrap(),
                g.metadata.name
            )
        })
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["default/g3", "ns1/g1", "ns1/g2", "ns10/g9", "ns2/g1"]
    );

    let got: Gadget = ds.get(Some("ns2"), "g1").await.unwrap().unwrap();
    assert_eq!(got.colour, "green");
    assert_eq!(ds.list::<Widget>(None).await.unwrap().0, vec![]);
}

#[tokio::test]
async fn bad_names_and_bad_stored_values_are_reported() {
    let etcd = EtcdServer::start().await;
    let ds = etcd.datastore().await;
    let err = ds.create(&widget("a/b", 1)).await.unwrap_err();
    assert!(
        matches!(err, DatastoreError::InvalidRequest { .. }),
        "{err}"
    );
    let err = ds.create(&widget("", 1)).await.unwrap_err();
    assert!(err.to_string().contains("metadata.name"), "{err}");
    let mut scoped = widget("w", 1);
    scoped.metadata.namespace = Some("ns1".into());
    let err = ds.create(&scoped).await.unwrap_err();
    assert!(err.to_string().contains("cluster-scoped"), "{err}");

    let key = Datastore::key_of::<Widget>(None, "broken");
    ds.create_raw(&key, b"{not json".to_vec()).await.unwrap();
    let err = ds.get::<Widget>(None, "broken").await.unwrap_err();
    assert!(
        matches!(&err, DatastoreError::Decode { key: k, .. } if k == &key),
        "{err}"
    );
    assert!(err.to_string().contains("Widget"), "{err}");
}
