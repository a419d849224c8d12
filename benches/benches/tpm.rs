//! The TPM 2.0 KEK on a private swtpm, each measurement beside its limit in the same run
//! (`scripts/bench.sh` divides them):
//!
//! - direct mode `open_data` of 64 bytes, which loads, unseals and flushes the DEK's sealed
//!   object, against the raw limit: a bare tss-esapi loop on a context of its own (same TCTI,
//!   same persisted SRK) doing TPM2_Load + TPM2_Unseal + TPM2_FlushContext of a sealed object
//!   of the provider's shape (keyed-hash, 64 bytes of sealed data, the same attributes), with
//!   the password session set only around Load and Unseal;
//! - direct mode `seal_data` (one TPM2_Create per value) against a bare TPM2_Create of the same
//!   template and size (reported, no target);
//! - tiered mode `seal_data`/`open_data` with the TPM's key as root against the same vault with
//!   an in-memory software root KEK: the epoch key does the per-value work in both;
//! - start-up with the persisted SRK: the KEKs built from the URIs pinned in the vault
//!   (`Kek::build_all`) and `Vault::open`, which unlocks (checks the KEK and opens the epoch
//!   key on the TPM). The provider shares one ESAPI context per TCTI between the KEKs alive in
//!   the process and drops it with the last of them, so each iteration runs with no TPM KEK
//!   alive and pays for a new context (TCTI + ESYS initialisation), finding the persistent SRK
//!   (GetCapability, ReadPublic), reading the vendor properties, and the unwraps of unlock;
//!   the vault is dropped outside the timed part.
//!
//! One swtpm serves the whole run (`tpm_tests::Swtpm`); without swtpm this skips, saying so,
//! unless `VAULT_REQUIRE_HW` is set.

mod common;

use std::hint::black_box;
use std::str::FromStr;

use common::{bench_open, bench_seal};
use criterion::Criterion;
use kek_providers::tpm;
use tpm_tests::Swtpm;
use tss_esapi::Context;
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::handles::{KeyHandle, ObjectHandle, PersistentTpmHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Digest, KeyedHashScheme, Private, Public, PublicBuilder, PublicKeyedHashParameters,
    SensitiveData,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use vault::WrapMode;

/// What the provider seals per DEK: the 32-byte DEK and SHA-256 of the AAD.
const SEALED: [u8; 64] = [0x55; 64];
/// The persistent handle the SRK is made persistent at (`vaultctl kek create`).
const SRK_HANDLE: u32 = 0x8100_0001;

fn main() {
    let Some(swtpm) = Swtpm::start() else {
        eprintln!("tpm benchmarks: skipped: no swtpm");
        return;
    };
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &swtpm);
    criterion.final_summary();
}

fn bench(c: &mut Criterion, swtpm: &Swtpm) {
    let kek_uri = format!("tpm2:tcti={};srk={SRK_HANDLE:#010x}", swtpm.tcti());
    tpm::persist_srk(&kek_uri).expect("persist the SRK");
    let dir = |name: &str| swtpm.dir().join(name);
    let tpm_kek = common::open_kek(&kek_uri, &dir("direct"));

    // The start-up vault is made now and opened later, when no TPM KEK is alive any more.
    drop(common::vault(
        &dir("startup"),
        WrapMode::Tiered,
        tpm_kek.clone(),
    ));

    let vaults = common::Vaults::new(dir, tpm_kek);
    let mut limit = Limit::new(&swtpm.tcti());

    // Each measurement right beside its baseline: on a shared machine the load drifts.
    let mut group = c.benchmark_group("tpm");
    bench_open(&mut group, "direct_open_64B", &vaults.direct);
    group.bench_function("limit_load_unseal_flush", |b| b.iter(|| limit.unseal()));
    bench_seal(&mut group, "direct_seal_64B", &vaults.direct);
    group.bench_function("limit_create", |b| b.iter(|| limit.create()));
    vaults.bench_tiered(&mut group);

    // The last TPM KEK goes with these, and with it the provider's context.
    drop((vaults, limit));
    let startup = dir("startup");
    // Each open builds the KEK anew, on a new TPM context that finds the SRK again.
    common::unlock::report_first_unlock("tpm/startup", &startup);
    common::unlock::bench_unlock(&mut group, "startup_open_vault", &startup);
    group.finish();
}

/// The raw limit: tss-esapi calls on a context of the bench's own, under the persisted SRK.
struct Limit {
    context: Context,
    srk: KeyHandle,
    /// The sealed object's template, as the provider builds it.
    template: Public,
    /// The object sealed once, to load and unseal.
    public: Public,
    private: Private,
}

impl Limit {
    fn new(tcti: &str) -> Self {
        let conf = TctiNameConf::from_str(tcti).expect("TCTI configuration");
        let mut context = Context::new(conf).expect("connect to the TPM");
        let handle = PersistentTpmHandle::new(SRK_HANDLE).expect("persistent handle");
        // No session set here: see the provider (tpm2-tss 3.2 crashes with one).
        let srk = context
            .execute_without_session(|ctx| ctx.tr_from_tpm_public(TpmHandle::Persistent(handle)))
            .expect("the persisted SRK")
            .into();
        let template = sealed_template();
        let mut limit = Self {
            context,
            srk,
            public: template.clone(),
            template,
            private: Private::default(),
        };
        (limit.public, limit.private) = limit.create();
        assert_eq!(
            limit.unseal().value(),
            SEALED,
            "the limit unseals what it sealed"
        );
        limit
    }

    /// What the provider's wrap does on the TPM: Create of a sealed object of 64 bytes.
    fn create(&mut self) -> (Public, Private) {
        let data = SensitiveData::try_from(black_box(&SEALED[..])).expect("sealed data");
        let template = self.template.clone();
        let created = self
            .context
            .execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.create(self.srk, template, None, Some(data), None, None)
            })
            .expect("TPM2_Create");
        (created.out_public, created.out_private)
    }

    /// What the provider's unwrap does on the TPM: Load, Unseal, FlushContext.
    fn unseal(&mut self) -> SensitiveData {
        let (public, private) = (self.public.clone(), self.private.clone());
        let object = self
            .context
            .execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.load(self.srk, private, public)
            })
            .expect("TPM2_Load");
        let data = self
            .context
            .execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.unseal(ObjectHandle::from(object))
            })
            .expect("TPM2_Unseal");
        self.context
            .flush_context(object.into())
            .expect("TPM2_FlushContext");
        data
    }
}

/// The provider's sealed-object template without a PCR policy (kek-providers/src/tpm/seal.rs):
/// keyed-hash, no scheme, SHA-256 name, fixedTPM, fixedParent, noDA, userWithAuth.
fn sealed_template() -> Public {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_no_da(true)
        .with_user_with_auth(true)
        .with_admin_with_policy(false)
        .build()
        .expect("object attributes");
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_auth_policy(Digest::default())
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
        .expect("sealed object template")
}
