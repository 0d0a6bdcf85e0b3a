//! `version` and `datastore migrate lock|unlock`, both about ClusterInformation `default`.

use config::datastore::Datastore;
use config::model::{ClusterInformation, ClusterInformationSpec};

pub const CLIENT_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// Sets `datastoreReady` (false = locked: IPAM refuses to change state, `ipam release`
/// may run without --force).
pub async fn set_datastore_ready(ds: &Datastore, ready: bool) -> Result<(), String> {
    for _ in 0..10 {
        let result = match ds
            .get::<ClusterInformation>(None, "default")
            .await
            .map_err(|e| e.to_string())?
        {
            Some(mut info) => {
                info.spec.datastore_ready = Some(ready);
                ds.update(&info).await.map(drop)
            }
            None => {
                let spec = ClusterInformationSpec {
                    datastore_ready: Some(ready),
                    ..Default::default()
                };
                ds.create(&ClusterInformation::named("default", spec))
                    .await
                    .map(drop)
            }
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("ClusterInformation(default) kept changing; try again".into())
}

/// Whether the datastore is locked (`datastoreReady: false`).
pub async fn is_locked(ds: &Datastore) -> Result<bool, String> {
    Ok(ds
        .get::<ClusterInformation>(None, "default")
        .await
        .map_err(|e| e.to_string())?
        .and_then(|i| i.spec.datastore_ready)
        == Some(false))
}

/// `Cluster Version` / `Cluster Type` lines, from ClusterInformation `default`.
pub async fn cluster_version_lines(ds: &Datastore) -> Result<String, String> {
    let info = ds
        .get::<ClusterInformation>(None, "default")
        .await
        .map_err(|e| e.to_string())?
        .map(|i| i.spec)
        .unwrap_or_default();
    Ok(format!(
        "Cluster Version:   {}\nCluster Type:      {}\n",
        info.calico_version, info.cluster_type
    ))
}
