//! The KEK provider suite (see `kek_suite!`): what every `KekProvider` must do, whatever
//! holds its key. Each check is a plain function so a provider can also call one directly.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use envelope::{Context, Dek, Health, KekId, KekProvider, StanzaRef};

/// The AAD the suite wraps under.
const AAD: &[u8] = b"compliance kek suite aad";

/// Builds a provider from a test's own directory.
type MakeKek = Box<dyn Fn(&Path) -> Arc<dyn KekProvider>>;
/// Reads the secrets behind a provider (key file bytes, passphrase) from its directory.
type ReadSecrets = Box<dyn Fn(&Path) -> Vec<Vec<u8>>>;

/// One test's KEK, made in a directory of its own that lives as long as the fixture.
pub struct Fixture {
    dir: tempfile::TempDir,
    /// The KEK under test, made by `create`.
    pub kek: Arc<dyn KekProvider>,
    reopen: MakeKek,
    other: MakeKek,
    secrets: ReadSecrets,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture")
            .field("dir", &self.dir.path())
            .field("kek", &self.kek)
            .finish_non_exhaustive()
    }
}

impl Fixture {
    /// Makes a new directory and runs `create` in it.
    pub fn new(
        create: impl Fn(&Path) -> Arc<dyn KekProvider>,
        reopen: impl Fn(&Path) -> Arc<dyn KekProvider> + 'static,
        other: impl Fn(&Path) -> Arc<dyn KekProvider> + 'static,
        secrets: impl Fn(&Path) -> Vec<Vec<u8>> + 'static,
    ) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory for the KEK");
        let kek = create(dir.path());
        Self {
            dir,
            kek,
            reopen: Box::new(reopen),
            other: Box::new(other),
            secrets: Box::new(secrets),
        }
    }

    /// A new instance of the same KEK, opened from the same directory.
    pub fn reopen(&self) -> Arc<dyn KekProvider> {
        (self.reopen)(self.dir.path())
    }

    /// A different KEK.
    pub fn other(&self) -> Arc<dyn KekProvider> {
        (self.other)(self.dir.path())
    }

    /// The secrets behind the KEK, which must never show in its `Debug`.
    pub fn secrets(&self) -> Vec<Vec<u8>> {
        (self.secrets)(self.dir.path())
    }
}

/// A stanza naming `id` with `body`.
pub fn stanza<'a>(id: &'a KekId, body: &'a [u8]) -> StanzaRef<'a> {
    StanzaRef {
        kind: id.kind(),
        label: id.label(),
        version: id.version(),
        body,
    }
}

fn wrap_new(kek: &dyn KekProvider) -> (Dek, Vec<u8>) {
    let dek = Dek::generate().expect("a DEK");
    let body = kek.wrap(&dek, AAD).expect("wrap");
    (dek, body)
}

fn assert_rejected(kek: &dyn KekProvider, body: &[u8], aad: &[u8], what: &str) {
    match kek.unwrap(&stanza(kek.id(), body), aad) {
        Some(Err(_)) => {}
        Some(Ok(_)) => panic!("{what}: unwrapped"),
        None => panic!("{what}: its own stanza was reported as not its own"),
    }
}

/// Wrap then unwrap gives the DEK back.
pub fn round_trip(kek: &dyn KekProvider) {
    let (dek, body) = wrap_new(kek);
    let back = kek
        .unwrap(&stanza(kek.id(), &body), AAD)
        .expect("mine")
        .expect("unwrap");
    assert_eq!(back.expose_secret(), dek.expose_secret());
}

/// Unwrapping under other AAD fails (the stanza is bound to its envelope).
pub fn wrong_aad_is_rejected(kek: &dyn KekProvider) {
    let (_, body) = wrap_new(kek);
    assert_rejected(
        kek,
        &body,
        b"compliance kek suite aae",
        "a stanza under another AAD",
    );
    assert_rejected(kek, &body, b"", "a stanza under empty AAD");
}

/// Changing any byte of the body makes unwrap fail.
pub fn every_byte_flip_is_rejected(kek: &dyn KekProvider) {
    let (_, body) = wrap_new(kek);
    for at in 0..body.len() {
        for mask in [0x01u8, 0x80] {
            let mut flipped = body.clone();
            flipped[at] ^= mask;
            assert_rejected(kek, &flipped, AAD, &format!("byte {at} xor {mask:#04x}"));
        }
    }
}

/// A cut or lengthened body fails to unwrap, without panicking.
pub fn truncated_or_extended_body_is_rejected(kek: &dyn KekProvider) {
    let (_, body) = wrap_new(kek);
    for len in 0..body.len() {
        assert_rejected(kek, &body[..len], AAD, &format!("body cut to {len} bytes"));
    }
    let mut longer = body.clone();
    longer.push(0);
    assert_rejected(kek, &longer, AAD, "body with a byte appended");
}

