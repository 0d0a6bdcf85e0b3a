//! Wiring: one task per enabled controller (each with its own watcher), the leader
//! election task, and a way to stop them all. The binary and the integration tests
//! start the controllers through [`start`].

use std::sync::Arc;

use config::datastore::Datastore;
use futures::Stream;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::controllers::driver::{Controller, drive};
use crate::controllers::mapped::{Mapped, NamespaceProfiles, Policies, ServiceAccountProfiles};
use crate::controllers::nodes::{GcConfig, Nodes};
use crate::controllers::pods::Endpoints;
use crate::controllers::{Ctx, Kind};
use crate::health::Health;
use crate::leader::lease::LeaseConfig;
use crate::leader::{Leadership, run_election};
use crate::metrics::Metrics;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub controllers: Vec<Kind>,
    pub gc: GcConfig,
    /// `None`: no election, this replica always writes (run exactly one).
    pub leader: Option<LeaseConfig>,
}

/// The running controllers.
pub struct Running {
    stop: watch::Sender<bool>,
    controllers: Vec<JoinHandle<()>>,
    election: Option<JoinHandle<()>>,
    pub health: Health,
    pub metrics: Arc<Metrics>,
    pub leadership: Leadership,
}

impl Running {
    /// Stops the controllers, then the election (which gives the lease up).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.controllers {
            let _ = task.await;
        }
        if let Some(task) = self.election {
            let _ = task.await;
        }
    }

    /// Stops everything at once, without giving the lease up (a crashed replica).
    pub fn abort(self) {
        for task in self.controllers {
            task.abort();
        }
        if let Some(task) = self.election {
            task.abort();
        }
    }
}

/// Starts the controllers in `opts` on the current tokio runtime.
pub fn start(client: Client, ds: Datastore, opts: Options) -> Running {
    let (stop, stop_rx) = watch::channel(false);
    let metrics = Metrics::new();
    let health = Health::new();
    let leadership = match opts.leader {
        Some(_) => Leadership::new(),
        None => Leadership::always(),
    };
    let ctx = Ctx {
        ds: ds.clone(),
        metrics: metrics.clone(),
        health: health.clone(),
        leadership: leadership.clone(),
    };
    let mut controllers = Vec::new();
    for kind in &opts.controllers {
        let c = client.clone();
        let ctx = ctx.clone();
        let stop = stop_rx.clone();
        controllers.push(match kind {
            Kind::Namespace => spawn(
                Mapped::new(NamespaceProfiles),
                events::<Namespace>(&c),
                ctx,
                stop,
            ),
            Kind::ServiceAccount => spawn(
                Mapped::new(ServiceAccountProfiles),
                events::<ServiceAccount>(&c),
                ctx,
                stop,
            ),
            Kind::Policy => spawn(
                Mapped::new(Policies::new(metrics.clone())),
                events::<NetworkPolicy>(&c),
                ctx,
                stop,
            ),
            Kind::WorkloadEndpoint => spawn(Endpoints::new(), events::<Pod>(&c), ctx, stop),
            Kind::Node => spawn(
                Nodes::new(c.clone(), ds.clone(), opts.gc),
                events::<Node>(&c),
                ctx,
                stop,
            ),
        });
    }
    let election = opts.leader.map(|cfg| {
        let l = leadership.clone();
        let h = health.clone();
        let m = metrics.clone();
        let mut changes = leadership.subscribe();
        // Mirror leadership into health and metrics.
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let leading = *changes.borrow_and_update();
                h.set_leading(leading);
                m.is_leader.set(i64::from(leading));
            }
        });
        tokio::spawn(run_election(client.clone(), cfg, l, stop_rx.clone()))
    });
    if election.is_none() {
        health.set_leading(true);
        metrics.is_leader.set(1);
    }
    Running {
        stop,
        controllers,
        election,
        health,
        metrics,
        leadership,
    }
}

/// List, then watch from the list's resourceVersion; list again after 410 Gone or a
/// broken watch, with exponential backoff while the API server is unreachable.
fn events<K>(
    client: &Client,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + use<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    watcher(Api::<K>::all(client.clone()), watcher::Config::default()).default_backoff()
}

fn spawn<K, C, S>(controller: C, events: S, ctx: Ctx, stop: watch::Receiver<bool>) -> JoinHandle<()>
where
    K: Send + 'static,
    C: Controller<K> + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    tokio::spawn(drive(controller, events, ctx, stop))
}
