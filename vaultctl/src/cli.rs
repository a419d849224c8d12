//! Command-line arguments. Secret values are never accepted as arguments (argv is visible
//! to every user of the machine through /proc).
#![deny(missing_docs)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use crate::choices::{EnvelopeFormat, FormatArgs, ModeChoice, StoreChoice};

/// vaultctl: store, fetch and seal secrets in a vault directory, or through vaultd (--addr).
#[derive(Debug, Parser)]
#[command(name = "vaultctl", version, about, max_term_width = 100)]
pub struct Cli {
    /// The vault directory.
    #[arg(long, global = true, env = "VAULTCTL_DIR", value_name = "DIR")]
    pub vault: Option<PathBuf>,

    /// Use this KEK URI instead of the ones pinned in the vault (repeatable).
    #[arg(long = "kek", global = true, value_name = "URI")]
    pub keks: Vec<String>,

    /// Seconds an opened secret stays in the in-process cache (0 disables it).
    #[arg(
        long,
        global = true,
        env = "VAULTCTL_CACHE_TTL",
        value_name = "SECS",
        default_value_t = 300
    )]
    pub cache_ttl: u64,

    /// Talk to a vaultd at this address (`https://host:port`) instead of a local vault.
    #[arg(long, global = true, env = "VAULTCTL_ADDR", value_name = "URL")]
    pub addr: Option<String>,

    /// Remote mode: the CA certificate that signed the daemon's certificate.
    #[arg(long, global = true, env = "VAULTCTL_CACERT", value_name = "PEM")]
    pub cacert: Option<PathBuf>,

    /// Remote mode: our client certificate (it names our principal).
    #[arg(long, global = true, env = "VAULTCTL_CLIENT_CERT", value_name = "PEM")]
    pub client_cert: Option<PathBuf>,

    /// Remote mode: our client key.
    #[arg(long, global = true, env = "VAULTCTL_CLIENT_KEY", value_name = "PEM")]
    pub client_key: Option<PathBuf>,

    /// Remote mode: take the CA and the admin certificate from a `vaultd --dev` directory.
    #[arg(long, global = true, env = "VAULTCTL_DEV_DIR", value_name = "DIR")]
    pub dev_dir: Option<PathBuf>,

    /// Fail instead of warning when secret memory cannot be locked (mlock).
    #[arg(long, global = true, env = "VAULTCTL_REQUIRE_MLOCK")]
    pub require_mlock: bool,

    /// Remote mode: how long to wait for vaultd, and how often to send a read again.
    #[command(flatten)]
    pub client: crate::remote::ClientOptions,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a vault in the directory (default: a file KEK and the embedded SQLite store).
    Init(InitArgs),
    /// Store a secret read from stdin, a no-echo prompt, or --from-file (never from argv).
    Set(SetArgs),
    /// Write a secret's raw bytes to stdout.
    Get(GetArgs),
    /// List secret names, versions and timestamps (never decrypts).
    List(ListArgs),
    /// Delete a secret and all its versions.
    Delete(NameArgs),
    /// Seal caller data (stdin or --in) into an envelope (stdout or --out); nothing is stored.
    Seal(SealArgs),
    /// Open an envelope made by `seal` (binary or JSON form).
    Open(OpenArgs),
    /// Show the vault's store, KEKs and their health, and memory locking.
    Status(FormatArgs),
    /// Manage the root KEKs: add, remove, list, check.
    #[command(subcommand)]
    Kek(KekCommand),
    /// Start a new epoch key (tiered mode); `rewrap` then moves old secrets onto it.
    Rotate,
    /// Re-wrap every stored secret under the current keys (payloads are not re-encrypted).
    Rewrap(RewrapArgs),
    /// Retire every epoch older than VERSION: its key is deleted (refused while in use).
    MinDecryptionVersion(MinVersionArgs),
    /// Zeroize all keys; nothing opens until `unlock`.
    Lock,
    /// Open the keys again with the vault's KEKs (read again from their sources).
    Unlock(UnlockArgs),
    /// Upgrade a vault made by an older version (format 2) with all its KEKs: adds the
    /// integrity key that authenticates vault.json, stanzas and version counters.
    Upgrade,
    /// Verify the audit log's chain, or show its newest records.
    #[command(subcommand)]
    Audit(crate::commands::audit::AuditCommand),
    /// vaultd's TLS files: `init` a dev CA, `issue` and `revoke` client certificates.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Run a command with secrets from references in its environment (values never printed).
    Exec(crate::commands::exec::ExecArgs),
    /// Print the secret a reference names to stdout (an explicit reveal).
    Resolve(crate::commands::resolve::ResolveArgs),
    /// Find plaintext secrets, and vault:// references to missing keys, in config files.
    Scan(crate::commands::scan::ScanArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(crate::commands::docs::CompletionsArgs),
    /// Print vaultctl's man page (roff) to stdout, or write one page per command to a directory.
    Man(crate::commands::docs::ManArgs),
    /// Copy the vault directory into a new backup directory (consistent while vaultd serves).
    Backup(crate::commands::backup::BackupArgs),
    /// Restore a backup into the (new or empty) vault directory, checking its KEKs open it.
    Restore(crate::commands::backup::RestoreArgs),
}

