//! Opening (and rewrapping) asks each KEK for at most 2 unwraps that fail, however many
//! stanzas an envelope names it in: forged stanzas cannot multiply device calls, PIN uses
//! or touch prompts (FORMAT.md, "Opening").

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use envelope::{
    Assurance, Context, Dek, EnvelopeRef, Error, Health, KekId, KekProvider, MAX_STANZAS,
    SoftwareKek, StanzaRef, open, rewrap, seal,
};

const CTX: Context<'static> = Context {
    scope: "global",
    key: "db-password",
    version: 1,
};

/// A software KEK that counts the unwraps it is asked for of stanzas that are its own (a
/// stand-in for a device, where each of them costs a round trip, a PIN use or a touch; a
/// stanza that is not its own is told apart by its id, without the device).
#[derive(Debug)]
struct CountingKek {
    inner: SoftwareKek,
    unwraps: AtomicUsize,
}

impl CountingKek {
    fn new(label: &str) -> Arc<CountingKek> {
        Arc::new(CountingKek {
            inner: SoftwareKek::random(label).expect("kek"),
            unwraps: AtomicUsize::new(0),
        })
    }

    fn calls(&self) -> usize {
        self.unwraps.swap(0, Ordering::SeqCst)
    }
}

impl KekProvider for CountingKek {
    fn id(&self) -> &KekId {
        self.inner.id()
    }

