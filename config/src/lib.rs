//! The shared base of every Calico component: the projectcalico.org/v3 resource model,
//! its validation, Calico's selector language, daemon settings, and the etcd datastore
//! client that speaks Calico's etcdv3 key layout.

pub mod datastore;
pub mod model;
pub mod selector;
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validate;
