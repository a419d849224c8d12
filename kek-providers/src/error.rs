//! The crate's error type. Its `Display` is shown to users as is (vaultctl prints it), so each
//! message says what went wrong and what to do next, and none contains key bytes or a
//! passphrase.

use std::path::PathBuf;

/// Everything that can go wrong parsing a KEK URI or creating or opening a KEK.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The KEK URI is longer than the parser accepts.
    #[error("KEK URI is {len} bytes long, over the limit of {max}")]
    UriTooLong {
        /// The URI's length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The KEK URI is malformed; the reason says how.
    #[error("invalid KEK URI: {reason}")]
    InvalidUri {
        /// What is wrong, with an example of the right form.
        reason: String,
    },
    /// The URI names a KEK kind this crate does not know.
    #[error("unknown KEK kind {kind:?}; known kinds: {known}")]
    UnknownKind {
        /// The kind as given (shortened if long).
        kind: String,
        /// The kinds this crate knows.
        known: &'static str,
    },
    /// The URI names a known KEK kind whose provider was not compiled into this binary.
    #[error("KEK kind {kind} is not built into this binary; rebuild with --features {feature}")]
    FeatureNotBuilt {
        /// The kind, e.g. `pkcs11`.
        kind: &'static str,
        /// The cargo feature that builds it.
        feature: &'static str,
    },
    /// The provider's feature is enabled but the provider is not written yet.
    #[error("KEK kind {kind} is enabled in this build but not implemented yet")]
    NotImplemented {
        /// The kind, e.g. `pkcs11`.
        kind: &'static str,
    },
    /// A URI parameter is not one the KEK kind takes.
    #[error("unknown {kind} KEK parameter {name:?}; it takes {known}")]
    UnknownParameter {
        /// The KEK kind.
        kind: &'static str,
        /// The parameter's name (shortened if long).
        name: String,
        /// The parameters it takes.
        known: &'static str,
    },
    /// A URI parameter is given twice.
    #[error("KEK parameter {name} is given twice; give it once")]
    DuplicateParameter {
        /// The parameter's name.
        name: &'static str,
    },
    /// A URI parameter's value is outside its domain.
    #[error("KEK parameter {name} is invalid: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What is allowed.
        reason: String,
    },
    /// `create` was asked for a key file that already exists.
    #[error(
        "KEK key file {} already exists; use it with `open` (an existing vault), or pass another path to create a new key",
        path.display()
    )]
    KeyFileExists {
        /// The key file.
        path: PathBuf,
    },
    /// `open` was asked for a key file that does not exist.
    #[error(
        "KEK key file {} does not exist: restore it from your backup or pass the right --kek",
        path.display()
    )]
    KeyFileMissing {
        /// The key file.
        path: PathBuf,
    },
    /// The key file can be read by group or others.
    #[error(
        "KEK key file {} is readable by others (mode {mode:03o}); run `chmod 600 {}` and check who copied it",
        path.display(), path.display()
    )]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file is not a key file of this provider.
    #[error("KEK key file {} is not a vault key file: {reason}", path.display())]
    KeyFileInvalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `create` found the passphrase KEK's parameter file already there.
    #[error(
        "passphrase KEK file {} already exists; open that KEK, or pick another label=",
        path.display()
    )]
    ParamsFileExists {
        /// The parameter file.
        path: PathBuf,
    },
    /// `open` found no parameter file for the passphrase KEK.
    #[error(
        "passphrase KEK file {} does not exist; the vault directory may be wrong (pass --vault) or the label may be wrong",
        path.display()
    )]
    ParamsFileMissing {
        /// The parameter file it looked for.
        path: PathBuf,
    },
    /// The passphrase KEK's parameter file cannot be used.
    #[error("passphrase KEK file {} is invalid: {reason}", path.display())]
    ParamsFileInvalid {
        /// The parameter file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The URI's Argon2 parameters differ from the ones the KEK was created with.
    #[error(
        "passphrase KEK {label} was created with {name}={stored}, but the URI says {name}={given}; drop {name}= from the URI"
    )]
    ParamsContradict {
        /// The KEK label.
        label: String,
        /// The parameter.
        name: &'static str,
        /// The value in the parameter file.
        stored: u32,
        /// The value in the URI.
        given: u32,
    },
    /// The URI gives no label and the vault directory holds no single passphrase KEK.
    #[error("{reason}; add ;label=L to the passphrase KEK URI")]
    LabelNeeded {
        /// Why the label cannot be guessed.
        reason: String,
    },
    /// The passphrase does not derive the key the KEK was created with.
    #[error("wrong passphrase from {source_name} for KEK {kek}")]
    WrongPassphrase {
        /// Where the passphrase came from (e.g. `env VAULT_PASSPHRASE`), never its value.
        source_name: String,
        /// The KEK's id.
        kek: String,
    },
    /// The environment variable holding the passphrase is not set.
    #[error("environment variable {name} is not set; set it to the passphrase")]
    EnvVarUnset {
        /// The variable.
        name: String,
    },
    /// The passphrase file cannot be found.
    #[error("passphrase file {} does not exist; create it or pass another file=", path.display())]
    PassphraseFileMissing {
        /// The file.
        path: PathBuf,
    },
    /// The passphrase is empty.
    #[error("the passphrase from {source_name} is empty")]
    EmptyPassphrase {
        /// Where it came from.
        source_name: String,
    },
    /// The passphrase is longer than accepted.
    #[error("the passphrase from {source_name} is longer than {max} bytes")]
    PassphraseTooLong {
        /// Where it came from.
        source_name: String,
        /// The bound.
        max: usize,
    },
    /// The two passphrases typed at creation differ.
    #[error("the two passphrases differ; run the command again")]
    PassphrasesDiffer,
    /// A prompt was needed but the process has no terminal.
    #[error(
        "cannot prompt for the passphrase: there is no terminal; use passphrase:env=NAME or passphrase:file=PATH"
    )]
    NoTerminal,
    /// Argon2 refused the parameters or failed.
    #[error("deriving the key from the passphrase failed: {reason}")]
    KeyDerivation {
        /// Argon2's reason.
        reason: String,
    },
    /// A file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `reading`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A threshold KEK's policy is outside `2 <= m <= n <= max`.
    #[error(
        "a threshold KEK needs 2 <= m <= n <= {max} (any m of n member KEKs open it), got {m} of {n}"
    )]
    ThresholdPolicy {
        /// KEKs needed to open.
        m: usize,
        /// Member KEKs.
        n: usize,
        /// The most members a threshold KEK can have.
        max: usize,
    },
    /// A KEK is listed twice among a threshold KEK's members.
    #[error(
        "KEK {member} is listed twice among the threshold KEK's members; list each member once"
    )]
    ThresholdDuplicateMember {
        /// The member's id.
        member: String,
    },
    /// A KEK given to a threshold KEK as available is not one of its members.
    #[error(
        "KEK {kek} is not a member of the threshold KEK (members: {members}); leave it out or add it to the members"
    )]
    ThresholdNotAMember {
        /// The KEK's id.
        kek: String,
        /// The members' ids.
        members: String,
    },
    /// The same member KEK is given twice to a threshold KEK as available.
    #[error(
        "member KEK {member} is given twice to the threshold KEK; give each available member once"
    )]
    ThresholdMemberGivenTwice {
        /// The member's id.
        member: String,
    },
    /// A PKCS#11 URI is malformed; the reason says how.
    #[error("invalid PKCS#11 URI: {reason}")]
    Pkcs11InvalidUri {
        /// What is wrong, with an example of the right form.
        reason: String,
    },
    /// A PKCS#11 URI attribute is not one RFC 7512 defines.
    #[error(
        "unknown PKCS#11 URI attribute {name:?}; RFC 7512 defines {known}, and vendor attributes must start with x-"
    )]
    Pkcs11UnknownAttribute {
        /// The attribute's name (shortened if long).
        name: String,
        /// The attributes defined in that part of the URI.
        known: &'static str,
    },
    /// A PKCS#11 URI attribute is given twice.
    #[error("PKCS#11 URI attribute {name} is given twice; give it once")]
    Pkcs11DuplicateAttribute {
        /// The attribute's name.
        name: &'static str,
    },
    /// A PKCS#11 URI attribute's value is outside its domain. The value is not echoed.
    #[error("PKCS#11 URI attribute {name} is invalid: {reason}")]
    Pkcs11InvalidAttribute {
        /// The attribute's name.
        name: &'static str,
        /// What is allowed.
        reason: String,
    },
    /// The PKCS#11 module could not be loaded or initialised.
    #[error("cannot load PKCS#11 module {}: {reason}; check module-path in the KEK URI (SoftHSM2 on Debian: /usr/lib/softhsm/libsofthsm2.so)", path.display())]
    Pkcs11Module {
        /// The module path.
        path: std::path::PathBuf,
        /// What failed.
        reason: String,
    },
    /// A PKCS#11 call failed; `function` and `rv` are the PKCS#11 names.
    #[error("PKCS#11 {function} failed with {rv}: {hint}")]
    Pkcs11Call {
        /// The function, e.g. `C_Encrypt`.
        function: String,
        /// The return value, e.g. `CKR_DEVICE_REMOVED`.
        rv: String,
        /// What to check.
        hint: &'static str,
    },
    /// No token (or more than one) matches the URI's token attributes.
    #[error(
        "{problem}; tokens present: {present}. Check the token attributes of the KEK URI{conf_hint}"
    )]
    Pkcs11Token {
        /// e.g. `no PKCS#11 token matches token=vault`.
        problem: String,
        /// The labels of the tokens the module shows.
        present: String,
        /// A hint about SoftHSM's configuration when that module is in use.
        conf_hint: &'static str,
    },
    /// The key named by the URI is not on the token.
    #[error(
        "PKCS#11 key {object:?} is not on token {token:?}: it was deleted, or the URI names another key. Create one with `vaultctl kek create URI`, or open the vault with another of its KEKs and remove this one"
    )]
    Pkcs11KeyNotFound {
        /// The object label.
        object: String,
        /// The token label.
        token: String,
    },
    /// `kek create` found an object with the label already.
    #[error(
        "token {token:?} already has an object labelled {object:?}; kek create never replaces a key: choose another object= label"
    )]
    Pkcs11KeyExists {
        /// The object label.
        object: String,
        /// The token label.
        token: String,
    },
    /// The key exists but cannot serve as a KEK.
    #[error("PKCS#11 key {object:?} on token {token:?} cannot be this vault's KEK: {reason}")]
    Pkcs11KeyUnusable {
        /// The object label.
        object: String,
        /// The token label.
        token: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A key generated for a command that failed could not be destroyed as it was found.
    #[error("PKCS#11 key {object:?} on token {token:?} was not destroyed: {reason}")]
    Pkcs11KeyNotDestroyed {
        /// The object label.
        object: String,
        /// The token label.
        token: String,
        /// What was found instead of the one key.
        reason: String,
    },
    /// The token refused the PIN. The vault does not try again, so that it never locks the
    /// token by repeating a wrong PIN.
    #[error(
        "token {token:?} refused the PIN from {source_name} ({rv}); the vault does not retry a refused PIN, so fix the PIN source and open the KEK again"
    )]
    Pkcs11Pin {
        /// The token label.
        token: String,
        /// Where the PIN came from (never the PIN).
        source_name: String,
        /// `CKR_PIN_INCORRECT`, `CKR_PIN_LOCKED`, ...
        rv: String,
    },
    /// The PIN source cannot be read.
    #[error("cannot read the PIN for token {token:?}: {reason}")]
    Pkcs11PinSource {
        /// The token label.
        token: String,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// The token needs a PIN and the URI gives none.
    #[error(
        "token {token:?} needs a PIN: add ?pin-source=file:/path/to/pin-file (or pin-source=env:NAME) to the KEK URI"
    )]
    Pkcs11PinNeeded {
        /// The token label.
        token: String,
    },
    /// Secret memory, randomness or the KEK id failed in the envelope crate.
    #[error(transparent)]
    Envelope(#[from] envelope::Error),
    /// The TPM cannot be reached through the KEK URI's TCTI.
    #[error("cannot reach the TPM through {tcti}: {reason}; {hint}")]
    TpmUnreachable {
        /// The TCTI, e.g. `device:/dev/tpmrm0`.
        tcti: String,
        /// The decoded response code.
        reason: String,
        /// What to check.
        hint: &'static str,
    },
    /// A TPM command failed; the response code is decoded.
    #[error("TPM2_{command} failed: {rc}; {hint}")]
    TpmCall {
        /// The command, e.g. `Unseal`.
        command: &'static str,
        /// The response code, its layer and its meaning.
        rc: String,
        /// What to check.
        hint: &'static str,
    },
    /// The persistent handle given as `srk=` holds a key that cannot be a storage root key.
    #[error(
        "TPM persistent handle {handle:#010x} holds {what}, not a storage key; point srk= at the vault's SRK, or leave srk= out to use the ECC P-256 primary"
    )]
    TpmSrkUnusable {
        /// The persistent handle.
        handle: u32,
        /// What the handle holds.
        what: String,
    },
    /// `kek create` found another key at the persistent handle.
    #[error(
        "TPM persistent handle {handle:#010x} already holds another key (name {name}); kek create never replaces a key: choose another srk= handle, or evict that key first if nothing uses it"
    )]
    TpmSrkOccupied {
        /// The persistent handle.
        handle: u32,
        /// The TPM name of the key there, hex.
        name: String,
    },
    /// The stanza was sealed under another storage root key than this TPM's.
    #[error(
        "the secret was sealed under another TPM storage root key (name {sealed_under}, this TPM's is {current}): the TPM was cleared, this is another TPM, or srk= changed; open the vault with another KEK of its keyring (e.g. the recovery KEK) and rewrap"
    )]
    TpmOtherSrk {
        /// The SRK name in the stanza, hex (shortened).
        sealed_under: String,
        /// The SRK name of this TPM, hex (shortened).
        current: String,
    },
    /// The PCR policy of the sealed object failed: the PCRs changed since it was sealed.
    #[error(
        "the TPM refused to unseal: PCRs {pcrs} no longer hold the values the DEK was sealed to (the machine booted other software, or the PCRs were extended); open the vault with another KEK of its keyring (e.g. the recovery KEK), and rewrap once the platform state is the expected one"
    )]
    TpmPcrMismatch {
        /// The PCR selection, e.g. `sha256:7,16`.
        pcrs: String,
    },
    /// The PCR selection cannot be used on this TPM.
    #[error("PCRs {pcrs} cannot be used on this TPM: {reason}")]
    TpmPcrs {
        /// The PCR selection, e.g. `sha1:7`.
        pcrs: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The persistent handle given as `srk=` holds nothing.
    #[error(
        "TPM persistent handle {handle:#010x} (srk= in the KEK URI) holds no key: run `vaultctl kek create URI` to persist the storage root key there; if it was there before, the TPM was cleared or this is another TPM: open the vault with another KEK of its keyring (e.g. the recovery KEK)"
    )]
    TpmSrkMissing {
        /// The persistent handle.
        handle: u32,
    },
    /// The owner hierarchy's authorisation cannot be read or is too long.
    #[error("cannot use the TPM owner authorisation from {source_name}: {reason}")]
    TpmOwnerAuth {
        /// Where it comes from (never its value).
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// The OS keystore cannot be reached (no Secret Service on the session bus, ...).
    #[error(
        "cannot reach the OS keystore, {store}: {reason}; run the command inside a desktop session (or start gnome-keyring-daemon in a D-Bus session), or pick another KEK"
    )]
    KeystoreUnavailable {
        /// Which keystore this build uses.
        store: &'static str,
        /// The keystore library's reason.
        reason: String,
    },
    /// The keyring holding the KEK entry is locked.
    #[error(
        "the keyring is locked: unlock it (e.g. log in to the desktop session, or run `gnome-keyring-daemon --unlock` in a headless one) and run the command again; the KEK entry service={service} account={account} was not read or written ({cause})"
    )]
    KeystoreLocked {
        /// The entry's service.
        service: String,
        /// The entry's account.
        account: String,
        /// The keystore's words.
        cause: String,
    },
    /// The OS keystore has no entry with the URI's service and account.
    #[error(
        "the OS keystore has no KEK entry service={service} account={account}: it was deleted, the URI names another entry, or this is another user's keystore. A new vault creates its entry (`vaultctl init --kek keyring:service=...;account=...`); for this one, open it with another of its KEKs and rewrap"
    )]
    KeystoreEntryMissing {
        /// The entry's service.
        service: String,
        /// The entry's account.
        account: String,
    },
    /// Creating a keyring KEK found its entry there already.
    #[error(
        "the OS keystore already has an entry service={service} account={account}; creating a KEK never replaces one: pick another account= (if it is left from a failed init and nothing was sealed under it, delete it, e.g. `secret-tool clear service {service} username {account}`)"
    )]
    KeystoreEntryExists {
        /// The entry's service.
        service: String,
        /// The entry's account.
        account: String,
    },
    /// The entry exists but does not hold a KEK.
    #[error(
        "the OS keystore entry service={service} account={account} is not a vault KEK: {reason}"
    )]
    KeystoreEntryInvalid {
        /// The entry's service.
        service: String,
        /// The entry's account.
        account: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A keystore call did not return in time.
    #[error(
        "the OS keystore did not answer within {seconds} s while {action} (service={service} account={account}): an unlock prompt may be waiting, or the keystore service hangs; unlock the keyring and run the command again"
    )]
    KeystoreTimeout {
        /// What was being done.
        action: &'static str,
        /// The deadline.
        seconds: u64,
        /// The entry's service.
        service: String,
        /// The entry's account.
        account: String,
    },
    /// Another keystore failure.
    #[error("the OS keystore failed while {action}: {reason}")]
    KeystoreCall {
        /// What was being done.
        action: &'static str,
        /// The keystore's reason.
        reason: String,
    },
    /// PC/SC lists no smart card reader.
    #[error("no smart card reader found: plug in the YubiKey (and check that pcscd is running)")]
    YubikeyNoReader,
    /// Readers, but no PIV card in any of them.
    #[error("no YubiKey found in {readers} smart card reader(s): plug in the YubiKey")]
    YubikeyNoCard {
        /// How many readers were seen.
        readers: usize,
    },
    /// Several cards and no serial in the URI.
    #[error(
        "several YubiKeys are plugged in (serials {found}): name one in the URI, e.g. yubikey:serial=N;slot=9d"
    )]
    YubikeySeveralCards {
        /// The serials found.
        found: String,
    },
    /// No card with the URI's serial.
    #[error("no YubiKey with serial {serial} is plugged in (found: {found})")]
    YubikeyNotFound {
        /// The serial asked for.
        serial: u32,
        /// The serials found.
        found: String,
    },
    /// The PIN was refused; the card still accepts `tries` more.
    #[error(
        "the YubiKey refused the PIN ({tries} tries left before it is blocked): check the PIN source"
    )]
    YubikeyWrongPin {
        /// Tries left.
        tries: u8,
    },
    /// The PIN is blocked.
    #[error(
        "the YubiKey's PIN is blocked (too many wrong PINs): unblock it with the PUK (ykman piv access unblock-pin)"
    )]
    YubikeyPinBlocked,
    /// The slot holds no key (no certificate with its public key).
    #[error(
        "YubiKey {serial} has no vault key in slot {slot:02x}: create one with `vaultctl kek create` (the slot holds no certificate with its public key)"
    )]
    YubikeyEmptySlot {
        /// The slot.
        slot: u8,
        /// The card's serial.
        serial: u32,
    },
    /// `create` found a key in the slot already.
    #[error(
        "YubiKey {serial} already holds a key in slot {slot:02x}; open it, or choose another slot (it is never replaced)"
    )]
    YubikeySlotOccupied {
        /// The slot.
        slot: u8,
        /// The card's serial.
        serial: u32,
    },
    /// Authenticating with the management key failed.
    #[error(
        "the YubiKey refused the default management key ({reason}): creating a key needs a card whose PIV management key is the factory default"
    )]
    YubikeyManagementKey {
        /// The card's reason.
        reason: String,
    },
    /// Another card failure.
    #[error("the YubiKey failed while {action}: {reason}")]
    YubikeyCall {
        /// What was being done.
        action: &'static str,
        /// The card's reason.
        reason: String,
    },
    /// `--kek auto`: a variable that configures a candidate names one that cannot be used.
    #[error(
        "--kek auto: {variable} is set, but {source}; fix it, or unset {variable} to let auto pick another KEK"
    )]
    AutoConfigured {
        /// The variable, e.g. `VAULTCTL_PKCS11_URI`.
        variable: &'static str,
        /// What is wrong with what it names.
        source: Box<Error>,
    },
    /// `--kek auto`: no candidate works and there is no home directory for a key file.
    #[error(
        "--kek auto found no KEK to make ({skipped}) and no home directory for a key file: pass --kek with a URI"
    )]
    AutoNothing {
        /// Each candidate and why it was skipped.
        skipped: String,
    },
}

impl Error {
    /// A closure mapping an I/O error on `path` while doing `action`.
    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

/// `text` shortened to `max` characters for an error message, so a mistyped URI echoes back
/// recognisably without an unbounded (or multi-line) message.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().nth(max).is_some() {
        out.push_str("...");
    }
    out
}