    fn wrap(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, Error> {
        self.inner.wrap(dek, aad)
    }

    fn unwrap(&self, stanza: &StanzaRef<'_>, aad: &[u8]) -> Option<Result<Dek, Error>> {
        let answer = self.inner.unwrap(stanza, aad);
        if answer.is_some() {
            self.unwraps.fetch_add(1, Ordering::SeqCst);
        }
        answer
    }

    fn health(&self) -> Health {
        Health::Ok
    }

    fn assurance(&self) -> Assurance {
        Assurance::default()
    }
}

fn dynamic(kek: &Arc<CountingKek>) -> Arc<dyn KekProvider> {
    Arc::clone(kek) as Arc<dyn KekProvider>
}

/// `env` with its stanzas replaced by `stanzas`, keeping the fixed header prefix and the
/// ciphertext (FORMAT.md, the stanza layout).
fn with_stanzas(env: &[u8], stanzas: &[StanzaRef<'_>]) -> Vec<u8> {
    let header_len = EnvelopeRef::parse(env).expect("parse").header().len();
    let mut out = env[..7].to_vec();
    out.push(u8::try_from(stanzas.len()).expect("count"));
    for s in stanzas {
        out.push(u8::try_from(s.kind.len()).expect("kind"));
        out.extend_from_slice(s.kind.as_bytes());
        out.push(u8::try_from(s.label.len()).expect("label"));
        out.extend_from_slice(s.label.as_bytes());
        out.extend_from_slice(&s.version.to_be_bytes());
        out.extend_from_slice(&u16::try_from(s.body.len()).expect("body").to_be_bytes());
        out.extend_from_slice(s.body);
    }
    out.extend_from_slice(&env[header_len..]);
    out
}

fn stanzas_of(env: &[u8]) -> Vec<StanzaRef<'_>> {
    EnvelopeRef::parse(env).expect("parse").stanzas().collect()
}

/// A stanza that names `kek` but whose body no key made: the KEK rejects it.
fn forged<'a>(kek: &'a CountingKek, body: &'a [u8]) -> StanzaRef<'a> {
    StanzaRef {
        kind: kek.id().kind(),
        label: kek.id().label(),
        version: kek.id().version(),
        body,
    }
}

#[test]
fn sixteen_forged_stanzas_cost_two_unwraps() {
    let x = CountingKek::new("x");
    let env = seal(b"secret", &CTX, &[dynamic(&x)]).expect("seal");
    x.calls();
    let body = [0x5a; 61];
    let all_forged = with_stanzas(&env, &[forged(&x, &body); MAX_STANZAS]);
    let err = open(&all_forged, &CTX, &[dynamic(&x)]).expect_err("forged");
    assert!(matches!(err, Error::StanzaRejected { .. }), "{err:?}");
    assert_eq!(x.calls(), 2, "unwraps asked of the KEK");

    let err = rewrap(&all_forged, &CTX, &[dynamic(&x)], &[dynamic(&x)]).expect_err("forged");
    assert!(matches!(err, Error::StanzaRejected { .. }), "{err:?}");
    assert_eq!(x.calls(), 2, "unwraps asked of the KEK by rewrap");
}

#[test]
fn sixteen_stanzas_swapped_in_from_other_envelopes_cost_two_unwraps() {
    // Each swapped-in stanza unwraps (to another envelope's DEK), and the payload then
    // fails to authenticate under it: that counts as a failed unwrap too.
    let x = CountingKek::new("x");
    let env = seal(b"secret", &CTX, &[dynamic(&x)]).expect("seal");
    let others: Vec<Vec<u8>> = (0..MAX_STANZAS)
        .map(|_| seal(b"other", &CTX, &[dynamic(&x)]).expect("seal"))
        .collect();
    let swapped: Vec<StanzaRef<'_>> = others.iter().map(|o| stanzas_of(o)[0]).collect();
    let spliced = with_stanzas(&env, &swapped);
    x.calls();
    let err = open(&spliced, &CTX, &[dynamic(&x)]).expect_err("swapped");
    assert!(matches!(err, Error::Tampered), "{err:?}");
    assert_eq!(x.calls(), 2, "unwraps asked of the KEK");

    let err = rewrap(&spliced, &CTX, &[dynamic(&x)], &[dynamic(&x)]).expect_err("swapped");
    assert!(matches!(err, Error::Tampered), "{err:?}");
    assert_eq!(x.calls(), 2, "unwraps asked of the KEK by rewrap");
}

#[test]
fn a_kek_past_its_two_failures_leaves_the_other_keks_their_stanzas() {
    let (x, y) = (CountingKek::new("x"), CountingKek::new("y"));
    let env = seal(b"secret", &CTX, &[dynamic(&x), dynamic(&y)]).expect("seal");
    let body = [0x5a; 61];
    let mut stanzas = vec![forged(&x, &body); MAX_STANZAS - 1];
    stanzas.push(stanzas_of(&env)[1]);
    let edited = with_stanzas(&env, &stanzas);
    x.calls();
    let opened = open(&edited, &CTX, &[dynamic(&x), dynamic(&y)]).expect("y opens");
    assert_eq!(opened.expose_secret(), b"secret");
    assert_eq!(x.calls(), 2, "unwraps asked of x");
    assert_eq!(y.calls(), 1, "unwraps asked of y");
}

#[test]
fn one_failure_does_not_hide_the_good_stanza_but_two_do() {
    let x = CountingKek::new("x");
    let env = seal(b"secret", &CTX, &[dynamic(&x)]).expect("seal");
    let good = stanzas_of(&env)[0];
    let body = [0x5a; 61];
    let one_forged = with_stanzas(&env, &[forged(&x, &body), good]);
    let opened = open(&one_forged, &CTX, &[dynamic(&x)]).expect("opens");
    assert_eq!(opened.expose_secret(), b"secret");
    assert_eq!(x.calls(), 2, "the forged stanza and the good one");

    // Someone who can write the store can as well delete the envelope: two forged stanzas
    // in front of the good one make it fail, as documented.
    let two_forged = with_stanzas(&env, &[forged(&x, &body), forged(&x, &body), good]);
    let err = open(&two_forged, &CTX, &[dynamic(&x)]).expect_err("past the limit");
    assert!(matches!(err, Error::StanzaRejected { .. }), "{err:?}");
    assert_eq!(x.calls(), 2, "unwraps asked of x");
}
