//! The store suite: the contract every `SecretStore` keeps, checked through a `Vault` so
//! that "no plaintext at rest" is checked on what really lands on disk.
//!
//! A store joins with one line in a test file:
//! ```text
//! compliance::store_suite!(sqlite, vault::StoreKind::Sqlite, durable);
//! compliance::store_suite!(memory, vault::StoreKind::Memory, ephemeral);
//! ```
//! `durable` stores must keep secrets across a reopen; `ephemeral` ones must start empty.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use envelope::{KekProvider, SoftwareKek};
use vault::{Error, Kek, StoreKind, Vault};

/// Whether a store keeps secrets across a reopen of the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Secrets survive the process (SQLite).
    Durable,
    /// Secrets live as long as the open vault (memory).
    Ephemeral,
}

/// Where a store that lives outside the vault directory (a database server) keeps its data,
/// made ready for a test before the vault is created, and held for as long as the test runs.
pub trait StoreHome: std::fmt::Debug {
    /// The files the store's data lands in, once written through (for the check that no
    /// plaintext is at rest).
    fn files_at_rest(&self) -> Vec<PathBuf>;
}

/// A vault on its own temporary directory, with an in-memory KEK unless the suite was given
/// a KEK maker.
#[derive(Debug)]
pub struct Fixture {
    dir: tempfile::TempDir,
    kind: StoreKind,
    kek: Kek,
    home: Option<Box<dyn StoreHome>>,
}

impl Fixture {
    /// A fresh directory and in-memory KEK for a store of `kind`.
    pub fn new(kind: StoreKind) -> Self {
        Self::with_kek(kind, memory_kek)
    }

    /// A fresh directory for a store of `kind`, with the root KEK `make_kek` builds (given
    /// the vault directory, which exists but holds no vault yet). The same KEK serves
    /// `init` and every `reopen`.
    pub fn with_kek(kind: StoreKind, make_kek: impl FnOnce(&Path) -> Kek) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let kek = make_kek(dir.path());
        Fixture {
            dir,
            kind,
            kek,
            home: None,
        }
    }

    /// Like [`Fixture::with_kek`], for a store whose data lives where `make_home` prepares
    /// it (given the vault directory, where it writes what points the vault at it).
    pub fn with_home(
        kind: StoreKind,
        make_kek: impl FnOnce(&Path) -> Kek,
        make_home: impl FnOnce(&Path) -> Box<dyn StoreHome>,
    ) -> Self {
        let mut fixture = Self::with_kek(kind, make_kek);
        fixture.home = Some(make_home(fixture.dir()));
        fixture
    }

    /// Every file the vault's state is in: below its directory, and where its store's
    /// data lands.
    pub fn files_at_rest(&self) -> Vec<PathBuf> {
        let mut files = files_below(self.dir());
        if let Some(home) = &self.home {
            files.extend(home.files_at_rest());
        }
        files
    }

    /// The vault directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The store kind.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The vault's root KEK.
    pub fn kek(&self) -> &Kek {
        &self.kek
    }

    fn keks(&self) -> Vec<Kek> {
        vec![self.kek.clone()]
    }

    /// Creates the vault.
    pub fn init(&self) -> Vault {
        Vault::init(self.dir(), self.kind, self.keks()).expect("init")
    }

    /// Opens the vault again, as a new process would.
    pub fn reopen(&self) -> Vault {
        Vault::open(self.dir(), Some(self.kind), self.keks()).expect("reopen")
    }
}

/// The default root KEK of the suite: a random in-memory `SoftwareKek`.
pub fn memory_kek(_vault_dir: &Path) -> Kek {
    let provider: Arc<dyn KekProvider> =
        Arc::new(SoftwareKek::random("store-suite").expect("random KEK"));
    Kek {
        uri: "memory:store-suite".into(),
        provider,
    }
}

