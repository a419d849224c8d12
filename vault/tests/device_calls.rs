//! How often opening a vault asks its root KEKs: a device call (an HSM decrypt, a TPM unseal)
//! is the slow part of a one-shot command. The canary is asked only when a KEK does not open
//! the integrity key, and still refuses a KEK that is not the pinned one.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{direct, kek, tiered};
use envelope::{Assurance, Dek, Health, KekId, KekProvider, SoftwareKek, StanzaRef};
use vault::{Error, Kek, Vault};

/// A software KEK that counts its unwraps, standing in for a device.
#[derive(Debug)]
struct Counted {
    inner: Arc<dyn KekProvider>,
    unwraps: Arc<AtomicUsize>,
}

impl KekProvider for Counted {
    fn id(&self) -> &KekId {
        self.inner.id()
    }

    fn wrap(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, envelope::Error> {
        self.inner.wrap(dek, aad)
    }

    fn unwrap(&self, stanza: &StanzaRef<'_>, aad: &[u8]) -> Option<Result<Dek, envelope::Error>> {
        let result = self.inner.unwrap(stanza, aad);
        if result.is_some() {
            self.unwraps.fetch_add(1, Ordering::SeqCst);
        }
        result
    }

    fn health(&self) -> Health {
        self.inner.health()
    }

    fn assurance(&self) -> Assurance {
        self.inner.assurance()
    }
}

/// `kek` counted: the KEK and its unwrap counter.
fn counted(kek: &Kek) -> (Kek, Arc<AtomicUsize>) {
    let unwraps = Arc::new(AtomicUsize::new(0));
    let provider = Counted {
        inner: Arc::clone(&kek.provider),
        unwraps: Arc::clone(&unwraps),
    };
    let kek = Kek {
        uri: kek.uri.clone(),
        provider: Arc::new(provider),
    };
    (kek, unwraps)
}

#[test]
fn opening_a_direct_vault_asks_each_kek_once_and_a_read_once_more() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (kek("a"), kek("b"));
    let vault = Vault::init_with(dir.path(), &direct(), vec![a.clone(), b.clone()]).expect("init");
    vault.set("global", "k", b"v").expect("set");
    drop(vault);
    let (counted_a, a_calls) = counted(&a);
    let (counted_b, b_calls) = counted(&b);
    let vault = Vault::open(dir.path(), None, vec![counted_a, counted_b]).expect("open");
    // The integrity key, once each; the canaries are not asked when it opens.
    assert_eq!(a_calls.load(Ordering::SeqCst), 1);
    assert_eq!(b_calls.load(Ordering::SeqCst), 1);
    let value = vault.get("global", "k", None).expect("get");
    assert_eq!(value.expose_secret(), b"v");
    let calls = a_calls.load(Ordering::SeqCst) + b_calls.load(Ordering::SeqCst);
    assert_eq!(calls, 3, "one unwrap for the secret's DEK");
}

#[test]
fn opening_a_tiered_vault_asks_the_kek_for_the_integrity_key_and_the_epoch_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    Vault::init_with(dir.path(), &tiered(), vec![a.clone()]).expect("init");
    let (counted_a, calls) = counted(&a);
    Vault::open(dir.path(), None, vec![counted_a]).expect("open");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_kek_that_is_not_the_pinned_one_is_still_refused_and_left_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (kek("a"), kek("b"));
    let vault = Vault::init_with(dir.path(), &direct(), vec![a.clone(), b.clone()]).expect("init");
    vault.set("global", "k", b"v").expect("set");
    drop(vault);
    let impostor = Kek {
        uri: a.uri.clone(),
        provider: Arc::new(SoftwareKek::new(
            KekId::new("memory", "a", 1).expect("id"),
            Dek::generate().expect("dek"),
        )),
    };
    let (impostor, impostor_calls) = counted(&impostor);
    // Alone: refused as a KEK whose canary does not open (asked for the integrity key, then
    // for its canary), not as a vault whose integrity key was replaced.
    let err = Vault::open(dir.path(), None, vec![impostor.clone()]).expect_err("impostor");
    assert!(
        matches!(err, Error::Envelope(envelope::Error::StanzaRejected { .. })),
        "{err:?}"
    );
    assert_eq!(impostor_calls.load(Ordering::SeqCst), 2);
    // Beside the right KEK: left out, reads go through b, wrapping says a is missing.
    let vault = Vault::open(dir.path(), None, vec![impostor, b]).expect("open with b");
    assert_eq!(
        vault.get("global", "k", None).expect("get").expose_secret(),
        b"v"
    );
    let err = vault.set("global", "k", b"w").expect_err("a is missing");
    assert!(err.to_string().contains("memory:a#v1"), "{err}");
    assert_eq!(vault.status().expect("status").keks.len(), 1);
}
