//! The ipsets felix wants, as the calculation produces them: sets named with
//! [`SET_PREFIX`] (`cali40`), of a type and family, with their members, and
//! the checks a set must pass before the dataplane writes it. Plain data;
//! turning sets into `ipset restore` input is the dataplane's, as it is a diff
//! against what `ipset save` printed.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use thiserror::Error;

use super::Family;

/// Prefix of every set felix owns.
pub const SET_PREFIX: &str = "cali40";
/// `IPSET_MAXNAMELEN` (32) minus the NUL.
pub const MAX_SET_NAME: usize = 31;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SetType {
    /// `hash:net`: CIDRs (a /32 or /128 stands for one address).
    HashNet,
    /// `hash:ip`: single addresses.
    HashIp,
    /// `hash:ip,port`: (address, protocol, port) triples, for named ports: a rule
    /// matches each endpoint's own port number (`--match-set S dst,dst`).
    HashIpPort,
}

impl SetType {
    pub fn name(self) -> &'static str {
        match self {
            SetType::HashNet => "hash:net",
            SetType::HashIp => "hash:ip",
            SetType::HashIpPort => "hash:ip,port",
        }
    }

    /// The type ipset calls `s` (as `ipset save` prints it).
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "hash:net" => Some(SetType::HashNet),
            "hash:ip" => Some(SetType::HashIp),
            "hash:ip,port" => Some(SetType::HashIpPort),
            _ => None,
        }
    }
}

/// The IP protocols a `hash:ip,port` member can name, as ipset writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortProto {
    Tcp,
    Udp,
    Sctp,
    UdpLite,
}

impl PortProto {
    /// The protocol with IANA number `n`, if it has ports ipset can match.
    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            6 => Some(PortProto::Tcp),
            17 => Some(PortProto::Udp),
            132 => Some(PortProto::Sctp),
            136 => Some(PortProto::UdpLite),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PortProto::Tcp => "tcp",
            PortProto::Udp => "udp",
            PortProto::Sctp => "sctp",
            PortProto::UdpLite => "udplite",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            PortProto::Tcp,
            PortProto::Udp,
            PortProto::Sctp,
            PortProto::UdpLite,
        ]
        .into_iter()
        .find(|p| p.name() == s)
    }
}

/// One member of a set: a network (`hash:net`; a host prefix for `hash:ip`) or an
/// address with a protocol and port (`hash:ip,port`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SetMember {
    Net(IpNet),
    IpPort {
        ip: IpAddr,
        proto: PortProto,
        port: u16,
    },
}

impl SetMember {
    fn family(self) -> Family {
        let v4 = match self {
            SetMember::Net(n) => matches!(n, IpNet::V4(_)),
            SetMember::IpPort { ip, .. } => ip.is_ipv4(),
        };
        if v4 { Family::V4 } else { Family::V6 }
    }

    /// Parses a member as `ipset save` prints it (`10.0.0.1`, `10.0.0.0/24`,
    /// `10.0.0.1,tcp:8080`).
    pub fn parse(s: &str) -> Option<Self> {
        if let Some((ip, proto_port)) = s.split_once(',') {
            let (proto, port) = proto_port.split_once(':')?;
            return Some(SetMember::IpPort {
                ip: ip.parse().ok()?,
                proto: PortProto::parse(proto)?,
                port: port.parse().ok()?,
            });
        }
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .ok()
            .map(SetMember::Net)
    }
}

impl std::str::FromStr for SetMember {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s).ok_or_else(|| format!("{s:?} is not an address, CIDR or address,proto:port"))
    }
}

impl From<IpNet> for SetMember {
    fn from(net: IpNet) -> Self {
        SetMember::Net(net)
    }
}

/// As ipset prints and accepts it: host prefixes without the length.
impl fmt::Display for SetMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetMember::Net(n) if n.prefix_len() == n.max_prefix_len() => write!(f, "{}", n.addr()),
            SetMember::Net(n) => write!(f, "{n}"),
            SetMember::IpPort { ip, proto, port } => write!(f, "{ip},{}:{port}", proto.name()),
        }
    }
}

/// One set felix wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpSet {
    pub name: String,
    pub kind: SetType,
    pub family: Family,
    /// Members of the set's kind: [`SetMember::Net`] for `hash:net` and `hash:ip`
    /// (a host prefix for `hash:ip`), [`SetMember::IpPort`] for `hash:ip,port`.
    pub members: BTreeSet<SetMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IpSetSpecError {
    #[error(
        "ipset {name:?}: name must start with {SET_PREFIX:?} and be at most {MAX_SET_NAME} characters"
    )]
    BadName { name: String },
    #[error("ipset {name}: member {member} is not of the set's family")]
    WrongFamily { name: String, member: SetMember },
    #[error("ipset {name}: member {member} is not of the set's type {kind}")]
    WrongKind {
        name: String,
        member: SetMember,
        kind: &'static str,
    },
    #[error("ipset {name}: member {member} of a hash:ip set must be a single address")]
    NotAnAddress { name: String, member: IpNet },
    #[error("ipset {name}: member {member}: hash:net cannot hold a /0 (split it into two /1)")]
    ZeroPrefix { name: String, member: IpNet },
    #[error("ipset {name}: member {member} has host bits set")]
    HostBits { name: String, member: IpNet },
    #[error("ipset {name} is defined twice")]
    Duplicate { name: String },
}

impl IpSet {
    pub fn validate(&self) -> Result<(), IpSetSpecError> {
        let name = self.name.clone();
        if !self.name.starts_with(SET_PREFIX)
            || self.name.len() > MAX_SET_NAME
            || self.name.contains(char::is_whitespace)
        {
            return Err(IpSetSpecError::BadName { name });
        }
        for &m in &self.members {
            if m.family() != self.family {
                return Err(IpSetSpecError::WrongFamily { name, member: m });
            }
            let member = match (m, self.kind) {
                (SetMember::IpPort { .. }, SetType::HashIpPort) => continue,
                (SetMember::Net(n), SetType::HashNet | SetType::HashIp) => n,
                _ => {
                    return Err(IpSetSpecError::WrongKind {
                        name,
                        member: m,
                        kind: self.kind.name(),
                    });
                }
            };
            if member.trunc() != member {
                return Err(IpSetSpecError::HostBits { name, member });
            }
            if member.prefix_len() == 0 {
                return Err(IpSetSpecError::ZeroPrefix { name, member });
            }
            if self.kind == SetType::HashIp && member.prefix_len() != member.max_prefix_len() {
                return Err(IpSetSpecError::NotAnAddress { name, member });
            }
        }
        Ok(())
    }
}

/// Checks every set and that names are unique.
pub fn validate_all(sets: &[IpSet]) -> Result<(), IpSetSpecError> {
    let mut names = BTreeSet::new();
    for set in sets {
        set.validate()?;
        if !names.insert(&set.name) {
            return Err(IpSetSpecError::Duplicate {
                name: set.name.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