/// Arguments of `unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Give the passphrase of the vault's passphrase KEKs: read from a no-echo prompt, or
    /// from stdin when it is not a terminal (with --addr, sent to vaultd, which cannot prompt).
    #[arg(long)]
    pub passphrase: bool,
}

/// `kek` subcommands.
#[derive(Debug, Subcommand)]
pub enum KekCommand {
    /// Add a root KEK (a new key unless --existing); every key is then wrapped under it.
    Add(KekAddArgs),
    /// Remove a root KEK by id (refused if no other KEK works, or secrets still need it).
    Remove(KekIdArgs),
    /// List the root KEKs and the wrap mode.
    List(FormatArgs),
    /// Open a canary under each KEK; exit code 1 if any is not ok.
    Check(FormatArgs),
    /// Generate a new non-extractable AES-256 key on a PKCS#11 token, persist a TPM's
    /// storage root key at the URI's srk= handle, or generate a P-256 key in a YubiKey's PIV
    /// slot (never replaces a key).
    Create(KekUriArgs),
    /// Show the attributes of a PKCS#11 KEK that prove it cannot leave its token, a TPM
    /// KEK's TPM, storage root key and PCR values, or a YubiKey KEK's card, slot and policies.
    Info(KekUriArgs),
}

/// Arguments naming a KEK by URI.
#[derive(Debug, Args)]
pub struct KekUriArgs {
    /// The KEK URI, e.g. pkcs11:token=vault;object=kek-1?module-path=...&pin-source=file:...
    /// or tpm2:tcti=device:/dev/tpmrm0;srk=0x81000001 or yubikey:serial=N;slot=9d
    pub uri: String,
}

/// Arguments of `kek add`.
#[derive(Debug, Args)]
pub struct KekAddArgs {
    /// The KEK URI, as for `init --kek` (`auto` included).
    pub uri: String,
    /// Use existing key material (a key file or passphrase KEK made before) instead of
    /// creating it.
    #[arg(long)]
    pub existing: bool,
}

/// Arguments naming a KEK.
#[derive(Debug, Args)]
pub struct KekIdArgs {
    /// The KEK id, `kind:label#vN`, as `kek list` prints it.
    pub id: String,
}

/// Arguments of `rewrap`.
#[derive(Debug, Args)]
pub struct RewrapArgs {
    /// Count what would be rewrapped; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Secrets per transaction (default: the library's, 8192).
    #[arg(long, default_value_t = vault::RewrapOptions::default().batch, value_name = "N")]
    pub batch: usize,
}

/// Arguments of `min-decryption-version`.
#[derive(Debug, Args)]
pub struct MinVersionArgs {
    /// The oldest epoch that still opens.
    pub version: u32,
}

/// Arguments of `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// KEK URI: `file:PATH`, `passphrase:env=NAME`, `passphrase:file=PATH`,
    /// `passphrase:prompt`, or `auto` (the strongest the machine offers: a TPM, the token in
    /// VAULTCTL_PKCS11_URI, the OS keystore, else a key file) (repeatable; default: a new key
    /// file under ~/.config/vault/keys).
    #[arg(long = "kek", value_name = "URI")]
    pub keks: Vec<String>,
    /// The store.
    #[arg(long, value_enum, default_value_t = StoreChoice::Sqlite, value_name = "KIND")]
    pub store: StoreChoice,
    /// How DEKs are wrapped (default: tiered for device KEKs (HSM, TPM, card) or a
    /// threshold, else direct).
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<ModeChoice>,
    /// Require any M of the given KEKs instead of any one (Shamir shares).
    #[arg(long, value_name = "M")]
    pub threshold: Option<usize>,
    /// With `--store postgres`: the database, as postgres://USER@HOST:PORT/DATABASE (no
    /// password in it). Written to store.json in the vault directory.
    #[arg(long, value_name = "URL")]
    pub store_url: Option<String>,
    /// With `--store postgres`: a file whose first line is the database password (else the
    /// VAULT_STORE_PASSWORD environment variable, else none).
    #[arg(long, value_name = "PATH")]
    pub store_password_file: Option<PathBuf>,
    /// With `--store postgres`: the CA certificates (PEM) of the database server; the
    /// connection is then TLS and verified. Required for a host that is not this machine.
    #[arg(long, value_name = "PATH")]
    pub store_ca: Option<PathBuf>,
}

/// A secret's scope and key name.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// `global`, `principal:<id>`, `channel:<name>:<account>` or `skill:<id>`.
    pub scope: String,
    /// The key name: 1-128 of A-Z a-z 0-9 . _ -
    pub key: String,
}

