//! The logging and metrics settings: `log_format` and `metrics_listen`, layered file < env <
//! flags like every other setting, printed by `print-config`, and refused with a clear
//! message when they do not parse.

use std::net::SocketAddr;
use std::path::Path;

use vaultd::config::{Config, ConfigError, Overrides};
use vaultd::logger::LogFormat;

fn no_env(_: &str) -> Option<String> {
    None
}

fn from_toml(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("vaultd.toml"))
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("an address")
}

#[test]
fn both_are_off_or_text_by_default() {
    let config = Config::load(None, &no_env, &Overrides::default()).expect("defaults");
    assert_eq!(config.log_format, LogFormat::Text);
    assert_eq!(config.metrics_listen, None);
    let printed = config.to_toml();
    assert!(printed.contains("log_format = \"text\""), "{printed}");
    assert!(!printed.contains("metrics_listen"), "{printed}");
}

#[test]
fn a_port_alone_means_loopback() {
    for text in [
        "metrics_listen = \"9464\"",
        "metrics_listen = 9464",
        "metrics_listen = \" 9464 \"",
    ] {
        let config = from_toml(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            config.metrics_listen,
            Some(addr("127.0.0.1:9464")),
            "{text}"
        );
    }
    let config = from_toml("metrics_listen = \"[::1]:9000\"").expect("v6");
    assert_eq!(config.metrics_listen, Some(addr("[::1]:9000")));
}

#[test]
fn file_then_env_then_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vaultd.toml");
    std::fs::write(
        &path,
        "log_format = \"json\"\nmetrics_listen = \"0.0.0.0:9100\"\n",
    )
    .expect("write");
    let file = Config::load(Some(&path), &no_env, &Overrides::default()).expect("file");
    assert_eq!(file.log_format, LogFormat::Json);
    assert_eq!(file.metrics_listen, Some(addr("0.0.0.0:9100")));

    let env = |name: &str| match name {
        "VAULTD_LOG_FORMAT" => Some("text".to_owned()),
        "VAULTD_METRICS_LISTEN" => Some("9200".to_owned()),
        _ => None,
    };
    let with_env = Config::load(Some(&path), &env, &Overrides::default()).expect("env");
    assert_eq!(with_env.log_format, LogFormat::Text);
    assert_eq!(with_env.metrics_listen, Some(addr("127.0.0.1:9200")));

    let flags = Overrides {
        log_format: Some(LogFormat::Json),
        metrics_listen: Some(addr("127.0.0.1:9300")),
        ..Overrides::default()
    };
    let all = Config::load(Some(&path), &env, &flags).expect("flags");
    assert_eq!(all.log_format, LogFormat::Json);
    assert_eq!(all.metrics_listen, Some(addr("127.0.0.1:9300")));

    // print-config gives the same settings back.
    let again = from_toml(&all.to_toml()).expect("printed");
    assert_eq!(again, all);
}

#[test]
fn bad_values_say_what_to_write() {
    let err = from_toml("metrics_listen = \"localhost:9464\"").expect_err("a name");
    assert!(err.to_string().contains("give HOST:PORT"), "{err}");
    let err = from_toml("log_format = \"xml\"").expect_err("a format");
    assert!(matches!(err, ConfigError::Parse { line: 1, .. }), "{err}");

    let env = |name: &str| (name == "VAULTD_METRICS_LISTEN").then(|| "everywhere".to_owned());
    let err = Config::load(None, &env, &Overrides::default()).expect_err("env");
    assert!(
        matches!(
            &err,
            ConfigError::Env {
                var: "VAULTD_METRICS_LISTEN",
                ..
            }
        ),
        "{err}"
    );
    let env = |name: &str| (name == "VAULTD_LOG_FORMAT").then(|| "yaml".to_owned());
    let err = Config::load(None, &env, &Overrides::default()).expect_err("env");
    assert!(
        err.to_string().contains("use \"text\" or \"json\""),
        "{err}"
    );
}
