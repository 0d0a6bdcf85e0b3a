//! Errors of the IPAM API. Every message names the key, address or limit involved.

use std::net::IpAddr;

use ipnet::IpNet;

use config::datastore::DatastoreError;

/// Why `auto_assign` could not hand out all requested addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exhaustion {
    /// No enabled pool of this address family applies to the host (node selector, disabled,
    /// or not among the requested pools).
    NoPoolForNode,
    /// Every block of every applicable pool exists and has no free address.
    PoolsExhausted,
    /// The host already holds `limit` affine blocks, all full; borrowing found nothing free.
    MaxBlocksPerHost { limit: u32 },
    /// Affine blocks are full, no new block could be claimed (`cause`), and strict affinity
    /// forbids borrowing from other hosts' blocks.
    StrictAffinity { cause: Box<Exhaustion> },
    /// `auto_allocate_blocks` is false in the IPAM config and the affine blocks are full.
    AutoAllocateDisabled,
}

impl std::fmt::Display for Exhaustion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exhaustion::NoPoolForNode => write!(f, "no enabled IP pool applies to this node"),
            Exhaustion::PoolsExhausted => {
                write!(f, "all IP pools that apply to this node are exhausted")
            }
            Exhaustion::MaxBlocksPerHost { limit } => {
                write!(
                    f,
                    "max blocks per host ({limit}) reached and no other block has a free address"
                )
            }
            Exhaustion::StrictAffinity { cause } => {
                write!(
                    f,
                    "{cause}, and strict affinity forbids borrowing from other hosts' blocks"
                )
            }
            Exhaustion::AutoAllocateDisabled => {
                write!(
                    f,
                    "affine blocks are full and auto_allocate_blocks is false"
                )
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("datastore: {0}")]
    Datastore(#[from] DatastoreError),
    #[error("cannot decode {key}: {message}")]
    Decode { key: String, message: String },
    #[error("cannot assign {requested} address(es) to host {host} (got {assigned}): {reason}")]
    Exhausted {
        host: String,
        requested: usize,
        assigned: usize,
        reason: Exhaustion,
    },
    #[error("{ip} is not in any enabled IP pool")]
    NotInPool { ip: IpAddr },
    #[error("pool {pool} was requested but is not an enabled pool that applies to host {host}")]
    PoolNotUsable { pool: IpNet, host: String },
    #[error("{ip} is already allocated")]
    AlreadyAllocated { ip: IpAddr },
    #[error("{ip} is not allocated")]
    NotAllocated { ip: IpAddr },
    #[error(
        "release of {ip} refused: sequence number {requested} is stale (allocation has {current})"
    )]
    StaleSequence {
        ip: IpAddr,
        requested: u64,
        current: u64,
    },
    #[error("release of {ip} refused: handle {requested} does not own it (owner {current})")]
    WrongHandle {
        ip: IpAddr,
        requested: String,
        current: String,
    },
    #[error("handle {handle} does not exist")]
    HandleNotFound { handle: String },
    #[error("block {block} does not exist")]
    BlockNotFound { block: IpNet },
    #[error("block {block} is not affine to host {host} (affinity {affinity})")]
    AffinityMismatch {
        block: IpNet,
        host: String,
        affinity: String,
    },
    #[error("block {block} still has {in_use} address(es) in use")]
    BlockNotEmpty { block: IpNet, in_use: usize },
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    /// A stored block whose arrays contradict each other; it is never modified (it could
    /// hand out an address twice) until an operator repairs it.
    #[error("IPAM block {block} is corrupt ({problems}); run `calicoctl ipam check`")]
    CorruptBlock { block: IpNet, problems: String },
    #[error("invalid argument {field}={value}: {rule}")]
    Invalid {
        field: &'static str,
        value: String,
        rule: &'static str,
    },
    #[error("gave up on {what} after {attempts} conflicting attempts")]
    TooManyConflicts { what: String, attempts: u32 },
}

pub type Result<T> = std::result::Result<T, IpamError>;
