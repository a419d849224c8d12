//! `--kek auto`: makes the strongest KEK this machine offers, trying in order a TPM, a
//! configured PKCS#11 token, the OS keystore and a key file, and says why each candidate
//! before the chosen one was skipped.
//!
//! Each candidate is probed by creating its KEK through the registry, the way an explicit
//! URI would be: a probe that only asked "is it there?" could still fail at creation, and
//! the created KEK is the proof that it works. The TPM and the keystore are found, not
//! configured, so their failures are skips; a PKCS#11 token is only a candidate because
//! `VAULTCTL_PKCS11_URI` configures it, so its failures are errors (falling through to a weaker
//! KEK would hide a mistake the user wants to hear about).

use std::fmt;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::pkcs11::Pkcs11Uri;
use crate::tpm::{DEFAULT_DEVICE, Tcti, Tpm2Uri};
use crate::{BuiltKek, Error, KekEnv};

/// Names the TPM's TCTI (e.g. `swtpm:host=127.0.0.1,port=2321`) instead of the device.
pub const TPM_TCTI_VAR: &str = "VAULTCTL_TPM_TCTI";
/// A `pkcs11:` URI naming a token (and optionally a key): makes PKCS#11 a candidate.
pub const PKCS11_URI_VAR: &str = "VAULTCTL_PKCS11_URI";
const SESSION_BUS_VAR: &str = "DBUS_SESSION_BUS_ADDRESS";

/// How long the TPM may take to connect and derive its storage root key (an ECC P-256
/// primary: milliseconds on swtpm, well under a second on real TPMs).
const TPM_DEADLINE: Duration = Duration::from_secs(10);
/// How long a simulator's port may take to accept a connection (a local one answers at once).
const CONNECT_DEADLINE: Duration = Duration::from_secs(2);
/// How long the keystore may take to create the entry (milliseconds when it is unlocked;
/// a locked gnome-keyring fails fast, but another service could wait on a prompt).
const KEYSTORE_DEADLINE: Duration = Duration::from_secs(10);

/// The service name of the keystore entries auto makes.
const KEYSTORE_SERVICE: &str = "vault";

/// Which keystore this build talks to, for messages.
const KEYSTORE: &str = if cfg!(target_os = "macos") {
    "the macOS Keychain"
} else if cfg!(target_os = "windows") {
    "the Windows Credential Manager"
} else {
    "the Secret Service on the D-Bus session bus"
};

/// The kinds of KEK auto considers, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCandidate {
    /// A TPM 2.0 (`tpm2:`).
    Tpm,
    /// The PKCS#11 token `VAULTCTL_PKCS11_URI` names (`pkcs11:`).
    Pkcs11,
    /// The OS keystore (`keyring:`).
    Keystore,
    /// A key file (`file:`).
    File,
}

impl fmt::Display for AutoCandidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tpm => "TPM",
            Self::Pkcs11 => "PKCS#11",
            Self::Keystore => "OS keystore",
            Self::File => "file",
        })
    }
}

/// A candidate auto did not take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoSkip {
    /// The candidate.
    pub candidate: AutoCandidate,
    /// Why it was skipped, in the words of its error.
    pub reason: String,
}

/// What auto made.
#[derive(Debug, Clone)]
pub struct AutoChoice {
    /// The KEK, created; its `uri` is the concrete URI to pin.
    pub kek: BuiltKek,
    /// Which candidate it is.
    pub candidate: AutoCandidate,
    /// Why it was taken.
    pub reason: String,
    /// The stronger candidates skipped, in order.
    pub skipped: Vec<AutoSkip>,
}

/// What auto looks at: read from the environment by [`AutoProbe::from_env`].
pub struct AutoProbe {
    /// `VAULTCTL_TPM_TCTI`.
    pub tpm_tcti: Option<String>,
    /// The TPM device used when `tpm_tcti` is not set (`/dev/tpmrm0`).
    pub tpm_device: PathBuf,
    /// `VAULTCTL_PKCS11_URI` (may carry a `pin-value`: never printed).
    pub pkcs11_uri: Option<String>,
    /// `DBUS_SESSION_BUS_ADDRESS` (Linux and other Secret Service platforms).
    pub session_bus: Option<String>,
    /// The `file:` URI of the last resort; `None` when there is nowhere to put it.
    pub file_uri: Option<String>,
}

