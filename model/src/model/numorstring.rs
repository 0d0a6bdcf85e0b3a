//! Calico's "number or string" value types: ports, protocols and AS numbers.
//!
//! Each keeps the meaning Calico gives it (`numorstring` in projectcalico/api) and
//! serializes back to the form Calico writes, so stored objects stay compatible.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A port match: a number, an inclusive `min:max` range, or a named (container) port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Port {
    Number(u16),
    /// Inclusive range; `min <= max` is checked by validation, not by parsing.
    Range(u16, u16),
    /// A named port, resolved against the workload's `ports` list.
    Named(String),
}

impl Port {
    /// The numeric bounds, or `None` for a named port.
    pub fn bounds(&self) -> Option<(u16, u16)> {
        match self {
            Port::Number(p) => Some((*p, *p)),
            Port::Range(a, b) => Some((*a, *b)),
            Port::Named(_) => None,
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Number(p) => write!(f, "{p}"),
            Port::Range(a, b) => write!(f, "{a}:{b}"),
            Port::Named(n) => f.write_str(n),
        }
    }
}

impl FromStr for Port {
    type Err = String;

    /// As Calico's `PortFromString`: digits are a number, `digits:digits` a range, and
    /// anything else a port name (whose syntax validation checks).
    fn from_str(s: &str) -> Result<Self, String> {
        let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let num = |t: &str| {
            t.parse::<u16>()
                .map_err(|_| format!("port {t} is out of range 0..65535"))
        };
        if all_digits(s) {
            return num(s).map(Port::Number);
        }
        if let Some((a, b)) = s.split_once(':')
            && all_digits(a)
            && all_digits(b)
        {
            return Ok(Port::Range(num(a)?, num(b)?));
        }
        Ok(Port::Named(s.to_string()))
    }
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Port::Number(p) => s.serialize_u16(*p),
            other => s.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number, a \"min:max\" range or a port name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                u16::try_from(v)
                    .map(Port::Number)
                    .map_err(|_| E::custom(format!("port {v} is out of range 0..65535")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("port {v} is out of range 0..65535")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// An IP protocol, by Calico name or by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    IcmpV6,
    Sctp,
    UdpLite,
    /// A protocol number; validation requires 1..=255.
    Number(u8),
}

impl Protocol {
    /// The names Calico accepts, in its spelling.
    pub const NAMES: [&'static str; 6] = ["TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "UDPLite"];

    /// The IANA protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Icmp => 1,
            Protocol::IcmpV6 => 58,
            Protocol::Sctp => 132,
            Protocol::UdpLite => 136,
            Protocol::Number(n) => n,
        }
    }

    /// Whether port matches make sense: Calico allows them for TCP, UDP and SCTP only.
    pub fn supports_ports(self) -> bool {
        matches!(self.number(), 6 | 17 | 132)
    }

    /// Whether this is ICMP (v4) or ICMPv6, where `icmp` type/code matches apply.
    pub fn is_icmp(self) -> bool {
        matches!(self.number(), 1 | 58)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Icmp => "ICMP",
            Protocol::IcmpV6 => "ICMPv6",
            Protocol::Sctp => "SCTP",
            Protocol::UdpLite => "UDPLite",
            Protocol::Number(n) => return write!(f, "{n}"),
        };
        f.write_str(name)
    }
}

impl FromStr for Protocol {
    type Err = String;

