//! The PKCS#11 KEK on a private SoftHSM2 token, each measurement beside its limit in the same
//! run (`scripts/bench.sh` divides them):
//!
//! - direct mode `seal_data`/`open_data` of 64 bytes, which wrap or unwrap the DEK on the
//!   token, against the raw limit: a bare cryptoki loop on its own logged-in session doing the
//!   one `C_Encrypt`/`C_Decrypt` (AES-GCM, random IV, an AAD as long as the vault's stanza
//!   AAD) of 32 bytes with the same key, which is what the provider does minus everything the
//!   vault adds; on one thread and on two;
//! - tiered mode `seal_data`/`open_data` with the token's key as root against the same vault
//!   with an in-memory software root KEK: the epoch key does the per-value work in both.
//!
//! The whole `main` runs in a child process with a private token
//! (`softhsm_tests::main_in_private_token`); without SoftHSM2 it skips, saying so.

mod common;

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::{CONTEXT, bench_open, bench_seal, open, seal};
use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use envelope::KekProvider;
use kek_providers::pkcs11;
use ring::rand::{SecureRandom, SystemRandom};
use softhsm_tests::SoftHsm;
use vault::Vault;

/// What the vault sends the token to wrap: a 32-byte DEK.
const DEK: [u8; 32] = [0x55; 32];
const KEK_LABEL: &str = "bench-kek";
const TRANSIT_SCOPE: &str = "transit";
const GCM_IV_LEN: usize = 12;
const GCM_TAG_BITS: u64 = 128;

fn main() {
    softhsm_tests::main_in_private_token(|hsm| {
        let mut criterion = Criterion::default().configure_from_args();
        bench(&mut criterion, hsm);
        criterion.final_summary();
    });
}

fn bench(c: &mut Criterion, hsm: &SoftHsm) {
    let kek_uri = hsm.kek_uri(KEK_LABEL);
    pkcs11::create_key(&kek_uri).expect("create the KEK on the token");
    let dirs = tempfile::tempdir().expect("tempdir");
    let dir = |name: &str| dirs.path().join(name);
    let token_kek = common::open_kek(&kek_uri, &dir("direct"));
    let limit = Limit::new(hsm, token_kek.provider.as_ref());
    let vaults = common::Vaults::new(dir, token_kek);
    let direct = &vaults.direct;

    // Each measurement right beside its baseline: on a shared machine the load drifts.
    let mut group = c.benchmark_group("pkcs11");
    let session = limit.session();
    bench_seal(&mut group, "direct_seal_64B", direct);
    group.bench_function("limit_encrypt_32B", |b| b.iter(|| limit.encrypt(&session)));
    bench_open(&mut group, "direct_open_64B", direct);
    group.bench_function("limit_decrypt_32B", |b| b.iter(|| limit.decrypt(&session)));
    two_threads(&mut group, direct, &limit);
    vaults.bench_tiered(&mut group);
    group.finish();
}

/// The direct vault and the limit on two threads, each doing half the operations, each with
/// a session of its own for the limit (a `Session` is not `Sync`).
fn two_threads(group: &mut BenchmarkGroup<'_, WallTime>, direct: &Vault, limit: &Limit) {
    let sealed = seal(direct);
    let mut sessions = [limit.session(), limit.session()];
    group.bench_function("direct_seal_64B_2threads", |b| {
        b.iter_custom(|n| {
            on_two_threads(n, [(); 2], |(), ops| {
                for _ in 0..ops {
                    black_box(seal(direct));
                }
            })
        })
    });
    group.bench_function("limit_encrypt_32B_2threads", |b| {
        b.iter_custom(|n| {
            on_two_threads(n, sessions.each_mut(), |session, ops| {
                for _ in 0..ops {
                    black_box(limit.encrypt(session));
                }
            })
        })
    });
    group.bench_function("direct_open_64B_2threads", |b| {
        b.iter_custom(|n| {
            on_two_threads(n, [(); 2], |(), ops| {
                for _ in 0..ops {
                    black_box(open(direct, &sealed));
                }
            })
        })
    });
    group.bench_function("limit_decrypt_32B_2threads", |b| {
        b.iter_custom(|n| {
            on_two_threads(n, sessions.each_mut(), |session, ops| {
                for _ in 0..ops {
                    black_box(limit.decrypt(session));
                }
            })
        })
    });
}