fn get(vault: &Vault, scope: &str, key: &str, version: Option<u64>) -> Vec<u8> {
    vault
        .get(scope, key, version)
        .unwrap_or_else(|e| panic!("get {scope} {key} {version:?}: {e}"))
        .expose_secret()
        .to_vec()
}

fn assert_not_found(result: Result<impl Sized, Error>, what: &str) {
    match result {
        Err(Error::NotFound { .. }) => {}
        Err(e) => panic!("{what}: expected NotFound, got {e}"),
        Ok(_) => panic!("{what}: expected NotFound, got a value"),
    }
}

/// A value set is the value got, as version 1.
pub fn set_then_get(fx: &Fixture) {
    let vault = fx.init();
    assert_eq!(
        vault.set("global", "db.password", b"hunter2").expect("set"),
        1
    );
    assert_eq!(get(&vault, "global", "db.password", None), b"hunter2");
    assert_eq!(vault.set("global", "empty", b"").expect("set empty"), 1);
    assert_eq!(get(&vault, "global", "empty", None), b"");
}

/// Overwriting adds a version; the latest is returned by default and older ones on request.
pub fn overwrite_keeps_versions(fx: &Fixture) {
    let vault = fx.init();
    assert_eq!(vault.set("global", "k", b"one").expect("set 1"), 1);
    assert_eq!(vault.set("global", "k", b"two").expect("set 2"), 2);
    assert_eq!(get(&vault, "global", "k", None), b"two");
    assert_eq!(get(&vault, "global", "k", Some(1)), b"one");
    assert_eq!(get(&vault, "global", "k", Some(2)), b"two");
    let listed = vault.list(None).expect("list");
    assert_eq!(listed.len(), 1);
    let info = &listed[0];
    assert_eq!((info.version, info.versions), (2, 2));
    assert!(info.created_at <= info.updated_at && info.created_at > 0);
}

/// Missing keys and missing versions are `NotFound`.
pub fn get_missing_is_not_found(fx: &Fixture) {
    let vault = fx.init();
    assert_not_found(vault.get("global", "nope", None), "missing key");
    vault.set("global", "k", b"v").expect("set");
    assert_not_found(vault.get("global", "k", Some(2)), "missing version");
    assert_not_found(vault.get("global", "k", Some(0)), "version 0");
    assert_not_found(vault.get("global", "k", Some(u64::MAX)), "version u64::MAX");
}

/// Delete removes every version; deleting again, or a missing key, is `NotFound`.
pub fn delete_removes_all_versions(fx: &Fixture) {
    let vault = fx.init();
    vault.set("global", "k", b"1").expect("set");
    vault.set("global", "k", b"2").expect("set");
    vault.set("global", "other", b"x").expect("set");
    vault.delete("global", "k").expect("delete");
    assert_not_found(vault.get("global", "k", None), "deleted key");
    assert_not_found(vault.get("global", "k", Some(1)), "deleted version");
    assert_not_found(vault.delete("global", "k"), "second delete");
    assert_not_found(vault.delete("global", "never"), "delete of a missing key");
    assert_eq!(
        get(&vault, "global", "other", None),
        b"x",
        "other keys untouched"
    );
}

/// `list` reports names and versions, ordered, filtered by scope.
pub fn list_names_and_filters_by_scope(fx: &Fixture) {
    let vault = fx.init();
    assert!(vault.list(None).expect("list empty").is_empty());
    for (scope, key) in [
        ("skill:deploy", "token"),
        ("global", "b"),
        ("global", "a"),
        ("channel:slack:T1", "bot"),
        ("principal:alice", "a"),
    ] {
        vault.set(scope, key, b"v").expect("set");
    }
    let all: Vec<(String, String)> = vault
        .list(None)
        .expect("list")
        .into_iter()
        .map(|s| (s.scope, s.key))
        .collect();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "ordered by scope then key");
    assert_eq!(all.len(), 5);
    let global: Vec<String> = vault
        .list(Some("global"))
        .expect("list global")
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert_eq!(global, ["a", "b"]);
    assert!(vault.list(Some("skill:none")).expect("list").is_empty());
    assert!(matches!(
        vault.list(Some("bad scope")),
        Err(Error::InvalidScope { .. })
    ));
}

