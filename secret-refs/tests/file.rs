//! `file://` references on real files: trusted directories, symbolic links anywhere on the
//! path, owner and mode of every directory on it and of the file, size; and a directory
//! swapped for a link while a reference resolves.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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

#[test]
fn a_writable_directory_on_the_path_is_refused() {
    let dir = Dir::new();
    for (sub, mode) in [("world", 0o777), ("group", 0o770), ("other-w", 0o703)] {
        let path = dir.file(&format!("trusted/{sub}/secret"), b"under-writable", 0o600);
        let parent = path.parent().expect("parent");
        fs::set_permissions(parent, fs::Permissions::from_mode(mode)).expect("chmod");
        let err = resolve_err(trusting(&dir, "trusted"), &file_ref(&path));
        let message = err.to_string();
        assert!(matches!(err, Error::FileRejected { .. }), "{message}");
        assert!(
            message.contains(&format!(
                "{} is writable by group or others",
                parent.display()
            )),
            "{message}"
        );
        assert!(
            message.contains(&format!("chmod go-w {}", parent.display())),
            "{message}"
        );
    }
    // Above the trusted directory too: whoever can write there can swap it.
    let path = dir.file("outer/trusted/secret", b"under-writable-outer", 0o600);
    fs::set_permissions(dir.root.join("outer"), fs::Permissions::from_mode(0o777)).expect("chmod");
    let err = resolve_err(trusting(&dir, "outer/trusted"), &file_ref(&path));
    assert!(err.to_string().contains("outer is writable"), "{err}");
}

#[test]
fn a_sticky_shared_directory_on_the_path_is_allowed() {
    // Like /tmp: others may add entries there but not rename or remove ours.
    let dir = Dir::new();
    let path = dir.file("shared/trusted/secret", b"under-sticky", 0o600);
    fs::set_permissions(dir.root.join("shared"), fs::Permissions::from_mode(0o1777))
        .expect("chmod");
    assert_eq!(
        resolve(trusting(&dir, "shared/trusted"), &file_ref(&path)).expect("resolves"),
        b"under-sticky"
    );
}

#[test]
fn a_directory_owned_by_another_user_on_the_path_is_refused() {
    let dir = Dir::new();
    let path = dir.file("trusted/theirs/secret", b"foreign-dir-value", 0o600);
    let chown = std::process::Command::new("chown")
        .arg("65534")
        .arg(path.parent().expect("parent"))
        .status()
        .expect("chown");
    if !chown.success() {
        eprintln!("skipped: cannot chown a directory to another user here");
        return;
    }
    let err = resolve_err(trusting(&dir, "trusted"), &file_ref(&path));
    let message = err.to_string();
    assert!(
        message.contains("theirs is owned by uid 65534"),
        "{message}"
    );
}

/// A directory on the path swapped for a link to another directory, back and forth as fast
/// as the kernel allows, while the reference resolves again and again: every read that
/// succeeds reads the file under the real directory, never the one the link points to.
/// (Checking each component by its path, then opening the whole path, could be led
/// through the link between the two.)
#[test]
fn a_directory_swapped_for_a_link_while_resolving_never_redirects_the_read() {
    const GENUINE: &[u8] = b"genuine-value";
    const DECOY: &[u8] = b"decoy-value";
    const RESOLVES: usize = 20_000;
    let dir = Dir::new();
    let path = dir.file("trusted/d/secret", GENUINE, 0o600);
    dir.file("decoy/secret", DECOY, 0o600);
    let trusted = dir.root.join("trusted");
    symlink(dir.root.join("decoy"), trusted.join("link")).expect("symlink");

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let (stop, swaps, trusted) = (Arc::clone(&stop), Arc::clone(&swaps), trusted.clone());
        std::thread::spawn(move || {
            let parent = fs::File::open(&trusted).expect("open trusted");
            while !stop.load(Ordering::Relaxed) {
                // Atomically: `d` becomes the link and `link` the directory, and back.
                rustix::fs::renameat_with(
                    &parent,
                    "d",
                    &parent,
                    "link",
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .expect("renameat2 RENAME_EXCHANGE");
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let resolver = secret_refs::Resolver::new(trusting(&dir, "trusted")).expect("policy");
    let reference = file_ref(&path);
    let (mut read, mut refused) = (0, 0);
    for _ in 0..RESOLVES {
        match resolver.resolve(&reference) {
            Ok(value) => {
                assert_eq!(
                    value.expose_secret(),
                    GENUINE,
                    "the read was redirected through the link"
                );
                read += 1;
            }
            Err(_) => refused += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().expect("swapper");
    eprintln!(
        "{read} reads, {refused} refused, {} swaps",
        swaps.load(Ordering::Relaxed)
    );
    assert!(
        swaps.load(Ordering::Relaxed) > 0,
        "the directory was swapped"
    );
}
