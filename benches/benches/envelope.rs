//! Envelope seal/open of a 64-byte secret with one in-memory KEK, beside the raw limit: the
//! two ChaCha20-Poly1305 operations an envelope needs (payload and DEK wrap) done with ring
//! directly, with fixed keys and nonces, preallocated buffers, and AADs of the same lengths
//! the envelope authenticates. `scripts/bench-ratios.sh` divides the two.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use envelope::{Context, FORMAT_VERSION, KekProvider, SoftwareKek, open, seal};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

const SECRET: [u8; 64] = [0x5a; 64];
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
    let sealed = seal(&SECRET, &ctx, &keks).expect("seal");
    let lens = aad_lens(&ctx, kek.as_ref(), &sealed);

    let mut group = c.benchmark_group("envelope");
    group.bench_function("seal_64B", |b| {
        b.iter(|| seal(black_box(&SECRET), black_box(&ctx), &keks).expect("seal"))
    });
    group.bench_function("open_64B", |b| {
        b.iter(|| open(black_box(&sealed), black_box(&ctx), &keks).expect("open"))
    });

    let payload_key = [0x11u8; 32];
    let wrap_key = [0x22u8; 32];
    let stanza_aad = vec![0x33u8; lens.stanza];
    let payload_aad = vec![0x44u8; lens.payload];
    let nonce = [0u8; NONCE_LEN];
    let mut payload = SECRET;
    let mut dek = [0x55u8; DEK_LEN];
    group.bench_function("limit_seal_64B", |b| {
        b.iter(|| {
            let wrap_tag = key(black_box(&wrap_key))
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&stanza_aad[..]),
                    &mut dek,
                )
                .expect("seal");
            let payload_tag = key(black_box(&payload_key))
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&payload_aad[..]),
                    &mut payload,
                )
                .expect("seal");
            (wrap_tag, payload_tag)
        })
    });

    // Real ciphertexts to open: a wrapped DEK and a payload, each with its tag.
    let mut wrapped = [0u8; DEK_LEN + TAG_LEN];
    let mut sealed_payload = [0u8; 64 + TAG_LEN];
    for (buf, k, aad) in [
        (&mut wrapped[..], &wrap_key, &stanza_aad),
        (&mut sealed_payload[..], &payload_key, &payload_aad),
    ] {
        let (plain, tag) = buf.split_at_mut(buf.len() - TAG_LEN);
        let t = key(k)
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad[..]),
                plain,
            )
            .expect("seal");
        tag.copy_from_slice(t.as_ref());
    }
    let mut work_dek = wrapped;
    let mut work_payload = sealed_payload;
    group.bench_function("limit_open_64B", |b| {
        b.iter(|| {
            // Opening decrypts in place, so each iteration starts again from the ciphertext.
            work_dek = wrapped;
            work_payload = sealed_payload;
            let dek = key(black_box(&wrap_key))
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&stanza_aad[..]),
                    &mut work_dek,
                )
                .expect("open")
                .len();
            let payload = key(black_box(&payload_key))
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&payload_aad[..]),
                    &mut work_payload,
                )
                .expect("open")
                .len();
            (dek, payload)
        })
    });
    group.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
