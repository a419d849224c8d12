//! The daemon configuration: defaults < TOML file < environment < flags (see `Config::load`).

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::acl::{Acl, Operation};
use crate::logger::LogFormat;

/// The environment variables `Config::load` reads, and the field each one sets. An empty
/// variable counts as unset.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("VAULTD_LISTEN", "listen"),
    ("VAULTD_VAULT_DIR", "vault_dir"),
    ("VAULTD_AUDIT_LOG", "audit_log"),
    ("VAULTD_TLS_DIR", "tls.dir"),
    ("VAULTD_MAX_MESSAGE_BYTES", "limits.max_message_bytes"),
    ("VAULTD_MAX_SECRET_BYTES", "limits.max_secret_bytes"),
    (
        "VAULTD_MAX_CONCURRENT_REQUESTS",
        "limits.max_concurrent_requests",
    ),
    ("VAULTD_REQUEST_TIMEOUT_MS", "limits.request_timeout_ms"),
    ("VAULTD_HANDSHAKE_TIMEOUT_MS", "limits.handshake_timeout_ms"),
    ("VAULTD_KEK_THREADS", "limits.kek_threads"),
    ("VAULTD_RATE_PER_SECOND", "limits.rate_per_second"),
    ("VAULTD_BURST", "limits.burst"),
    ("VAULTD_CACHE_TTL_SECS", "limits.cache_ttl_secs"),
    ("VAULTD_MLOCKALL", "hardening.mlockall"),
    ("VAULTD_AUDIT_CHECKPOINT_FILE", "audit.checkpoint_file"),
    ("VAULTD_AUDIT_SYSLOG", "audit.syslog"),
    ("VAULTD_AUDIT_MAX_SEGMENT_BYTES", "audit.max_segment_bytes"),
    ("VAULTD_LOG_FORMAT", "log_format"),
    ("VAULTD_METRICS_LISTEN", "metrics_listen"),
];

/// The least `audit.max_segment_bytes` other than 0: smaller segments would rotate at almost
/// every batch.
pub const MIN_SEGMENT_BYTES: u64 = 4096;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read the configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML, or has a field of the wrong type or name.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error (1 when the parser gave no position).
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// An environment variable has a value that does not parse.
    #[error("environment variable {var}={value:?}: {reason}")]
    Env {
        /// The variable, e.g. `VAULTD_BURST`.
        var: &'static str,
        /// Its value (shortened).
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A field has a value outside what the daemon accepts.
    #[error("configuration field {field}: {reason}")]
    Invalid {
        /// The field, e.g. `limits.burst` or `acl[2].scopes[0]`.
        field: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// The daemon configuration. Every field has a default, so an empty file is a valid one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the gRPC server listens on.
    pub listen: SocketAddr,
    /// The vault directory (store, keyring configuration).
    pub vault_dir: PathBuf,
    /// The audit log; empty means `<vault_dir>/audit.jsonl` (see `audit_log_path`).
    pub audit_log: PathBuf,
    /// KEK URIs overriding the ones pinned in the vault; empty means the pinned ones.
    pub kek: Vec<String>,
    /// How log lines are written: `text` or `json`.
    pub log_format: LogFormat,
    /// Where `/metrics`, `/healthz` and `/readyz` are served over plain HTTP; off when absent.
    /// A port alone (`"9464"`) means loopback.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_metrics_listen"
    )]
    pub metrics_listen: Option<SocketAddr>,
    /// TLS material.
    pub tls: TlsConfig,
    /// Sizes, rates and timeouts.
    pub limits: Limits,
    /// Process hardening.
    pub hardening: Hardening,
    /// Where the audit log's signed checkpoints go, and how often.
    pub audit: AuditConfig,
    /// Access rules; whatever no rule allows is denied.
    pub acl: Vec<AclRule>,
}

/// Where the TLS material lives.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Directory with `ca.pem`, `server.pem`, `server.key` and `revoked.txt`; empty means
    /// `<vault_dir>/tls` (see `Config::tls_dir`).
    pub dir: PathBuf,
}

