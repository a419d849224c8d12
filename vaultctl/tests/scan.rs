//! `vaultctl scan` on a real tree of TOML, YAML, JSON, INI and .env files with planted
//! secrets, and against a real vault for `vault://` references.

mod common;
#[path = "../../config-scan/tests/planted/mod.rs"]
mod planted;

use std::process::Output;

use common::{Sandbox, stderr, stdout};
use planted::{Tree, assert_nothing_revealed, build};

fn scan(sandbox: &Sandbox, args: &[&str]) -> Output {
    let out = sandbox.run(&[&["scan"], args].concat());
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    out
}

fn all_output(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("scan --format json prints JSON")
}

/// `(rel_path, line, kind)` of the JSON findings that are not allowed.
fn json_findings(doc: &serde_json::Value) -> Vec<(String, u64, String)> {
    let mut got: Vec<_> = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["allowed"] == false)
        .map(|f| {
            (
                f["rel_path"].as_str().expect("rel_path").to_owned(),
                f["line"].as_u64().expect("line"),
                f["kind"].as_str().expect("kind").to_owned(),
            )
        })
        .collect();
    got.sort();
    got
}

fn planted_findings(tree: &Tree) -> Vec<(String, u64, String)> {
    let mut want: Vec<_> = tree
        .planted
        .iter()
        .map(|p| (p.rel.to_owned(), p.line as u64, p.kind.to_owned()))
        .collect();
    want.sort();
    want
}

