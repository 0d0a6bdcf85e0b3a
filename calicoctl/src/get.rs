//! `calicoctl get KIND [NAME...] [-o ps|wide|yaml|json|custom-columns=A,B] [-n NS|-A]`.

use config::datastore::{DEFAULT_NAMESPACE, Datastore};
use config::model::{
    AnyResource, AsNumber, BGPConfiguration, ResourceKind, ResourceList, to_json, to_yaml,
};

use crate::columns::{self, Context};
use crate::kinds::{self, describe};
use crate::resources::describe_error;
use crate::table::render_columns;

/// How to print.
#[derive(Debug, PartialEq, Eq)]
pub enum Format {
    Table { wide: bool },
    Custom(Vec<String>),
    Yaml,
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        Ok(match s {
            "ps" => Format::Table { wide: false },
            "wide" => Format::Table { wide: true },
            "yaml" => Format::Yaml,
            "json" => Format::Json,
            _ => match s.strip_prefix("custom-columns=") {
                Some(cols) if !cols.is_empty() => {
                    Format::Custom(cols.split(',').map(|c| c.trim().to_uppercase()).collect())
                }
                _ => return Err(format!("unrecognized output format '{s}'")),
            },
        })
    }
}

pub struct GetRequest<'a> {
    pub kind: ResourceKind,
    pub names: &'a [String],
    pub format: Format,
    pub namespace: Option<&'a str>,
    pub all_namespaces: bool,
}

/// Fetches and renders; the error is the one line calicoctl prints.
pub async fn run(ds: &Datastore, req: &GetRequest<'_>) -> Result<String, String> {
    let kind = req.kind;
    // Cluster-wide kinds have no namespace; `-A` lists every namespace.
    let namespace = (kind.namespaced() && !(req.all_namespaces && req.names.is_empty()))
        .then(|| req.namespace.unwrap_or(DEFAULT_NAMESPACE));
    let (items, revision) = if req.names.is_empty() {
        let (mut items, revision) = kinds::list(ds, kind, namespace)
            .await
            .map_err(|e| e.to_string())?;
        items.sort_by(|a, b| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())));
        // Calico's tier list is sorted by order, unset orders last (resourcemgr/tier.go).
        items.sort_by(|a, b| match (a, b) {
            (AnyResource::Tier(a), AnyResource::Tier(b)) => a
                .spec
                .effective_order()
                .total_cmp(&b.spec.effective_order()),
            _ => std::cmp::Ordering::Equal,
        });
        (items, Some(revision))
    } else {
        let mut items = Vec::new();
        for name in req.names {
            let found = kinds::get(ds, kind, namespace, name)
                .await
                .map_err(|e| describe_error(&e, &describe(kind, namespace, name)))?;
            items.push(found.ok_or_else(|| {
                format!(
                    "resource does not exist: {}",
                    describe(kind, namespace, name)
                )
            })?);
        }
        (items, None)
    };
    let single = req.names.len() == 1;
    match &req.format {
        Format::Yaml | Format::Json => {
            let text = if single {
                serialize(&items[0], &req.format)?
            } else {
                let list =
                    ResourceList::of_kind(Some(kind), items, revision.map(|r| r.to_string()));
                serialize(&list, &req.format)?
            };
            Ok(text)
        }
        Format::Table { wide } => {
            let mut heads: Vec<String> = columns::headings(kind, *wide)
                .iter()
                .map(|h| h.to_string())
                .collect();
            if kind.namespaced() && namespace.is_none() {
                heads.insert(0, "NAMESPACE".to_string());
            }
            table(ds, kind, &heads, &items).await
        }
        Format::Custom(heads) => table(ds, kind, heads, &items).await,
    }
}

async fn table(
    ds: &Datastore,
    kind: ResourceKind,
    heads: &[String],
    items: &[AnyResource],
) -> Result<String, String> {
    let ctx = Context {
        default_as: if kind == ResourceKind::Node && heads.iter().any(|h| h == "ASN") {
            cluster_as_number(ds).await.map_err(|e| e.to_string())?
        } else {
            AsNumber(64512)
        },
    };
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let mut row = Vec::with_capacity(heads.len());
        for head in heads {
            row.push(
                columns::cell(item, head, &ctx)
                    .ok_or_else(|| format!("unknown column {head} for {}", kind.kind_name()))?,
            );
        }
        rows.push(row);
    }
    let refs: Vec<&str> = heads.iter().map(String::as_str).collect();
    Ok(render_columns(&refs, &rows))
}

/// The AS nodes without their own inherit: BGPConfiguration `default`, else 64512.
pub async fn cluster_as_number(
    ds: &Datastore,
) -> Result<AsNumber, config::datastore::DatastoreError> {
    Ok(ds
        .get::<BGPConfiguration>(None, "default")
        .await?
        .map(|c| c.spec.effective_as_number())
        .unwrap_or(AsNumber(64512)))
}

fn serialize<T: serde::Serialize>(value: &T, format: &Format) -> Result<String, String> {
    match format {
        Format::Json => to_json(value).map(|s| s + "\n"),
        _ => to_yaml(value),
    }
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(Format::parse("ps"), Ok(Format::Table { wide: false }));
        assert_eq!(Format::parse("wide"), Ok(Format::Table { wide: true }));
        assert_eq!(
            Format::parse("custom-columns=name,asn"),
            Ok(Format::Custom(vec!["NAME".into(), "ASN".into()]))
        );
        assert!(Format::parse("xml").is_err());
        assert!(Format::parse("custom-columns=").is_err());
    }
}
