//! The calculation: datastore model -> desired dataplane, pure (no I/O, no clocks).
//!
//! Input is [`CalcInput`] (fed by the syncer as [`Update`]s); output is a
//! [`DesiredState`] made of the dataplane's own input types: filter and nat
//! [`DesiredTable`](crate::dataplane::iptables::DesiredTable)s, [`IpSet`](crate::dataplane::ipsets::IpSet)s,
//! [`RouteSpec`](crate::dataplane::routes::RouteSpec)s, neighbour entries and the
//! interfaces that need sysctls. [`Calculator`] keeps caches so that one change
//! costs work proportional to what it touches.
//!
//! * [`model`]: the input and its updates.
//! * [`policy`]: Calico v3 rules -> iptables chains (policy, profile, endpoint,
//!   dispatch and the fixed chains).
//! * [`ipsets`]: selector and net sets, pool sets.
//! * [`routes`]: workload routes, blackholes, neighbours.
//! * [`names`]: chain/set names (Calico's length-limited hashing) and mark bits.

pub mod engine;
pub mod error;
pub mod ipsets;
pub mod model;
pub mod names;
pub mod policy;
pub mod routes;

pub use engine::{CalcConfig, Calculator, DesiredState};
pub use error::CalcError;
pub use model::{CalcInput, Changed, NetSetKey, PolicyDef, PolicyKey, Update, WepKey};
pub use policy::endpoint::EndpointToHostAction;
