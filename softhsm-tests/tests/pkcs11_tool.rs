//! A second opinion from a client the vault did not write: OpenSC's `pkcs11-tool` looks at the
//! key `vaultctl kek create` makes on a private SoftHSM2 token. It lists the key as sensitive
//! and never extractable, cannot read its value (C_GetAttributeValue of CKA_VALUE), and cannot
//! wrap it out under another key (C_WrapKey with CKM_AES_KEY_WRAP_PAD gives
//! CKR_KEY_UNEXTRACTABLE). The same checks, on keys pkcs11-tool makes extractable, find every
//! way out: they would fail if `kek create` made such a key.
//!
//! pkcs11-tool 0.23 (Debian 12) does not know CKM_AES_KEY_WRAP_PAD by name, so it is given by
//! number, which newer versions accept as well.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use softhsm_tests::{SoftHsm, in_private_token, vaultctl_binary};
use test_support::stdout_of;

/// CKM_AES_KEY_WRAP_PAD (RFC 5649), as pkcs11-tool's `--mechanism` takes it.
const AES_KEY_WRAP_PAD: &str = "0x210A";
/// The CKA_ID (hex) of the AES key the tests wrap with.
const WRAPPING_KEY_ID: &str = "77";

/// Runs `command`, returning its output (whatever the exit status).
fn output_of(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("cannot run {command:?}: {e}");
    })
}

/// `pkcs11-tool --module <SoftHSM> --login --pin <user PIN>`.
fn logged_in_tool(hsm: &SoftHsm) -> Command {
    let mut command = hsm.pkcs11_tool();
    command.args(["--login", "--pin", hsm.user_pin()]);
    command
}

/// `vaultctl kek create` of the key labelled `label`; returns its CKA_ID (hex) from
/// `vaultctl kek info`.
fn vaultctl_create(hsm: &SoftHsm, label: &str) -> String {
    let uri = hsm.kek_uri(label);
    let created = stdout_of(
        hsm.command(vaultctl_binary(hsm.dir()))
            .args(["kek", "create", &uri]),
    );
    assert!(
        created.starts_with("created a non-extractable AES-256 key: "),
        "{created}"
    );
    vaultctl_info(hsm, label)["id"].clone()
}

/// `vaultctl kek info` of the key labelled `label`, as field name -> value.
fn vaultctl_info(hsm: &SoftHsm, label: &str) -> BTreeMap<String, String> {
    let uri = hsm.kek_uri(label);
    stdout_of(
        hsm.command(vaultctl_binary(hsm.dir()))
            .args(["kek", "info", &uri]),
    )
    .lines()
    .filter_map(|line| line.split_once(':'))
    .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
    .collect()
}

/// `pkcs11-tool --keygen` of an AES-256 key with `label`, `id` and the extra `flags`.
fn tool_keygen(hsm: &SoftHsm, label: &str, id: &str, flags: &[&str]) {
    stdout_of(
        logged_in_tool(hsm)
            .args(["--keygen", "--key-type", "AES:32"])
            .args(["--label", label, "--id", id])
            .args(flags),
    );
}

/// The block pkcs11-tool's `--list-objects --type secrkey` prints for the key `label`: its
/// heading (`Secret Key Object; AES length 32`) under `""`, then each `  name: value` line.
fn listed_key(hsm: &SoftHsm, label: &str) -> BTreeMap<String, String> {
    let listing = stdout_of(logged_in_tool(hsm).args(["--list-objects", "--type", "secrkey"]));
    let mut blocks: Vec<BTreeMap<String, String>> = Vec::new();
    for line in listing.lines() {
        if line.starts_with("Secret Key Object") {
            blocks.push(BTreeMap::from([(String::new(), line.to_owned())]));
        } else if let (Some(block), Some((name, value))) = (blocks.last_mut(), line.split_once(':'))
        {
            block.insert(name.trim().to_owned(), value.trim().to_owned());
        }
    }
    let mut matching = blocks
        .into_iter()
        .filter(|block| block.get("label").map(String::as_str) == Some(label));
    let block = matching
        .next()
        .unwrap_or_else(|| panic!("pkcs11-tool does not list a key labelled {label}:\n{listing}"));
    assert!(
        matching.next().is_none(),
        "two keys labelled {label}:\n{listing}"
    );
    block
}

