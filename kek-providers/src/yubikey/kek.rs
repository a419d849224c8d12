//! Creating and opening a YubiKey KEK, and the KEK itself: wrap in software against the
//! card's public key, unwrap by the card's ECDH.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use envelope::{Assurance, Dek, Health, KekId, KekProvider, SecretBytes, StanzaRef};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::agreement::{self, ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use yubikey::certificate::{CertInfo, Certificate};
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{MgmKey, PinPolicy, TouchPolicy, YubiKey};
use zeroize::Zeroizing;

use super::YubikeyKekSpec;
use super::card::{self, call_error};
use super::session::{Session, SlotPolicy};
use super::uri::Touch;
use crate::{BuiltKek, Error};

/// The stanza body's version byte.
const VERSION: u8 = 1;
/// An uncompressed P-256 point.
const POINT_LEN: usize = 65;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The whole stanza body.
const BODY_LEN: usize = 1 + POINT_LEN + NONCE_LEN + envelope::DEK_LEN + TAG_LEN;
/// HKDF info: the scheme and its version.
const HKDF_INFO: &[u8] = b"vault yubikey kek v1";
/// Domain separation for the key id, derived from the card's public key.
const KEY_ID_CONTEXT: &[u8] = b"vault yubikey kek id v1";
/// DER prefix of a P-256 SubjectPublicKeyInfo before its 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// What a slot holds.
pub(super) enum SlotContent {
    /// No certificate: free for a new key.
    Empty,
    /// A certificate made by `create` (this scheme's subject).
    VaultKey,
    /// A certificate made by something else: never touched.
    Other,
}

/// The subject of the certificates `create` writes.
const CERT_SUBJECT: &str = "vault yubikey kek";

pub(super) fn slot_content(yubikey: &mut YubiKey, slot: SlotId) -> SlotContent {
    match Certificate::read(yubikey, slot) {
        Err(_) => SlotContent::Empty,
        Ok(cert) if cert.subject() == format!("CN={CERT_SUBJECT}") => SlotContent::VaultKey,
        Ok(_) => SlotContent::Other,
    }
}

/// `vaultctl kek create`: generates a P-256 key in the slot (default management key) and
/// writes a certificate with its public key there; refuses a slot that holds a certificate.
pub(crate) fn generate(spec: &YubikeyKekSpec) -> Result<BuiltKek, Error> {
    let mut yubikey = card::open(spec.serial)?;
    let slot = slot_id(spec.slot)?;
    if !matches!(slot_content(&mut yubikey, slot), SlotContent::Empty) {
        return Err(Error::YubikeySlotOccupied {
            slot: spec.slot,
            serial: yubikey.serial().0,
        });
    }
    generate_in(spec, yubikey, slot)
}

/// A vault's new KEK (init, `kek add`): the key `vaultctl kek create` made in the slot, or a
/// new key when the slot is empty; a slot holding anyone else's certificate is refused.
pub(crate) fn create(spec: &YubikeyKekSpec) -> Result<BuiltKek, Error> {
    let mut yubikey = card::open(spec.serial)?;
    let slot = slot_id(spec.slot)?;
    match slot_content(&mut yubikey, slot) {
        SlotContent::Empty => generate_in(spec, yubikey, slot),
        // No PIN yet: it is read when the first unwrap needs it.
        SlotContent::VaultKey => build(spec, yubikey, None),
        SlotContent::Other => Err(Error::YubikeySlotOccupied {
            slot: spec.slot,
            serial: yubikey.serial().0,
        }),
    }
}

fn generate_in(
    spec: &YubikeyKekSpec,
    mut yubikey: YubiKey,
    slot: SlotId,
) -> Result<BuiltKek, Error> {
    yubikey
        .authenticate(MgmKey::default())
        .map_err(|e| Error::YubikeyManagementKey {
            reason: e.to_string(),
        })?;
    let touch = match spec.touch {
        None => TouchPolicy::Default,
        Some(Touch::Never) => TouchPolicy::Never,
        Some(Touch::Always) => TouchPolicy::Always,
        Some(Touch::Cached) => TouchPolicy::Cached,
    };
    let spki = piv::generate(
        &mut yubikey,
        slot,
        AlgorithmId::EccP256,
        PinPolicy::Default,
        touch,
    )
    .map_err(call_error("generating a P-256 key"))?;
    let point = spki.subject_public_key.raw_bytes().to_vec();
    let cert = certificate(&point)?;
    cert.write(&mut yubikey, slot, CertInfo::Uncompressed)
        .map_err(call_error("writing the slot's certificate"))?;
    // No PIN yet: it is read when the first unwrap needs it.
    build(spec, yubikey, None)
}

