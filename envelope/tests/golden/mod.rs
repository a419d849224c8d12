//! The golden vectors of envelope formats v1 and v2: their test KEKs, contexts and
//! plaintexts. Shared by the
//! generator (`examples/make_golden_vectors.rs`) and the test that opens the checked-in files
//! (`tests/golden_vectors.rs`).
//!
//! The KEK keys below are public test keys: never use them for real secrets.

// Each test crate and the example that includes this module uses a different part of it.
#![allow(dead_code)]

use std::sync::Arc;

use envelope::{Context, Dek, KekId, KekProvider, SoftwareKek};

/// Kind of the test KEKs' ids (a software KEK, like the in-memory one).
pub const TEST_KEK_KIND: &str = "test";

/// A public test KEK: the label, key version and the 32 key bytes.
pub struct TestKek {
    pub label: &'static str,
    pub version: u32,
    pub key: [u8; 32],
}

/// KEK A: key bytes 0x00..=0x1f.
pub const KEK_A: TestKek = TestKek {
    label: "golden-test-key-a (public, never use)",
    version: 1,
    key: counting(0x00),
};

/// KEK B: key bytes 0x20..=0x3f, key version 7.
pub const KEK_B: TestKek = TestKek {
    label: "golden-test-key-b (public, never use)",
    version: 7,
    key: counting(0x20),
};

const fn counting(start: u8) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = start + i as u8;
        i += 1;
    }
    out
}

impl TestKek {
    pub fn id(&self) -> KekId {
        KekId::new(TEST_KEK_KIND, self.label, self.version).expect("valid test KEK id")
    }

    pub fn provider(&self) -> Arc<dyn KekProvider> {
        let key = Dek::from_slice(&self.key).expect("32-byte key");
        Arc::new(SoftwareKek::new(self.id(), key))
    }
}

/// One golden vector: files `<name>.bin` and `<name>.json` under `tests/vectors/`.
pub struct Vector {
    pub name: &'static str,
    /// The format version (the envelope's version byte).
    pub format: u8,
    pub scope: &'static str,
    pub key: &'static str,
    pub version: u64,
    pub plaintext: &'static [u8],
    /// The KEKs it is wrapped for, in stanza order.
    pub keks: &'static [&'static TestKek],
}

impl Vector {
    pub fn context(&self) -> Context<'static> {
        Context::new(self.scope, self.key, self.version)
    }
}

const SECRET_64B: &[u8; 64] = b"0123456789abcdef0123456789ABCDEF-64-byte-golden-secret-payload!!";

pub const VECTORS: &[Vector] = &[
    Vector {
        format: 1,
        name: "empty-secret",
        scope: "global",
        key: "empty",
        version: 1,
        plaintext: b"",
        keks: &[&KEK_A],
    },
    Vector {
        format: 1,
        name: "secret-64B",
        scope: "principal:alice",
        key: "db-password",
        version: 3,
        plaintext: SECRET_64B,
        keks: &[&KEK_A],
    },
    Vector {
        format: 1,
        name: "two-stanzas",
        scope: "global",
        key: "api-token",
        version: 42,
        plaintext: b"correct horse battery staple",
        keks: &[&KEK_A, &KEK_B],
    },
    // Format v2: added after the v1 ones, so those keep their DEKs and nonces (the
    // generator numbers vectors by position).
    Vector {
        format: 2,
        name: "v2-empty-secret",
        scope: "global",
        key: "empty",
        version: 2,
        plaintext: b"",
        keks: &[&KEK_A],
    },
    Vector {
        format: 2,
        name: "v2-secret-64B",
        scope: "principal:bob",
        key: "db-password",
        version: 4,
        plaintext: SECRET_64B,
        keks: &[&KEK_A],
    },
    Vector {
        format: 2,
        name: "v2-two-stanzas",
        scope: "global",
        key: "api-token",
        version: 43,
        plaintext: b"correct horse battery staple",
        keks: &[&KEK_B, &KEK_A],
    },
];

/// The directory holding the checked-in vectors.
pub fn vectors_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}
