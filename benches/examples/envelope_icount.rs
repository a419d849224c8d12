//! Instruction counts of envelope open/seal beside the raw limit, for profiling without a
//! timer: run the same binary under callgrind with two iteration counts and divide the
//! difference, which is deterministic where criterion's medians are noisy.
//!
//! ```text
//! cargo build --profile bench -p benches --example envelope_icount
//! for n in 0 1000; do valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n \
//!     target/release/examples/envelope_icount open $n; done
//! ```
//! (per-iteration instructions = (total(1000) - total(0)) / 1000; the modes are `open`,
//! `limit_open`, `seal` and `limit_seal`, each built as in `benches/envelope.rs`.)

use std::hint::black_box;
use std::sync::Arc;

use envelope::{Context, KekProvider, SoftwareKek, open, seal};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

const SECRET: [u8; 64] = [0x5a; 64];

fn key(bytes: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, bytes).expect("32-byte key"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "open".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);

    let kek: Arc<dyn KekProvider> = Arc::new(SoftwareKek::random("bench").expect("kek"));
    let keks = [kek.clone()];
    let ctx = Context::new("global", "db-password", 1);
    let sealed = seal(&SECRET, &ctx, &keks).expect("seal");
    // Warm-up: pools, thread caches and the scratch buffer, as criterion's warm-up does.
    for _ in 0..4 {
        drop(open(&sealed, &ctx, &keks).expect("open"));
        drop(seal(&SECRET, &ctx, &keks).expect("seal"));
    }

    // Same AAD lengths as the benchmark's limit (see `aad_lens` there).
    let context = 15 + 1 + 2 + ctx.scope.len() + 2 + ctx.key.len() + 8;
    let id = kek.id();
    let stanza_aad = vec![0x33u8; context + 1 + id.kind().len() + 1 + id.label().len() + 4];
    let payload_aad = vec![0x44u8; context + 7];
    let (payload_key, wrap_key) = ([0x11u8; 32], [0x22u8; 32]);
    let nonce = [0u8; NONCE_LEN];
    let mut wrapped = [0x55u8; 48];
    let mut sealed_payload = [0x5au8; 80];
    for (buf, k, aad) in [
        (&mut wrapped[..], &wrap_key, &stanza_aad),
        (&mut sealed_payload[..], &payload_key, &payload_aad),
    ] {
        let (plain, tag) = buf.split_at_mut(buf.len() - 16);
        let t = key(k)
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad[..]),
                plain,
            )
            .expect("seal");
        tag.copy_from_slice(t.as_ref());
    }

    for _ in 0..n {
        match mode.as_str() {
            "open" => drop(black_box(
                open(black_box(&sealed), black_box(&ctx), &keks).expect("open"),
            )),
            "seal" => drop(black_box(
                seal(black_box(&SECRET), black_box(&ctx), &keks).expect("seal"),
            )),
            "limit_open" => {
                let mut d = wrapped;
                let mut p = sealed_payload;
                black_box(
                    key(black_box(&wrap_key))
                        .open_in_place(
                            Nonce::assume_unique_for_key(nonce),
                            Aad::from(&stanza_aad[..]),
                            &mut d,
                        )
                        .expect("open")
                        .len(),
                );
                black_box(
                    key(black_box(&payload_key))
                        .open_in_place(
                            Nonce::assume_unique_for_key(nonce),
                            Aad::from(&payload_aad[..]),
                            &mut p,
                        )
                        .expect("open")
                        .len(),
                );
            }
            "limit_seal" => {
                let mut d = [0x55u8; 32];
                let mut p = SECRET;
                let _ = black_box(
                    key(black_box(&wrap_key))
                        .seal_in_place_separate_tag(
                            Nonce::assume_unique_for_key(nonce),
                            Aad::from(&stanza_aad[..]),
                            &mut d,
                        )
                        .expect("seal"),
                );
                let _ = black_box(
                    key(black_box(&payload_key))
                        .seal_in_place_separate_tag(
                            Nonce::assume_unique_for_key(nonce),
                            Aad::from(&payload_aad[..]),
                            &mut p,
                        )
                        .expect("seal"),
                );
            }
            other => panic!("unknown mode {other}"),
        }
    }
}