    /// Names match case-insensitively (Calico's v1 API lower-cased them); digits are a
    /// protocol number.
    fn from_str(s: &str) -> Result<Self, String> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse::<u8>()
                .map(Protocol::Number)
                .map_err(|_| format!("protocol number {s} is out of range 1..255"));
        }
        Ok(match s.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "icmp" => Protocol::Icmp,
            "icmpv6" => Protocol::IcmpV6,
            "sctp" => Protocol::Sctp,
            "udplite" => Protocol::UdpLite,
            _ => {
                return Err(format!(
                    "unknown protocol {s:?}, expected one of {} or a number 1..255",
                    Protocol::NAMES.join(", ")
                ));
            }
        })
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Protocol::Number(n) => s.serialize_u8(*n),
            other => s.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Protocol;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a protocol name or number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Protocol, E> {
                u8::try_from(v)
                    .map(Protocol::Number)
                    .map_err(|_| E::custom(format!("protocol number {v} is out of range 1..255")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Protocol, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("protocol number {v} is out of range 1..255")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Protocol, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A 4-octet AS number (RFC 6793). Accepted as a plain integer or in the "asdot"
/// notation of RFC 5396 (`"1.10"` = 65546); always written as an integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AsNumber(pub u32);

impl AsNumber {
    /// Calico's default AS for the cluster.
    pub const DEFAULT: AsNumber = AsNumber(64512);

    /// The RFC 5396 "asdot" form (`1.10`), plain for values below 65536.
    pub fn to_asdot(self) -> String {
        if self.0 < 65536 {
            self.0.to_string()
        } else {
            format!("{}.{}", self.0 >> 16, self.0 & 0xffff)
        }
    }
}

impl fmt::Display for AsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for AsNumber {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let part = |t: &str, max: u64| -> Option<u64> {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse::<u64>().ok().filter(|v| *v <= max)
        };
        let parsed = match s.split_once('.') {
            // RFC 5396 section 1: asdot is <high 16 bits>.<low 16 bits>.
            Some((hi, lo)) => part(hi, 0xffff)
                .zip(part(lo, 0xffff))
                .map(|(h, l)| (h << 16) | l),
            None => part(s, u64::from(u32::MAX)),
        };
        parsed.map(|v| AsNumber(v as u32)).ok_or_else(|| {
            format!(
                "invalid AS number {s:?}: expected an integer 0..4294967295 or dotted \
                 <0..65535>.<0..65535>"
            )
        })
    }
}

impl Serialize for AsNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for AsNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AsNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an AS number (integer or dotted string such as \"1.10\")")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AsNumber, E> {
                u32::try_from(v)
                    .map(AsNumber)
                    .map_err(|_| E::custom(format!("AS number {v} is out of range 0..4294967295")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AsNumber, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("AS number {v} is out of range 0..4294967295")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<AsNumber, E> {
                // An unquoted `1.10` in YAML is the float 1.1: the low part is lost.
                Err(E::custom(format!(
                    "AS number {v} is a float; write dotted AS numbers as quoted strings, e.g. \"1.10\""
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AsNumber, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_and_print() {
        assert_eq!("80".parse::<Port>().unwrap(), Port::Number(80));
        assert_eq!("80:90".parse::<Port>().unwrap(), Port::Range(80, 90));
        assert_eq!("http".parse::<Port>().unwrap(), Port::Named("http".into()));
        assert!("70000".parse::<Port>().is_err());
        assert_eq!(
            serde_json::to_string(&Port::Range(1, 2)).unwrap(),
            "\"1:2\""
        );
        assert_eq!(serde_json::to_string(&Port::Number(53)).unwrap(), "53");
        let p: Port = serde_json::from_str("\"8080\"").unwrap();
        assert_eq!(p, Port::Number(8080));
    }

    #[test]
    fn as_numbers() {
        assert_eq!("1.10".parse::<AsNumber>().unwrap(), AsNumber(65546));
        assert_eq!("64512".parse::<AsNumber>().unwrap(), AsNumber(64512));
        assert!("65536.1".parse::<AsNumber>().is_err());
        assert!("1.".parse::<AsNumber>().is_err());
        assert!("4294967296".parse::<AsNumber>().is_err());
        assert_eq!(AsNumber(65546).to_asdot(), "1.10");
        let a: AsNumber = serde_json::from_str("\"1.10\"").unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "65546");
        assert!(
            serde_json::from_str::<AsNumber>("1.1")
                .unwrap_err()
                .to_string()
                .contains("quoted")
        );
    }

    #[test]
    fn protocols() {
        assert_eq!("tcp".parse::<Protocol>().unwrap(), Protocol::Tcp);
        assert_eq!("ICMPv6".parse::<Protocol>().unwrap(), Protocol::IcmpV6);
        assert_eq!(
            serde_json::from_str::<Protocol>("6").unwrap(),
            Protocol::Number(6)
        );
        assert!(Protocol::Number(6).supports_ports());
        assert!(!Protocol::UdpLite.supports_ports());
        assert!("foo".parse::<Protocol>().is_err());
        assert!(serde_json::from_str::<Protocol>("256").is_err());
        assert_eq!(
            serde_json::to_string(&Protocol::UdpLite).unwrap(),
            "\"UDPLite\""
        );
    }
}
