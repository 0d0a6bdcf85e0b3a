//! The diff between what the controllers want in etcd and what etcd holds: pure
//! functions from (desired, current) to the writes that make them equal.
//!
//! Only a resource's spec is compared and replaced: metadata that etcd or a user keeps
//! (revision, uid, labels and annotations of a profile) is left alone, as Calico's
//! controllers update `existing.Spec` and nothing else.

use std::collections::BTreeMap;

use config::model::{NetworkPolicy, Profile, Resource};

/// `(namespace, name)` of a stored resource; `None` namespace for cluster-scoped kinds.
pub type Key = (Option<String>, String);

/// The key of a resource.
pub fn key_of<T: Resource>(obj: &T) -> Key {
    (obj.meta().namespace.clone(), obj.meta().name.clone())
}

/// A kind the controllers own some objects of (recognised by name prefix).
pub trait Managed: Resource {
    /// Whether `self` already says what `desired` says.
    fn same_content(&self, desired: &Self) -> bool;
    /// `self` (as stored, with its revision) carrying `desired`'s content.
    fn with_content_of(&self, desired: &Self) -> Self;
}

impl Managed for Profile {
    fn same_content(&self, desired: &Self) -> bool {
        self.spec == desired.spec
    }
    fn with_content_of(&self, desired: &Self) -> Self {
        let mut out = self.clone();
        out.spec = desired.spec.clone();
        out
    }
}

impl Managed for NetworkPolicy {
    fn same_content(&self, desired: &Self) -> bool {
        self.spec == desired.spec
    }
    fn with_content_of(&self, desired: &Self) -> Self {
        let mut out = self.clone();
        out.spec = desired.spec.clone();
        out
    }
}

/// One write to etcd. `Update` and `Delete` carry the revision read (the CAS guard).
#[derive(Clone, Debug, PartialEq)]
pub enum Write<T> {
    Create(T),
    Update(T),
    Delete { key: Key, revision: Option<i64> },
}

impl<T: Resource> Write<T> {
    /// The key written.
    pub fn key(&self) -> Key {
        match self {
            Write::Create(o) | Write::Update(o) => key_of(o),
            Write::Delete { key, .. } => key.clone(),
        }
    }
}

/// What to write for one key: create if missing, update if it differs, delete if it
/// is stored but no longer wanted, nothing if equal.
pub fn plan_one<T: Managed>(desired: Option<&T>, current: Option<&T>) -> Option<Write<T>> {
    match (desired, current) {
        (Some(d), None) => Some(Write::Create(d.clone())),
        (Some(d), Some(c)) if c.same_content(d) => None,
        (Some(d), Some(c)) => Some(Write::Update(c.with_content_of(d))),
        (None, Some(c)) => Some(Write::Delete {
            key: key_of(c),
            revision: revision_of(c),
        }),
        (None, None) => None,
    }
}

/// The writes that make the owned part of `current` equal to `desired` (a full
/// resync): every desired object, and every owned stored object nobody wants any more
/// (a namespace deleted while the controller was not running).
pub fn plan_all<T: Managed>(
    desired: &BTreeMap<Key, T>,
    current: &[T],
    owned: impl Fn(&T) -> bool,
) -> Vec<Write<T>> {
    let stored: BTreeMap<Key, &T> = current
        .iter()
        .filter(|c| owned(c))
        .map(|c| (key_of(c), c))
        .collect();
    let mut writes: Vec<Write<T>> = desired
        .iter()
        .filter_map(|(k, d)| plan_one(Some(d), stored.get(k).copied()))
        .collect();
    writes.extend(
        stored
            .iter()
            .filter(|(k, _)| !desired.contains_key(*k))
            .filter_map(|(_, c)| plan_one(None, Some(*c))),
    );
    writes
}

/// The etcd revision a resource was read at.
pub fn revision_of<T: Resource>(obj: &T) -> Option<i64> {
    obj.meta().resource_version.as_deref()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::model::{ProfileSpec, Rule};

    fn profile(name: &str, label: &str, rev: Option<i64>) -> Profile {
        let mut p = Profile::named(
            name,
            ProfileSpec {
                labels_to_apply: [("pcns.l".to_string(), label.to_string())].into(),
                ..ProfileSpec::default()
            },
        );
        p.metadata.resource_version = rev.map(|r| r.to_string());
        p
    }

    fn desired(ps: &[Profile]) -> BTreeMap<Key, Profile> {
        ps.iter().map(|p| (key_of(p), p.clone())).collect()
    }

    #[test]
    fn one_key_create_update_delete_or_nothing() {
        let want = profile("kns.a", "x", None);
        let same = profile("kns.a", "x", Some(5));
        let old = profile("kns.a", "y", Some(5));
        assert_eq!(
            plan_one(Some(&want), None),
            Some(Write::Create(want.clone()))
        );
        assert_eq!(plan_one(Some(&want), Some(&same)), None);
        // The update keeps the stored revision: it is the CAS guard.
        assert_eq!(
            plan_one(Some(&want), Some(&old)),
            Some(Write::Update(same.clone()))
        );
        assert_eq!(
            plan_one::<Profile>(None, Some(&old)),
            Some(Write::Delete {
                key: (None, "kns.a".into()),
                revision: Some(5)
            })
        );
        assert_eq!(plan_one::<Profile>(None, None), None);
    }

    #[test]
    fn metadata_outside_the_spec_is_not_a_difference() {
        let want = profile("kns.a", "x", None);
        let mut stored = profile("kns.a", "x", Some(9));
        stored.metadata.uid = Some("u".into());
        stored.metadata.creation_timestamp = Some("t".into());
        assert_eq!(plan_one(Some(&want), Some(&stored)), None);
        let mut changed = want.clone();
        changed.spec.ingress = vec![Rule::default()];
        let Some(Write::Update(u)) = plan_one(Some(&changed), Some(&stored)) else {
            panic!("expected an update");
        };
        assert_eq!(u.metadata.uid.as_deref(), Some("u"));
        assert_eq!(u.spec, changed.spec);
    }

    #[test]
    fn resync_removes_owned_leftovers_and_leaves_others() {
        let want = desired(&[profile("kns.a", "x", None), profile("kns.b", "x", None)]);
        let current = vec![
            profile("kns.a", "x", Some(2)),
            profile("kns.gone", "x", Some(3)),
            profile("ksa.a.default", "x", Some(4)),
            profile("projectcalico-default-allow", "x", Some(5)),
        ];
        let writes = plan_all(&want, &current, |p| p.metadata.name.starts_with("kns."));
        assert_eq!(
            writes,
            vec![
                Write::Create(profile("kns.b", "x", None)),
                Write::Delete {
                    key: (None, "kns.gone".into()),
                    revision: Some(3)
                },
            ]
        );
    }
}
