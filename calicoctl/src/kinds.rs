//! Kind-generic datastore operations: calicoctl meets resources by kind name at run time,
//! the datastore is typed. One macro maps each [`ResourceKind`] to its Rust type.

use config::datastore::{Datastore, Result};
use config::model::*;

/// Runs `$body` with `$T` bound to the Rust type of `$kind`.
macro_rules! with_kind_type {
    ($kind:expr, $T:ident => $body:expr) => {
        match $kind {
            ResourceKind::Node => {
                type $T = Node;
                $body
            }
            ResourceKind::BGPPeer => {
                type $T = BGPPeer;
                $body
            }
            ResourceKind::BGPConfiguration => {
                type $T = BGPConfiguration;
                $body
            }
            ResourceKind::IPPool => {
                type $T = IPPool;
                $body
            }
            ResourceKind::NetworkPolicy => {
                type $T = NetworkPolicy;
                $body
            }
            ResourceKind::GlobalNetworkPolicy => {
                type $T = GlobalNetworkPolicy;
                $body
            }
            ResourceKind::WorkloadEndpoint => {
                type $T = WorkloadEndpoint;
                $body
            }
            ResourceKind::HostEndpoint => {
                type $T = HostEndpoint;
                $body
            }
            ResourceKind::Profile => {
                type $T = Profile;
                $body
            }
            ResourceKind::NetworkSet => {
                type $T = NetworkSet;
                $body
            }
            ResourceKind::GlobalNetworkSet => {
                type $T = GlobalNetworkSet;
                $body
            }
            ResourceKind::Tier => {
                type $T = Tier;
                $body
            }
            ResourceKind::IPAMConfiguration => {
                type $T = IPAMConfiguration;
                $body
            }
            ResourceKind::ClusterInformation => {
                type $T = ClusterInformation;
                $body
            }
        }
    };
}

/// Unwraps an [`AnyResource`] known to be of type `T`.
fn typed<T: Resource>(any: &AnyResource) -> T
where
    AnyResource: AsTyped<T>,
{
    any.as_typed()
}

/// Access to the typed object inside an [`AnyResource`].
pub trait AsTyped<T> {
    fn as_typed(&self) -> T;
}

macro_rules! as_typed {
    ($($variant:ident),*) => {
        $(impl AsTyped<$variant> for AnyResource {
            fn as_typed(&self) -> $variant {
                match self {
                    AnyResource::$variant(r) => r.clone(),
                    other => unreachable!("{:?} dispatched as {}", other.kind(), stringify!($variant)),
                }
            }
        })*
    };
}
as_typed!(
    Node,
    BGPPeer,
    BGPConfiguration,
    IPPool,
    NetworkPolicy,
    GlobalNetworkPolicy,
    WorkloadEndpoint,
    HostEndpoint,
    Profile,
    NetworkSet,
    GlobalNetworkSet,
    Tier,
    IPAMConfiguration,
    ClusterInformation
);

pub async fn get(
    ds: &Datastore,
    kind: ResourceKind,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<AnyResource>> {
    with_kind_type!(kind, T => Ok(ds.get::<T>(namespace, name).await?.map(AnyResource::from)))
}

/// Lists a kind; `namespace` None means all namespaces. Returns the store revision too.
pub async fn list(
    ds: &Datastore,
    kind: ResourceKind,
    namespace: Option<&str>,
) -> Result<(Vec<AnyResource>, i64)> {
    with_kind_type!(kind, T => {
        let (items, revision) = ds.list::<T>(namespace).await?;
        Ok((items.into_iter().map(AnyResource::from).collect(), revision))
    })
}

pub async fn create(ds: &Datastore, obj: &AnyResource) -> Result<AnyResource> {
    with_kind_type!(obj.kind(), T => Ok(ds.create::<T>(&typed::<T>(obj)).await?.into()))
}

pub async fn update(ds: &Datastore, obj: &AnyResource) -> Result<AnyResource> {
    with_kind_type!(obj.kind(), T => Ok(ds.update::<T>(&typed::<T>(obj)).await?.into()))
}

pub async fn apply(ds: &Datastore, obj: &AnyResource) -> Result<AnyResource> {
    with_kind_type!(obj.kind(), T => Ok(ds.apply::<T>(&typed::<T>(obj)).await?.into()))
}

pub async fn delete(
    ds: &Datastore,
    kind: ResourceKind,
    namespace: Option<&str>,
    name: &str,
) -> Result<AnyResource> {
    with_kind_type!(kind, T => Ok(ds.delete::<T>(namespace, name, None).await?.into()))
}

/// `Kind(name)` or `Kind(namespace/name)`, as Calico names a resource in messages.
pub fn describe(kind: ResourceKind, namespace: Option<&str>, name: &str) -> String {
    match namespace.filter(|_| kind.namespaced()) {
        Some(ns) => format!("{}({ns}/{name})", kind.kind_name()),
        None => format!("{}({name})", kind.kind_name()),
    }
}
