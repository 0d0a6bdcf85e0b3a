//! Reading, defaulting and checking the resources of `-f FILE` before anything is written:
//! a file with one bad object writes nothing.

use std::io::Read;
use std::path::Path;

use config::datastore::DEFAULT_NAMESPACE;
use config::model::{AnyResource, IPPool, parse_documents};
use config::validate::{check_pool_overlaps, validate};

use crate::kinds::describe;

/// Reads `path` (`-` = standard input) and parses every resource in it.
pub fn read_resources(path: &Path) -> Result<Vec<AnyResource>, String> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("error reading standard input: {e}"))?;
        text
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| format!("error reading file {}: {e}", path.display()))?
    };
    parse_documents(&text).map_err(|e| format!("error parsing {}: {e}", path.display()))
}

/// Gives namespaced objects that name none the `-n` namespace, else `default`.
pub fn default_namespaces(resources: &mut [AnyResource], namespace: Option<&str>) {
    for res in resources {
        if res.kind().namespaced() && res.meta().namespace.is_none() {
            res.meta_mut().namespace = Some(namespace.unwrap_or(DEFAULT_NAMESPACE).to_string());
        }
    }
}

/// Validates each object, and new pools against `existing_pools` and each other.
pub fn check_all(resources: &[AnyResource], existing_pools: &[IPPool]) -> Result<(), String> {
    let mut pools: Vec<IPPool> = existing_pools.to_vec();
    for res in resources {
        let name = describe(res.kind(), res.namespace(), res.name());
        validate(res).map_err(|e| format!("{name} is invalid: {e}"))?;
        if let AnyResource::IPPool(pool) = res {
            check_pool_overlaps(pool, &pools).map_err(|e| format!("{name} is invalid: {e}"))?;
            pools.retain(|p| p.metadata.name != pool.metadata.name);
            pools.push(pool.clone());
        }
    }
    Ok(())
}
