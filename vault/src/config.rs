//! `vault.json`: what a vault directory pins (store kind, wrap mode, root KEKs, threshold
//! policy), its epochs of intermediate keys, and whether it is locked.
//!
//! Created without replacing (of two concurrent `init`s one wins); every later change goes
//! through [`VaultConfig::update`], which holds an exclusive lock on `vault.lock` while it
//! reads, changes and atomically replaces the file, so processes never lose each other's
//! changes and a crash leaves the old or the new file.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::keyring::{IntegrityKeys, mac_config, verify_config};

/// The configuration file inside the vault directory.
pub const CONFIG_FILE: &str = "vault.json";
/// Held (flock) while the configuration changes.
const LOCK_FILE: &str = "vault.lock";
/// The format this build writes and reads. Format 3 added the integrity key and the MACs;
/// format 2 vaults are upgraded with `vaultctl upgrade`.
const FORMAT: u32 = 3;
/// The format before the integrity key, which `vaultctl upgrade` converts.
pub(crate) const FORMAT_BEFORE_MAC: u32 = 2;
/// A configuration is a few KiB; anything much larger is not ours.
const MAX_CONFIG_LEN: u64 = 4 << 20;

/// How secrets' DEKs are wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WrapMode {
    /// Each DEK is wrapped by the root KEKs: hardware on every seal and open.
    Direct,
    /// Each DEK is wrapped by the current epoch's intermediate key, which the root KEKs wrap.
    Tiered,
}

impl std::fmt::Display for WrapMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WrapMode::Direct => "direct",
            WrapMode::Tiered => "tiered",
        })
    }
}

impl std::str::FromStr for WrapMode {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "direct" => Ok(WrapMode::Direct),
            "tiered" => Ok(WrapMode::Tiered),
            other => Err(Error::UnknownWrapMode(other.chars().take(40).collect())),
        }
    }
}

/// A root KEK: the URI it is built from, the id it must have, and a canary only it opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedKek {
    /// The canonical KEK URI (holds no secret: passphrases come from env, file or prompt).
    pub uri: String,
    /// The KEK id, `kind:label#vN`.
    pub id: String,
    /// A fixed value sealed under this KEK alone (base64 envelope), for `kek check`; its
    /// AAD names the vault id.
    pub canary: String,
    /// HMAC (hex) of this entry under the vault's integrity key: a KEK pinned by anyone
    /// without the vault's keys is refused.
    pub mac: String,
}

impl PinnedKek {
    /// The canary envelope's bytes.
    pub fn canary_bytes(&self) -> Result<Vec<u8>, Error> {
        decode(&self.canary, "a KEK canary")
    }
}

/// Any `m` of the `members` open the vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdPolicy {
    /// How many members are needed.
    pub m: usize,
    /// The members, in share order.
    pub members: Vec<PinnedKek>,
}

/// When an epoch stops wrapping new DEKs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochPolicy {
    /// DEK wraps after which the epoch closes.
    pub max_wraps: u64,
    /// Age in seconds after which the epoch closes.
    pub max_age_secs: u64,
}

impl Default for EpochPolicy {
    /// 2^24 wraps (far below the 2^32 random-nonce bound of FORMAT.md) or 30 days.
    fn default() -> Self {
        EpochPolicy {
            max_wraps: 1 << 24,
            max_age_secs: 30 * 24 * 3600,
        }
    }
}

/// One epoch's intermediate key, wrapped by the root KEKs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochRecord {
    /// The epoch number: the key version of its stanzas.
    pub number: u32,
    /// When it was created (Unix milliseconds).
    pub created_at_ms: i64,
    /// DEK wraps handed out so far (leases count in full, used or not).
    pub wraps_reserved: u64,
    /// The intermediate key, sealed under the root KEKs (base64 envelope).
    pub key: String,
    /// HMAC (hex) of this record under the vault's integrity key: an epoch added by anyone
    /// without the vault's keys is refused.
    pub mac: String,
}

impl EpochRecord {
    /// The sealed key's bytes.
    pub fn key_bytes(&self) -> Result<Vec<u8>, Error> {
        decode(&self.key, "an epoch key")
    }