/// Sizes, rates and timeouts; all must be above zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Largest secret value accepted, in bytes.
    pub max_secret_bytes: usize,
    /// Requests served at once; more wait.
    pub max_concurrent_requests: usize,
    /// Deadline of one request, in milliseconds.
    pub request_timeout_ms: u64,
    /// Deadline of a TLS handshake, in milliseconds: a client that connects and then stalls
    /// is disconnected after it.
    pub handshake_timeout_ms: u64,
    /// Threads of the blocking pool that calls the KEK providers.
    pub kek_threads: usize,
    /// Requests per second per principal (token bucket refill rate).
    pub rate_per_second: u32,
    /// Token bucket size per principal.
    pub burst: u32,
    /// How long an opened secret stays in the cache, in seconds; 0 turns the cache off
    /// (every get reads the store and opens the envelope, as the store benchmark needs).
    pub cache_ttl_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 4 << 20,
            max_secret_bytes: 1 << 20,
            max_concurrent_requests: 256,
            request_timeout_ms: 5000,
            handshake_timeout_ms: 10_000,
            kek_threads: 4,
            rate_per_second: 1000,
            burst: 2000,
            cache_ttl_secs: 300,
        }
    }
}

impl Limits {
    /// `request_timeout_ms` as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// `handshake_timeout_ms` as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// `cache_ttl_secs` as a duration.
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_secs(self.cache_ttl_secs)
    }
}

/// Process hardening.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hardening {
    /// Lock all pages of the process in memory (no secret reaches swap).
    pub mlockall: bool,
}

/// The `[audit]` table: signed checkpoints of the audit log sent outside the vault, so that
/// cutting or replacing the log (with `vault.json`) is caught by whoever keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// A file each checkpoint is appended to (a JSON line); empty means none.
    pub checkpoint_file: PathBuf,
    /// Send each checkpoint to syslog (facility auth, tag `vaultd`).
    pub syslog: bool,
    /// The syslog socket; empty means the system's (`/dev/log`, `/var/run/syslog` or
    /// `/var/run/log`).
    pub syslog_socket: PathBuf,
    /// Seconds between checkpoints while records arrive (also written at shutdown).
    pub checkpoint_interval_secs: u64,
    /// Close the audit log's current segment and start the next once it holds this many
    /// bytes (0: only `vaultctl audit rotate` rotates). Start-up reads the current segment
    /// only, so this bounds what it reads.
    pub max_segment_bytes: u64,
}

/// The default `audit.max_segment_bytes`: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            checkpoint_file: PathBuf::new(),
            syslog: false,
            syslog_socket: PathBuf::new(),
            checkpoint_interval_secs: vault::audit::CHECKPOINT_INTERVAL.as_secs(),
            max_segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// One `[[acl]]` rule: `principal` may do `operations` on `keys` in `scopes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclRule {
    /// An exact principal id, or `*` for every principal.
    pub principal: String,
    /// Scope patterns: `*`, an exact scope, a prefix like `skill:*`, `{self}` (the caller's
    /// own `principal:<id>`), `transit` (seal/open contexts). Not needed for `admin` and
    /// `audit`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Key-name (or transit-context) globs: `*`, `prefix*`, `*suffix`, `a*b`; `{self}` in a
    /// glob is the caller's principal id (`{self}-*`).
    #[serde(default = "every_key")]
    pub keys: Vec<String>,
    /// The operations allowed. `admin` and `audit` only in a rule naming its principal.
    pub operations: Vec<Operation>,
    /// Transit data sealed under a context this rule's keys match is bound to the caller:
    /// it opens only for the principal that sealed it (see `Acl::binds_caller`). Only in a
    /// rule with `scopes = ["transit"]` and seal or open.
    #[serde(default, skip_serializing_if = "is_false")]
    pub bind_caller: bool,
}

impl AclRule {
    /// A rule letting `principal` do everything, everywhere, `admin` and `audit` included
    /// (the dev mode's admin). `principal` must name one principal: `*` may not have
    /// `admin` or `audit`.
    pub fn allow_all(principal: &str) -> AclRule {
        AclRule {
            principal: principal.to_owned(),
            scopes: vec!["*".to_owned()],
            keys: every_key(),
            operations: Operation::ALL.to_vec(),
            bind_caller: false,
        }
    }
}

fn every_key() -> Vec<String> {
    vec!["*".to_owned()]
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            vault_dir: PathBuf::from("/var/lib/vault"),
            audit_log: PathBuf::new(),
            kek: Vec::new(),
            tls: TlsConfig::default(),
            limits: Limits::default(),
            hardening: Hardening::default(),
            audit: AuditConfig::default(),
            log_format: LogFormat::default(),
            metrics_listen: None,
            acl: Vec::new(),
        }
    }
}