/// Deleting everything leaves an empty store.
pub fn cleanup_to_empty(fx: &Fixture) {
    let vault = fx.init();
    for i in 0..20 {
        vault.set("global", &format!("k{i}"), b"v").expect("set");
    }
    assert_eq!(vault.status().expect("status").secrets, 20);
    for info in vault.list(None).expect("list") {
        vault.delete(&info.scope, &info.key).expect("delete");
    }
    assert!(vault.list(None).expect("list").is_empty());
    assert_eq!(vault.status().expect("status").secrets, 0);
}

/// A secret's bytes (raw, hex, base64) appear in no file of the vault directory.
pub fn no_plaintext_at_rest(fx: &Fixture) {
    let vault = fx.init();
    let mut value = [0u8; 48];
    envelope::random_bytes(&mut value).expect("random");
    vault.set("global", "k", &value).expect("set");
    vault.set("principal:bob", "k2", &value).expect("set");
    let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(value)
    };
    let needles: [(&str, &[u8]); 3] = [
        ("raw", &value),
        ("hex", hex.as_bytes()),
        ("base64", b64.as_bytes()),
    ];
    let files = fx.files_at_rest();
    assert!(!files.is_empty() || fx.kind() == StoreKind::Memory);
    for file in &files {
        let bytes = match std::fs::read(file) {
            Ok(bytes) => bytes,
            // A database server's own files come and go (WAL segments are recycled, other
            // databases dropped): one gone since it was listed holds nothing now.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && fx.home.is_some() => continue,
            Err(e) => panic!("read {}: {e}", file.display()),
        };
        for (form, needle) in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "the secret's {form} bytes are in {}",
                file.display()
            );
        }
    }
    drop(vault);
}

/// The files below `dir` that hold a vault's state, for checks that a command changed
/// nothing: every regular file but the SQLite side files a connection that only read leaves
/// for the next one (see `SqliteStore`'s `Drop`), the wal-index (`-shm`, rebuilt by every
/// opener) and an empty `-wal` (it holds nothing). A `-wal` with frames is state and is kept.
pub fn state_files_below(dir: &Path) -> Vec<PathBuf> {
    files_below(dir)
        .into_iter()
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let empty = || std::fs::metadata(path).is_ok_and(|m| m.len() == 0);
            !(name.ends_with(".db-shm") || (name.ends_with(".db-wal") && empty()))
        })
        .collect()
}

/// Every regular file below `dir` (for checks of what lands on disk).
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// The same key in two scopes holds two secrets; changing one leaves the other.
pub fn scopes_are_isolated(fx: &Fixture) {
    let vault = fx.init();
    vault.set("global", "k", b"global").expect("set");
    vault.set("principal:alice", "k", b"alice").expect("set");
    vault
        .set("channel:slack:alice", "k", b"slack")
        .expect("set");
    assert_eq!(get(&vault, "principal:alice", "k", None), b"alice");
    assert_eq!(get(&vault, "channel:slack:alice", "k", None), b"slack");
    vault.delete("global", "k").expect("delete");
    assert_not_found(vault.get("global", "k", None), "deleted global");
    assert_eq!(get(&vault, "principal:alice", "k", None), b"alice");
    assert_not_found(vault.get("principal:bob", "k", None), "other principal");
    assert_eq!(vault.set("principal:alice", "k", b"2").expect("set"), 2);
    assert_eq!(
        vault.set("channel:slack:bob", "k", b"new").expect("set"),
        1,
        "versions are per scope"
    );
}