/// Opens the card, reads the slot's public key from its certificate and checks the PIN.
pub(crate) fn open(spec: &YubikeyKekSpec) -> Result<BuiltKek, Error> {
    let yubikey = card::open(spec.serial)?;
    let pin = spec.pin.read("YubiKey PIN: ")?;
    build(spec, yubikey, Some(pin))
}

/// The slot's public key (uncompressed point) from its certificate.
pub(super) fn public_point(yubikey: &mut YubiKey, spec_slot: u8) -> Result<Vec<u8>, Error> {
    let serial = yubikey.serial().0;
    let empty = || Error::YubikeyEmptySlot {
        slot: spec_slot,
        serial,
    };
    let cert = Certificate::read(yubikey, slot_id(spec_slot)?).map_err(|_| empty())?;
    let point = cert.subject_pki().subject_public_key.raw_bytes().to_vec();
    if point.len() != POINT_LEN || point[0] != 0x04 {
        return Err(empty());
    }
    Ok(point)
}

fn build(
    spec: &YubikeyKekSpec,
    mut yubikey: YubiKey,
    pin: Option<SecretBytes>,
) -> Result<BuiltKek, Error> {
    let serial = yubikey.serial().0;
    let slot = slot_id(spec.slot)?;
    let point = public_point(&mut yubikey, spec.slot)?;
    if let Some(pin) = &pin {
        // Checked now, so that a wrong PIN is an error of open, with the tries left.
        yubikey
            .verify_pin(pin.expose_secret())
            .map_err(call_error("verifying the PIN"))?;
    }
    let policy = SlotPolicy::read(&mut yubikey, slot);
    let user_presence = policy.touch.will_wait(None, std::time::Instant::now());
    let uri = spec.canonical_uri(serial);
    let id = kek_id(&point)?;
    Ok(BuiltKek {
        uri,
        provider: Arc::new(YubikeyKek {
            id,
            serial,
            slot_ref: spec.slot,
            user_presence,
            public: point,
            session: Mutex::new(Session::new(
                yubikey,
                (slot, spec.slot),
                spec.pin.clone(),
                pin,
                policy,
            )),
        }),
        created: None,
    })
}

/// The KEK id of the card key with public `point`.
pub(super) fn kek_id(point: &[u8]) -> Result<KekId, Error> {
    Ok(KekId::new("yubikey", &key_label(point), 1)?)
}

/// A KEK whose private key is a P-256 key in a YubiKey PIV slot.
pub(crate) struct YubikeyKek {
    id: KekId,
    /// The card's serial and the slot, for messages (without taking the session's lock).
    serial: u32,
    slot_ref: u8,
    /// The card reports a touch policy that asks for a touch (always or cached).
    user_presence: bool,
    /// The card's public key (uncompressed point).
    public: Vec<u8>,
    session: Mutex<Session>,
}

impl fmt::Debug for YubikeyKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YubikeyKek")
            .field("id", &self.id)
            .field("serial", &self.serial)
            .field("slot", &format_args!("{:02x}", self.slot_ref))
            .finish_non_exhaustive()
    }
}

impl YubikeyKek {
    fn session(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A failure, naming the card and slot (the KEK id names only the key).
    fn failed(&self, error: &Error) -> envelope::Error {
        envelope::Error::Kek {
            kek: self.id.to_string(),
            reason: format!(
                "YubiKey {}, slot {:02x}: {error}",
                self.serial, self.slot_ref
            ),
        }
    }

    fn rejected(&self) -> envelope::Error {
        envelope::Error::StanzaRejected {
            kek: self.id.to_string(),
        }
    }

    fn wrap_inner(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, Error> {
        let rng = SystemRandom::new();
        let ephemeral =
            EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(|_| envelope::Error::Random)?;
        let ephemeral_public = ephemeral
            .compute_public_key()
            .map_err(|_| envelope::Error::Random)?;
        let key = agreement::agree_ephemeral(
            ephemeral,
            &UnparsedPublicKey::new(&ECDH_P256, &self.public),
            |shared| aead_key(shared, ephemeral_public.as_ref(), &self.public),
        )
        .map_err(|_| Error::YubikeyCall {
            action: "computing ECDH with the card's public key",
            reason: "the public key was rejected".into(),
        })?;
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce).map_err(|_| envelope::Error::Random)?;
        let mut sealed = dek.expose_secret().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut sealed,
        )
        .map_err(|_| envelope::Error::Random)?;
        let mut body = Vec::with_capacity(BODY_LEN);
        body.push(VERSION);
        body.extend_from_slice(ephemeral_public.as_ref());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&sealed);
        Ok(body)
    }
}

/// HKDF-SHA256 of the shared secret: salt = ephemeral public key || card public key.
fn aead_key(shared: &[u8], ephemeral: &[u8], card: &[u8]) -> LessSafeKey {
    let mut salt = Vec::with_capacity(2 * POINT_LEN);
    salt.extend_from_slice(ephemeral);
    salt.extend_from_slice(card);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(shared);
    let info = [HKDF_INFO];
    let okm = prk
        .expand(&info, &CHACHA20_POLY1305)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    LessSafeKey::new(UnboundKey::from(okm))
}

