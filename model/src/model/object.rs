//! The `{apiVersion, kind, metadata, spec[, status]}` envelope shared by every kind.
//!
//! Each kind is a plain struct (`metadata`, `spec`, maybe `status`); `impl_resource!`
//! gives it a `Resource` impl and serde impls that always write `apiVersion`/`kind` and
//! refuse a document whose `apiVersion` or `kind` is not the kind's own.

use serde::{Deserialize, Deserializer, Serialize};

use super::meta::{API_VERSION, ObjectMeta};

/// Stand-in status type for kinds that have none: any `status` in input is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum NoStatus {}

impl<'de> Deserialize<'de> for NoStatus {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("this kind has no status"))
    }
}

/// The owned form read from a document.
#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    deny_unknown_fields,
    bound(deserialize = "S: Deserialize<'de> + Default, St: Deserialize<'de>")
)]
pub(crate) struct Envelope<S, St> {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: S,
    #[serde(default = "none")]
    pub status: Option<St>,
}

fn none<T>() -> Option<T> {
    None
}

impl<S, St> Envelope<S, St> {
    /// Refuses a document written for another API group/version or another kind.
    pub fn check(&self, kind: &str) -> Result<(), String> {
        if self.api_version != API_VERSION {
            return Err(format!(
                "apiVersion: expected {API_VERSION:?}, got {:?}",
                self.api_version
            ));
        }
        if self.kind != kind {
            return Err(format!("kind: expected {kind:?}, got {:?}", self.kind));
        }
        Ok(())
    }
}

/// The borrowed form written out.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnvelopeRef<'a, S, St> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: &'a ObjectMeta,
    pub spec: &'a S,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'a St>,
}

/// `impl_resource!(Type, Spec, "Kind", "plural", namespaced)` for kinds without status,
/// `impl_resource!(Type, Spec, "Kind", "plural", namespaced, status = Status)` otherwise.
macro_rules! impl_resource {
    ($ty:ident, $spec:ty, $kind:literal, $plural:literal, $ns:literal) => {
        impl_resource!(@common $ty, $spec, $kind, $plural, $ns);
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $crate::model::object::EnvelopeRef::<$spec, $crate::model::object::NoStatus> {
                    api_version: $crate::model::API_VERSION,
                    kind: $kind,
                    metadata: &self.metadata,
                    spec: &self.spec,
                    status: None,
                }
                .serialize(s)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let e = $crate::model::object::Envelope::<$spec, $crate::model::object::NoStatus>::deserialize(d)?;
                e.check($kind).map_err(serde::de::Error::custom)?;
                Ok(Self { metadata: e.metadata, spec: e.spec })
            }
        }
    };
    ($ty:ident, $spec:ty, $kind:literal, $plural:literal, $ns:literal, status = $status:ty) => {
        impl_resource!(@common $ty, $spec, $kind, $plural, $ns);
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $crate::model::object::EnvelopeRef::<$spec, $status> {
                    api_version: $crate::model::API_VERSION,
                    kind: $kind,
                    metadata: &self.metadata,
                    spec: &self.spec,
                    status: self.status.as_ref(),
                }
                .serialize(s)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let e = $crate::model::object::Envelope::<$spec, $status>::deserialize(d)?;
                e.check($kind).map_err(serde::de::Error::custom)?;
                Ok(Self { metadata: e.metadata, spec: e.spec, status: e.status })
            }
        }
    };
    (@common $ty:ident, $spec:ty, $kind:literal, $plural:literal, $ns:literal) => {
        impl $crate::model::Resource for $ty {
            const KIND: &'static str = $kind;
            const PLURAL: &'static str = $plural;
            const NAMESPACED: bool = $ns;
            fn meta(&self) -> &$crate::model::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut $crate::model::ObjectMeta {
                &mut self.metadata
            }
        }
        impl $ty {
            /// An object with the given name and metadata otherwise empty.
            pub fn named(name: impl Into<String>, spec: $spec) -> Self {
                let mut o = Self { spec, ..Default::default() };
                o.metadata.name = name.into();
                o
            }
        }
    };
}
pub(crate) use impl_resource;

/// serde helper: omit `false` booleans, as Go's `omitempty` does.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// serde helper for Calico's float `order`: whole numbers are written as integers, as
/// Go's encoder does, so `order: 100` round-trips unchanged.
pub(crate) mod order_format {
    use serde::{Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => (*x as i64).serialize(s),
            Some(x) => x.serialize(s),
            None => s.serialize_none(),
        }
    }
}