/// Versions never repeat: a deleted key that is written again continues after the versions
/// it had, so an envelope of the old key is never a current version of the new one.
pub fn recreated_key_continues_versions(fx: &Fixture) {
    let vault = fx.init();
    assert_eq!(vault.set("global", "k", b"one").expect("set"), 1);
    assert_eq!(vault.set("global", "k", b"two").expect("set"), 2);
    vault.delete("global", "k").expect("delete");
    assert_not_found(vault.get("global", "k", Some(1)), "deleted version 1");
    assert_eq!(vault.set("global", "k", b"three").expect("set again"), 3);
    assert_eq!(get(&vault, "global", "k", None), b"three");
    assert_not_found(
        vault.get("global", "k", Some(2)),
        "version 2 of the deleted key",
    );
    let listed = vault.list(Some("global")).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].version, listed[0].versions), (3, 1));
}

/// A write that expects a version (compare-and-set) happens only at that version: 0 means
/// the secret has none (never written, or deleted); a mismatch changes nothing and names the
/// current version. Of writers racing with the same expectation, exactly one wins.
pub fn compare_and_set_writes_only_at_the_expected_version(fx: &Fixture) {
    let vault = fx.init();
    let mismatch = |result: Result<u64, Error>, want_current: u64, what: &str| match result {
        Err(Error::VersionMismatch { current, .. }) => assert_eq!(current, want_current, "{what}"),
        Err(e) => panic!("{what}: expected VersionMismatch, got {e}"),
        Ok(v) => panic!("{what}: expected VersionMismatch, wrote version {v}"),
    };
    mismatch(
        vault.set_if("global", "k", b"x", Some(1)),
        0,
        "expecting 1 of a new key",
    );
    assert_not_found(vault.get("global", "k", None), "after the refused write");
    assert_eq!(
        vault
            .set_if("global", "k", b"one", Some(0))
            .expect("create"),
        1
    );
    mismatch(
        vault.set_if("global", "k", b"x", Some(0)),
        1,
        "create-only of an existing key",
    );
    assert_eq!(
        vault.set_if("global", "k", b"two", Some(1)).expect("cas 1"),
        2
    );
    mismatch(
        vault.set_if("global", "k", b"x", Some(1)),
        2,
        "a stale expectation",
    );
    assert_eq!(get(&vault, "global", "k", None), b"two");
    let message = vault
        .set_if("global", "k", b"x", Some(7))
        .expect_err("mismatch")
        .to_string();
    assert!(
        message.contains("version 2") && message.contains("not 7"),
        "{message}"
    );
    assert!(
        !message.contains("two"),
        "no value in the message: {message}"
    );
    // Deleted: no current version; the next write is version 3.
    vault.delete("global", "k").expect("delete");
    mismatch(
        vault.set_if("global", "k", b"x", Some(2)),
        0,
        "expecting the deleted version",
    );
    assert_eq!(
        vault
            .set_if("global", "k", b"three", Some(0))
            .expect("re-create"),
        3
    );
    // Eight writers, all expecting version 3: one writes 4, the rest are refused.
    let vault = std::sync::Arc::new(vault);
    let results: Vec<_> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..8u8)
            .map(|n| {
                let vault = std::sync::Arc::clone(&vault);
                scope.spawn(move || vault.set_if("global", "k", &[n], Some(3)))
            })
            .collect();
        writers
            .into_iter()
            .map(|w| w.join().expect("writer"))
            .collect()
    });
    let won: Vec<u64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert_eq!(won, [4], "exactly one writer wins");
    for result in results.into_iter().filter(Result::is_err) {
        mismatch(result, 4, "a writer that lost the race");
    }
    let listed = vault.list(Some("global")).expect("list");
    assert_eq!((listed[0].version, listed[0].versions), (4, 2));
}

