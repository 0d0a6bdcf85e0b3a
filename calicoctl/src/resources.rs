//! `create`, `apply`, `replace` and `delete` of resources, with Calico's result messages:
//! `Successfully applied 2 'IPPool' resource(s)`, `Partial success: ...`, `Failed to ...`.

use config::datastore::{Datastore, DatastoreError};
use config::model::{AnyResource, IPPool, ResourceKind};

use crate::kinds::{self, describe};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Create { skip_exists: bool },
    Apply,
    Replace,
    Delete { skip_not_exists: bool },
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Create { .. } => "create",
            Action::Apply => "apply",
            Action::Replace => "replace",
            Action::Delete { .. } => "delete",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Action::Create { .. } => "created",
            Action::Apply => "applied",
            Action::Replace => "replaced",
            Action::Delete { .. } => "deleted",
        }
    }
}

/// The outcome of one command over a list of resources.
pub struct Outcome {
    pub message: String,
    pub success: bool,
}

/// Existing pools, for overlap checks of the pools a file writes.
pub async fn existing_pools(ds: &Datastore) -> Result<Vec<IPPool>, DatastoreError> {
    Ok(ds.list::<IPPool>(None).await?.0)
}

/// Writes resources in file order, stopping at the first failure, and words the result
/// the way calicoctl does.
pub async fn execute(ds: &Datastore, action: Action, resources: &[AnyResource]) -> Outcome {
    let total = resources.len();
    let kinds: Vec<ResourceKind> = resources.iter().map(AnyResource::kind).collect();
    let single_kind = kinds
        .first()
        .filter(|k| kinds.iter().all(|other| other == *k))
        .map(|k| k.kind_name());
    let mut handled = 0;
    let mut error = None;
    for res in resources {
        match execute_one(ds, action, res).await {
            Ok(()) => handled += 1,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    summarize(action, total, handled, single_kind, error)
}

async fn execute_one(ds: &Datastore, action: Action, res: &AnyResource) -> Result<(), String> {
    let name = describe(res.kind(), res.namespace(), res.name());
    let result = match action {
        Action::Create { skip_exists } => match kinds::create(ds, res).await {
            Err(DatastoreError::AlreadyExists { .. }) if skip_exists => Ok(()),
            other => other.map(drop),
        },
        Action::Apply => kinds::apply(ds, res).await.map(drop),
        Action::Replace => replace(ds, res).await,
        Action::Delete { skip_not_exists } => {
            match kinds::delete(ds, res.kind(), res.namespace(), res.name()).await {
                Err(DatastoreError::NotFound { .. }) if skip_not_exists => Ok(()),
                other => other.map(drop),
            }
        }
    };
    result.map_err(|e| describe_error(&e, &name))
}

/// Replace updates an existing object: at the revision the file names, else the current one.
async fn replace(ds: &Datastore, res: &AnyResource) -> Result<(), DatastoreError> {
    let mut obj = res.clone();
    if obj.meta().resource_version.is_none() {
        let current = kinds::get(ds, res.kind(), res.namespace(), res.name())
            .await?
            .ok_or_else(|| DatastoreError::NotFound {
                key: res.name().to_string(),
            })?;
        obj.meta_mut().resource_version = current.meta().resource_version.clone();
    }
    kinds::update(ds, &obj).await.map(drop)
}

/// Calico's wording for datastore errors about one resource.
pub fn describe_error(e: &DatastoreError, name: &str) -> String {
    match e {
        DatastoreError::AlreadyExists { .. } => format!("resource already exists: {name}"),
        DatastoreError::NotFound { .. } => format!("resource does not exist: {name}"),
        DatastoreError::Conflict { .. } => {
            format!("update conflict: {name} was modified by someone else; read it again")
        }
        other => other.to_string(),
    }
}

fn summarize(
    action: Action,
    total: usize,
    handled: usize,
    single_kind: Option<&str>,
    error: Option<String>,
) -> Outcome {
    let (verb, past) = (action.verb(), action.past());
    let quoted = single_kind.map(|k| format!(" '{k}'")).unwrap_or_default();
    let (message, success) = match error {
        None => (
            format!("Successfully {past} {handled}{quoted} resource(s)"),
            true,
        ),
        Some(err) if handled == 0 && total == 1 => {
            (format!("Failed to {verb}{quoted} resource: {err}"), false)
        }
        Some(err) if handled == 0 => (
            format!("Failed to {verb} any{quoted} resources: {err}"),
            false,
        ),
        Some(err) => (
            format!(
                "Partial success: {past} the first {handled} out of {total}{quoted} resources:\nHit error: {err}"
            ),
            false,
        ),
    };
    Outcome { message, success }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_calico() {
        let ok = summarize(Action::Apply, 1, 1, Some("BGPPeer"), None);
        assert_eq!(ok.message, "Successfully applied 1 'BGPPeer' resource(s)");
        assert!(ok.success);
        let mixed = summarize(Action::Create { skip_exists: false }, 3, 3, None, None);
        assert_eq!(mixed.message, "Successfully created 3 resource(s)");
        let partial = summarize(Action::Apply, 3, 2, Some("IPPool"), Some("boom".into()));
        assert_eq!(
            partial.message,
            "Partial success: applied the first 2 out of 3 'IPPool' resources:\nHit error: boom"
        );
        assert!(!partial.success);
        let one = summarize(
            Action::Delete {
                skip_not_exists: false,
            },
            1,
            0,
            Some("Node"),
            Some("x".into()),
        );
        assert_eq!(one.message, "Failed to delete 'Node' resource: x");
        let many = summarize(Action::Replace, 2, 0, None, Some("x".into()));
        assert_eq!(many.message, "Failed to replace any resources: x");
    }
}
