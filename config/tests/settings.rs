//! Settings from a fake environment and from flags.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Parser;
use config::settings::{EtcdArgs, Settings, SettingsError, log_directives};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn parse(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    Settings::from_lookup(env(pairs))
}

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    etcd: EtcdArgs,
}

#[test]
fn defaults_when_nothing_is_set() {
    let s = parse(&[]).unwrap();
    assert_eq!(s.node_name, None);
    assert_eq!(s.etcd.endpoints, ["http://127.0.0.1:2379"]);
    assert_eq!(s.etcd.ca_cert_file, None);
    assert_eq!(s.log_level, "info");
}

#[test]
fn reads_every_variable() {
    let s = parse(&[
        ("NODENAME", "node-1"),
        (
            "ETCD_ENDPOINTS",
            "https://10.0.0.1:2379, https://[fd00::1]:2379/",
        ),
        ("ETCD_CA_CERT_FILE", "/etc/calico/ca.pem"),
        ("ETCD_CERT_FILE", "/etc/calico/cert.pem"),
        ("ETCD_KEY_FILE", "/etc/calico/key.pem"),
        ("ETCD_USERNAME", "calico"),
        ("ETCD_PASSWORD", "s3cret"),
        ("LOG_LEVEL", "Warning"),
    ])
    .unwrap();
    assert_eq!(s.node_name.as_deref(), Some("node-1"));
    assert_eq!(
        s.etcd.endpoints,
        ["https://10.0.0.1:2379", "https://[fd00::1]:2379"]
    );
    assert_eq!(
        s.etcd.ca_cert_file,
        Some(PathBuf::from("/etc/calico/ca.pem"))
    );
    assert_eq!(
        s.etcd.cert_file,
        Some(PathBuf::from("/etc/calico/cert.pem"))
    );
    assert_eq!(s.etcd.key_file, Some(PathBuf::from("/etc/calico/key.pem")));
    assert_eq!(s.etcd.username.as_deref(), Some("calico"));
    assert_eq!(s.etcd.password.as_deref(), Some("s3cret"));
    assert_eq!(s.log_level, "warn");
    assert!(
        !format!("{:?}", s.etcd).contains("s3cret"),
        "Debug must not print the password"
    );
}

#[test]
fn calico_prefixed_variables_win() {
    let s = parse(&[
        ("ETCD_ENDPOINTS", "http://plain:2379"),
        ("CALICO_ETCD_ENDPOINTS", "http://prefixed:2379"),
        ("CALICO_NODENAME", "n2"),
        ("CALICO_LOG_LEVEL", "debug"),
        ("ETCD_USERNAME", "u"),
        ("CALICO_ETCD_PASSWORD", "p"),
    ])
    .unwrap();
    assert_eq!(s.etcd.endpoints, ["http://prefixed:2379"]);
    assert_eq!(s.node_name.as_deref(), Some("n2"));
    assert_eq!(s.log_level, "debug");
    assert_eq!(
        (s.etcd.username.as_deref(), s.etcd.password.as_deref()),
        (Some("u"), Some("p"))
    );
    // Empty counts as unset, so the plain variable applies.
    let s = parse(&[
        ("CALICO_ETCD_ENDPOINTS", ""),
        ("ETCD_ENDPOINTS", "http://plain:2379"),
    ])
    .unwrap();
    assert_eq!(s.etcd.endpoints, ["http://plain:2379"]);
}

#[test]
fn bad_endpoints_name_the_variable_and_the_value() {
    for (value, why) in [
        ("127.0.0.1:2379", "http:// or https://"),
        ("ftp://h:2379", "http:// or https://"),
        ("http://", "no valid host"),
        ("http://h:99999", "invalid port"),
        ("http://h:0", "invalid port"),
        ("http://h:2379/v3", "path"),
        (" , ", "no endpoint"),
    ] {
        let err = parse(&[("CALICO_ETCD_ENDPOINTS", value)]).unwrap_err();
        assert_eq!(err.source_name, "CALICO_ETCD_ENDPOINTS", "{value}");
        let text = err.to_string();
        assert!(text.contains(why), "{value}: {text}");
        assert!(text.starts_with("invalid CALICO_ETCD_ENDPOINTS:"), "{text}");
    }
    let err = parse(&[("ETCD_ENDPOINTS", "http://ok:2379,bad")]).unwrap_err();
    assert!(err.to_string().contains("\"bad\""), "{err}");
}