/// A listing read page by page (through the page tokens the API hands out) shows every
/// secret exactly once, in scope then key order; a secret deleted before its page does not
/// show, one written behind the pages already read does not either, and nothing else moves.
pub fn list_pages_show_every_secret_once_in_order(fx: &Fixture) {
    use vault::ListPosition;
    let vault = fx.init();
    for scope in ["global", "principal:alice", "skill:deploy"] {
        for i in 0..9 {
            vault.set(scope, &format!("k{i:02}"), b"v").expect("set");
        }
    }
    let names = |secrets: &[vault::SecretInfo]| -> Vec<(String, String)> {
        secrets
            .iter()
            .map(|s| (s.scope.clone(), s.key.clone()))
            .collect()
    };
    let everything = names(&vault.list(None).expect("list"));
    assert_eq!(everything.len(), 27);
    let mut sorted = everything.clone();
    sorted.sort();
    assert_eq!(everything, sorted, "scope then key order");

    // Every scope, four at a time, resuming from each page's token.
    let walk = |scope: Option<&str>, size: usize, mut between: Box<dyn FnMut(usize)>| {
        let (mut seen, mut token, mut pages) = (Vec::new(), None::<String>, 0);
        loop {
            let after = token
                .as_deref()
                .map(|t| ListPosition::from_token(t).expect("our token"));
            let page = vault.list_page(scope, after.as_ref(), size).expect("page");
            assert!(page.secrets.len() <= size);
            seen.extend(names(&page.secrets));
            pages += 1;
            between(pages);
            match page.next {
                Some(next) => token = Some(next.to_token()),
                None => return seen,
            }
        }
    };
    assert_eq!(walk(None, 4, Box::new(|_| {})), everything);
    let alice: Vec<_> = everything
        .iter()
        .filter(|(s, _)| s == "principal:alice")
        .cloned()
        .collect();
    assert_eq!(walk(Some("principal:alice"), 4, Box::new(|_| {})), alice);
    assert_eq!(
        walk(Some("principal:alice"), 9, Box::new(|_| {})),
        alice,
        "an exact last page"
    );
    assert!(walk(Some("skill:none"), 4, Box::new(|_| {})).is_empty());

    // Changes between pages: after the first page, delete a secret of a later page and add
    // one before the current position (global/a00) and one after it (skill:deploy/z).
    let seen = walk(
        None,
        4,
        Box::new(|pages| {
            if pages == 1 {
                vault.delete("principal:alice", "k03").expect("delete");
                vault.set("global", "a00", b"v").expect("set behind");
                vault.set("skill:deploy", "z", b"v").expect("set ahead");
            }
        }),
    );
    let mut expected: Vec<_> = everything
        .iter()
        .filter(|(s, k)| !(s == "principal:alice" && k == "k03"))
        .cloned()
        .collect();
    expected.push(("skill:deploy".into(), "z".into()));
    assert_eq!(seen, expected);

    // Tokens are checked: anything else is refused, naming what to do.
    for forged in [
        "",
        "p1.",
        "p1.!!!",
        "p2.Z2xvYmFsCmsx",
        "p1.bm8tbmV3bGluZQ",
        "p1.YmFkIHNjb3BlCms",
    ] {
        match ListPosition::from_token(forged) {
            Err(e @ Error::InvalidPageToken) => {
                assert!(e.to_string().contains("next_page_token"), "{e}")
            }
            other => panic!("{forged:?}: expected InvalidPageToken, got {other:?}"),
        }
    }
}

/// A listing's count ([`Vault::count`], the store's `count_in`) is how many secrets its pages
/// hold, per scope and over every scope: each key once however many versions it keeps, a
/// deleted key not (its version counter stays behind) until it is written again, a scope
/// whose name begins another's apart from it, and 0 for a scope with none.
pub fn count_matches_the_listing(fx: &Fixture) {
    let vault = fx.init();
    assert_eq!(vault.count(None).expect("count of an empty vault"), 0);
    for (scope, n) in [
        ("global", 5),
        ("principal:alice", 3),
        ("principal:alicia", 2),
        ("skill:deploy", 1),
    ] {
        for i in 0..n {
            vault.set(scope, &format!("k{i}"), b"v").expect("set");
        }
    }
    vault
        .set("global", "k0", b"again")
        .expect("a second version");
    vault.delete("principal:alice", "k1").expect("delete");
    vault.delete("skill:deploy", "k0").expect("delete");
    vault.delete("global", "k4").expect("delete");
    vault.set("global", "k4", b"back").expect("written again");
    let listed = |scope: Option<&str>| vault.list(scope).expect("list").len() as u64;
    for (scope, expected) in [
        (None, 9),
        (Some("global"), 5),
        (Some("principal:alice"), 2),
        (Some("principal:alicia"), 2),
        (Some("skill:deploy"), 0),
        (Some("skill:none"), 0),
    ] {
        let counted = vault.count(scope).expect("count");
        assert_eq!(counted, expected, "{scope:?}");
        assert_eq!(
            counted,
            listed(scope),
            "{scope:?}: the count is the listing's"
        );
    }
    assert!(matches!(
        vault.count(Some("bad scope")),
        Err(Error::InvalidScope { .. })
    ));
}