/// Values from command-line flags; they win over the file and the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--vault-dir`.
    pub vault_dir: Option<PathBuf>,
    /// `--audit-log`.
    pub audit_log: Option<PathBuf>,
    /// `--tls-dir`.
    pub tls_dir: Option<PathBuf>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// `--metrics-listen`.
    pub metrics_listen: Option<SocketAddr>,
}

impl Config {
    /// Builds the effective configuration: defaults, then `file` (if given), then the
    /// environment (read through `env`, e.g. `&|name| std::env::var(name).ok()`), then
    /// `flags`; then validates the result, ACL included.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.apply_flags(flags);
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML text; errors carry `path` and the line.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|err| {
            let (line, column) = match err.span() {
                Some(span) => line_and_column(text, span.start),
                None => (1, 1),
            };
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                column,
                message: err.message().trim_end().to_owned(),
            }
        })
    }

    fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let path = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(listen) = parsed(env, "VAULTD_LISTEN")? {
            self.listen = listen;
        }
        if let Some(dir) = path("VAULTD_VAULT_DIR") {
            self.vault_dir = dir;
        }
        if let Some(log) = path("VAULTD_AUDIT_LOG") {
            self.audit_log = log;
        }
        if let Some(dir) = path("VAULTD_TLS_DIR") {
            self.tls.dir = dir;
        }
        let limits = &mut self.limits;
        set(
            &mut limits.max_message_bytes,
            env,
            "VAULTD_MAX_MESSAGE_BYTES",
        )?;
        set(&mut limits.max_secret_bytes, env, "VAULTD_MAX_SECRET_BYTES")?;
        set(
            &mut limits.max_concurrent_requests,
            env,
            "VAULTD_MAX_CONCURRENT_REQUESTS",
        )?;
        set(
            &mut limits.request_timeout_ms,
            env,
            "VAULTD_REQUEST_TIMEOUT_MS",
        )?;
        set(
            &mut limits.handshake_timeout_ms,
            env,
            "VAULTD_HANDSHAKE_TIMEOUT_MS",
        )?;
        set(&mut limits.kek_threads, env, "VAULTD_KEK_THREADS")?;
        set(&mut limits.rate_per_second, env, "VAULTD_RATE_PER_SECOND")?;
        set(&mut limits.burst, env, "VAULTD_BURST")?;
        set(&mut limits.cache_ttl_secs, env, "VAULTD_CACHE_TTL_SECS")?;
        set(&mut self.hardening.mlockall, env, "VAULTD_MLOCKALL")?;
        if let Some(file) = path("VAULTD_AUDIT_CHECKPOINT_FILE") {
            self.audit.checkpoint_file = file;
        }
        set(&mut self.audit.syslog, env, "VAULTD_AUDIT_SYSLOG")?;
        set(
            &mut self.audit.max_segment_bytes,
            env,
            "VAULTD_AUDIT_MAX_SEGMENT_BYTES",
        )?;
        set(&mut self.log_format, env, "VAULTD_LOG_FORMAT")?;
        if let Some(value) = env("VAULTD_METRICS_LISTEN").filter(|v| !v.is_empty()) {
            let addr = parse_metrics_listen(&value).map_err(|reason| ConfigError::Env {
                var: "VAULTD_METRICS_LISTEN",
                value: value.chars().take(80).collect(),
                reason,
            })?;
            self.metrics_listen = Some(addr);
        }
        Ok(())
    }

    fn apply_flags(&mut self, flags: &Overrides) {
        if let Some(listen) = flags.listen {
            self.listen = listen;
        }
        if let Some(dir) = &flags.vault_dir {
            self.vault_dir = dir.clone();
        }
        if let Some(log) = &flags.audit_log {
            self.audit_log = log.clone();
        }
        if let Some(dir) = &flags.tls_dir {
            self.tls.dir = dir.clone();
        }
        if let Some(format) = flags.log_format {
            self.log_format = format;
        }
        if let Some(addr) = flags.metrics_listen {
            self.metrics_listen = Some(addr);
        }
    }

    /// Checks the values the types do not: limits above zero, a vault directory, KEK URIs,
    /// and the ACL rules (principal ids, scope patterns, key patterns).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vault_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                "vault_dir",
                "is empty; give the vault directory",
            ));
        }
        for (at, uri) in self.kek.iter().enumerate() {
            if uri.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("kek[{at}]"),
                    "is empty; give a KEK URI or remove the entry",
                ));
            }
        }
        let limits = &self.limits;
        for (field, value) in [
            ("limits.max_message_bytes", limits.max_message_bytes as u64),
            ("limits.max_secret_bytes", limits.max_secret_bytes as u64),
            (
                "limits.max_concurrent_requests",
                limits.max_concurrent_requests as u64,
            ),
            ("limits.request_timeout_ms", limits.request_timeout_ms),
            ("limits.handshake_timeout_ms", limits.handshake_timeout_ms),
            ("limits.kek_threads", limits.kek_threads as u64),
            ("limits.rate_per_second", limits.rate_per_second.into()),
            ("limits.burst", limits.burst.into()),
            (
                "audit.checkpoint_interval_secs",
                self.audit.checkpoint_interval_secs,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(field, "must be at least 1"));
            }
        }
        let segment = self.audit.max_segment_bytes;
        if segment != 0 && segment < MIN_SEGMENT_BYTES {
            return Err(ConfigError::invalid(
                "audit.max_segment_bytes",
                format!(
                    "{segment} is below {MIN_SEGMENT_BYTES}: give at least {MIN_SEGMENT_BYTES}, or 0 to rotate only with `vaultctl audit rotate`"
                ),
            ));
        }
        if limits.max_secret_bytes > limits.max_message_bytes {
            return Err(ConfigError::invalid(
                "limits.max_secret_bytes",
                format!(
                    "{} is more than limits.max_message_bytes ({}): such a secret could never arrive",
                    limits.max_secret_bytes, limits.max_message_bytes
                ),
            ));
        }
        Acl::new(&self.acl).map(drop)
    }

    /// The compiled ACL of this configuration.
    pub fn acl(&self) -> Result<Acl, ConfigError> {
        Acl::new(&self.acl)
    }

    /// The audit log file: `audit_log`, or `<vault_dir>/audit.jsonl` when that is empty.
    pub fn audit_log_path(&self) -> PathBuf {
        if self.audit_log.as_os_str().is_empty() {
            self.vault_dir.join("audit.jsonl")
        } else {
            self.audit_log.clone()
        }
    }

    /// The TLS directory: `tls.dir`, or `<vault_dir>/tls` when that is empty.
    pub fn tls_dir(&self) -> PathBuf {
        if self.tls.dir.as_os_str().is_empty() {
            self.vault_dir.join("tls")
        } else {
            self.tls.dir.clone()
        }
    }

    /// The configuration as TOML (for `vaultd print-config`); loading it gives this `Config`
    /// back. Paths that are not UTF-8 are printed lossily.
    pub fn to_toml(&self) -> String {
        let mut printable = self.clone();
        for path in [
            &mut printable.vault_dir,
            &mut printable.audit_log,
            &mut printable.tls.dir,
            &mut printable.audit.checkpoint_file,
            &mut printable.audit.syslog_socket,
        ] {
            if path.to_str().is_none() {
                *path = PathBuf::from(path.to_string_lossy().into_owned());
            }
        }
        toml::to_string_pretty(&printable)
            .unwrap_or_else(|err| format!("# cannot print the configuration: {err}\n"))
    }
}

