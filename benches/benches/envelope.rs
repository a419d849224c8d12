//! Envelope seal/open of 32 B, 64 B, 1 KiB and 64 KiB secrets with one in-memory KEK, each
//! beside the raw limit at its size: the two ChaCha20-Poly1305 operations an envelope needs
//! (payload and DEK wrap) done with ring directly, with fixed keys and nonces, preallocated
//! buffers, and AADs of the same lengths the envelope authenticates. `scripts/bench.sh`
//! divides the two (the targets apply at 64 B, where they were set).

use std::hint::black_box;
use std::sync::Arc;

use benches::SECRET_SIZES;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use envelope::{Context, FORMAT_VERSION, KekProvider, SoftwareKek, open, seal};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, Tag, UnboundKey};

const DEK_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// Lengths of what a format v2 envelope authenticates, from FORMAT.md: the context encoding
/// followed by the stanza id (stanza AAD) or by the header's 7-byte fixed prefix, magic,
/// version, aead and flags (payload AAD).
struct AadLens {
    stanza: usize,
    payload: usize,
}

/// Bytes of the header a v2 payload AAD covers.
const V2_PAYLOAD_HEADER: usize = 7;

fn aad_lens(ctx: &Context<'_>, kek: &dyn KekProvider, sealed: &[u8]) -> AadLens {
    assert_eq!(
        sealed[4], FORMAT_VERSION,
        "the limit models format v2; update it with the format"
    );
    let context = b"vault-envelope\0".len() + 1 + 2 + ctx.scope.len() + 2 + ctx.key.len() + 8;
    let id = kek.id();
    let stanza_id = 1 + id.kind().len() + 1 + id.label().len() + 4;
    AadLens {
        stanza: context + stanza_id,
        payload: context + V2_PAYLOAD_HEADER,
    }
}

fn key(bytes: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, bytes).expect("32-byte key"))
}

fn envelope(c: &mut Criterion) {
    let kek: Arc<dyn KekProvider> = Arc::new(SoftwareKek::random("bench").expect("kek"));
    let keks = [kek.clone()];
    let ctx = Context::new("global", "db-password", 1);
    let mut group = c.benchmark_group("envelope");
    // Each size's measurements right beside their limits: on a shared machine the load drifts.
    for (size, label) in SECRET_SIZES {
        let secret = vec![0x5au8; size];
        let sealed = seal(&secret, &ctx, &keks).expect("seal");
        let lens = aad_lens(&ctx, kek.as_ref(), &sealed);
        let limit = Limit::new(&secret, &lens);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(format!("seal_{label}"), |b| {
            b.iter(|| seal(black_box(&secret), black_box(&ctx), &keks).expect("seal"))
        });
        let mut payload = secret.clone();
        let mut dek = [0x55u8; DEK_LEN];
        group.bench_function(format!("limit_seal_{label}"), |b| {
            b.iter(|| limit.seal(&mut dek, &mut payload))
        });
        group.bench_function(format!("open_{label}"), |b| {
            b.iter(|| open(black_box(&sealed), black_box(&ctx), &keks).expect("open"))
        });
        let mut work_dek = limit.wrapped;
        let mut work_payload = limit.sealed_payload.clone();
        group.bench_function(format!("limit_open_{label}"), |b| {
            b.iter(|| limit.open(&mut work_dek, &mut work_payload))
        });
    }
    group.finish();
}

/// The raw limit at one secret size: the two ring ChaCha20-Poly1305 operations an envelope
/// needs, with fixed keys and nonces, preallocated buffers and the envelope's AAD lengths.
struct Limit {
    payload_key: [u8; 32],
    wrap_key: [u8; 32],
    stanza_aad: Vec<u8>,
    payload_aad: Vec<u8>,
    /// Real ciphertexts to open: a wrapped DEK and a payload, each with its tag.
    wrapped: [u8; DEK_LEN + TAG_LEN],
    sealed_payload: Vec<u8>,
}

const NONCE: [u8; NONCE_LEN] = [0u8; NONCE_LEN];

impl Limit {
    fn new(secret: &[u8], lens: &AadLens) -> Self {
        let mut limit = Self {
            payload_key: [0x11; 32],
            wrap_key: [0x22; 32],
            stanza_aad: vec![0x33; lens.stanza],
            payload_aad: vec![0x44; lens.payload],
            wrapped: [0; DEK_LEN + TAG_LEN],
            sealed_payload: vec![0; secret.len() + TAG_LEN],
        };
        limit.sealed_payload[..secret.len()].copy_from_slice(secret);
        for (buf, k, aad) in [
            (&mut limit.wrapped[..], &limit.wrap_key, &limit.stanza_aad),
            (
                &mut limit.sealed_payload[..],
                &limit.payload_key,
                &limit.payload_aad,
            ),
        ] {
            let (plain, tag) = buf.split_at_mut(buf.len() - TAG_LEN);
            let t = key(k)
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(NONCE),
                    Aad::from(&aad[..]),
                    plain,
                )
                .expect("seal");
            tag.copy_from_slice(t.as_ref());
        }
        limit
    }

    /// Both seals, in place in the caller's buffers.
    fn seal(&self, dek: &mut [u8; DEK_LEN], payload: &mut [u8]) -> (Tag, Tag) {
        let wrap_tag = key(black_box(&self.wrap_key))
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(NONCE),
                Aad::from(&self.stanza_aad[..]),
                dek,
            )
            .expect("seal");
        let payload_tag = key(black_box(&self.payload_key))
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(NONCE),
                Aad::from(&self.payload_aad[..]),
                payload,
            )
            .expect("seal");
        (wrap_tag, payload_tag)
    }

    /// Both opens. Opening decrypts in place, so each starts again from the ciphertext.
    fn open(
        &self,
        work_dek: &mut [u8; DEK_LEN + TAG_LEN],
        work_payload: &mut [u8],
    ) -> (usize, usize) {
        *work_dek = self.wrapped;
        work_payload.copy_from_slice(&self.sealed_payload);
        let dek = key(black_box(&self.wrap_key))
            .open_in_place(
                Nonce::assume_unique_for_key(NONCE),
                Aad::from(&self.stanza_aad[..]),
                work_dek,
            )
            .expect("open")
            .len();
        let payload = key(black_box(&self.payload_key))
            .open_in_place(
                Nonce::assume_unique_for_key(NONCE),
                Aad::from(&self.payload_aad[..]),
                work_payload,
            )
            .expect("open")
            .len();
        (dek, payload)
    }
}

criterion_group!(benches, envelope);
criterion_main!(benches);