/// A durable store keeps secrets and versions across a reopen; an ephemeral one starts empty.
pub fn reopen(fx: &Fixture, durability: Durability) {
    let vault = fx.init();
    vault.set("global", "k", b"one").expect("set");
    vault.set("global", "k", b"two").expect("set");
    drop(vault);
    let vault = fx.reopen();
    match durability {
        Durability::Durable => {
            assert_eq!(get(&vault, "global", "k", None), b"two");
            assert_eq!(get(&vault, "global", "k", Some(1)), b"one");
            assert_eq!(vault.set("global", "k", b"three").expect("set"), 3);
        }
        Durability::Ephemeral => {
            assert!(vault.list(None).expect("list").is_empty());
        }
    }
}

/// A value over the limit is refused and the old value stays.
pub fn failed_set_keeps_old_value(fx: &Fixture) {
    let vault = fx.init();
    vault.set("global", "k", b"old").expect("set");
    let too_big = vec![0u8; vault::MAX_VALUE_LEN + 1];
    assert!(matches!(
        vault.set("global", "k", &too_big),
        Err(Error::ValueTooLarge { .. })
    ));
    assert!(matches!(
        vault.set("global", "../k", b"x"),
        Err(Error::InvalidKeyName { .. })
    ));
    assert_eq!(get(&vault, "global", "k", None), b"old");
    assert_eq!(vault.list(None).expect("list")[0].versions, 1);
}

/// 8 threads setting and getting at once lose no write and see no torn value.
pub fn concurrent_writers_lose_nothing(fx: &Fixture) {
    const THREADS: usize = 8;
    const WRITES: usize = 40;
    let vault = fx.init();
    let versions: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let vault = &vault;
                s.spawn(move || {
                    let mut shared_versions = Vec::new();
                    for i in 0..WRITES {
                        let value = format!("t{t}-i{i}");
                        vault
                            .set("global", &format!("own-{t}"), value.as_bytes())
                            .expect("set own");
                        assert_eq!(
                            get(vault, "global", &format!("own-{t}"), None),
                            value.as_bytes()
                        );
                        shared_versions.push(
                            vault
                                .set("global", "shared", value.as_bytes())
                                .expect("set shared"),
                        );
                    }
                    shared_versions
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("writer thread"))
            .collect()
    });
    let distinct: HashSet<u64> = versions.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        THREADS * WRITES,
        "every shared write got its own version"
    );
    assert_eq!(distinct, (1..=(THREADS * WRITES) as u64).collect());
    for t in 0..THREADS {
        let key = format!("own-{t}");
        assert_eq!(
            get(&vault, "global", &key, None),
            format!("t{t}-i{}", WRITES - 1).as_bytes()
        );
        assert_eq!(
            get(&vault, "global", &key, Some(WRITES as u64)),
            get(&vault, "global", &key, None)
        );
    }
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    for v in 1..=(THREADS * WRITES) as u64 {
        assert!(
            seen.insert(get(&vault, "global", "shared", Some(v))),
            "version {v} duplicated"
        );
    }
}

/// Tags version counters for the tests that use a store without a vault: an HMAC-SHA256
/// under a key of its own, as the vault's integrity key does.
#[derive(Debug)]
pub struct TestHeads(ring::hmac::Key);

