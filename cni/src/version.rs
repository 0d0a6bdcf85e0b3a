//! CNI spec versions: which ones these plugins speak, and how results differ between them.

use crate::error::{CniError, INCOMPATIBLE_VERSION, Result};

/// The versions both plugins implement (VERSION reports them).
pub const SUPPORTED: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
/// The newest supported version, used when a configuration names none that can be read.
pub const LATEST: &str = "1.1.0";

/// A parsed `major.minor.patch` version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let mut parts = s.split('.').map(|p| p.parse::<u32>().ok());
        let v = Version(parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(v)
    }

    /// 0.3.x and 0.4.0 results carry `"version": "4"|"6"` in each IP entry; 1.0.0 dropped it.
    pub fn ip_has_version_field(self) -> bool {
        self < Version(1, 0, 0)
    }

    /// CHECK exists since 0.4.0.
    pub fn has_check(self) -> bool {
        self >= Version(0, 4, 0)
    }
}

/// Refuses a configuration version these plugins do not implement (spec error 1).
pub fn require_supported(v: &str) -> Result<Version> {
    match Version::parse(v) {
        Some(parsed) if SUPPORTED.contains(&v) => Ok(parsed),
        _ => Err(CniError::new(
            INCOMPATIBLE_VERSION,
            "incompatible CNI version",
            format!(
                "cniVersion {v:?} is not supported; supported: {}",
                SUPPORTED.join(", ")
            ),
        )),
    }
}

/// The VERSION command's output.
pub fn version_result(cni_version: &str) -> String {
    serde_json::json!({"cniVersion": cni_version, "supportedVersions": SUPPORTED}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(Version::parse("1.0.0"), Some(Version(1, 0, 0)));
        assert_eq!(Version::parse("1.0"), None);
        assert_eq!(Version::parse("1.0.0.0"), None);
        assert!(Version::parse("0.4.0").unwrap().ip_has_version_field());
        assert!(!Version::parse("1.1.0").unwrap().ip_has_version_field());
        assert!(!Version::parse("0.3.1").unwrap().has_check());
    }

    #[test]
    fn unsupported_versions_are_error_1() {
        assert_eq!(require_supported("0.2.0").unwrap_err().code, 1);
        assert_eq!(require_supported("2.0.0").unwrap_err().code, 1);
        assert_eq!(require_supported("x").unwrap_err().code, 1);
        assert!(require_supported("1.1.0").is_ok());
    }
}
