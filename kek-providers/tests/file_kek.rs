//! The file KEK: permissions, refusals and messages, canonical URIs, path-independent ids.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use envelope::{Dek, StanzaRef};
use kek_providers::{BuiltKek, Error, KekEnv};

fn env(dir: &Path) -> KekEnv<'_> {
    KekEnv { vault_dir: dir }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

fn create(dir: &Path, path: &Path) -> BuiltKek {
    kek_providers::create(&format!("file:{}", path.display()), &env(dir)).expect("create")
}

#[test]
fn create_writes_a_0600_key_in_a_0700_dir_and_open_reopens_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys/nested/kek.key");
    let built = create(dir.path(), &path);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().expect("parent")), 0o700);
    assert_eq!(mode(&dir.path().join("keys")), 0o700);
    assert_eq!(fs::read(&path).expect("read").len(), 32);
    assert_eq!(built.uri, format!("file:{}", path.display()));
    assert_eq!(built.provider.id().kind(), "file");
    assert_eq!(built.provider.id().label().len(), 16);
    assert_eq!(built.provider.assurance(), envelope::Assurance::default());

    let reopened = kek_providers::open(&built.uri, &env(dir.path())).expect("open");
    assert_eq!(reopened.uri, built.uri);
    assert_eq!(reopened.provider.id(), built.provider.id());
    let dek = Dek::generate().expect("dek");
    let body = built.provider.wrap(&dek, b"aad").expect("wrap");
    let id = reopened.provider.id();
    let stanza = StanzaRef {
        kind: id.kind(),
        label: id.label(),
        version: id.version(),
        body: &body,
    };
    let back = reopened
        .provider
        .unwrap(&stanza, b"aad")
        .expect("mine")
        .expect("unwrap");
    assert_eq!(back.expose_secret(), dek.expose_secret());
}

#[test]
fn a_key_file_readable_by_others_is_refused_with_the_chmod_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kek.key");
    let built = create(dir.path(), &path);
    for bad in [0o644, 0o640, 0o604, 0o660] {
        fs::set_permissions(&path, fs::Permissions::from_mode(bad)).expect("chmod");
        let err = kek_providers::open(&built.uri, &env(dir.path())).expect_err("refused");
        assert!(matches!(err, Error::KeyFilePermissions { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).expect("chmod");
    kek_providers::open(&built.uri, &env(dir.path())).expect("0400 is fine");
}

#[test]
fn a_missing_key_file_names_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nowhere/kek.key");
    let err = kek_providers::open(&format!("file:{}", path.display()), &env(dir.path()))
        .expect_err("missing");
    assert!(matches!(err, Error::KeyFileMissing { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("backup"), "{message}");
}

#[test]
fn create_refuses_an_existing_file_and_leaves_it_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kek.key");
    let built = create(dir.path(), &path);
    let before = fs::read(&path).expect("read");
    let err = kek_providers::create(&built.uri, &env(dir.path())).expect_err("exists");
    assert!(matches!(err, Error::KeyFileExists { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("already exists") && message.contains("open"),
        "{message}"
    );
    assert_eq!(fs::read(&path).expect("read"), before);
    let leftovers: Vec<_> = fs::read_dir(dir.path()).expect("ls").collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
}

#[test]
fn a_key_file_of_the_wrong_length_or_kind_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    for len in [0usize, 31, 33, 64] {
        let path = dir.path().join(format!("kek-{len}.key"));
        fs::write(&path, vec![7u8; len]).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        let err = kek_providers::open(&format!("file:{}", path.display()), &env(dir.path()))
            .expect_err("wrong length");
        assert!(
            matches!(err, Error::KeyFileInvalid { .. }),
            "{len}: {err:?}"
        );
    }
    let sub = dir.path().join("a-directory");
    fs::create_dir(&sub).expect("mkdir");
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).expect("chmod");
    let err = kek_providers::open(&format!("file:{}", sub.display()), &env(dir.path()))
        .expect_err("directory");
    assert!(matches!(err, Error::KeyFileInvalid { .. }), "{err:?}");
}

#[test]
fn a_relative_path_becomes_absolute_in_the_canonical_uri() {
    // A directory under the working directory, named relatively (and removed on drop).
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    let name = dir.path().file_name().expect("name");
    let relative = Path::new(name).join("kek.key");
    assert!(relative.is_relative());
    let built = kek_providers::create(&format!("file:{}", relative.display()), &env(dir.path()))
        .expect("create");
    let absolute = std::path::absolute(&relative).expect("absolute");
    assert_eq!(built.uri, format!("file:{}", absolute.display()));
    let reopened = kek_providers::open(&built.uri, &env(dir.path())).expect("open");
    assert_eq!(reopened.provider.id(), built.provider.id());
}

#[test]
fn the_id_follows_the_key_not_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("a/kek.key");
    let built = create(dir.path(), &first);
    let moved = dir.path().join("b/restored.key");
    fs::create_dir_all(moved.parent().expect("parent")).expect("mkdir");
    fs::copy(&first, &moved).expect("copy");
    fs::set_permissions(&moved, fs::Permissions::from_mode(0o600)).expect("chmod");
    let reopened =
        kek_providers::open(&format!("file:{}", moved.display()), &env(dir.path())).expect("open");
    assert_eq!(reopened.provider.id(), built.provider.id());

    let other = create(dir.path(), &dir.path().join("c/kek.key"));
    assert_ne!(other.provider.id(), built.provider.id());
}

#[test]
fn debug_shows_no_key_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kek.key");
    let built = create(dir.path(), &path);
    let key = fs::read(&path).expect("read");
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let debug = format!("{built:?} {:#?}", built.provider);
    assert!(!debug.contains(&hex), "{debug}");
    assert!(!debug.contains(&format!("{key:?}")), "{debug}");
    assert!(debug.contains("REDACTED"), "{debug}");
}