impl TestHeads {
    /// Counters tagged under a fixed test key.
    pub fn new() -> Self {
        TestHeads(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            b"store suite heads",
        ))
    }

    fn input(scope: &str, key: &str, head: &vault::KeyHead) -> Vec<u8> {
        format!("{scope}\0{key}\0{}\0{}", head.latest, head.deleted_through).into_bytes()
    }
}

impl Default for TestHeads {
    fn default() -> Self {
        Self::new()
    }
}

impl vault::HeadAuth for TestHeads {
    fn tag(&self, scope: &str, key: &str, head: &vault::KeyHead) -> Vec<u8> {
        ring::hmac::sign(&self.0, &Self::input(scope, key, head))
            .as_ref()
            .to_vec()
    }

    fn verify(&self, scope: &str, key: &str, head: &vault::KeyHead, tag: &[u8]) -> bool {
        ring::hmac::verify(&self.0, &Self::input(scope, key, head), tag).is_ok()
    }
}

fn sealed(bytes: &[u8]) -> impl FnMut(u64) -> Result<Vec<u8>, Error> + '_ {
    move |_| Ok(bytes.to_vec())
}

/// `scan` walks every version once, in (scope, key, version) order, page by page.
pub fn scan_walks_every_version_in_order(fx: &Fixture) {
    let store = vault::open_store(fx.kind(), fx.dir()).expect("store");
    let mut expected = Vec::new();
    for (scope, key, versions) in [("global", "b", 3), ("global", "a", 2), ("skill:x", "a", 1)] {
        for v in 1..=versions {
            let envelope = format!("{scope}/{key}/{v}").into_bytes();
            assert_eq!(
                store
                    .set(scope, key, None, &TestHeads::new(), &mut sealed(&envelope))
                    .expect("set"),
                v
            );
            expected.push((scope.to_owned(), key.to_owned(), v));
        }
    }
    expected.sort();
    assert_eq!(store.count_versions().expect("count"), 6);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.scan(after.as_ref(), 4).expect("scan");
        if page.is_empty() {
            break;
        }
        for v in &page {
            assert_eq!(
                v.envelope,
                format!("{}/{}/{}", v.scope, v.key, v.version).into_bytes()
            );
            seen.push((v.scope.clone(), v.key.clone(), v.version));
        }
        after = page.last().map(|v| v.position());
    }
    assert_eq!(seen, expected);
}

/// `replace` swaps envelopes in one batch, only where the old envelope is still there.
pub fn replace_is_compare_and_swap(fx: &Fixture) {
    let store = vault::open_store(fx.kind(), fx.dir()).expect("store");
    let heads = TestHeads::new();
    store
        .set("global", "k", None, &heads, &mut sealed(b"one"))
        .expect("set");
    store
        .set("global", "k", None, &heads, &mut sealed(b"two"))
        .expect("set");
    let swap = |version, old: &[u8], new: &[u8]| vault::Replacement {
        scope: "global".into(),
        key: "k".into(),
        version,
        old: old.to_vec(),
        new: new.to_vec(),
    };
    let batch = [
        swap(1, b"one", b"ONE"),
        swap(2, b"stale", b"TWO"),
        swap(3, b"missing", b"x"),
    ];
    assert_eq!(store.replace(&batch).expect("replace"), 1);
    assert_eq!(
        store.get("global", "k", Some(1), &heads).expect("get").1,
        b"ONE"
    );
    assert_eq!(
        store.get("global", "k", Some(2), &heads).expect("get").1,
        b"two"
    );
    assert_eq!(
        store.get("global", "k", None, &heads).expect("get").0,
        2,
        "no version was added"
    );
}