#[test]
fn inconsistent_tls_and_credentials_are_refused() {
    let err = parse(&[
        ("ETCD_ENDPOINTS", "https://h:2379"),
        ("ETCD_CERT_FILE", "/c.pem"),
    ])
    .unwrap_err();
    assert_eq!(err.source_name, "ETCD_CERT_FILE");
    assert!(err.to_string().contains("ETCD_KEY_FILE"), "{err}");
    let err = parse(&[
        ("ETCD_ENDPOINTS", "https://h:2379"),
        ("ETCD_KEY_FILE", "/k.pem"),
    ])
    .unwrap_err();
    assert_eq!(err.source_name, "ETCD_KEY_FILE");
    let err = parse(&[("ETCD_CA_CERT_FILE", "/ca.pem")]).unwrap_err();
    assert!(err.to_string().contains("http://127.0.0.1:2379"), "{err}");
    let err = parse(&[("ETCD_PASSWORD", "p")]).unwrap_err();
    assert_eq!(err.source_name, "ETCD_PASSWORD");
}

#[test]
fn bad_log_level_and_node_name() {
    let err = parse(&[("LOG_LEVEL", "loud")]).unwrap_err();
    assert_eq!(err.source_name, "LOG_LEVEL");
    assert!(err.to_string().contains("\"loud\""), "{err}");
    for (given, expected) in [
        ("FATAL", "error"),
        ("panic", "error"),
        ("trace", "trace"),
        ("off", "off"),
    ] {
        assert_eq!(parse(&[("LOG_LEVEL", given)]).unwrap().log_level, expected);
    }
    let err = parse(&[("NODENAME", "a/b")]).unwrap_err();
    assert_eq!(err.source_name, "NODENAME");
}

#[test]
fn flags_override_the_environment() {
    let cli = Cli::try_parse_from([
        "daemon",
        "--etcd-endpoints",
        "http://flag:2379",
        "--etcd-username",
        "flaguser",
        "--etcd-password",
        "flagpass",
    ])
    .unwrap();
    let s = Settings::from_lookup_and_args(
        env(&[
            ("ETCD_ENDPOINTS", "http://env:2379"),
            ("ETCD_USERNAME", "envuser"),
            ("NODENAME", "n"),
        ]),
        &cli.etcd,
    )
    .unwrap();
    assert_eq!(s.etcd.endpoints, ["http://flag:2379"]);
    assert_eq!(s.etcd.username.as_deref(), Some("flaguser"));
    assert_eq!(s.etcd.password.as_deref(), Some("flagpass"));
    assert_eq!(s.node_name.as_deref(), Some("n"));

    let cli = Cli::try_parse_from(["daemon", "--etcd-endpoints", "nope"]).unwrap();
    let err = Settings::from_lookup_and_args(env(&[]), &cli.etcd).unwrap_err();
    assert_eq!(err.source_name, "--etcd-endpoints");

    // Without flags the environment applies.
    let cli = Cli::try_parse_from(["daemon"]).unwrap();
    let s =
        Settings::from_lookup_and_args(env(&[("ETCD_ENDPOINTS", "http://env:2379")]), &cli.etcd)
            .unwrap();
    assert_eq!(s.etcd.endpoints, ["http://env:2379"]);
}

#[test]
fn rust_log_overrides_log_level() {
    assert_eq!(log_directives(None, "debug"), "debug");
    assert_eq!(log_directives(Some("  "), "warn"), "warn");
    assert_eq!(
        log_directives(Some("felix=trace,info"), "error"),
        "felix=trace,info"
    );
}