/// Runs `work(state, ops)` on two threads that together do `n` operations, and returns the
/// wall time from their common start to the end of the later one (thread start-up excluded).
fn on_two_threads<S: Send>(n: u64, states: [S; 2], work: impl Fn(S, u64) + Sync) -> Duration {
    let start = Barrier::new(3);
    std::thread::scope(|scope| {
        let workers: Vec<_> = states
            .into_iter()
            .zip([n / 2, n - n / 2])
            .map(|(state, ops)| {
                let (start, work) = (&start, &work);
                scope.spawn(move || {
                    start.wait();
                    work(state, ops);
                })
            })
            .collect();
        start.wait();
        let started = Instant::now();
        for worker in workers {
            worker.join().expect("benchmark thread");
        }
        started.elapsed()
    })
}

/// The raw limit: cryptoki calls on the vault's key with sessions of the bench's own.
struct Limit {
    context: Pkcs11,
    slot: Slot,
    pin: String,
    key: ObjectHandle,
    /// As long as the stanza AAD the vault passes the provider.
    aad: Vec<u8>,
    /// The DEK sealed with `aad`, to decrypt: IV, then ciphertext and tag.
    iv: [u8; GCM_IV_LEN],
    sealed: Vec<u8>,
}

impl Limit {
    /// Initialises the module in this process (the provider did already, which is fine: the
    /// state is per loaded library, and the same library is loaded once), finds the token and
    /// the key, and seals one DEK to decrypt.
    fn new(hsm: &SoftHsm, kek: &dyn KekProvider) -> Self {
        let context = Pkcs11::new(hsm.module_path()).expect("load the PKCS#11 module");
        match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("C_Initialize: {e}"),
        }
        let slot = context
            .get_slots_with_token()
            .expect("C_GetSlotList")
            .into_iter()
            .find(|&slot| {
                context
                    .get_token_info(slot)
                    .is_ok_and(|info| info.label() == hsm.token_label())
            })
            .expect("the private token");
        let pin = hsm.user_pin().to_owned();
        let session = open_session(&context, slot, &pin);
        let keys = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(KEK_LABEL.as_bytes().to_vec()),
            ])
            .expect("C_FindObjects");
        let [key] = keys[..] else {
            panic!("{} keys labelled {KEK_LABEL}", keys.len());
        };
        let id = kek.id();
        let context_len =
            b"vault-envelope\0".len() + 1 + 2 + TRANSIT_SCOPE.len() + 2 + CONTEXT.len() + 8;
        let stanza_id_len = 1 + id.kind().len() + 1 + id.label().len() + 4;
        let aad = vec![0x33; context_len + stanza_id_len];
        let mut iv = [0u8; GCM_IV_LEN];
        SystemRandom::new().fill(&mut iv).expect("random");
        let sealed = session
            .encrypt(&gcm(&mut iv.clone(), &aad), key, &DEK)
            .expect("C_Encrypt");
        Self {
            context,
            slot,
            pin,
            key,
            aad,
            iv,
            sealed,
        }
    }

    /// A new logged-in session (the provider's sessions may have logged in already).
    fn session(&self) -> Session {
        open_session(&self.context, self.slot, &self.pin)
    }

    /// What the provider's wrap does on the token: AES-GCM of the DEK with a random IV.
    fn encrypt(&self, session: &Session) -> Vec<u8> {
        let mut iv = [0u8; GCM_IV_LEN];
        SystemRandom::new().fill(&mut iv).expect("random");
        session
            .encrypt(&gcm(&mut iv, &self.aad), self.key, black_box(&DEK))
            .expect("C_Encrypt")
    }

    /// What the provider's unwrap does on the token.
    fn decrypt(&self, session: &Session) -> Vec<u8> {
        let mut iv = self.iv;
        session
            .decrypt(&gcm(&mut iv, &self.aad), self.key, black_box(&self.sealed))
            .expect("C_Decrypt")
    }
}

/// A new logged-in session (the provider's sessions may have logged in already).
fn open_session(context: &Pkcs11, slot: Slot, pin: &str) -> Session {
    let session = context.open_rw_session(slot).expect("C_OpenSession");
    let pin = AuthPin::new(pin.into());
    match session.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("C_Login: {e}"),
    }
    session
}

fn gcm<'a>(iv: &'a mut [u8; GCM_IV_LEN], aad: &'a [u8]) -> Mechanism<'a> {
    Mechanism::AesGcm(GcmParams::new(iv, aad, GCM_TAG_BITS.into()).expect("GCM parameters"))
}