/// Runs the store suite against a store kind: one `#[test]` per property.
///
/// Two optional arguments, in this order: `kek: MAKER` builds the vault's root KEK
/// ([`vault::Kek`]) from the vault directory instead of the default in-memory one
/// ([`memory_kek`]); `run: RUNNER` runs each test's body as `RUNNER(|| body)` (see
/// `kek_suite!`).
///
/// ```text
/// compliance::store_suite!(sqlite_on_hsm, vault::StoreKind::Sqlite, durable,
///     kek: |dir: &Path| -> vault::Kek { ... },
///     run: on_private_token);
/// ```
#[macro_export]
macro_rules! store_suite {
    ($name:ident, $kind:expr, durable $(, kek: $kek:expr)? $(, run: $run:expr)?
        $(, home: $home:expr)? $(,)?) => {
        $crate::store_suite!(@tests $name, $kind, $crate::store_suite::Durability::Durable,
            [$($kek)?], [$($run)?], [$($home)?]);
    };
    ($name:ident, $kind:expr, ephemeral $(, kek: $kek:expr)? $(, run: $run:expr)?
        $(, home: $home:expr)? $(,)?) => {
        $crate::store_suite!(@tests $name, $kind, $crate::store_suite::Durability::Ephemeral,
            [$($kek)?], [$($run)?], [$($home)?]);
    };
    (@kek) => { $crate::store_suite::memory_kek };
    (@kek $kek:expr) => { $kek };
    (@fixture $kind:expr, $kek:expr,) => { suite::Fixture::with_kek($kind, $kek) };
    (@fixture $kind:expr, $kek:expr, $home:expr) => {
        suite::Fixture::with_home($kind, $kek, $home)
    };
    (@tests $name:ident, $kind:expr, $durability:expr, [$($kek:expr)?], [$($run:expr)?],
        [$($home:expr)?]) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::store_suite as suite;

            fn fixture() -> suite::Fixture {
                $crate::store_suite!(@fixture $kind, $crate::store_suite!(@kek $($kek)?), $($home)?)
            }

            /// Runs a test's body with the suite's runner.
            fn run(body: impl FnOnce()) {
                ($crate::__runner!($($run)?))(body)
            }

            #[test] fn set_then_get() { run(|| suite::set_then_get(&fixture())) }
            #[test] fn overwrite_keeps_versions() { run(|| suite::overwrite_keeps_versions(&fixture())) }
            #[test] fn get_missing_is_not_found() { run(|| suite::get_missing_is_not_found(&fixture())) }
            #[test] fn delete_removes_all_versions() { run(|| suite::delete_removes_all_versions(&fixture())) }
            #[test] fn list_names_and_filters_by_scope() { run(|| suite::list_names_and_filters_by_scope(&fixture())) }
            #[test] fn cleanup_to_empty() { run(|| suite::cleanup_to_empty(&fixture())) }
            #[test] fn no_plaintext_at_rest() { run(|| suite::no_plaintext_at_rest(&fixture())) }
            #[test] fn scopes_are_isolated() { run(|| suite::scopes_are_isolated(&fixture())) }
            #[test] fn recreated_key_continues_versions() { run(|| suite::recreated_key_continues_versions(&fixture())) }
            #[test] fn compare_and_set_writes_only_at_the_expected_version() { run(|| suite::compare_and_set_writes_only_at_the_expected_version(&fixture())) }
            #[test] fn list_pages_show_every_secret_once_in_order() { run(|| suite::list_pages_show_every_secret_once_in_order(&fixture())) }
            #[test] fn count_matches_the_listing() { run(|| suite::count_matches_the_listing(&fixture())) }
            #[test] fn reopen() { run(|| suite::reopen(&fixture(), $durability)) }
            #[test] fn failed_set_keeps_old_value() { run(|| suite::failed_set_keeps_old_value(&fixture())) }
            #[test] fn scan_walks_every_version_in_order() { run(|| suite::scan_walks_every_version_in_order(&fixture())) }
            #[test] fn replace_is_compare_and_swap() { run(|| suite::replace_is_compare_and_swap(&fixture())) }
            #[test] fn concurrent_writers_lose_nothing() { run(|| suite::concurrent_writers_lose_nothing(&fixture())) }
        }
    };
}
