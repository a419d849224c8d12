//! Real files and programs in a private temporary directory for the resolver tests.
#![allow(dead_code)]

use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use secret_refs::{Error, Policy, Resolver, SecretRef};

/// A temporary directory whose real path (no symbolic link on the way) is `root`.
pub struct Dir {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
}

impl Dir {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = fs::canonicalize(tmp.path()).expect("canonicalize");
        Self { _tmp: tmp, root }
    }

    /// Writes `contents` to `name` (parents created, mode 0700 whatever the umask: file
    /// references refuse directories others may write) with `mode`.
    pub fn file(&self, name: &str, contents: &[u8], mode: u32) -> PathBuf {
        let path = self.root.join(name);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path.parent().expect("parent"))
            .expect("mkdir");
        fs::write(&path, contents).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    /// An executable shell script at `name` (the program itself is run without a shell;
    /// the script's `#!` line picks /bin/sh).
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        self.file(name, format!("#!/bin/sh\n{body}\n").as_bytes(), 0o700)
    }
}

pub fn file_ref(path: &Path) -> SecretRef {
    secret_refs::parse(&format!("file://{}", path.display())).expect("file ref")
}

pub fn resolve(policy: Policy, reference: &SecretRef) -> Result<Vec<u8>, Error> {
    let resolver = Resolver::new(policy).expect("policy");
    resolver
        .resolve(reference)
        .map(|secret| secret.expose_secret().to_vec())
}

pub fn resolve_err(policy: Policy, reference: &SecretRef) -> Error {
    match resolve(policy, reference) {
        Ok(_) => panic!("{reference} should fail to resolve"),
        Err(e) => e,
    }
}
