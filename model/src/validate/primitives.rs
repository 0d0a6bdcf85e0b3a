//! Field-level syntax checks shared by every kind.

use std::net::IpAddr;

use ipnet::IpNet;

use super::Errors;
use crate::model::Port;

/// RFC 1123 section 2.1 label as Kubernetes restricts it: 1..63 of `[a-z0-9-]`,
/// starting and ending alphanumeric.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Kubernetes' DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// Kubernetes qualified name part: 1..63 of `[A-Za-z0-9-_.]`, alphanumeric at both ends.
fn qualified_name_error(s: &str) -> Option<&'static str> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Some("name part must not be empty");
    }
    if b.len() > 63 {
        return Some("name part must be at most 63 characters");
    }
    let ok_inner = b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !ok_inner || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return Some(
            "name part must consist of alphanumerics, '-', '_' or '.', starting and ending alphanumeric",
        );
    }
    None
}

/// Why `key` is not a valid label/annotation key (`[prefix/]name`), if it is not.
pub fn label_key_error(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && !is_dns1123_subdomain(p)
    {
        return Some(format!(
            "invalid label key {key:?}: prefix must be a DNS-1123 subdomain"
        ));
    }
    qualified_name_error(name).map(|why| format!("invalid label key {key:?}: {why}"))
}

/// Why `value` is not a valid label value, if it is not (empty is valid).
pub fn label_value_error(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    qualified_name_error(value).map(|why| {
        format!(
            "invalid label value {value:?}: {}",
            why.replace("name part", "value")
        )
    })
}

/// Parses a CIDR (`10.0.0.0/16`, `fd00::/64`); host bits may be set, as in Calico.
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .map_err(|_| format!("invalid CIDR {s:?}"))
}

/// CIDR check with an error at `path`; returns the network when valid.
pub(crate) fn cidr(path: &str, s: &str, e: &mut Errors) -> Option<IpNet> {
    parse_cidr(s).map_err(|m| e.add(path, m)).ok()
}

/// A CIDR or a bare address (Calico's `cidr` tag accepts both); bare = full-length prefix.
pub(crate) fn cidr_or_ip(path: &str, s: &str, e: &mut Errors) -> Option<IpNet> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(IpNet::from(ip));
    }
    s.parse::<IpNet>()
        .map_err(|_| e.add(path, format!("invalid CIDR or IP address {s:?}")))
        .ok()
}

pub(crate) fn ip(path: &str, s: &str, e: &mut Errors) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .map_err(|_| e.add(path, format!("invalid IP address {s:?}")))
        .ok()
}

/// A MAC-48 address: six hex octets separated by `:` or `-` (IEEE 802 notation).
pub fn validate_mac(s: &str) -> Result<(), String> {
    let sep = if s.contains('-') { '-' } else { ':' };
    let octets: Vec<&str> = s.split(sep).collect();
    let ok = octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid MAC address {s:?}: expected six hex octets such as ee:ee:ee:ee:ee:ee"
        ))
    }
}

pub(crate) fn mac(path: &str, s: &str, e: &mut Errors) {
    if let Err(m) = validate_mac(s) {
        e.add(path, m);
    }
}

/// A Linux interface name as the kernel's `dev_valid_name()` accepts it:
/// 1..=15 bytes (IFNAMSIZ 16 with the NUL), not `.` or `..`, no `/`, `:`,
/// whitespace or NUL. Names end up in /proc/sys paths, so this also keeps
/// those paths inside the tree.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
}

/// [`valid_ifname`], with a message saying which rule the name breaks.
pub(crate) fn interface_name(path: &str, s: &str, e: &mut Errors) {
    if s.is_empty() || s.len() > 15 {
        e.add(
            path,
            format!("invalid interface name {s:?}: must be 1..15 bytes long"),
        );
    } else if !valid_ifname(s) {
        e.add(path, format!("invalid interface name {s:?}: must not be \".\"/\"..\" or contain '/', ':' or whitespace"));
    }
}

/// Selector syntax, by Calico's grammar.
pub(crate) fn selector(path: &str, s: &str, e: &mut Errors) {
    if let Err(err) = crate::selector::Selector::parse(s) {
        e.add(path, format!("invalid selector {s:?}: {err}"));
    }
}

/// Port names as Kubernetes' IANA_SVC_NAME (RFC 6335 section 5.1): 1..15 of `[a-z0-9-]`,
/// at least one letter, no leading, trailing or doubled `-`.
pub(crate) fn port_name_error(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    (!ok).then(|| {
        format!(
            "invalid port name {s:?}: must be 1..15 lower-case alphanumerics or '-', with a letter and no \
             leading, trailing or doubled '-' (RFC 6335)"
        )
    })
}

pub(crate) fn port(path: &str, p: &Port, e: &mut Errors) {
    match p {
        Port::Range(a, b) if a > b => e.add(
            path,
            format!("invalid port range \"{a}:{b}\": start is above end"),
        ),
        Port::Named(n) => {
            if let Some(m) = port_name_error(n) {
                e.add(path, m);
            }
        }
        _ => {}
    }
}

/// Go duration syntax (`90s`, `1m30s`).
pub(crate) fn duration(path: &str, s: &str, e: &mut Errors) {
    if let Err(m) = crate::model::parse_go_duration(s) {
        e.add(path, m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_rules_follow_dev_valid_name() {
        assert!(valid_ifname("cali0123456789a"));
        assert!(valid_ifname("eth0"));
        assert!(!valid_ifname(""));
        assert!(
            !valid_ifname("cali0123456789ab"),
            "16 bytes is one too many"
        );
        assert!(!valid_ifname(".."));
        assert!(!valid_ifname("a/b"));
        assert!(!valid_ifname("a b"));
        assert!(!valid_ifname("a:1"));
    }

    #[test]
    fn dns_names() {
        for ok in ["a", "node-1", "a.b.c", "x0"] {
            assert!(is_dns1123_subdomain(ok), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a..b", "a_b", ".a", &"a".repeat(64)] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
        assert!(is_dns1123_label("abc-1") && !is_dns1123_label("a.b"));
    }

    #[test]
    fn labels() {
        for ok in ["app", "projectcalico.org/namespace", "a_b.c-d", "X"] {
            assert_eq!(label_key_error(ok), None, "{ok}");
        }
        for bad in ["", "/a", "a/", "Foo.Bar/x", "-a", "a/b/c", &"k".repeat(64)] {
            assert!(label_key_error(bad).is_some(), "{bad}");
        }
        assert_eq!(label_value_error(""), None);
        assert_eq!(label_value_error("v1.2_x"), None);
        assert!(label_value_error("a b").is_some());
        assert!(label_value_error("_a").is_some());
    }

    #[test]
    fn macs_and_ports() {
        assert!(validate_mac("ee:ee:ee:ee:ee:ee").is_ok());
        assert!(validate_mac("EE-01-02-03-04-05").is_ok());
        for bad in [
            "ee:ee:ee:ee:ee",
            "ee:ee:ee:ee:ee:eg",
            "eeee.eeee.eeee",
            "ee:ee:ee-ee:ee:ee",
        ] {
            assert!(validate_mac(bad).is_err(), "{bad}");
        }
        assert!(port_name_error("http").is_none());
        assert!(port_name_error("web-80").is_none());
        for bad in ["80", "-a", "a--b", "HTTP", "abcdefghijklmnop"] {
            assert!(port_name_error(bad).is_some(), "{bad}");
        }
    }
}