/// Shows whether each variable is set, never `VAULTCTL_PKCS11_URI` itself (it may hold a PIN).
impl fmt::Debug for AutoProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutoProbe")
            .field("tpm_tcti", &self.tpm_tcti)
            .field("tpm_device", &self.tpm_device)
            .field("pkcs11_uri_set", &self.pkcs11_uri.is_some())
            .field("session_bus_set", &self.session_bus.is_some())
            .field("file_uri", &self.file_uri)
            .finish()
    }
}

/// A candidate's answer.
enum Probe {
    Taken { kek: BuiltKek, reason: String },
    Skipped(String),
}

impl AutoProbe {
    /// The probe of this process's environment (empty variables count as unset), with
    /// `file_uri` as the last resort.
    pub fn from_env(file_uri: Option<String>) -> Self {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            tpm_tcti: var(TPM_TCTI_VAR),
            tpm_device: PathBuf::from(DEFAULT_DEVICE),
            pkcs11_uri: var(PKCS11_URI_VAR),
            session_bus: var(SESSION_BUS_VAR),
            file_uri,
        }
    }

    /// Creates the first candidate that works. Errors: a malformed `VAULTCTL_TPM_TCTI`, a
    /// `VAULTCTL_PKCS11_URI` whose token cannot be used, or no key file to fall back to.
    pub fn choose(&self, env: &KekEnv<'_>) -> Result<AutoChoice, Error> {
        let mut skipped = Vec::new();
        for candidate in [
            AutoCandidate::Tpm,
            AutoCandidate::Pkcs11,
            AutoCandidate::Keystore,
            AutoCandidate::File,
        ] {
            let probe = match candidate {
                AutoCandidate::Tpm => self.tpm(env.vault_dir)?,
                AutoCandidate::Pkcs11 => self.pkcs11(env)?,
                AutoCandidate::Keystore => self.keystore(env.vault_dir)?,
                AutoCandidate::File => self.file(env, &skipped)?,
            };
            match probe {
                Probe::Taken { kek, reason } => {
                    return Ok(AutoChoice {
                        kek,
                        candidate,
                        reason,
                        skipped,
                    });
                }
                Probe::Skipped(reason) => skipped.push(AutoSkip { candidate, reason }),
            }
        }
        unreachable!("the file candidate is taken or fails")
    }

    fn tpm(&self, vault_dir: &Path) -> Result<Probe, Error> {
        let (tcti, origin) = match &self.tpm_tcti {
            Some(tcti) => (tcti.clone(), format!("from {TPM_TCTI_VAR}")),
            None if self.tpm_device.exists() => (
                format!("device:{}", self.tpm_device.display()),
                "the kernel's resource manager".to_owned(),
            ),
            None => {
                return Ok(Probe::Skipped(format!(
                    "no TPM device at {} ({TPM_TCTI_VAR} is not set)",
                    self.tpm_device.display()
                )));
            }
        };
        let configured = |source: Error| Error::AutoConfigured {
            variable: TPM_TCTI_VAR,
            source: Box::new(source),
        };
        // A `;` would smuggle other URI parameters (a PCR policy, a label) in with the TCTI.
        if tcti.contains(';') {
            return Err(configured(Error::InvalidParameter {
                name: "tcti",
                reason: "must be one TCTI such as swtpm:host=127.0.0.1,port=2321, without ;".into(),
            }));
        }
        let parsed = Tpm2Uri::parse(&format!("tpm2:tcti={tcti}")).map_err(configured)?;
        if let Err(reason) = reachable(&parsed.tcti) {
            return Ok(Probe::Skipped(format!(
                "cannot reach the TPM through {}: {reason}",
                parsed.tcti
            )));
        }
        let uri = parsed.to_canonical();
        let owned_dir = vault_dir.to_owned();
        let created = with_deadline(TPM_DEADLINE, "the TPM", move || {
            crate::create(
                &uri,
                &KekEnv {
                    vault_dir: &owned_dir,
                },
            )
        });
        Ok(match created {
            Ok(Ok(kek)) => {
                let simulator = if kek.provider.assurance().hardware {
                    ""
                } else {
                    "; it is a software TPM (simulator), not dedicated hardware"
                };
                Probe::Taken {
                    reason: format!("the TPM at {tcti} ({origin}) answers{simulator}"),
                    kek,
                }
            }
            Ok(Err(e)) => Probe::Skipped(e.to_string()),
            Err(timeout) => Probe::Skipped(timeout),
        })
    }

    fn pkcs11(&self, env: &KekEnv<'_>) -> Result<Probe, Error> {
        let Some(text) = &self.pkcs11_uri else {
            return Ok(Probe::Skipped(format!("{PKCS11_URI_VAR} is not set")));
        };
        let configured = |source: Error| Error::AutoConfigured {
            variable: PKCS11_URI_VAR,
            source: Box::new(source),
        };
        let needs = |what: &str| {
            configured(Error::Pkcs11InvalidUri {
                reason: format!(
                    "auto needs a URI that {what}, e.g. pkcs11:token=vault?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/vault/pin"
                ),
            })
        };
        let mut uri = Pkcs11Uri::parse(text).map_err(configured)?;
        // The vault pins the URI without pin-value, so later commands could not log in.
        if uri.pin_source.is_none() {
            return Err(needs(
                "gives the PIN with pin-source=file:/PATH or pin-source=env:NAME (the vault pins the URI, never a pin-value)",
            ));
        }
        if uri.module_path.is_none() && uri.module_name.is_none() {
            return Err(needs("names its module with module-path= or module-name="));
        }
        let token = match (&uri.token, &uri.serial) {
            (Some(label), _) if !label.is_empty() => format!("token {label:?}"),
            (_, Some(serial)) if !serial.is_empty() => format!("the token with serial {serial}"),
            _ => return Err(needs("names its token with token=LABEL or serial=")),
        };
        let existing = uri.object.clone().filter(|o| !o.is_empty());
        let label = match &existing {
            Some(label) => label.clone(),
            None => format!("vault-kek-{}", random_hex(6)?),
        };
        uri.object = Some(label.clone());
        let canonical = uri.to_canonical();
        // The key generated here is recorded as created, so that a command failing after
        // auto (or opening it here) destroys it again instead of leaving it on the token.
        let generated = match existing {
            Some(_) => None,
            None => Some(crate::registry::create_pkcs11_key(&canonical).map_err(configured)?),
        };
        let mut kek = match crate::create(&canonical, env) {
            Ok(kek) => kek,
            Err(e) => {
                if let Some(generated) = &generated {
                    crate::discard(generated);
                }
                return Err(configured(e));
            }
        };
        let reason = match &generated {
            Some(_) => format!(
                "{PKCS11_URI_VAR} names {token}; a new non-extractable AES-256 key {label:?} was generated on it"
            ),
            None => format!("{PKCS11_URI_VAR} names key {label:?} on {token}"),
        };
        kek.created = generated;
        Ok(Probe::Taken { kek, reason })
    }

    fn keystore(&self, vault_dir: &Path) -> Result<Probe, Error> {
        let platform_store = cfg!(any(target_os = "macos", target_os = "windows"));
        if !platform_store && self.session_bus.is_none() {
            return Ok(Probe::Skipped(format!(
                "no D-Bus session bus for the Secret Service ({SESSION_BUS_VAR} is not set)"
            )));
        }
        // An entry of its own per vault: auto never reuses (or replaces) another vault's key.
        let account = format!("vault-{}", random_hex(8)?);
        let uri = format!("keyring:service={KEYSTORE_SERVICE};account={account}");
        let owned_dir = vault_dir.to_owned();
        let created = with_deadline(KEYSTORE_DEADLINE, "the OS keystore", move || {
            crate::create(
                &uri,
                &KekEnv {
                    vault_dir: &owned_dir,
                },
            )
        });
        Ok(match created {
            Ok(Ok(kek)) => Probe::Taken {
                kek,
                reason: format!(
                    "{KEYSTORE} answers; the key is in a new entry service={KEYSTORE_SERVICE} account={account}"
                ),
            },
            Ok(Err(e)) => Probe::Skipped(e.to_string()),
            Err(timeout) => Probe::Skipped(timeout),
        })
    }

    fn file(&self, env: &KekEnv<'_>, skipped: &[AutoSkip]) -> Result<Probe, Error> {
        let Some(uri) = &self.file_uri else {
            return Err(Error::AutoNothing {
                skipped: skipped
                    .iter()
                    .map(|s| format!("{}: {}", s.candidate, s.reason))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        };
        Ok(Probe::Taken {
            kek: crate::create(uri, env)?,
            reason: "no TPM, configured PKCS#11 token or OS keystore is available".into(),
        })
    }
}

/// Whether the TPM's device opens or its simulator's port accepts a connection: the common
/// failures, answered without tpm2-tss (which would print its own log of the failure to
/// stderr, and retry). What passes is then probed for real.
fn reachable(tcti: &Tcti) -> Result<(), String> {
    match tcti {
        Tcti::Device { path } => std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map(drop)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied => format!(
                    "cannot open {}: {e}; add this user to the device's group (Debian: tss)",
                    path.display()
                ),
                _ => format!("cannot open {}: {e}", path.display()),
            }),
        Tcti::Swtpm { host, port } | Tcti::Mssim { host, port } => {
            let addresses = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {host}: {e}"))?;
            let mut last = format!("{host} has no address");
            for address in addresses {
                match TcpStream::connect_timeout(&address, CONNECT_DEADLINE) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = format!("nothing answers at {address}: {e}"),
                }
            }
            Err(last)
        }
        // A D-Bus service: only tpm2-tss knows how to ask it.
        Tcti::Tabrmd { .. } => Ok(()),
    }
}

