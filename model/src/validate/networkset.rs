//! Checks for NetworkSet and GlobalNetworkSet: every entry of `nets` is a CIDR or an
//! address (Calico's validator takes both, IPv4 and IPv6).

use super::Errors;
use super::primitives::cidr_or_ip;
use crate::model::NetworkSetSpec;

pub(super) fn network_set(s: &NetworkSetSpec, e: &mut Errors) {
    for (i, net) in s.nets.iter().enumerate() {
        cidr_or_ip(&format!("spec.nets[{i}]"), net, e);
    }
}