/// The address of the metrics listener: `HOST:PORT`, or a port alone for loopback
/// (`127.0.0.1:PORT`).
pub fn parse_metrics_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| {
        format!(
            "{text:?} is not an address: give HOST:PORT (\"127.0.0.1:9464\", \"[::1]:9464\") or a \
             port alone for loopback"
        )
    })
}

/// `metrics_listen` in the file: a string (`"127.0.0.1:9464"`, `"9464"`) or a port number.
fn deserialize_metrics_listen<'de, D>(deserializer: D) -> Result<Option<SocketAddr>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Port(u16),
        Text(String),
    }
    let addr = match Given::deserialize(deserializer)? {
        Given::Port(port) => SocketAddr::from(([127, 0, 0, 1], port)),
        Given::Text(text) => parse_metrics_listen(&text).map_err(serde::de::Error::custom)?,
    };
    Ok(Some(addr))
}

/// Reads and parses `var`; unset or empty is `None`.
fn parsed<T>(
    env: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    let Some(value) = env(var).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    value
        .trim()
        .parse()
        .map(Some)
        .map_err(|err: T::Err| ConfigError::Env {
            var,
            value: value.chars().take(80).collect(),
            reason: err.to_string(),
        })
}

fn set<T>(
    field: &mut T,
    env: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<(), ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    if let Some(value) = parsed(env, var)? {
        *field = value;
    }
    Ok(())
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    (line, before[line_start..].chars().count() + 1)
}
