//! The typed layer: a [`Resource`] is stored as the JSON of the full object at its Calico key,
//! without `metadata.resourceVersion`, which on read is the key's etcd mod revision and on
//! update is the compare-and-swap guard.

use super::client::Datastore;
use super::error::{DatastoreError, Result};
use super::keys::{DEFAULT_NAMESPACE, check_segment, resource_key, resource_prefix};
use super::{Kv, TxnOp};
use crate::model::Resource;

/// How many times `apply` re-reads after losing a race before it reports the conflict.
const APPLY_ATTEMPTS: usize = 5;

impl Datastore {
    /// The key of a `T` named `name` (in `namespace` for namespaced kinds; default
    /// `default`): `/calico/resources/v3/projectcalico.org/<plural>/[<ns>/]<name>`.
    pub fn key_of<T: Resource>(namespace: Option<&str>, name: &str) -> String {
        resource_key::<T>(namespace, name)
    }

    /// Reads one object; its `metadata.resourceVersion` is the stored revision.
    pub async fn get<T: Resource>(&self, namespace: Option<&str>, name: &str) -> Result<Option<T>> {
        let key = Self::key_of::<T>(namespace, name);
        self.get_raw(&key).await?.map(|kv| decode(&kv)).transpose()
    }

    /// Lists the objects of a kind (all namespaces when `namespace` is `None`), with the
    /// revision of the listing (watch from it to follow changes).
    pub async fn list<T: Resource>(&self, namespace: Option<&str>) -> Result<(Vec<T>, i64)> {
        let (kvs, revision) = self.list_raw(&resource_prefix::<T>(namespace)).await?;
        let objects = kvs.iter().map(decode).collect::<Result<Vec<T>>>()?;
        Ok((objects, revision))
    }

    /// Creates the object; `AlreadyExists` if the key is taken. Returns it as stored.
    pub async fn create<T: Resource>(&self, obj: &T) -> Result<T> {
        let (key, obj) = placed(obj)?;
        let revision = self.create_raw(&key, encode(&obj)?).await?;
        Ok(with_revision(obj, revision))
    }

    /// Replaces the object if it is still at its `metadata.resourceVersion` (required):
    /// `Conflict` if it changed since, `NotFound` if it is gone.
    pub async fn update<T: Resource>(&self, obj: &T) -> Result<T> {
        let (key, obj) = placed(obj)?;
        let known = required_revision(&key, &obj)?;
        let revision = self.update_raw(&key, encode(&obj)?, known).await?;
        Ok(with_revision(obj, revision))
    }

    /// Creates the object, or replaces whatever is stored at the current revision (the
    /// object's own resourceVersion is ignored). Retries a few times if it loses a race.
    pub async fn apply<T: Resource>(&self, obj: &T) -> Result<T> {
        let (key, obj) = placed(obj)?;
        let value = encode(&obj)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let op = match self.get_raw(&key).await? {
                None => TxnOp::Create {
                    key: key.clone(),
                    value: value.clone(),
                },
                Some(current) => TxnOp::Update {
                    key: key.clone(),
                    value: value.clone(),
                    mod_revision: current.mod_revision,
                },
            };
            match self.txn(vec![op]).await {
                Ok(revision) => return Ok(with_revision(obj, revision)),
                Err(err) if err.is_conflict() && attempt < APPLY_ATTEMPTS => {
                    tracing::debug!(%key, attempt, "apply lost a race; re-reading");
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Deletes an object (only if still at `revision`, when given) and returns it as it was.
    pub async fn delete<T: Resource>(
        &self,
        namespace: Option<&str>,
        name: &str,
        revision: Option<i64>,
    ) -> Result<T> {
        let key = Self::key_of::<T>(namespace, name);
        let kv = self.delete_returning(&key, revision).await?;
        decode(&kv)
    }
}

/// The object's key, and the object with its namespace filled in where the key defaulted it.
fn placed<T: Resource>(obj: &T) -> Result<(String, T)> {
    let meta = obj.meta();
    let key = resource_key::<T>(meta.namespace.as_deref(), &meta.name);
    check_segment(&key, "name", &meta.name)?;
    let mut obj = obj.clone();
    if T::NAMESPACED {
        let ns = obj
            .meta_mut()
            .namespace
            .get_or_insert_with(|| DEFAULT_NAMESPACE.to_string());
        check_segment(&key, "namespace", ns)?;
    } else if let Some(ns) = &meta.namespace {
        return Err(DatastoreError::InvalidRequest {
            key,
            message: format!(
                "{} is cluster-scoped, but metadata.namespace is {ns:?}",
                T::KIND
            ),
        });
    }
    Ok((key, obj))
}

fn required_revision<T: Resource>(key: &str, obj: &T) -> Result<i64> {
    let invalid = |message: String| DatastoreError::InvalidRequest {
        key: key.to_string(),
        message,
    };
    let Some(version) = obj.meta().resource_version.as_deref() else {
        return Err(invalid(
            "update needs metadata.resourceVersion (the revision the object was read at); \
             read the object first, or use apply"
                .into(),
        ));
    };
    match version.parse::<i64>() {
        Ok(revision) if revision > 0 => Ok(revision),
        _ => Err(invalid(format!(
            "metadata.resourceVersion {version:?} is not an etcd revision (a positive integer)"
        ))),
    }
}

/// JSON of the object without `metadata.resourceVersion` (etcd keeps that as the revision).
fn encode<T: Resource>(obj: &T) -> Result<Vec<u8>> {
    let mut stored = obj.clone();
    stored.meta_mut().resource_version = None;
    serde_json::to_vec(&stored).map_err(|err| DatastoreError::Encode {
        message: format!("{} {:?}: {err}", T::KIND, obj.meta().name),
    })
}

/// Decodes a resource read as raw bytes (by [`Datastore::read_many`], say), with its
/// `metadata.resourceVersion` set from the key's mod revision, as the typed reads do.
pub fn decode_resource<T: Resource>(kv: &Kv) -> Result<T> {
    decode(kv)
}

fn decode<T: Resource>(kv: &Kv) -> Result<T> {
    let obj: T = serde_json::from_slice(&kv.value).map_err(|err| DatastoreError::Decode {
        key: kv.key.clone(),
        message: format!("not a valid {}: {err}", T::KIND),
    })?;
    Ok(with_revision(obj, kv.mod_revision))
}

fn with_revision<T: Resource>(mut obj: T, revision: i64) -> T {
    obj.meta_mut().resource_version = Some(revision.to_string());
    obj
}
