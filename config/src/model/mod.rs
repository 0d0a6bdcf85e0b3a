//! projectcalico.org/v3 resource kinds as serde types.

mod meta;

pub use meta::{API_VERSION, ObjectMeta, Resource};