/// Each of two KEKs says "not mine" to the other's stanza, even under the same AAD.
pub fn another_keks_stanza_is_not_mine(kek: &dyn KekProvider, other: &dyn KekProvider) {
    assert_ne!(kek.id(), other.id(), "the other KEK must have another id");
    for (wrapper, reader) in [(kek, other), (other, kek)] {
        let (_, body) = wrap_new(wrapper);
        let result = reader.unwrap(&stanza(wrapper.id(), &body), AAD);
        assert!(
            result.is_none(),
            "{} claimed a stanza of {}",
            reader.id(),
            wrapper.id()
        );
    }
}

/// A stanza naming the same kind and label but another version (or another label) is not
/// this KEK's.
pub fn another_version_or_label_is_not_mine(kek: &dyn KekProvider) {
    let (_, body) = wrap_new(kek);
    let id = kek.id();
    for version in [id.version().wrapping_add(1), id.version().wrapping_sub(1)] {
        let other = StanzaRef {
            version,
            ..stanza(id, &body)
        };
        assert!(
            kek.unwrap(&other, AAD).is_none(),
            "{id} claimed version {version}"
        );
    }
    let label = format!("{}x", id.label());
    let other = StanzaRef {
        label: &label,
        ..stanza(id, &body)
    };
    assert!(
        kek.unwrap(&other, AAD).is_none(),
        "{id} claimed label {label}"
    );
}

/// A reopened instance unwraps stanzas the first one wrapped, and the other way round.
pub fn reopened_unwraps_earlier_stanzas(kek: &dyn KekProvider, reopened: &dyn KekProvider) {
    for (wrapper, reader) in [(kek, reopened), (reopened, kek)] {
        let (dek, body) = wrap_new(wrapper);
        let back = reader
            .unwrap(&stanza(reader.id(), &body), AAD)
            .expect("the reopened KEK claims its stanza")
            .expect("unwrap after reopen");
        assert_eq!(back.expose_secret(), dek.expose_secret());
    }
}

/// 8 threads each wrap and unwrap 200 DEKs on one shared provider; all round-trip.
pub fn concurrent_wrap_unwrap(kek: &Arc<dyn KekProvider>) {
    std::thread::scope(|scope| {
        for thread in 0..8u32 {
            let kek = Arc::clone(kek);
            scope.spawn(move || {
                for i in 0..200u32 {
                    let aad = [thread.to_be_bytes(), i.to_be_bytes()].concat();
                    let dek = Dek::generate().expect("a DEK");
                    let body = kek.wrap(&dek, &aad).expect("wrap");
                    let back = kek.unwrap(&stanza(kek.id(), &body), &aad);
                    let back = back.expect("mine").expect("unwrap");
                    assert_eq!(back.expose_secret(), dek.expose_secret(), "{thread}/{i}");
                }
            });
        }
    });
}

/// `Debug` of the provider shows none of `secrets` (nor a DEK it wrapped) in any common
/// encoding: raw text, hex, base64, or Rust's byte-array form.
pub fn debug_shows_no_secrets(kek: &dyn KekProvider, secrets: &[Vec<u8>]) {
    assert!(
        secrets.iter().any(|s| !s.is_empty()),
        "the suite needs the KEK's secrets to check Debug against"
    );
    let (dek, _) = wrap_new(kek);
    let debug = format!("{kek:?}\n{kek:#?}");
    let wrapped = dek.expose_secret().to_vec();
    for secret in secrets.iter().chain([&wrapped]).filter(|s| !s.is_empty()) {
        for shown in encodings(secret) {
            assert!(
                !debug.contains(&shown),
                "Debug shows a secret as {shown:?}: {debug}"
            );
        }
    }
}

fn encodings(secret: &[u8]) -> Vec<String> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let mut shown = vec![
        hex.to_uppercase(),
        hex,
        STANDARD.encode(secret),
        STANDARD_NO_PAD.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        format!("{secret:?}"),
        format!("{secret:#?}"),
    ];
    // Text secrets (passphrases) as text; short ones would match by chance.
    if let Ok(text) = std::str::from_utf8(secret)
        && text.trim().len() >= 6
    {
        shown.push(text.trim().to_owned());
    }
    shown
}

/// The id survives reopening and differs from another KEK's.
pub fn id_is_stable_and_distinct(
    kek: &dyn KekProvider,
    reopened: &dyn KekProvider,
    other: &dyn KekProvider,
) {
    assert_eq!(kek.id(), reopened.id());
    assert_eq!(kek.id().to_string(), reopened.id().to_string());
    assert_ne!(kek.id(), other.id());
}

/// A freshly made KEK is healthy.
pub fn health_is_ok(kek: &dyn KekProvider) {
    assert_eq!(kek.health(), Health::Ok);
}