#[test]
fn human_output_names_each_secret_at_its_line_masked() {
    let sandbox = Sandbox::new();
    let tree = build();
    let root = tree.root();
    let out = scan(&sandbox, &[root.to_str().expect("utf-8"), "--no-vault"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for p in &tree.planted {
        let severity = if p.kind == "high-entropy" {
            "warning"
        } else {
            "blocking"
        };
        let prefix = format!(
            "{}:{}: {severity} {} key={} value=",
            root.join(p.rel).display(),
            p.line,
            p.kind,
            p.key
        );
        assert!(text.contains(&prefix), "missing {prefix}\n{text}");
    }
    assert_eq!(text.lines().count(), tree.planted.len() + 1, "{text}");
    assert!(text.ends_with(&format!(
        "scanned 5 files: {} blocking, 2 warning, 0 allowed\n",
        tree.planted.len() - 2
    )));
    assert!(stderr(&out).contains("symlink leads out of the scanned tree"));
    assert_nothing_revealed(&all_output(&out), &tree);
}

#[test]
fn json_output_is_the_documented_schema_and_reveals_nothing() {
    let sandbox = Sandbox::new();
    let tree = build();
    let out = scan(
        &sandbox,
        &[
            tree.root().to_str().expect("utf-8"),
            "--format",
            "json",
            "--no-vault",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["schema"], "vault-scan/1");
    assert_eq!(json_findings(&doc), planted_findings(&tree));
    assert_eq!(doc["summary"]["unchecked_refs"], 3);
    for f in doc["findings"].as_array().expect("findings") {
        let value = f["value"].as_str().expect("value");
        assert!(
            value.contains("…(") || value.starts_with("-----BEGIN "),
            "unmasked: {value}"
        );
    }
    assert_nothing_revealed(&all_output(&out), &tree);
}

#[test]
fn strict_fails_on_blocking_findings_and_the_allowlist_accepts_exactly_its_entries() {
    let sandbox = Sandbox::new();
    let tree = build();
    let root = tree.root();
    let root_arg = root.to_str().expect("utf-8");

    let strict = scan(&sandbox, &[root_arg, "--no-vault", "--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    let blocking = tree.planted.len() - 2;
    assert!(
        stderr(&strict).contains(&format!("error: {blocking} blocking findings (--strict)")),
        "{}",
        stderr(&strict)
    );
    assert_eq!(stdout(&strict).lines().count(), tree.planted.len() + 1);
    assert_nothing_revealed(&all_output(&strict), &tree);

    // Accept the Stripe key by its fingerprint, from an explicit allowlist file.
    let doc = json(&scan(
        &sandbox,
        &[root_arg, "--no-vault", "--format", "json"],
    ));
    let stripe = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == "stripe-key")
        .expect("stripe finding");
    let fingerprint = stripe["fingerprint"].as_str().expect("fingerprint");
    let allow = sandbox.path("allow");
    std::fs::write(&allow, format!("fp={fingerprint}\n")).expect("write");
    let allow_arg = allow.to_str().expect("utf-8");
    let args = [
        root_arg,
        "--no-vault",
        "--allowlist",
        allow_arg,
        "--format",
        "json",
    ];
    let doc = json(&scan(&sandbox, &args));
    let allowed: Vec<_> = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["allowed"] == true)
        .map(|f| f["fingerprint"].as_str().expect("fingerprint").to_owned())
        .collect();
    assert_eq!(allowed, vec![fingerprint.to_owned()]);
    assert_eq!(json_findings(&doc).len(), tree.planted.len() - 1);
    let human = scan(
        &sandbox,
        &[root_arg, "--no-vault", "--allowlist", allow_arg],
    );
    assert!(!stdout(&human).contains(fingerprint));
    assert!(!stdout(&human).contains("stripe-key"));

    // Every blocking kind accepted through the tree's own allowlist: --strict passes.
    let kinds: Vec<&str> = tree
        .planted
        .iter()
        .map(|p| p.kind)
        .filter(|k| *k != "high-entropy")
        .collect();
    let own: String = kinds.iter().map(|k| format!("** {k}\n")).collect();
    std::fs::write(root.join(".vault-scan-allow"), own).expect("write");
    let passing = scan(&sandbox, &[root_arg, "--no-vault", "--strict"]);
    assert_eq!(passing.status.code(), Some(0), "{}", stderr(&passing));
    assert!(stdout(&passing).ends_with(&format!("0 blocking, 2 warning, {blocking} allowed\n")));
}

#[test]
fn references_are_checked_against_a_real_vault_without_its_kek() {
    let sandbox = Sandbox::new();
    sandbox.init_file_kek();
    sandbox.ok(&["set", "global", "db-secret"], b"one");
    sandbox.ok(&["set", "global", "ci-password"], b"one");
    // Listing names needs no KEK: the scan works with the key file gone.
    std::fs::remove_file(sandbox.path("keys/kek.key")).expect("remove the KEK");
    let tree = build();
    let out = scan(
        &sandbox,
        &[tree.root().to_str().expect("utf-8"), "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    let missing: Vec<_> = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "missing-vault-ref")
        .map(|f| {
            (
                f["rel_path"].as_str().expect("rel_path").to_owned(),
                f["line"].as_u64().expect("line"),
                f["severity"].as_str().expect("severity").to_owned(),
                f["value"].as_str().expect("value").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        missing,
        vec![
            (
                "app/config.toml".into(),
                11,
                "warning".into(),
                "vault://global/not-there".into()
            ),
            (
                "deploy/values.yaml".into(),
                15,
                "warning".into(),
                "vault://global/ci-password#2".into()
            ),
        ]
    );
    assert_eq!(doc["summary"]["unchecked_refs"], 0);

    // A second version makes the pinned reference resolve. (`set` needs the KEK again.)
    let other = Sandbox::new();
    other.init_file_kek();
    for key in ["db-secret", "ci-password", "not-there"] {
        other.ok(&["set", "global", key], b"one");
    }
    other.ok(&["set", "global", "ci-password"], b"two");
    let doc = json(&scan(
        &other,
        &[tree.root().to_str().expect("utf-8"), "--format", "json"],
    ));
    assert!(
        doc["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .all(|f| f["kind"] != "missing-vault-ref"),
        "{doc:#}"
    );
}

#[test]
fn usage_errors_exit_2_with_a_clear_message() {
    let sandbox = Sandbox::new();
    let tree = build();
    let root = tree.root();

    let missing = root.join("no-such-dir");
    let out = scan(&sandbox, &[missing.to_str().expect("utf-8"), "--no-vault"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "error: cannot scan {}: no such file or directory\n",
            missing.display()
        )
    );
    assert!(stdout(&out).is_empty());

    let out = scan(&sandbox, &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = scan(
        &sandbox,
        &[root.to_str().expect("utf-8"), "--format", "xml"],
    );
    assert_eq!(out.status.code(), Some(2));

    // --vault naming a directory that holds no vault.
    let out = scan(&sandbox, &[root.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not a vault"), "{}", stderr(&out));

    let allow = sandbox.path("bad-allow");
    std::fs::write(&allow, "# fine\nnot-a-fingerprint\n").expect("write");
    let out = scan(
        &sandbox,
        &[
            root.to_str().expect("utf-8"),
            "--no-vault",
            "--allowlist",
            allow.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with(&format!("error: {}:2: a lone word", allow.display())),
        "{}",
        stderr(&out)
    );
}