/// What pkcs11-tool shows about one secret key and what it can do with it.
#[derive(Debug)]
struct Evidence {
    /// The `Access:` flags pkcs11-tool lists, e.g. `sensitive`, `never extractable`.
    access: BTreeSet<String>,
    /// Whether the listing shows the key's value (`VALUE:`).
    value_listed: bool,
    /// `--read-object`: the bytes it wrote, or its stderr when it failed.
    read: Result<Vec<u8>, String>,
    /// `--wrap` under the wrapping key: the wrapped bytes, or its stderr when it failed.
    wrap: Result<Vec<u8>, String>,
}

/// Lists, reads and wraps the key labelled `label` with CKA_ID `id` (hex).
fn evidence(hsm: &SoftHsm, label: &str, id: &str) -> Evidence {
    let listed = listed_key(hsm, label);
    assert_eq!(
        listed.get("ID").map(String::as_str),
        Some(id),
        "the listed key has the expected CKA_ID: {listed:?}"
    );
    assert_eq!(
        listed.get("").map(String::as_str),
        Some("Secret Key Object; AES length 32"),
        "{listed:?}"
    );
    let access = listed
        .get("Access")
        .map(|flags| flags.split(", ").map(str::to_owned).collect())
        .unwrap_or_default();

    let read_file = hsm.dir().join(format!("{label}.value"));
    let read = written_or_stderr(
        logged_in_tool(hsm)
            .args(["--read-object", "--type", "secrkey", "--label", label])
            .arg("--output-file")
            .arg(&read_file),
        &read_file,
    );
    let wrap_file = hsm.dir().join(format!("{label}.wrapped"));
    let wrap = written_or_stderr(
        logged_in_tool(hsm)
            .args(["--wrap", "--mechanism", AES_KEY_WRAP_PAD])
            .args(["--id", WRAPPING_KEY_ID, "--application-id", id])
            .arg("--output-file")
            .arg(&wrap_file),
        &wrap_file,
    );
    Evidence {
        access,
        value_listed: listed.contains_key("VALUE"),
        read,
        wrap,
    }
}

/// The bytes `command` wrote to `file` when it succeeded; its stderr when it failed (and then
/// it must have written nothing).
fn written_or_stderr(command: &mut Command, file: &Path) -> Result<Vec<u8>, String> {
    let output = output_of(command);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        Ok(fs::read(file)
            .unwrap_or_else(|e| panic!("{command:?} succeeded but wrote no file: {e}")))
    } else {
        let written = fs::read(file).unwrap_or_default();
        assert!(
            written.is_empty(),
            "{command:?} failed but wrote {} bytes",
            written.len()
        );
        Err(stderr)
    }
}

/// Every way the evidence shows for the key to leave the token; none for a KEK.
fn ways_out(evidence: &Evidence) -> Vec<String> {
    let mut ways = Vec::new();
    let has = |flag: &str| evidence.access.contains(flag);
    if has("extractable") {
        ways.push("pkcs11-tool lists it as extractable".to_owned());
    }
    if !has("never extractable") {
        ways.push("pkcs11-tool does not list it as never extractable".to_owned());
    }
    if !has("sensitive") || !has("always sensitive") {
        ways.push("pkcs11-tool does not list it as (always) sensitive".to_owned());
    }
    if evidence.value_listed {
        ways.push("pkcs11-tool lists its value".to_owned());
    }
    if let Ok(value) = &evidence.read {
        ways.push(format!("--read-object read its {}-byte value", value.len()));
    }
    if let Ok(wrapped) = &evidence.wrap {
        ways.push(format!("--wrap wrapped it out ({} bytes)", wrapped.len()));
    }
    ways
}

