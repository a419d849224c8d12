//! The daemon's logs: `tracing` events (and the library crates' `log` records, bridged) on
//! stderr, as text or JSON lines, each with an RFC 3339 UTC timestamp and its level.
//!
//! `VAULTD_LOG` filters them. A bare level (`error`, `warn`, `info`, `debug`, `trace`, `off`)
//! applies to the project's own crates, while the libraries under them (tonic, hyper, h2,
//! rustls, tower, ...) stay at `warn`: their debug output is about frames and sockets, not
//! about the vault. Anything else is an `EnvFilter` directive list used as given
//! (`info,vault=debug`, `debug,h2=trace`). Records never carry secret values: the code logs
//! names, codes and errors only, and the device libraries' own records are dropped
//! (`kek_providers::is_library_log`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, fmt as layers};

/// The environment variable holding the filter.
pub const FILTER_VAR: &str = "VAULTD_LOG";
/// The crates of this project, which a bare level in `VAULTD_LOG` applies to.
const OWN_CRATES: &[&str] = &[
    "vaultd",
    "vault",
    "kek_providers",
    "envelope",
    "pki",
    "principal_id",
    "secret_refs",
];

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event: time, level, target, fields and message.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`, `span`).
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format {other:?}: use \"text\" or \"json\""
            )),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// Why the logger could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoggerError {
    /// `VAULTD_LOG` does not parse.
    #[error(
        "{FILTER_VAR}={value:?}: {reason}; give a level (error, warn, info, debug, trace, off) \
         or a filter such as \"info,vault=debug\""
    )]
    Filter {
        /// The value (shortened).
        value: String,
        /// What the parser said.
        reason: String,
    },
    /// Another logger was installed first.
    #[error("cannot install the logger: {0}")]
    Install(String),
}

/// The filter for a `VAULTD_LOG` value (`None` or empty: `info`).
pub fn filter(value: Option<&str>) -> Result<EnvFilter, LoggerError> {
    let value = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or("info");
    let directives = match value.parse::<LevelFilter>() {
        // A bare level: the project's crates at that level, the libraries at warn (or less).
        Ok(level) => {
            let libraries = level.min(LevelFilter::WARN);
            let mut directives = vec![libraries.to_string().to_ascii_lowercase()];
            directives.extend(
                OWN_CRATES
                    .iter()
                    .map(|krate| format!("{krate}={}", level.to_string().to_ascii_lowercase())),
            );
            directives.join(",")
        }
        Err(_) => value.to_owned(),
    };
    EnvFilter::builder()
        .with_regex(false)
        .parse(&directives)
        .map_err(|e| LoggerError::Filter {
            value: value.chars().take(80).collect(),
            reason: e.to_string(),
        })
}

/// Installs the logger: `filter` (see [`filter`]) in `format` on stderr, and the bridge
/// that turns the `log` records of the library crates into events.
pub fn init(format: LogFormat, filter: EnvFilter) -> Result<(), LoggerError> {
    let max_level = filter.max_level_hint().unwrap_or(LevelFilter::TRACE);
    let devices = filter_fn(|metadata| !kek_providers::is_library_log(metadata.target()));
    let lines = match format {
        LogFormat::Text => layers::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_filter(devices)
            .boxed(),
        LogFormat::Json => layers::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(devices)
            .boxed(),
    };
    let subscriber = tracing_subscriber::registry().with(filter).with(lines);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| LoggerError::Install(e.to_string()))?;
    tracing_log::LogTracer::builder()
        .with_max_level(log_level(max_level))
        .init()
        .map_err(|e| LoggerError::Install(e.to_string()))
}

/// The `log` crate's level for a `tracing` one: `log` records above it are not even built.
fn log_level(level: LevelFilter) -> log::LevelFilter {
    match level.into_level() {
        None => log::LevelFilter::Off,
        Some(tracing::Level::ERROR) => log::LevelFilter::Error,
        Some(tracing::Level::WARN) => log::LevelFilter::Warn,
        Some(tracing::Level::INFO) => log::LevelFilter::Info,
        Some(tracing::Level::DEBUG) => log::LevelFilter::Debug,
        Some(tracing::Level::TRACE) => log::LevelFilter::Trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_level_applies_to_the_project_and_keeps_libraries_at_warn() {
        let debug = filter(Some("debug")).expect("debug").to_string();
        assert!(debug.contains("vaultd=debug"), "{debug}");
        assert!(debug.contains("vault=debug"), "{debug}");
        assert!(!debug.contains("h2=debug"), "{debug}");
        assert_eq!(
            filter(Some("debug")).expect("debug").max_level_hint(),
            Some(LevelFilter::DEBUG)
        );
        let error = filter(Some("error")).expect("error");
        assert_eq!(error.max_level_hint(), Some(LevelFilter::ERROR));
        let default = filter(None).expect("default");
        assert_eq!(default.max_level_hint(), Some(LevelFilter::INFO));
        assert_eq!(
            filter(Some("  ")).expect("blank").to_string(),
            default.to_string()
        );
    }

    #[test]
    fn directives_are_taken_as_given() {
        let given = filter(Some("warn,vault::audit=trace")).expect("directives");
        assert_eq!(given.max_level_hint(), Some(LevelFilter::TRACE));
    }

    #[test]
    fn a_bad_filter_says_what_to_write() {
        let error = filter(Some("vault=loud"))
            .expect_err("not a level")
            .to_string();
        assert!(error.contains("VAULTD_LOG=\"vault=loud\""), "{error}");
        assert!(error.contains("give a level"), "{error}");
    }

    #[test]
    fn log_formats_parse_and_print() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!(" text ".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("xml".parse::<LogFormat>().is_err());
        assert_eq!(LogFormat::Json.to_string(), "json");
    }
}