/// An envelope sealed under the KEK opens with the reopened KEK, and not with another.
pub fn seal_then_open_after_reopen(
    kek: &Arc<dyn KekProvider>,
    reopened: &Arc<dyn KekProvider>,
    other: &Arc<dyn KekProvider>,
) {
    let ctx = Context::new("global", "compliance/kek", 3);
    let secret = b"a secret sealed by the KEK suite";
    let sealed = envelope::seal(secret, &ctx, std::slice::from_ref(kek)).expect("seal");
    let opened = envelope::open(&sealed, &ctx, std::slice::from_ref(reopened)).expect("open");
    assert_eq!(opened.expose_secret(), secret);
    let err = envelope::open(&sealed, &ctx, std::slice::from_ref(other));
    assert!(
        matches!(err, Err(envelope::Error::NoUsableKek { .. })),
        "{err:?}"
    );
    let moved = Context::new("global", "compliance/other", 3);
    assert!(envelope::open(&sealed, &moved, std::slice::from_ref(reopened)).is_err());
}

/// Runs the KEK suite on a provider: a module `$name` of tests, each with its own
/// directory. `create` makes a new KEK in the directory, `reopen` opens that KEK again (a
/// new instance), `other` makes a different KEK, `secrets` returns the bytes that must
/// never show in `Debug` (key file contents, passphrase, PIN).
///
/// The optional `run` names a runner, a function taking the test body as `impl FnOnce()`:
/// each test's body is then `run(|| body)`, e.g. to run it inside a private HSM token.
/// Without it the body runs directly.
///
/// ```text
/// compliance::kek_suite!(file_kek,
///     create: |dir: &Path| -> Arc<dyn KekProvider> { ... },
///     reopen: |dir: &Path| -> Arc<dyn KekProvider> { ... },
///     other: |dir: &Path| -> Arc<dyn KekProvider> { ... },
///     secrets: |dir: &Path| -> Vec<Vec<u8>> { ... },
///     run: on_private_token);   // optional
/// ```
#[macro_export]
macro_rules! kek_suite {
    ($name:ident, create: $create:expr, reopen: $reopen:expr, other: $other:expr,
     secrets: $secrets:expr $(, run: $run:expr)? $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::kek_suite as suite;

            fn fixture() -> suite::Fixture {
                suite::Fixture::new($create, $reopen, $other, $secrets)
            }

            /// Runs a test's body with the suite's runner.
            fn run(body: impl FnOnce()) {
                ($crate::__runner!($($run)?))(body)
            }

            #[test]
            fn round_trip() {
                run(|| suite::round_trip(&*fixture().kek));
            }
            #[test]
            fn wrong_aad_is_rejected() {
                run(|| suite::wrong_aad_is_rejected(&*fixture().kek));
            }
            #[test]
            fn every_byte_flip_is_rejected() {
                run(|| suite::every_byte_flip_is_rejected(&*fixture().kek));
            }
            #[test]
            fn truncated_or_extended_body_is_rejected() {
                run(|| suite::truncated_or_extended_body_is_rejected(&*fixture().kek));
            }
            #[test]
            fn another_keks_stanza_is_not_mine() {
                run(|| {
                    let f = fixture();
                    suite::another_keks_stanza_is_not_mine(&*f.kek, &*f.other());
                });
            }
            #[test]
            fn another_version_or_label_is_not_mine() {
                run(|| suite::another_version_or_label_is_not_mine(&*fixture().kek));
            }
            #[test]
            fn reopened_unwraps_earlier_stanzas() {
                run(|| {
                    let f = fixture();
                    suite::reopened_unwraps_earlier_stanzas(&*f.kek, &*f.reopen());
                });
            }
            #[test]
            fn concurrent_wrap_unwrap() {
                run(|| suite::concurrent_wrap_unwrap(&fixture().kek));
            }
            #[test]
            fn debug_shows_no_secrets() {
                run(|| {
                    let f = fixture();
                    suite::debug_shows_no_secrets(&*f.kek, &f.secrets());
                    suite::debug_shows_no_secrets(&*f.reopen(), &f.secrets());
                });
            }
            #[test]
            fn id_is_stable_and_distinct() {
                run(|| {
                    let f = fixture();
                    suite::id_is_stable_and_distinct(&*f.kek, &*f.reopen(), &*f.other());
                });
            }
            #[test]
            fn health_is_ok() {
                run(|| {
                    let f = fixture();
                    suite::health_is_ok(&*f.kek);
                    suite::health_is_ok(&*f.reopen());
                });
            }
            #[test]
            fn seal_then_open_after_reopen() {
                run(|| {
                    let f = fixture();
                    suite::seal_then_open_after_reopen(&f.kek, &f.reopen(), &f.other());
                });
            }
        }
    };
}