    /// Whether the epoch may no longer wrap DEKs.
    pub fn is_closed(&self, policy: &EpochPolicy, now_ms: i64) -> bool {
        let age_ms = now_ms.saturating_sub(self.created_at_ms);
        self.wraps_reserved >= policy.max_wraps
            || age_ms >= i64::try_from(policy.max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

/// The contents of `vault.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// The file format.
    pub format: u32,
    /// A random id naming this vault's epoch keys.
    pub id: String,
    /// The store kind, pinned.
    pub store: String,
    /// The wrap mode, pinned.
    pub mode: WrapMode,
    /// Root KEKs of which any one opens the vault.
    pub keks: Vec<PinnedKek>,
    /// Root KEKs of which any `m` open the vault, if a threshold is set.
    pub threshold: Option<ThresholdPolicy>,
    /// When the vault was created (Unix milliseconds).
    pub created_at_ms: i64,
    /// When epochs close (tiered mode).
    pub epoch_policy: EpochPolicy,
    /// The epochs whose keys are kept, oldest first (tiered mode).
    pub epochs: Vec<EpochRecord>,
    /// Envelopes under an older epoch no longer open; their keys are gone.
    pub min_decryption_version: u32,
    /// Whether the vault is locked (`vaultctl lock`).
    pub locked: bool,
    /// The audit log's newest checkpoint (seq and MAC), once a daemon wrote one: a log that
    /// does not reach it was cut. Absent in vaults that never had an audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_anchor: Option<crate::audit::Anchor>,
    /// The vault's integrity key, sealed under the root KEKs (base64 envelope): it
    /// authenticates this file, some stanzas and the store's version counters.
    pub integrity_key: String,
    /// HMAC (hex) of the whole file (with this field empty) under the integrity key.
    pub mac: String,
}

impl VaultConfig {
    pub(crate) const FORMAT: u32 = FORMAT;

    /// Every pinned KEK: the any-of ones, then the threshold members.
    pub fn all_keks(&self) -> impl Iterator<Item = &PinnedKek> {
        self.keks
            .iter()
            .chain(self.threshold.iter().flat_map(|t| t.members.iter()))
    }

    /// The sealed integrity key's bytes.
    pub fn integrity_key_bytes(&self) -> Result<Vec<u8>, Error> {
        decode(&self.integrity_key, "the integrity key")
    }

    /// Every pinned KEK URI, for building the providers.
    pub fn kek_uris(&self) -> Vec<String> {
        self.all_keks().map(|k| k.uri.clone()).collect()
    }

    /// Reads the configuration of the vault in `dir`.
    pub fn read(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(CONFIG_FILE);
        let damaged = |reason: String| Error::Marker {
            path: path.clone(),
            reason,
        };
        let bytes = match std::fs::metadata(&path) {
            Ok(meta) if meta.len() > MAX_CONFIG_LEN => {
                return Err(damaged(format!("it is {} bytes long", meta.len())));
            }
            Ok(_) => {
                std::fs::read(&path).map_err(Error::io(format!("reading {}", path.display())))?
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::NoVault {
                    dir: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()))(e)),
        };
        Self::from_bytes(&path, &bytes)
    }

    /// Parses the contents of a configuration file; `path` only names it in errors. Pure (no
    /// I/O), so that the parser of this attacker-writable file can be fuzzed on its own.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, Error> {
        let damaged = |reason: String| Error::Marker {
            path: path.to_path_buf(),
            reason,
        };
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_CONFIG_LEN {
            return Err(damaged(format!("it is {} bytes long", bytes.len())));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| damaged("it is not UTF-8".into()))?;
        #[derive(Deserialize)]
        struct Version {
            format: u32,
        }
        let version: Version =
            serde_json::from_str(text).map_err(|e| damaged(format!("not valid JSON ({e})")))?;
        if version.format == FORMAT_BEFORE_MAC {
            return Err(Error::FormatUpgrade {
                path: path.to_path_buf(),
            });
        }
        if version.format != FORMAT {
            return Err(damaged(format!(
                "format {} is not supported by this build (it reads {FORMAT})",
                version.format
            )));
        }
        let config: VaultConfig =
            serde_json::from_str(text).map_err(|e| damaged(format!("not valid ({e})")))?;
        if config.all_keks().next().is_none() {
            return Err(damaged("it pins no KEK".into()));
        }
        Ok(config)
    }

    /// Writes the configuration of a new vault in `dir`; refuses to replace one.
    pub(crate) fn create_new(&self, dir: &Path) -> Result<(), Error> {
        let path = dir.join(CONFIG_FILE);
        let temp = self.write_temp(dir)?;
        temp.persist_noclobber(&path)
            .map_err(|e| match e.error.kind() {
                ErrorKind::AlreadyExists => Error::AlreadyInitialised {
                    dir: dir.to_path_buf(),
                },
                _ => Error::io(format!("creating {}", path.display()))(e.error),
            })?;
        sync_dir(dir)
    }

