//! Reading resource documents (YAML or JSON, single, multi-document or List) and
//! writing objects and Lists back out.

use serde::Serialize;
use serde::ser::SerializeStruct;
use serde_json::Value;

use super::any::{AnyResource, ResourceKind};
use super::meta::{API_VERSION, Resource};

/// Why a resource document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{}invalid {format}: {message}", doc_prefix(*.document))]
    Syntax {
        document: usize,
        format: &'static str,
        message: String,
    },
    #[error("{}{path}: {message}", doc_prefix(*.document))]
    Field {
        document: usize,
        path: String,
        message: String,
    },
    #[error("{}{path}missing or non-string field `kind`", doc_prefix(*.document))]
    MissingKind { document: usize, path: String },
    #[error("{}{path}unknown resource kind {kind:?}", doc_prefix(*.document))]
    UnknownKind {
        document: usize,
        path: String,
        kind: String,
    },
    #[error("{}{path}expected a resource object", doc_prefix(*.document))]
    NotAnObject { document: usize, path: String },
}

/// Documents are numbered from 1; the first is not named so single documents read plainly.
fn doc_prefix(document: usize) -> String {
    if document > 1 {
        format!("document {document}: ")
    } else {
        String::new()
    }
}

/// Reads every resource in `text`: YAML (several documents separated by `---`) or JSON
/// (one or more concatenated values). A document is one object, a `List`/`<Kind>List`
/// with `items`, or a bare sequence of objects. Empty documents are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<AnyResource>, ParseError> {
    let mut out = Vec::new();
    for (i, doc) in split_documents(text)?.into_iter().enumerate() {
        collect(i + 1, String::new(), doc, &mut out)?;
    }
    Ok(out)
}

/// Reads exactly one resource of type `T`.
pub fn parse_one<T: Resource>(text: &str) -> Result<T, ParseError> {
    let docs = split_documents(text)?;
    let [doc] = <[Value; 1]>::try_from(docs).map_err(|d| ParseError::Syntax {
        document: 1,
        format: "document",
        message: format!(
            "expected exactly one {} object, found {} documents",
            T::KIND,
            d.len()
        ),
    })?;
    deserialize_tracked(1, String::new(), doc)
}

fn split_documents(text: &str) -> Result<Vec<Value>, ParseError> {
    let trimmed = text.trim_start();
    let docs = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // JSON, unless it is YAML flow style (`{kind: Node, ...}`), which JSON refuses.
        split_json(text).or_else(|json_err| split_yaml(text).map_err(|_| json_err))?
    } else {
        split_yaml(text)?
    };
    Ok(docs.into_iter().filter(|v| !v.is_null()).collect())
}

fn split_json(text: &str) -> Result<Vec<Value>, ParseError> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .enumerate()
        .map(|(i, v)| {
            v.map_err(|e| ParseError::Syntax {
                document: i + 1,
                format: "JSON",
                message: e.to_string(),
            })
        })
        .collect()
}

fn split_yaml(text: &str) -> Result<Vec<Value>, ParseError> {
    serde_yaml_ng::Deserializer::from_str(text)
        .enumerate()
        .map(|(i, d)| {
            serde::Deserialize::deserialize(d).map_err(|e| ParseError::Syntax {
                document: i + 1,
                format: "YAML",
                message: e.to_string(),
            })
        })
        .collect()
}

fn collect(
    document: usize,
    path: String,
    v: Value,
    out: &mut Vec<AnyResource>,
) -> Result<(), ParseError> {
    match v {
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                collect(document, format!("{path}[{i}]."), item, out)?;
            }
            Ok(())
        }
        Value::Object(ref map) => {
            let kind = match map.get("kind") {
                Some(Value::String(k)) => k.clone(),
                _ => return Err(ParseError::MissingKind { document, path }),
            };
            if let Some(k) = ResourceKind::from_kind_name(&kind) {
                out.push(deserialize_kind(document, path, k, v)?);
                return Ok(());
            }
            let list_of = kind.strip_suffix("List");
            if list_of == Some("") || list_of.and_then(ResourceKind::from_kind_name).is_some() {
                let Value::Object(mut map) = v else {
                    unreachable!("matched above")
                };
                check_list_api_version(document, &path, &map)?;
                let items = match map.remove("items") {
                    Some(Value::Array(items)) => items,
                    None | Some(Value::Null) => Vec::new(),
                    Some(_) => {
                        return Err(ParseError::Field {
                            document,
                            path: format!("{path}items"),
                            message: "expected a sequence of resources".into(),
                        });
                    }
                };
                for (i, item) in items.into_iter().enumerate() {
                    let item_path = format!("{path}items[{i}].");
                    if let (Some(want), Some(Value::String(got))) =
                        (list_of.filter(|l| !l.is_empty()), item.get("kind"))
                        && want != got
                    {
                        return Err(ParseError::Field {
                            document,
                            path: format!("{item_path}kind"),
                            message: format!("{got:?} item in a {kind}"),
                        });
                    }
                    collect(document, item_path, item, out)?;
                }
                return Ok(());
            }
            Err(ParseError::UnknownKind {
                document,
                path,
                kind,
            })
        }
        _ => Err(ParseError::NotAnObject { document, path }),
    }
}

fn check_list_api_version(
    document: usize,
    path: &str,
    map: &serde_json::Map<String, Value>,
) -> Result<(), ParseError> {
    match map.get("apiVersion") {
        // Kubernetes writes plain `List` objects with apiVersion `v1`.
        None => Ok(()),
        Some(Value::String(v)) if v == API_VERSION || v == "v1" => Ok(()),
        Some(other) => Err(ParseError::Field {
            document,
            path: format!("{path}apiVersion"),
            message: format!("expected {API_VERSION:?}, got {other}"),
        }),
    }
}

