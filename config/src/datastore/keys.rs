//! Calico's etcdv3 key layout for resources, and etcd range helpers.

use super::error::{DatastoreError, Result};
use crate::model::Resource;

/// Root of every v3 resource key.
pub const RESOURCE_ROOT: &str = "/calico/resources/v3/projectcalico.org/";

/// The namespace a namespaced resource lands in when none is given (Kubernetes' and
/// calicoctl's default).
pub const DEFAULT_NAMESPACE: &str = "default";

/// The key of one object:
/// `/calico/resources/v3/projectcalico.org/<plural>/[<namespace>/]<name>`.
/// A namespaced kind without a namespace goes to [`DEFAULT_NAMESPACE`]; a namespace given for
/// a cluster-scoped kind is ignored (it is not part of that kind's key).
pub fn resource_key<T: Resource>(namespace: Option<&str>, name: &str) -> String {
    if T::NAMESPACED {
        let ns = namespace
            .filter(|ns| !ns.is_empty())
            .unwrap_or(DEFAULT_NAMESPACE);
        format!("{RESOURCE_ROOT}{}/{ns}/{name}", T::PLURAL)
    } else {
        format!("{RESOURCE_ROOT}{}/{name}", T::PLURAL)
    }
}

/// The prefix listing a kind: all of it (`namespace == None`, or a cluster-scoped kind), or
/// one namespace of a namespaced kind. Ends with `/` so `ippools` never matches `ippoolsx`.
pub fn resource_prefix<T: Resource>(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if T::NAMESPACED => format!("{RESOURCE_ROOT}{}/{ns}/", T::PLURAL),
        _ => format!("{RESOURCE_ROOT}{}/", T::PLURAL),
    }
}

/// Checks that a name or namespace can be one key segment: non-empty and without `/`
/// (which would silently move the object into another kind's or namespace's key range).
pub(crate) fn check_segment(key: &str, what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(DatastoreError::InvalidRequest {
            key: key.to_string(),
            message: format!("metadata.{what} must not be empty"),
        });
    }
    if value.contains('/') {
        return Err(DatastoreError::InvalidRequest {
            key: key.to_string(),
            message: format!("metadata.{what} {value:?} must not contain '/'"),
        });
    }
    Ok(())
}

/// The smallest key greater than every key starting with `prefix` (etcd's range_end for a
/// prefix query: increment the last byte that is not 0xff, drop what follows). An empty
/// or all-0xff prefix means "to the end of the keyspace", which etcd spells `\0`.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The smallest key greater than `key` (for paging through a range).
pub(crate) fn key_successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end(b"/calico/a/"), b"/calico/a0".to_vec());
        assert_eq!(prefix_end(b"ab\xff"), b"ac".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }

    #[test]
    fn successor_sorts_right_after_the_key() {
        let next = key_successor(b"/a/b");
        assert!(next.as_slice() > b"/a/b".as_slice());
        assert!(next.as_slice() < b"/a/b0".as_slice());
        assert!(next.as_slice() < b"/a/b/".as_slice());
    }

    #[test]
    fn segment_rules_name_the_field() {
        let err = check_segment("k", "name", "a/b").unwrap_err();
        assert!(err.to_string().contains("metadata.name \"a/b\""), "{err}");
        assert!(
            check_segment("k", "namespace", "")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        check_segment("k", "name", "node-1.example").unwrap();
    }
}
