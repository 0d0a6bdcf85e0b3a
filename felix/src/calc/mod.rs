//! The calculation: datastore model -> desired dataplane, pure (no I/O, no clocks).
//!
//! Input is [`CalcInput`] (fed by the syncer as [`Update`]s); output is a
//! [`DesiredState`] made of the dataplane's input types: filter and nat
//! [`DesiredTable`](desired::iptables::DesiredTable)s, [`IpSet`](desired::ipsets::IpSet)s,
//! [`RouteSpec`](routes::RouteSpec)s, neighbour entries and the
//! interfaces that need sysctls. [`Calculator`] keeps caches so that one change
//! costs work proportional to what it touches.
//!
//! * [`model`]: the input and its updates.
//! * [`desired`]: the iptables and ipset output types (chains, tables, sets,
//!   members, name limits); the dataplane takes them as its input.
//! * [`policy`]: Calico v3 rules -> iptables chains (policy, profile, endpoint,
//!   dispatch and the fixed chains).
//! * [`ipsets`]: selector and net sets, pool sets.
//! * [`routes`]: workload routes, blackholes, neighbours.
//! * [`names`]: chain/set names (Calico's length-limited hashing) and mark bits.

pub mod desired;
pub mod engine;
pub mod error;
pub mod ipsets;
pub mod model;
pub mod names;
pub mod overlay;
pub mod policy;
pub mod routes;

pub use engine::{CalcConfig, Calculator, DesiredState};
pub use error::CalcError;
pub use model::{CalcInput, Changed, NetSetKey, PolicyDef, PolicyKey, PolicyStage, Update, WepKey};
pub use policy::endpoint::EndpointToHostAction;