    /// Reads the configuration of the vault in `dir` and checks its MACs with `keys`: what
    /// an unlocked vault adopts (epochs, KEKs, policies) comes from here only.
    pub(crate) fn read_verified(dir: &Path, keys: &IntegrityKeys) -> Result<Self, Error> {
        let config = VaultConfig::read(dir)?;
        verify_config(&config, keys)?;
        Ok(config)
    }

    /// Changes the configuration of the vault in `dir` under the vault lock: reads the
    /// current file and checks its MACs with `keys`, applies `change`, MACs the result and
    /// replaces the file atomically if `change` succeeds.
    pub(crate) fn update<T>(
        dir: &Path,
        keys: &IntegrityKeys,
        change: impl FnOnce(&mut VaultConfig) -> Result<T, Error>,
    ) -> Result<(VaultConfig, T), Error> {
        let lock = lock_vault(dir)?;
        let mut config = VaultConfig::read_verified(dir, keys)?;
        let result = change(&mut config)?;
        mac_config(&mut config, keys);
        let temp = config.write_temp(dir)?;
        let path = dir.join(CONFIG_FILE);
        temp.persist(&path)
            .map_err(|e| Error::io(format!("replacing {}", path.display()))(e.error))?;
        sync_dir(dir)?;
        drop(lock);
        Ok((config, result))
    }

    /// A synced temporary file (0600) in `dir` holding the configuration.
    fn write_temp(&self, dir: &Path) -> Result<tempfile::NamedTempFile, Error> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| Error::Marker {
            path: dir.join(CONFIG_FILE),
            reason: e.to_string(),
        })?;
        synced_temp_file(dir, &text)
    }
}

/// Takes the vault lock of `dir` (an exclusive `flock` on `vault.lock`), waiting for it: no
/// configuration change happens while the returned file is open.
pub(crate) fn lock_vault(dir: &Path) -> Result<File, Error> {
    let lock_path = dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(Error::io(format!("opening {}", lock_path.display())))?;
    lock.lock()
        .map_err(Error::io(format!("locking {}", lock_path.display())))?;
    Ok(lock)
}

/// A temporary file (0600) in `dir` holding `bytes`, synced: renamed over a file, it
/// replaces it whole or not at all, even across a crash.
pub(crate) fn synced_temp_file(dir: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile, Error> {
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(Error::io(format!(
            "creating a temporary file in {}",
            dir.display()
        )))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(Error::io(format!("writing {}", temp.path().display())))?;
    Ok(temp)
}

/// One version of the configuration file, held open. The file is never changed in place,
/// only replaced (renamed over), and an inode held open cannot be reused: so the path still
/// naming the same device and inode means the configuration has not changed since.
#[derive(Debug)]
pub(crate) struct ConfigVersion {
    file: File,
    inode: (u64, u64),
}

impl ConfigVersion {
    /// The configuration file of `dir` as it is now.
    pub(crate) fn current(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(CONFIG_FILE);
        let file = File::open(&path).map_err(Error::io(format!("opening {}", path.display())))?;
        let meta = file
            .metadata()
            .map_err(Error::io(format!("reading {}", path.display())))?;
        Ok(ConfigVersion {
            file,
            inode: (meta.dev(), meta.ino()),
        })
    }

    /// The bytes of this version (read from the file held open, whatever the path names now).
    pub(crate) fn bytes(&self) -> Result<Vec<u8>, Error> {
        use std::io::Read;
        let mut bytes = Vec::new();
        (&self.file)
            .take(MAX_CONFIG_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(Error::io(format!("reading {CONFIG_FILE}")))?;
        Ok(bytes)
    }

    /// Whether the configuration file of `dir` is still this version (one `stat`).
    pub(crate) fn is_current(&self, dir: &Path) -> Result<bool, Error> {
        let path = dir.join(CONFIG_FILE);
        let meta =
            std::fs::metadata(&path).map_err(Error::io(format!("reading {}", path.display())))?;
        Ok((meta.dev(), meta.ino()) == self.inode)
    }
}

/// Base64 of an envelope, for the configuration file.
pub(crate) fn encode(envelope: &[u8]) -> String {
    BASE64.encode(envelope)
}

fn decode(text: &str, what: &str) -> Result<Vec<u8>, Error> {
    BASE64.decode(text).map_err(|_| Error::Marker {
        path: CONFIG_FILE.into(),
        reason: format!("{what} is not base64"),
    })
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Syncs directory `dir`, so an entry created or renamed in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(format!("syncing {}", dir.display())))
}
