//! The shared base of every Calico component: daemon settings and the etcd datastore
//! client that speaks Calico's etcdv3 key layout, over the projectcalico.org/v3 resource
//! model, its validation and Calico's selector language.
//!
//! The model, validation and selectors live in the pure `calico-model` crate (no etcd
//! client, runtime or command line); they are re-exported here so `config::model::...`,
//! `config::validate::...` and `config::selector::...` work unchanged.

pub use calico_model::{model, selector, validate};

pub mod datastore;
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;
