//! What the scanner reports: findings (a secret or a dangling reference at a file and line)
//! and notes (a file it could not read or parse fully).

use std::fmt;
use std::path::PathBuf;

/// How bad a finding is.
///
/// `Blocking` is for values whose format alone makes them a usable credential (a
/// provider-issued token or a private key): false positives are rare and the fix is to revoke
/// the credential. `Warning` is for heuristics (a high-entropy value may be a hash or a test
/// fixture) and for references that leak nothing but will fail when resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// A credential in plaintext: `--strict` fails the run.
    Blocking,
    /// Probably a problem: reported, never fails the run.
    Warning,
}

impl Severity {
    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Blocking => "blocking",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was found. The names are stable: allowlists and CI rules refer to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// An AWS access key id (`AKIA`/`ASIA` + 16 characters).
    AwsAccessKeyId,
    /// A 40-character AWS secret access key under a key named like `aws_secret_access_key`.
    AwsSecretKey,
    /// A GitHub token (`ghp_`, `gho_`, `ghs_`, `ghu_`, `ghr_`, `github_pat_`).
    GithubToken,
    /// A GitLab personal access token (`glpat-`).
    GitlabToken,
    /// A Slack token (`xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xoxs-`, `xapp-`).
    SlackToken,
    /// A Stripe live secret or restricted key (`sk_live_`, `rk_live_`).
    StripeKey,
    /// An OpenAI API key (`sk-`, `sk-proj-`).
    OpenaiKey,
    /// An Anthropic API key (`sk-ant-`).
    AnthropicKey,
    /// A Google API key (`AIza` + 35 characters).
    GoogleApiKey,
    /// A Telegram bot token (`123456789:` + 35 characters).
    TelegramBotToken,
    /// A Discord bot token (three dot-separated base64url parts).
    DiscordBotToken,
    /// An npm access token (`npm_`).
    NpmToken,
    /// A JSON Web Token (`eyJ...` `.` `eyJ...` `.` signature).
    Jwt,
    /// A PEM private key block (`-----BEGIN ... PRIVATE KEY-----`).
    PemPrivateKey,
    /// A high-entropy value under a name like `password`, `secret` or `token`.
    HighEntropy,
    /// A `vault://` reference to a key or version the vault does not hold.
    MissingVaultRef,
    /// A `vault://` reference that is not well formed.
    InvalidVaultRef,
}

impl Kind {
    /// Every kind, in output order.
    pub const ALL: [Kind; 17] = [
        Kind::AwsAccessKeyId,
        Kind::AwsSecretKey,
        Kind::GithubToken,
        Kind::GitlabToken,
        Kind::SlackToken,
        Kind::StripeKey,
        Kind::OpenaiKey,
        Kind::AnthropicKey,
        Kind::GoogleApiKey,
        Kind::TelegramBotToken,
        Kind::DiscordBotToken,
        Kind::NpmToken,
        Kind::Jwt,
        Kind::PemPrivateKey,
        Kind::HighEntropy,
        Kind::MissingVaultRef,
        Kind::InvalidVaultRef,
    ];

    /// The stable name, e.g. `github-token`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::AwsAccessKeyId => "aws-access-key-id",
            Kind::AwsSecretKey => "aws-secret-key",
            Kind::GithubToken => "github-token",
            Kind::GitlabToken => "gitlab-token",
            Kind::SlackToken => "slack-token",
            Kind::StripeKey => "stripe-key",
            Kind::OpenaiKey => "openai-key",
            Kind::AnthropicKey => "anthropic-key",
            Kind::GoogleApiKey => "google-api-key",
            Kind::TelegramBotToken => "telegram-bot-token",
            Kind::DiscordBotToken => "discord-bot-token",
            Kind::NpmToken => "npm-token",
            Kind::Jwt => "jwt",
            Kind::PemPrivateKey => "pem-private-key",
            Kind::HighEntropy => "high-entropy",
            Kind::MissingVaultRef => "missing-vault-ref",
            Kind::InvalidVaultRef => "invalid-vault-ref",
        }
    }

    /// The kind with this stable name.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Known credential formats block; heuristics and references warn (see [`Severity`]).
    pub fn severity(self) -> Severity {
        match self {
            Kind::HighEntropy | Kind::MissingVaultRef | Kind::InvalidVaultRef => Severity::Warning,
            _ => Severity::Blocking,
        }
    }

    /// Whether the finding's value is a reference (a name, shown in full) rather than a
    /// secret (masked).
    pub fn value_is_reference(self) -> bool {
        matches!(self, Kind::MissingVaultRef | Kind::InvalidVaultRef)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding. The value itself is not kept: only its masked form and fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file, as the scan root joined with [`Finding::rel_path`].
    pub path: PathBuf,
    /// The file relative to its scan root, `/`-separated (what allowlist globs match).
    pub rel_path: String,
    /// The 1-based line number.
    pub line: usize,
    /// What was found.
    pub kind: Kind,
    /// The dotted key the value sits under (`db.password`), or `-` when none is known.
    pub key: String,
    /// The masked value: at most 4 characters of it and its length.
    pub masked: String,
    /// SHA-256 prefix of the relative path, kind and value: the allowlist handle.
    pub fingerprint: String,
    /// Whether an allowlist entry accepts it.
    pub allowed: bool,
    /// Why the finding is there, when the kind alone does not say (a missing version).
    pub detail: Option<String>,
}

impl Finding {
    /// The severity of its kind.
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }
}

/// Something the scanner could not do fully: a file skipped or not parsed to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The file.
    pub path: PathBuf,
    /// The line, when the note is about one.
    pub line: Option<usize>,
    /// What happened (never file contents).
    pub message: String,
}
