//! Problems the calculation found in the model. None stops the calculation: the
//! offending piece fails closed (an invalid policy drops what it selects) or is left
//! out (an endpoint without an interface), and the problem is reported.

use thiserror::Error;

use super::names::Direction;
use super::policy::rule::RuleError;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CalcError {
    #[error("policy {policy}: selector {selector:?} does not parse ({reason}); policy ignored")]
    PolicySelector {
        policy: String,
        selector: String,
        reason: String,
    },
    #[error(
        "{owner}, {} rule {index}: {source}; its {} chain drops everything",
        direction.name(),
        direction.name()
    )]
    Rule {
        /// `policy <id>` or `profile <name>`.
        owner: String,
        direction: Direction,
        index: usize,
        source: RuleError,
    },
    #[error(
        "policy {policy} is invalid ({reason}); endpoints it selects drop all traffic until it is fixed"
    )]
    PolicyRefused { policy: String, reason: String },
    #[error(
        "policy {policy}: tier {tier:?} does not exist; its policies are evaluated last, with default action Deny"
    )]
    UnknownTier { policy: String, tier: String },
    #[error("workload endpoint {endpoint}: {reason}; endpoint left out")]
    Endpoint { endpoint: String, reason: String },
    #[error("host endpoint {endpoint}: {reason}; endpoint left out (its interface is not policed)")]
    HostEndpoint { endpoint: String, reason: String },
    #[error("block {block} of node {node}: {reason}; no overlay route to it")]
    UnroutableBlock {
        block: String,
        node: String,
        reason: &'static str,
    },
}