fn deserialize_kind(
    document: usize,
    path: String,
    kind: ResourceKind,
    v: Value,
) -> Result<AnyResource, ParseError> {
    use super::*;
    Ok(match kind {
        ResourceKind::Node => AnyResource::Node(deserialize_tracked::<Node>(document, path, v)?),
        ResourceKind::BGPPeer => AnyResource::BGPPeer(deserialize_tracked(document, path, v)?),
        ResourceKind::BGPConfiguration => {
            AnyResource::BGPConfiguration(deserialize_tracked(document, path, v)?)
        }
        ResourceKind::IPPool => AnyResource::IPPool(deserialize_tracked(document, path, v)?),
        ResourceKind::NetworkPolicy => {
            AnyResource::NetworkPolicy(deserialize_tracked(document, path, v)?)
        }
        ResourceKind::GlobalNetworkPolicy => {
            AnyResource::GlobalNetworkPolicy(deserialize_tracked(document, path, v)?)
        }
        ResourceKind::WorkloadEndpoint => {
            AnyResource::WorkloadEndpoint(deserialize_tracked(document, path, v)?)
        }
        ResourceKind::HostEndpoint => {
            AnyResource::HostEndpoint(deserialize_tracked(document, path, v)?)
        }
        ResourceKind::Profile => AnyResource::Profile(deserialize_tracked(document, path, v)?),
        ResourceKind::NetworkSet => {
            AnyResource::NetworkSet(deserialize_tracked(document, path, v)?)
        }
        ResourceKind::GlobalNetworkSet => {
            AnyResource::GlobalNetworkSet(deserialize_tracked(document, path, v)?)
        }
        ResourceKind::Tier => AnyResource::Tier(deserialize_tracked(document, path, v)?),
        ResourceKind::IPAMConfiguration => {
            AnyResource::IPAMConfiguration(deserialize_tracked(document, path, v)?)
        }
        ResourceKind::ClusterInformation => {
            AnyResource::ClusterInformation(deserialize_tracked(document, path, v)?)
        }
    })
}

fn deserialize_tracked<T: Resource>(
    document: usize,
    prefix: String,
    v: Value,
) -> Result<T, ParseError> {
    value_to::<T>(v).map_err(|(path, message)| {
        let path = match (prefix.trim_end_matches('.'), path.as_str()) {
            ("", "") => "(root)".to_string(),
            (p, "") => p.to_string(),
            ("", inner) => inner.to_string(),
            (p, inner) => format!("{p}.{inner}"),
        };
        ParseError::Field {
            document,
            path,
            message,
        }
    })
}

/// Reads one `T` from a JSON value; on failure returns the field path ("" for the root)
/// and the message. `apiVersion` and `kind` are checked first, so a document of another
/// kind is reported as such rather than by its first unknown spec field.
pub(crate) fn value_to<T: Resource>(v: Value) -> Result<T, (String, String)> {
    for (field, want) in [("apiVersion", API_VERSION), ("kind", T::KIND)] {
        match v.get(field) {
            Some(Value::String(got)) if got == want => {}
            Some(got) => return Err((field.to_string(), format!("expected {want:?}, got {got}"))),
            None => {
                return Err((
                    field.to_string(),
                    format!("missing field `{field}` (expected {want:?})"),
                ));
            }
        }
    }
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        (path, e.into_inner().to_string())
    })
}

/// A `<Kind>List` (or `List` for mixed kinds) as calicoctl prints for `get -o yaml|json`.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceList<T> {
    /// e.g. `NodeList`.
    pub kind: String,
    pub items: Vec<T>,
    pub resource_version: Option<String>,
}

impl<T: Resource> ResourceList<T> {
    pub fn new(items: Vec<T>, resource_version: Option<String>) -> Self {
        ResourceList {
            kind: format!("{}List", T::KIND),
            items,
            resource_version,
        }
    }
}

impl ResourceList<AnyResource> {
    /// A list of one kind's objects, or `List` when `kind` is `None` (mixed kinds).
    pub fn of_kind(
        kind: Option<ResourceKind>,
        items: Vec<AnyResource>,
        resource_version: Option<String>,
    ) -> Self {
        let kind = kind.map_or_else(|| "List".to_string(), ResourceKind::list_kind_name);
        ResourceList {
            kind,
            items,
            resource_version,
        }
    }
}

impl<T: Serialize> Serialize for ResourceList<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ListMeta<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            resource_version: Option<&'a str>,
        }
        let mut st = s.serialize_struct("ResourceList", 4)?;
        st.serialize_field("apiVersion", API_VERSION)?;
        st.serialize_field("kind", &self.kind)?;
        st.serialize_field(
            "metadata",
            &ListMeta {
                resource_version: self.resource_version.as_deref(),
            },
        )?;
        st.serialize_field("items", &self.items)?;
        st.end()
    }
}

/// Why an object could not be written out.
#[derive(Debug, thiserror::Error)]
#[error("cannot serialize resource: {0}")]
pub struct SerializeError(String);

/// YAML as calicoctl prints it (`-o yaml`).
pub fn to_yaml<T: Serialize + ?Sized>(value: &T) -> Result<String, SerializeError> {
    serde_yaml_ng::to_string(value).map_err(|e| SerializeError(e.to_string()))
}

/// JSON indented by 2 spaces (`-o json`), without a trailing newline.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, SerializeError> {
    serde_json::to_string_pretty(value).map_err(|e| SerializeError(e.to_string()))
}