/// Runs `op` on a thread of its own and waits at most `deadline`: a device or service that
/// does not answer is a skip, not a hang. A late `op` is left to finish on its own.
fn with_deadline<T: Send + 'static>(
    deadline: Duration,
    what: &str,
    op: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (done, answer) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("kek-auto-probe".into())
        .spawn(move || {
            // The receiver is gone only after the deadline, which was reported already.
            let _ = done.send(op());
        })
        .map_err(|e| format!("cannot start a thread to ask {what}: {e}"))?;
    answer.recv_timeout(deadline).map_err(|e| match e {
        mpsc::RecvTimeoutError::Timeout => {
            format!("{what} did not answer within {} s", deadline.as_secs())
        }
        mpsc::RecvTimeoutError::Disconnected => format!("asking {what} failed inside its library"),
    })
}

fn random_hex(bytes: usize) -> Result<String, Error> {
    let mut id = vec![0u8; bytes];
    envelope::random_bytes(&mut id)?;
    Ok(id.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe of a machine without a TPM device, PKCS#11 token or session bus.
    fn bare(dir: &Path) -> AutoProbe {
        AutoProbe {
            tpm_tcti: None,
            tpm_device: dir.join("no-tpmrm0"),
            pkcs11_uri: None,
            session_bus: None,
            file_uri: Some(format!("file:{}", dir.join("keys/kek.key").display())),
        }
    }

    fn choose(probe: &AutoProbe, dir: &Path) -> Result<AutoChoice, Error> {
        probe.choose(&KekEnv { vault_dir: dir })
    }

    #[test]
    fn with_nothing_else_the_key_file_is_made_and_each_skip_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let choice = choose(&bare(dir.path()), dir.path()).expect("a file KEK");
        assert_eq!(choice.candidate, AutoCandidate::File);
        assert_eq!(
            choice.kek.uri,
            format!("file:{}", dir.path().join("keys/kek.key").display())
        );
        assert!(dir.path().join("keys/kek.key").is_file());
        let skipped: Vec<(AutoCandidate, &str)> = choice
            .skipped
            .iter()
            .map(|s| (s.candidate, s.reason.as_str()))
            .collect();
        let no_device = format!(
            "no TPM device at {} (VAULTCTL_TPM_TCTI is not set)",
            dir.path().join("no-tpmrm0").display()
        );
        assert_eq!(
            skipped,
            [
                (AutoCandidate::Tpm, no_device.as_str()),
                (AutoCandidate::Pkcs11, "VAULTCTL_PKCS11_URI is not set"),
                (
                    AutoCandidate::Keystore,
                    "no D-Bus session bus for the Secret Service (DBUS_SESSION_BUS_ADDRESS is not set)"
                ),
            ]
        );
    }

    #[test]
    fn a_closed_simulator_port_is_skipped_without_the_tss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let probe = AutoProbe {
            tpm_tcti: Some(format!("swtpm:host=127.0.0.1,port={port}")),
            ..bare(dir.path())
        };
        let choice = choose(&probe, dir.path()).expect("a file KEK");
        let reason = &choice.skipped[0].reason;
        assert!(
            reason.starts_with(&format!(
                "cannot reach the TPM through swtpm:host=127.0.0.1,port={port}: nothing answers at 127.0.0.1:{port}"
            )),
            "{reason}"
        );
    }

    #[test]
    fn a_malformed_tcti_is_an_error_naming_the_variable() {
        let dir = tempfile::tempdir().expect("tempdir");
        for tcti in ["pigeon", "swtpm:port=2321;pcrs=sha256:7", "device:relative"] {
            let probe = AutoProbe {
                tpm_tcti: Some(tcti.into()),
                ..bare(dir.path())
            };
            let err = choose(&probe, dir.path()).expect_err(tcti).to_string();
            assert!(
                err.starts_with(
                    "--kek auto: VAULTCTL_TPM_TCTI is set, but KEK parameter tcti is invalid"
                ),
                "{tcti}: {err}"
            );
        }
        assert!(!dir.path().join("keys/kek.key").exists());
    }

    #[test]
    fn a_pkcs11_uri_auto_cannot_pin_is_an_error_that_never_shows_the_pin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let module = "module-path=/usr/lib/softhsm/libsofthsm2.so";
        for (uri, expected) in [
            (
                format!("pkcs11:token=t?{module}&pin-value=4711-secret"),
                "gives the PIN with pin-source=",
            ),
            (
                format!("pkcs11:token=t?{module}"),
                "gives the PIN with pin-source=",
            ),
            (
                "pkcs11:token=t?pin-source=env:PIN".to_owned(),
                "names its module with module-path= or module-name=",
            ),
            (
                format!("pkcs11:object=k?{module}&pin-source=env:PIN"),
                "names its token with token=LABEL or serial=",
            ),
            ("pkcs11:token=t;bogus=1".to_owned(), "bogus"),
        ] {
            let probe = AutoProbe {
                pkcs11_uri: Some(uri.clone()),
                ..bare(dir.path())
            };
            assert!(!format!("{probe:?}").contains("4711-secret"));
            let err = choose(&probe, dir.path()).expect_err(&uri).to_string();
            assert!(
                err.starts_with("--kek auto: VAULTCTL_PKCS11_URI is set, but ")
                    && err.contains(expected),
                "{uri}: {err}"
            );
            assert!(!err.contains("4711-secret"), "{err}");
        }
        assert!(!dir.path().join("keys/kek.key").exists());
    }

    #[test]
    fn without_a_home_for_the_key_file_auto_says_what_it_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let probe = AutoProbe {
            file_uri: None,
            ..bare(dir.path())
        };
        let err = choose(&probe, dir.path()).expect_err("nothing").to_string();
        assert!(
            err.starts_with("--kek auto found no KEK to make (TPM: no TPM device at "),
            "{err}"
        );
        assert!(
            err.contains("; PKCS#11: VAULTCTL_PKCS11_URI is not set; OS keystore: "),
            "{err}"
        );
        assert!(err.ends_with("pass --kek with a URI"), "{err}");
    }
}
