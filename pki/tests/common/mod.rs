//! A PKI directory in a temporary folder, shared by the tests.
#![allow(dead_code)]

use pki::PkiDir;

/// The hosts of the server certificate in every test.
pub fn hosts() -> Vec<String> {
    ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// A created PKI directory; the folder goes away with the first field.
pub fn created() -> (tempfile::TempDir, PkiDir) {
    let tmp = tempfile::tempdir().expect("test setup");
    let pki = PkiDir::new(tmp.path().join("tls"));
    pki.create(&hosts()).expect("test setup");
    (tmp, pki)
}

/// The DER of the first certificate in a PEM file.
pub fn der_of(path: &std::path::Path) -> Vec<u8> {
    let bytes = std::fs::read(path).expect("test setup");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).expect("test setup");
    assert_eq!(pem.label, "CERTIFICATE");
    pem.contents
}

/// A file's permission bits.
pub fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("test setup")
        .permissions()
        .mode()
        & 0o7777
}
