//! `patch` (JSON merge patch, RFC 7386) and `label`: read, change, validate, write back
//! under CAS at the revision that was read.

use config::datastore::Datastore;
use config::model::{AnyResource, ResourceKind};
use config::validate::validate;

use crate::kinds::{self, describe};
use crate::resources::describe_error;

async fn read(
    ds: &Datastore,
    kind: ResourceKind,
    namespace: Option<&str>,
    name: &str,
) -> Result<AnyResource, String> {
    let what = describe(kind, namespace, name);
    kinds::get(ds, kind, namespace, name)
        .await
        .map_err(|e| describe_error(&e, &what))?
        .ok_or_else(|| format!("resource does not exist: {what}"))
}

async fn write_back(ds: &Datastore, obj: &AnyResource) -> Result<(), String> {
    let what = describe(obj.kind(), obj.namespace(), obj.name());
    validate(obj).map_err(|e| format!("{what} is invalid: {e}"))?;
    kinds::update(ds, obj)
        .await
        .map(drop)
        .map_err(|e| describe_error(&e, &what))
}

/// Applies a merge patch; name, namespace and revision cannot be patched away.
pub async fn patch(
    ds: &Datastore,
    kind: ResourceKind,
    namespace: Option<&str>,
    name: &str,
    patch: &str,
) -> Result<String, String> {
    let patch: serde_json::Value =
        serde_json::from_str(patch).map_err(|e| format!("patch is not valid JSON: {e}"))?;
    let current = read(ds, kind, namespace, name).await?;
    let mut doc = serde_json::to_value(&current).map_err(|e| e.to_string())?;
    json_patch::merge(&mut doc, &patch);
    let mut patched =
        AnyResource::from_value(kind, doc).map_err(|e| format!("patched object: {e}"))?;
    *patched.meta_mut() = config::model::ObjectMeta {
        labels: patched.meta().labels.clone(),
        annotations: patched.meta().annotations.clone(),
        ..current.meta().clone()
    };
    write_back(ds, &patched).await?;
    Ok(format!(
        "Successfully patched 1 '{}' resource",
        kind.kind_name()
    ))
}

/// What `label` does.
pub enum LabelChange<'a> {
    Set {
        key: &'a str,
        value: &'a str,
        overwrite: bool,
    },
    Remove {
        key: &'a str,
    },
}

impl<'a> LabelChange<'a> {
    /// `key=value` (set) or `key` (with `--remove`).
    pub fn parse(arg: &'a str, remove: bool, overwrite: bool) -> Result<Self, String> {
        match (remove, arg.split_once('=')) {
            (true, None) => Ok(LabelChange::Remove { key: arg }),
            (true, Some(_)) => Err("--remove takes a label key, not key=value".into()),
            (false, Some((key, value))) => Ok(LabelChange::Set {
                key,
                value,
                overwrite,
            }),
            (false, None) => Err(format!("label {arg:?} must be key=value")),
        }
    }
}

pub async fn label(
    ds: &Datastore,
    kind: ResourceKind,
    kind_arg: &str,
    namespace: Option<&str>,
    name: &str,
    change: LabelChange<'_>,
) -> Result<String, String> {
    let mut obj = read(ds, kind, namespace, name).await?;
    let labels = &mut obj.meta_mut().labels;
    let message = match change {
        LabelChange::Set {
            key,
            value,
            overwrite,
        } => {
            if labels.contains_key(key) && !overwrite {
                return Err(format!(
                    "failed to update label of resource {kind_arg} {name}: label {key} already exists, use --overwrite"
                ));
            }
            labels.insert(key.to_string(), value.to_string());
            format!("Successfully set label {key} on {kind_arg} {name}")
        }
        LabelChange::Remove { key } => {
            if labels.remove(key).is_none() {
                return Err(format!(
                    "failed to remove label of resource {kind_arg} {name}: label {key} does not exist"
                ));
            }
            format!("Successfully removed label {key} from {kind_arg} {name}")
        }
    };
    write_back(ds, &obj).await?;
    Ok(message)
}