/// Arguments of `set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// Scope and key.
    #[command(flatten)]
    pub name: NameArgs,
    /// Read the value from this file instead of stdin.
    #[arg(long, value_name = "PATH")]
    pub from_file: Option<PathBuf>,
    /// Compare-and-set: write only if the secret is at version N now (0: only if it has
    /// none); otherwise nothing changes and the command fails, naming the current version.
    #[arg(long, value_name = "N")]
    pub cas: Option<u64>,
}

/// Arguments of `get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Scope and key.
    #[command(flatten)]
    pub name: NameArgs,
    /// A version number instead of the latest.
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
}

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this scope.
    pub scope: Option<String>,
    /// Secrets read per page (from the store, or per call to vaultd); the listing goes on
    /// page by page to the end, printing each as it arrives.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub page_size: u32,
    /// Print only how many secrets the listing holds (`N`, or `{"total_count": N}` with
    /// --format json), counted by the store or vaultd rather than listed.
    #[arg(long)]
    pub count: bool,
    /// Output format.
    #[command(flatten)]
    pub format: FormatArgs,
}

impl ListArgs {
    /// The page size as a count.
    pub fn page_size(&self) -> usize {
        usize::try_from(self.page_size).unwrap_or(usize::MAX)
    }
}

/// Input and output files of `seal` and `open`.
#[derive(Debug, Args)]
pub struct IoArgs {
    /// Read from this file instead of stdin.
    #[arg(long = "in", value_name = "PATH")]
    pub input: Option<PathBuf>,
    /// Write to this file (created mode 0600) instead of stdout.
    #[arg(long = "out", value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// The context the data is bound to; open needs the same one.
    #[arg(long, default_value = "default", value_name = "NAME")]
    pub context: String,
}

/// Arguments of `seal`.
#[derive(Debug, Args)]
pub struct SealArgs {
    /// Files and context.
    #[command(flatten)]
    pub io: IoArgs,
    /// The envelope's form.
    #[arg(long, value_enum, default_value_t = EnvelopeFormat::Binary, value_name = "FORM")]
    pub format: EnvelopeFormat,
}

/// Arguments of `open`.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Files and context.
    #[command(flatten)]
    pub io: IoArgs,
}

/// `pki` subcommands: the TLS files of vaultd's mutual TLS (default dir: `<vault dir>/tls`).
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create a dev CA, a server certificate for --host names and an empty revocation list.
    Init(PkiInitArgs),
    /// Issue a client certificate naming a principal; prints its paths and fingerprint.
    Issue(PkiIssueArgs),
    /// Revoke a client certificate (by cert file or fingerprint), a serial or a key.
    Revoke(PkiRevokeArgs),
    /// Renew the server certificate (a new key and certificate from the CA, for --host
    /// names); vaultd takes it on SIGHUP (`systemctl reload vaultd`).
    RenewServer(PkiInitArgs),
}

/// Arguments of `pki init` and `pki renew-server`.
#[derive(Debug, Args)]
pub struct PkiInitArgs {
    /// A DNS name or IP address the server certificate covers (repeatable).
    #[arg(long = "host", value_name = "NAME", default_values = ["localhost", "127.0.0.1", "::1"])]
    pub hosts: Vec<String>,
    /// The PKI directory (default: `<vault dir>/tls`).
    #[arg(long, value_name = "DIR")]
    pub pki_dir: Option<PathBuf>,
}

/// Arguments of `pki issue`.
#[derive(Debug, Args)]
pub struct PkiIssueArgs {
    /// The principal the certificate names: 1-64 of A-Z a-z 0-9 . _ @ + -
    #[arg(long, value_name = "ID")]
    pub principal: String,
    /// The PKI directory (default: `<vault dir>/tls`).
    #[arg(long, value_name = "DIR")]
    pub pki_dir: Option<PathBuf>,
    /// Output format.
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Arguments of `pki revoke`: exactly one of a certificate (file or fingerprint), a serial
/// number, or a key hash.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["cert_or_fingerprint", "serial", "key_hash"])))]
pub struct PkiRevokeArgs {
    /// The client certificate's PEM file (revokes its key and its serial number), or the
    /// SHA-256 fingerprint `pki issue` printed.
    #[arg(value_name = "CERT_PATH_OR_FINGERPRINT")]
    pub cert_or_fingerprint: Option<String>,
    /// Revoke the certificate with this serial number (hex) issued by the vault's CA.
    #[arg(long, value_name = "HEX")]
    pub serial: Option<String>,
    /// Revoke every certificate for the key whose SubjectPublicKeyInfo has this SHA-256 (hex).
    #[arg(long, value_name = "HEX")]
    pub key_hash: Option<String>,
    /// The PKI directory (default: `<vault dir>/tls`).
    #[arg(long, value_name = "DIR")]
    pub pki_dir: Option<PathBuf>,
}
