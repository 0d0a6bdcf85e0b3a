//! `ResourceKind` (names, aliases, plurals) and `AnyResource` (one object of any kind).

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use super::meta::{ObjectMeta, Resource};
use super::{
    BGPConfiguration, BGPPeer, ClusterInformation, GlobalNetworkPolicy, GlobalNetworkSet,
    HostEndpoint, IPAMConfiguration, IPPool, NetworkPolicy, NetworkSet, Node, Profile, Tier,
    WorkloadEndpoint,
};

/// Declares both enums from one table, so kinds cannot drift apart.
macro_rules! kinds {
    ($($variant:ident: [$($alias:literal),*];)*) => {
        /// The resource kinds this project stores.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ResourceKind {
            $($variant,)*
        }

        impl ResourceKind {
            pub const ALL: &'static [ResourceKind] = &[$(ResourceKind::$variant,)*];

            /// The `kind` field value, e.g. `IPPool`.
            pub fn kind_name(self) -> &'static str {
                match self {
                    $(ResourceKind::$variant => <$variant as Resource>::KIND,)*
                }
            }

            /// The plural of etcd keys, e.g. `ippools`.
            pub fn plural(self) -> &'static str {
                match self {
                    $(ResourceKind::$variant => <$variant as Resource>::PLURAL,)*
                }
            }

            pub fn namespaced(self) -> bool {
                match self {
                    $(ResourceKind::$variant => <$variant as Resource>::NAMESPACED,)*
                }
            }

            /// The names calicoctl accepts on its command line for this kind (besides the
            /// kind name and plural), lower case.
            pub fn aliases(self) -> &'static [&'static str] {
                match self {
                    $(ResourceKind::$variant => &[$($alias),*],)*
                }
            }
        }

        /// One object of any kind.
        #[derive(Clone, Debug, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum AnyResource {
            $($variant($variant),)*
        }

        impl AnyResource {
            pub fn kind(&self) -> ResourceKind {
                match self {
                    $(AnyResource::$variant(_) => ResourceKind::$variant,)*
                }
            }

            pub fn meta(&self) -> &ObjectMeta {
                match self {
                    $(AnyResource::$variant(r) => r.meta(),)*
                }
            }

            pub fn meta_mut(&mut self) -> &mut ObjectMeta {
                match self {
                    $(AnyResource::$variant(r) => r.meta_mut(),)*
                }
            }

            /// Reads one object of a known kind from a JSON value (e.g. an etcd value),
            /// with the failing field's path in the error.
            pub fn from_value(kind: ResourceKind, value: serde_json::Value) -> Result<AnyResource, String> {
                fn one<T: Resource>(v: serde_json::Value) -> Result<T, String> {
                    super::parse::value_to(v).map_err(|(path, message)| {
                        if path.is_empty() { message } else { format!("{path}: {message}") }
                    })
                }
                Ok(match kind {
                    $(ResourceKind::$variant => AnyResource::$variant(one(value)?),)*
                })
            }
        }

        impl Serialize for AnyResource {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(AnyResource::$variant(r) => r.serialize(s),)*
                }
            }
        }

        $(
            impl From<$variant> for AnyResource {
                fn from(r: $variant) -> Self {
                    AnyResource::$variant(r)
                }
            }
        )*
    };
}

kinds! {
    Node: ["no"];
    BGPPeer: ["bgpp", "bp"];
    BGPConfiguration: ["bgpconfig", "bgpconfigs"];
    IPPool: ["ipp", "pool", "pools"];
    NetworkPolicy: ["policy", "policies", "np", "pol"];
    GlobalNetworkPolicy: ["gnp"];
    // Calico's calicoctl resourcemgr aliases; `netset` too (the singular of `netsets`).
    NetworkSet: ["networkset", "netsets", "netset"];
    GlobalNetworkSet: ["globalnetworkset", "gnetsets"];
    Tier: ["tier"];
    WorkloadEndpoint: ["wep", "weps"];
    HostEndpoint: ["hep", "heps"];
    Profile: ["pro"];
    IPAMConfiguration: ["ipamconfig"];
    ClusterInformation: ["clusterinfo"];
}

impl ResourceKind {
    /// Resolves a command-line kind name case-insensitively: the kind, its singular
    /// and plural lower-case forms, or one of calicoctl's short aliases.
    pub fn from_alias(s: &str) -> Option<ResourceKind> {
        let s = s.to_ascii_lowercase();
        ResourceKind::ALL.iter().copied().find(|k| {
            let kind = k.kind_name().to_ascii_lowercase();
            s == kind || s == k.plural() || k.aliases().contains(&s.as_str())
        })
    }

    /// Exact (case-sensitive) `kind` field match, as in documents.
    pub fn from_kind_name(s: &str) -> Option<ResourceKind> {
        ResourceKind::ALL
            .iter()
            .copied()
            .find(|k| k.kind_name() == s)
    }

    pub fn from_plural(s: &str) -> Option<ResourceKind> {
        ResourceKind::ALL.iter().copied().find(|k| k.plural() == s)
    }

    /// The kind of a List of this kind, e.g. `NodeList`.
    pub fn list_kind_name(self) -> String {
        format!("{}List", self.kind_name())
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind_name())
    }
}

impl FromStr for ResourceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ResourceKind::from_alias(s).ok_or_else(|| format!("unknown resource kind {s:?}"))
    }
}

impl AnyResource {
    pub fn name(&self) -> &str {
        &self.meta().name
    }

    pub fn namespace(&self) -> Option<&str> {
        self.meta().namespace.as_deref()
    }
}