/// The AES key the tests wrap with: allowed to wrap, itself sensitive and not extractable.
fn make_wrapping_key(hsm: &SoftHsm) {
    tool_keygen(
        hsm,
        "wrapping-key",
        WRAPPING_KEY_ID,
        &["--usage-wrap", "--sensitive"],
    );
}

#[test]
fn pkcs11_tool_finds_the_vaultctl_kek_sensitive_unreadable_and_unwrappable() {
    in_private_token(|hsm| {
        let id = vaultctl_create(hsm, "kek-1");
        make_wrapping_key(hsm);
        let found = evidence(hsm, "kek-1", &id);

        for flag in [
            "sensitive",
            "always sensitive",
            "never extractable",
            "local",
        ] {
            assert!(found.access.contains(flag), "{flag}: {found:?}");
        }
        assert!(!found.access.contains("extractable"), "{found:?}");
        assert!(!found.value_listed, "{found:?}");
        let read_error = found.read.as_ref().expect_err("the value cannot be read");
        assert!(
            read_error.contains("CKR_ATTRIBUTE_SENSITIVE"),
            "--read-object fails on the sensitive value: {read_error}"
        );
        let wrap_error = found
            .wrap
            .as_ref()
            .expect_err("the key cannot be wrapped out");
        assert!(
            wrap_error.contains("C_WrapKey failed: rv = CKR_KEY_UNEXTRACTABLE"),
            "--wrap fails in C_WrapKey: {wrap_error}"
        );
        assert_eq!(ways_out(&found), Vec::<String>::new());
    });
}

#[test]
fn the_same_checks_find_the_ways_out_of_extractable_keys() {
    in_private_token(|hsm| {
        make_wrapping_key(hsm);

        // Extractable and not sensitive: readable and wrappable.
        tool_keygen(hsm, "exportable", "78", &["--extractable"]);
        let found = evidence(hsm, "exportable", "78");
        assert!(found.access.contains("extractable"), "{found:?}");
        assert!(found.value_listed, "{found:?}");
        let value = found.read.as_ref().expect("its value can be read");
        assert_eq!(value.len(), 32);
        let wrapped = found.wrap.as_ref().expect("it can be wrapped out");
        assert_eq!(wrapped.len(), 40, "RFC 5649: 32 bytes + 8");
        let ways = ways_out(&found);
        for expected in [
            "pkcs11-tool lists it as extractable",
            "pkcs11-tool does not list it as never extractable",
            "pkcs11-tool does not list it as (always) sensitive",
            "pkcs11-tool lists its value",
            "--read-object read its 32-byte value",
            "--wrap wrapped it out (40 bytes)",
        ] {
            assert!(
                ways.iter().any(|way| way == expected),
                "{expected}: {ways:?}"
            );
        }

        // Sensitive but extractable: unreadable, yet it can still be wrapped out, and only the
        // flags and the wrap attempt show it.
        tool_keygen(
            hsm,
            "sensitive-exportable",
            "79",
            &["--sensitive", "--extractable"],
        );
        let found = evidence(hsm, "sensitive-exportable", "79");
        assert!(found.read.is_err(), "{found:?}");
        assert!(found.wrap.is_ok(), "{found:?}");
        let ways = ways_out(&found);
        assert!(
            ways.contains(&"pkcs11-tool lists it as extractable".to_owned())
                && ways.contains(&"--wrap wrapped it out (40 bytes)".to_owned()),
            "{ways:?}"
        );

        // vaultctl's own verdict agrees.
        for label in ["exportable", "sensitive-exportable"] {
            let info = vaultctl_info(hsm, label);
            assert_eq!(info["CKA_EXTRACTABLE"], "true", "{label}: {info:?}");
            assert_eq!(
                info["verdict"], "CAN LEAVE THE TOKEN: not a key made by `vaultctl kek create`",
                "{label}: {info:?}"
            );
        }
    });
}
