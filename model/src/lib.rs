//! The pure half of the Calico base: the projectcalico.org/v3 resource model ([`model`]),
//! its validation ([`validate`]) and Calico's selector language ([`selector`]).
//!
//! No datastore client, runtime or command line here; the `config` crate adds those and
//! re-exports these modules, so `config::model::...` paths keep working.

pub mod model;
pub mod selector;
pub mod validate;
