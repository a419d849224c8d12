//! The generator of `src/gen/vault.v1.rs` and its drift check, in one function.
//!
//! `cargo test -p proto --test drift` generates the code from `proto/vault.proto` into a
//! temporary directory (with the `protoc` binary vendored by `protoc-bin-vendored`) and fails
//! when it differs from the checked-in file. `UPDATE_PROTO=1 cargo test -p proto --test drift`
//! writes the checked-in file instead.

use std::fs;
use std::path::{Path, PathBuf};

/// The checked-in generated file.
fn checked_in() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gen/vault.v1.rs")
}

/// Generates the Rust code of `proto/vault.proto` and returns it.
fn generate() -> String {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let proto_dir = manifest_dir.join("proto");
    let out = tempfile::tempdir().expect("temporary directory");

    let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc for this platform");
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // No `connect(uri)` helper: callers build a Channel with their TLS settings, and the
        // crate needs only tonic's `codegen` feature.
        .build_transport(false)
        .out_dir(out.path())
        .emit_rerun_if_changed(false)
        .compile_with_config(
            config,
            &[proto_dir.join("vault.proto")],
            std::slice::from_ref(&proto_dir),
        )
        .expect("generate code from vault.proto");

    fs::read_to_string(out.path().join("vault.v1.rs")).expect("read the generated vault.v1.rs")
}

#[test]
fn generated_code_matches_vault_proto() {
    let generated = generate();
    let path = checked_in();

    if std::env::var_os("UPDATE_PROTO").is_some_and(|v| v == "1") {
        fs::create_dir_all(path.parent().expect("parent of the generated file"))
            .expect("create src/gen");
        fs::write(&path, &generated).expect("write src/gen/vault.v1.rs");
        return;
    }

    let current = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "{} is out of date with proto/vault.proto (or with the code generator's version).\n\
         Regenerate it with: UPDATE_PROTO=1 cargo test -p proto --test drift",
        path.display(),
    );
}

#[test]
fn generation_is_deterministic() {
    assert_eq!(
        generate(),
        generate(),
        "two generations of vault.proto differ"
    );
}
