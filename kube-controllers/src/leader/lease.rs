//! The I/O of leader election: read the Lease, let the [`Elector`] decide, write the
//! Lease (create, or replace at the version read so that a race fails with 409), and
//! publish the outcome as a [`Leadership`] every writer checks before each write.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use super::election::{Decision, ElectionConfig, Elector, LeaseView};

/// Where the Lease lives.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub election: ElectionConfig,
}

/// Whether this replica may write, shared by the election task and every writer.
/// Leading is a deadline, not a flag: when the election task stalls (API server gone),
/// writing stops by itself at the renew deadline.
#[derive(Clone)]
pub struct Leadership {
    until: Arc<Mutex<Option<Until>>>,
    changes: watch::Sender<bool>,
}

#[derive(Clone, Copy)]
enum Until {
    Forever,
    At(Instant),
}

impl Leadership {
    /// Not leading (yet).
    pub fn new() -> Self {
        Leadership {
            until: Arc::new(Mutex::new(None)),
            changes: watch::Sender::new(false),
        }
    }

    /// Always leading: leader election disabled (a single replica).
    pub fn always() -> Self {
        let l = Self::new();
        l.set(Some(Until::Forever));
        l
    }

    /// Whether this replica may write now.
    pub fn is_leading(&self) -> bool {
        match *self.until.lock().expect("leadership lock") {
            None => false,
            Some(Until::Forever) => true,
            Some(Until::At(t)) => Instant::now() < t,
        }
    }

    /// Notified whenever leading starts or stops (as seen by the election task).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.changes.subscribe()
    }

    fn set(&self, until: Option<Until>) {
        *self.until.lock().expect("leadership lock") = until;
        let leading = self.is_leading();
        self.changes
            .send_if_modified(|v| std::mem::replace(v, leading) != leading);
    }
}

impl Default for Leadership {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs the election until `stop` turns true; then gives the lease up if it holds it,
/// so that another replica need not wait for it to expire.
pub async fn run_election(
    client: Client,
    cfg: LeaseConfig,
    leadership: Leadership,
    mut stop: watch::Receiver<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let mut elector = Elector::new(cfg.election.clone());
    let period = cfg.election.retry_period;
    loop {
        step(&api, &cfg, &mut elector).await;
        leadership.set(elector.leading_until().map(Until::At));
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    if elector.is_leader(Instant::now()) {
        leadership.set(None);
        elector.released();
        if let Err(err) = release(&api, &cfg).await {
            tracing::warn!(lease = %cfg.name, error = %err, "could not release the lease");
        } else {
            tracing::info!(lease = %cfg.name, "released the lease");
        }
    }
}

/// One read-decide-write round.
async fn step(api: &Api<Lease>, cfg: &LeaseConfig, elector: &mut Elector) {
    let was_leading = elector.is_leader(Instant::now());
    // A hung API server must not hold the loop: leadership runs out meanwhile anyway,
    // but the next round should come.
    let limit = cfg.election.renew_deadline;
    let current = match timed(limit, api.get_opt(&cfg.name)).await {
        Ok(lease) => lease,
        Err(err) => {
            tracing::warn!(lease = %cfg.name, error = %err, "cannot read the leader lease");
            elector.claim_failed(Instant::now());
            return;
        }
    };
    let view = current.as_ref().map(view_of);
    // The time before the write: the lease is valid from no earlier than this.
    let now = Instant::now();
    match elector.observe(now, view) {
        Decision::Follow { holder } => {
            if was_leading {
                tracing::warn!(lease = %cfg.name, %holder, "lost the lease; stopped writing");
            }
        }
        Decision::Claim {
            resource_version,
            transitions,
            acquire,
        } => {
            let lease = claim(cfg, current, resource_version.clone(), transitions, acquire);
            let result = match resource_version {
                None => timed(limit, api.create(&PostParams::default(), &lease)).await,
                Some(_) => {
                    timed(
                        limit,
                        api.replace(&cfg.name, &PostParams::default(), &lease),
                    )
                    .await
                }
            };
            match result {
                Ok(_) => {
                    elector.claimed(now);
                    if !was_leading {
                        tracing::info!(lease = %cfg.name, identity = %cfg.election.identity, "became leader");
                    }
                }
                Err(err) => {
                    elector.claim_failed(now);
                    tracing::debug!(lease = %cfg.name, error = %err, "claiming the lease failed");
                }
            }
        }
    }
}

/// `call`, or an error when it takes longer than `limit`.
async fn timed<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, call).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

fn view_of(lease: &Lease) -> LeaseView {
    let spec = lease.spec.clone().unwrap_or_default();
    LeaseView {
        holder: spec.holder_identity,
        duration: Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        ),
        transitions: spec.lease_transitions.unwrap_or(0),
        resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
    }
}

fn micro_now() -> MicroTime {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    MicroTime(Timestamp::from_microsecond(micros).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// The Lease naming this replica.
fn claim(
    cfg: &LeaseConfig,
    current: Option<Lease>,
    resource_version: Option<String>,
    transitions: i32,
    acquire: bool,
) -> Lease {
    let now = micro_now();
    let old = current.and_then(|l| l.spec).unwrap_or_default();
    Lease {
        metadata: ObjectMeta {
            name: Some(cfg.name.clone()),
            namespace: Some(cfg.namespace.clone()),
            resource_version,
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(cfg.election.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(cfg.election.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            lease_transitions: Some(transitions),
            acquire_time: if acquire {
                Some(now.clone())
            } else {
                old.acquire_time
            },
            renew_time: Some(now),
            ..LeaseSpec::default()
        }),
    }
}

/// Gives the lease up (empty holder, 1 s duration), as client-go's ReleaseOnCancel.
async fn release(api: &Api<Lease>, cfg: &LeaseConfig) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&cfg.name).await? else {
        return Ok(());
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(cfg.election.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(micro_now());
    api.replace(&cfg.name, &PostParams::default(), &lease)
        .await?;
    Ok(())
}
