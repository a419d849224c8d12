//! Writes the golden vectors of envelope formats v1 and v2 into `envelope/tests/vectors/`.
//!
//!     cargo run -p envelope --example make_golden_vectors [-- --overwrite]
//!
//! The envelopes are built byte by byte from FORMAT.md with ring directly (not through
//! `envelope::seal`), with fixed DEKs and nonces, so the output is deterministic and checks
//! the document as much as the code. Each is opened with `envelope::open` before it is
//! written. Existing files that differ are never replaced without `--overwrite`: checked-in
//! vectors are the compatibility promise, and changing one means a format changed.

#[path = "../tests/golden/mod.rs"]
mod golden;

use std::process::ExitCode;

use golden::{TEST_KEK_KIND, TestKek, VECTORS, Vector};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

/// FORMAT.md, "Context and additional authenticated data": the version byte is the
/// envelope's own.
fn context_bytes(v: &Vector) -> Vec<u8> {
    let mut out = b"vault-envelope\0".to_vec();
    out.push(v.format);
    for field in [v.scope, v.key] {
        out.extend_from_slice(&(field.len() as u16).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(&v.version.to_be_bytes());
    out
}

/// FORMAT.md, "Stanza": the id fields, also the stanza AAD after the context.
fn stanza_id_bytes(kek: &TestKek) -> Vec<u8> {
    let mut out = vec![TEST_KEK_KIND.len() as u8];
    out.extend_from_slice(TEST_KEK_KIND.as_bytes());
    out.push(kek.label.len() as u8);
    out.extend_from_slice(kek.label.as_bytes());
    out.extend_from_slice(&kek.version.to_be_bytes());
    out
}

fn chacha_seal(key: &[u8; 32], nonce: [u8; 12], aad: &[u8], data: &mut Vec<u8>) {
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).expect("key"));
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), data)
        .expect("seal");
}

/// FORMAT.md, "SoftwareKek stanza body": alg 1 | nonce | sealed DEK | tag.
fn software_kek_body(kek: &TestKek, nonce: [u8; 12], dek: &[u8; 32], aad: &[u8]) -> Vec<u8> {
    let mut sealed = dek.to_vec();
    chacha_seal(&kek.key, nonce, aad, &mut sealed);
    let mut body = vec![1u8];
    body.extend_from_slice(&nonce);
    body.extend_from_slice(&sealed);
    body
}

/// Builds vector number `n`: DEK bytes `0xd0 + n` repeated, stanza nonces `n * 16 + s`.
fn build(n: u8, v: &Vector) -> Vec<u8> {
    let dek = [0xd0 + n; 32];
    let context = context_bytes(v);
    let mut out = b"VLTE".to_vec();
    out.extend_from_slice(&[v.format, 1, 0, v.keks.len() as u8]);
    for (s, kek) in v.keks.iter().enumerate() {
        let id = stanza_id_bytes(kek);
        let aad = [context.as_slice(), &id].concat();
        let body = software_kek_body(kek, [n * 16 + s as u8; 12], &dek, &aad);
        out.extend_from_slice(&id);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(&body);
    }
    // FORMAT.md, "Payload AAD": v1 covers the whole header, v2 the 7 bytes magic, version,
    // aead and flags.
    let header = match v.format {
        1 => &out[..],
        _ => &out[..7],
    };
    let payload_aad = [context.as_slice(), header].concat();
    let mut ciphertext = v.plaintext.to_vec();
    chacha_seal(&dek, [0; 12], &payload_aad, &mut ciphertext);
    out.extend_from_slice(&(ciphertext.len() as u32).to_be_bytes());
    out.extend_from_slice(&ciphertext);
    out
}

fn write(path: &std::path::Path, bytes: &[u8], overwrite: bool) -> Result<(), String> {
    match std::fs::read(path) {
        Ok(old) if old == bytes => {
            println!("unchanged {}", path.display());
            return Ok(());
        }
        Ok(_) if !overwrite => {
            return Err(format!(
                "{} exists and differs; golden vectors are the compatibility promise. \
                 Pass --overwrite only if the format itself was wrong, and say so in the commit",
                path.display()
            ));
        }
        _ => {}
    }
    std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn run(overwrite: bool) -> Result<(), String> {
    let dir = golden::vectors_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for (n, v) in VECTORS.iter().enumerate() {
        let bytes = build(n as u8, v);
        for kek in v.keks {
            let opened = envelope::open(&bytes, &v.context(), &[kek.provider()])
                .map_err(|e| format!("{}: the built envelope does not open: {e}", v.name))?;
            if opened.expose_secret() != v.plaintext || bytes[4] != v.format {
                return Err(format!("{}: wrong plaintext or version byte", v.name));
            }
        }
        let json = envelope::to_json(&bytes).map_err(|e| format!("{}: {e}", v.name))?;
        write(&dir.join(format!("{}.bin", v.name)), &bytes, overwrite)?;
        write(
            &dir.join(format!("{}.json", v.name)),
            json.as_bytes(),
            overwrite,
        )?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let overwrite = std::env::args().skip(1).any(|a| a == "--overwrite");
    match run(overwrite) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make_golden_vectors: {e}");
            ExitCode::FAILURE
        }
    }
}
