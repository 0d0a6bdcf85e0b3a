//! The CNI error result (spec "Error" section): `{"cniVersion", "code", "msg", "details"}` on
//! stdout with a non-zero exit. Codes 1-99 are reserved by the spec and used only with the
//! meaning it gives them; plugin-specific failures use 100 and up.

use serde::Serialize;

/// Incompatible CNI version.
pub const INCOMPATIBLE_VERSION: u32 = 1;
/// Unsupported field in the network configuration.
pub const UNSUPPORTED_FIELD: u32 = 2;
/// Container unknown or does not exist (the runtime need not clean up).
pub const UNKNOWN_CONTAINER: u32 = 3;
/// Invalid necessary environment variables (CNI_COMMAND, CNI_CONTAINERID ...).
pub const INVALID_ENV: u32 = 4;
/// I/O failure (reading stdin, running the IPAM plugin ...).
pub const IO_FAILURE: u32 = 5;
/// Failed to decode content (stdin, an IPAM plugin's output).
pub const DECODE_FAILURE: u32 = 6;
/// Invalid network configuration.
pub const INVALID_CONFIG: u32 = 7;
/// Try again later: a transient condition (etcd unreachable, CAS contention).
pub const TRY_AGAIN: u32 = 11;
/// CNI 1.1 STATUS: the plugin is not available (cannot serve ADD now).
pub const PLUGIN_NOT_AVAILABLE: u32 = 50;
/// Plugin-specific: CHECK found the container's networking differs from the result.
pub const CHECK_MISMATCH: u32 = 100;
/// Plugin-specific: a datastore or IPAM request failed for a non-transient reason.
pub const DATASTORE_FAILURE: u32 = 101;
/// Plugin-specific: the kernel refused a netlink or sysctl change.
pub const NETLINK_FAILURE: u32 = 102;
/// Plugin-specific: IP addresses could not be assigned (pools exhausted, IP taken).
pub const IPAM_FAILURE: u32 = 103;

/// A failure as the runtime will see it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{msg}{}", if details.is_empty() { String::new() } else { format!(": {details}") })]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// The error JSON for `cni_version` (the configuration's version, or the newest this
    /// plugin supports when the configuration could not be read).
    pub fn to_json(&self, cni_version: &str) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            cni_version: &'a str,
            code: u32,
            msg: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            details: &'a str,
        }
        serde_json::to_string(&Wire {
            cni_version,
            code: self.code,
            msg: &self.msg,
            details: &self.details,
        })
        .expect("a struct of strings always serialises")
    }
}

impl From<config::datastore::DatastoreError> for CniError {
    fn from(e: config::datastore::DatastoreError) -> CniError {
        let code = if e.is_unavailable() || e.is_conflict() {
            TRY_AGAIN
        } else {
            DATASTORE_FAILURE
        };
        CniError::new(code, "datastore request failed", e.to_string())
    }
}

impl From<ipam::IpamError> for CniError {
    fn from(e: ipam::IpamError) -> CniError {
        use ipam::IpamError as E;
        let code = match &e {
            E::Datastore(d) if d.is_unavailable() || d.is_conflict() => TRY_AGAIN,
            E::TooManyConflicts { .. } => TRY_AGAIN,
            E::Datastore(_) | E::Decode { .. } => DATASTORE_FAILURE,
            _ => IPAM_FAILURE,
        };
        CniError::new(code, "IPAM request failed", e.to_string())
    }
}

/// `Result` with a [`CniError`].
pub type Result<T> = std::result::Result<T, CniError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_has_the_spec_fields() {
        let e = CniError::new(INVALID_CONFIG, "bad mtu", "mtu 12 is below 68");
        let v: serde_json::Value = serde_json::from_str(&e.to_json("1.0.0")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"cniVersion": "1.0.0", "code": 7, "msg": "bad mtu",
                "details": "mtu 12 is below 68"})
        );
        let bare = CniError::new(TRY_AGAIN, "later", "");
        assert!(!bare.to_json("1.1.0").contains("details"));
    }
}
