//! `file://` references on real files: trusted directories, symbolic links anywhere on the
//! path, owner and mode, size.

mod common;

use std::os::unix::fs::symlink;

use common::{Dir, file_ref, resolve, resolve_err};
use secret_refs::{Error, Policy};

fn trusting(dir: &Dir, sub: &str) -> Policy {
    Policy {
        trusted_dirs: vec![dir.root.join(sub)],
        ..Policy::default()
    }
}

#[test]
fn a_file_under_a_trusted_dir_resolves() {
    let dir = Dir::new();
    let path = dir.file("trusted/db/password", b"s3cret-file-value", 0o600);
    let value = resolve(trusting(&dir, "trusted"), &file_ref(&path)).expect("resolves");
    assert_eq!(value, b"s3cret-file-value");
    // A trailing newline is part of a file (unlike a program's output): kept as is.
    let path = dir.file("trusted/nl", b"v\n", 0o400);
    assert_eq!(
        resolve(trusting(&dir, "trusted"), &file_ref(&path)).expect("resolves"),
        b"v\n"
    );
}

#[test]
fn a_file_outside_the_trusted_dirs_is_refused() {
    let dir = Dir::new();
    let path = dir.file("elsewhere/secret", b"outside-value", 0o600);
    let err = resolve_err(trusting(&dir, "trusted"), &file_ref(&path));
    assert!(matches!(err, Error::FileNotTrusted { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("--trusted-dir"), "{message}");
    // Nothing trusted at all.
    let err = resolve_err(Policy::default(), &file_ref(&path));
    assert!(err.to_string().contains("none configured"), "{err}");
    // A trusted directory that is a prefix of the name but not a parent is not enough.
    let path = dir.file("trusted-not/secret", b"x", 0o600);
    assert!(matches!(
        resolve_err(trusting(&dir, "trusted"), &file_ref(&path)),
        Error::FileNotTrusted { .. }
    ));
}

#[test]
fn a_symlink_leaf_is_refused_even_to_a_trusted_file() {
    let dir = Dir::new();
    let target = dir.file("trusted/real", b"linked-value", 0o600);
    let link = dir.root.join("trusted/link");
    symlink(&target, &link).expect("symlink");
    let err = resolve_err(trusting(&dir, "trusted"), &file_ref(&link));
    match &err {
        Error::FileSymlink { component, .. } => assert_eq!(component, &link),
        other => panic!("expected FileSymlink, got {other}"),
    }
    assert!(err.to_string().contains("symbolic link"), "{err}");
}

#[test]
fn a_symlink_parent_dir_is_refused() {
    let dir = Dir::new();
    dir.file("trusted/real-dir/secret", b"parent-linked-value", 0o600);
    let link = dir.root.join("trusted/link-dir");
    symlink(dir.root.join("trusted/real-dir"), &link).expect("symlink");
    let err = resolve_err(trusting(&dir, "trusted"), &file_ref(&link.join("secret")));
    match &err {
        Error::FileSymlink { component, .. } => assert_eq!(component, &link),
        other => panic!("expected FileSymlink, got {other}"),
    }
    // A link above the trusted directory counts too: every component is checked.
    let outer = dir.root.join("outer-link");
    symlink(dir.root.join("trusted"), &outer).expect("symlink");
    let policy = Policy {
        trusted_dirs: vec![outer.clone()],
        ..Policy::default()
    };
    let err = resolve_err(policy, &file_ref(&outer.join("real-dir/secret")));
    assert!(matches!(err, Error::FileSymlink { component, .. } if component == outer));
}

#[test]
fn group_or_world_writable_files_are_refused() {
    let dir = Dir::new();
    for mode in [0o620, 0o602, 0o666] {
        let path = dir.file(&format!("trusted/w{mode:o}"), b"writable-value", mode);
        let err = resolve_err(trusting(&dir, "trusted"), &file_ref(&path));
        let message = err.to_string();
        assert!(matches!(err, Error::FileRejected { .. }), "{message}");
        assert!(message.contains("chmod go-w"), "{message}");
    }
    // Readable by others is the operator's business; writable is not.
    let path = dir.file("trusted/r", b"readable", 0o644);
    assert_eq!(
        resolve(trusting(&dir, "trusted"), &file_ref(&path)).expect("resolves"),
        b"readable"
    );
}

#[test]
fn directories_fifos_missing_and_oversize_files_are_refused() {
    let dir = Dir::new();
    let sub = dir.root.join("trusted/sub");
    std::fs::create_dir_all(&sub).expect("mkdir");
    let err = resolve_err(trusting(&dir, "trusted"), &file_ref(&sub));
    assert!(err.to_string().contains("not a regular file"), "{err}");

    let fifo = dir.root.join("trusted/fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let err = resolve_err(trusting(&dir, "trusted"), &file_ref(&fifo));
    assert!(err.to_string().contains("not a regular file"), "{err}");

    let err = resolve_err(
        trusting(&dir, "trusted"),
        &file_ref(&dir.root.join("trusted/missing")),
    );
    assert!(matches!(err, Error::Io { .. }), "{err}");

    let path = dir.file("trusted/big", &[b'x'; 2048], 0o600);
    let policy = Policy {
        max_secret_len: 1024,
        ..trusting(&dir, "trusted")
    };
    let err = resolve_err(policy, &file_ref(&path));
    assert!(
        err.to_string().contains("over the limit of 1024 bytes"),
        "{err}"
    );
}

#[test]
fn a_file_owned_by_another_user_is_refused() {
    // Needs a file owned by neither us nor root: only root can make one (chown).
    let dir = Dir::new();
    let path = dir.file("trusted/foreign", b"foreign-value", 0o600);
    let chown = std::process::Command::new("chown")
        .arg("65534")
        .arg(&path)
        .status()
        .expect("chown");
    if !chown.success() {
        eprintln!("skipped: cannot chown a file to another user here");
        return;
    }
    let err = resolve_err(trusting(&dir, "trusted"), &file_ref(&path));
    assert!(err.to_string().contains("owned by uid 65534"), "{err}");
}