impl KekProvider for YubikeyKek {
    /// Wrapping is an ECDH with the slot's public key: anyone who has it can wrap.
    fn wraps_without_secret(&self) -> bool {
        true
    }

    fn id(&self) -> &KekId {
        &self.id
    }

    fn wrap(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, envelope::Error> {
        self.wrap_inner(dek, aad).map_err(|e| self.failed(&e))
    }

    fn unwrap(&self, stanza: &StanzaRef<'_>, aad: &[u8]) -> Option<Result<Dek, envelope::Error>> {
        if !stanza.is_for(&self.id) {
            return None;
        }
        let body = stanza.body;
        if body.len() != BODY_LEN || body[0] != VERSION {
            return Some(Err(self.rejected()));
        }
        let (ephemeral, rest) = body[1..].split_at(POINT_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        // A point off the curve is refused here, before it reaches the card.
        if ephemeral[0] != 0x04 || p256_point_invalid(ephemeral) {
            return Some(Err(self.rejected()));
        }
        // The session's lock is released before a failure is reported.
        let result = self.session().ecdh(ephemeral);
        let shared = match result {
            Ok(shared) => shared,
            Err(e) => return Some(Err(self.failed(&e))),
        };
        let key = aead_key(&shared, ephemeral, &self.public);
        let Ok(nonce) = Nonce::try_assume_unique_for_key(nonce) else {
            return Some(Err(self.rejected()));
        };
        let mut buffer = Zeroizing::new(sealed.to_vec());
        let Ok(plain) = key.open_in_place(nonce, Aad::from(aad), &mut buffer) else {
            return Some(Err(self.rejected()));
        };
        Some(Dek::from_slice(plain).map_err(|_| self.rejected()))
    }

    fn health(&self) -> Health {
        let mut session = self.session();
        let (serial, slot, slot_ref) = (self.serial, session.slot, self.slot_ref);
        let yubikey = match session.card() {
            Ok(yubikey) => yubikey,
            Err(e) => return Health::Unreachable(e.to_string()),
        };
        // A real call on the slot: its certificate (with the public key) is still there.
        match Certificate::read(yubikey, slot) {
            Ok(cert) if cert.subject_pki().subject_public_key.raw_bytes() == self.public => {
                Health::Ok
            }
            Ok(_) => Health::Failed(format!(
                "YubiKey {serial} holds another key in slot {slot_ref:02x} now"
            )),
            Err(e) => {
                session.close();
                Health::Unreachable(call_error("reading the slot's certificate")(e).to_string())
            }
        }
    }

    fn assurance(&self) -> Assurance {
        Assurance {
            hardware: true,
            non_exportable: true,
            // Only when the card says so (GET METADATA): a touch it cannot report is not
            // claimed.
            user_presence: self.user_presence,
            ..Assurance::default()
        }
    }
}

/// Whether `point` is not a valid uncompressed P-256 point (checked by a throwaway ECDH).
fn p256_point_invalid(point: &[u8]) -> bool {
    let rng = SystemRandom::new();
    let Ok(probe) = EphemeralPrivateKey::generate(&ECDH_P256, &rng) else {
        return true;
    };
    agreement::agree_ephemeral(probe, &UnparsedPublicKey::new(&ECDH_P256, point), |_| ()).is_err()
}

pub(super) fn slot_id(slot: u8) -> Result<SlotId, Error> {
    SlotId::try_from(slot).map_err(|_| Error::InvalidParameter {
        name: "slot",
        reason: format!("{slot:02x} is not a PIV key slot"),
    })
}

/// A certificate holding the card's public key, issued by a throwaway software key (the
/// slot's key is for ECDH): the slot's public key is read back from it.
fn certificate(point: &[u8]) -> Result<Certificate, Error> {
    let failed = |e: rcgen::Error| Error::YubikeyCall {
        action: "making the slot's certificate",
        reason: e.to_string(),
    };
    let mut spki = P256_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(point);
    let public = rcgen::SubjectPublicKeyInfo::from_der(&spki).map_err(failed)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, CERT_SUBJECT);
    let issuer_key = rcgen::KeyPair::generate().map_err(failed)?;
    let issuer = rcgen::Issuer::new(params.clone(), issuer_key);
    let cert = params.signed_by(&public, &issuer).map_err(failed)?;
    Certificate::from_bytes(cert.der().to_vec()).map_err(call_error("reading the certificate"))
}

/// First 16 hex digits of SHA-256(context || card public key).
fn key_label(point: &[u8]) -> String {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(KEY_ID_CONTEXT);
    digest.update(point);
    digest.finish().as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
