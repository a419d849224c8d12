//! The scanner over a real tree of TOML, YAML, JSON, INI and .env files with planted
//! secrets.

mod planted;

use std::collections::HashMap;
use std::path::PathBuf;

use config_scan::{Allowlist, Lookup, Options, Report, VaultIndex, VaultRef, scan};
use planted::{Tree, assert_nothing_revealed, build};

fn scan_tree(tree: &Tree, options: &Options, vault: Option<&dyn VaultIndex>) -> Report {
    scan(&[tree.root()], options, vault).expect("scan")
}

/// `(rel, line, kind, key)` of the findings that are not allowed.
fn reported(report: &Report) -> Vec<(String, usize, String, String)> {
    let mut got: Vec<_> = report
        .findings
        .iter()
        .filter(|f| !f.allowed)
        .map(|f| {
            (
                f.rel_path.clone(),
                f.line,
                f.kind.to_string(),
                f.key.clone(),
            )
        })
        .collect();
    got.sort();
    got
}

fn expected(tree: &Tree) -> Vec<(String, usize, String, String)> {
    let mut want: Vec<_> = tree
        .planted
        .iter()
        .map(|p| {
            (
                p.rel.to_owned(),
                p.line,
                p.kind.to_owned(),
                p.key.to_owned(),
            )
        })
        .collect();
    want.sort();
    want
}

#[test]
fn every_planted_secret_is_found_at_its_line_and_nothing_else() {
    let tree = build();
    let report = scan_tree(&tree, &Options::default(), None);
    assert_eq!(reported(&report), expected(&tree));
    // Three vault:// references, not checked without a vault; env:// and file:// are fine.
    assert_eq!(report.unchecked_refs, 3);
    assert_eq!(report.files_scanned, 5);
    for f in &report.findings {
        assert_eq!(f.path, tree.root().join(&f.rel_path));
    }
}

#[test]
fn no_value_appears_in_any_output() {
    let tree = build();
    let report = scan_tree(&tree, &Options::default(), None);
    let all = format!(
        "{}{}{}{:?}",
        report.human(),
        report.human_notes(),
        report.json(),
        report
    );
    assert_nothing_revealed(&all, &tree);
    let github = report
        .findings
        .iter()
        .find(|f| f.kind.as_str() == "github-token")
        .expect("github finding");
    assert_eq!(
        github.masked,
        format!("{}…(40 chars)", &tree.planted[0].value[..4])
    );
    let pem = report
        .findings
        .iter()
        .find(|f| f.kind.as_str() == "pem-private-key")
        .expect("pem finding");
    assert!(pem.masked.starts_with("-----BEGIN RSA") && pem.masked.ends_with("KEY-----"));
}

#[test]
fn human_lines_and_json_schema() {
    let tree = build();
    let report = scan_tree(&tree, &Options::default(), None);
    let human = report.human();
    let p = tree.planted("legacy/app.ini", 3);
    let line = format!(
        "{}:3: blocking gitlab-token key=gitlab.token value={}…(26 chars) fp=",
        tree.root().join("legacy/app.ini").display(),
        &p.value[..4]
    );
    assert!(human.contains(&line), "{human}");
    assert!(human.ends_with(&format!(
        "scanned 5 files: {} blocking, 2 warning, 0 allowed\n",
        tree.planted.len() - 2
    )));
    let json = report.json();
    assert_eq!(json["schema"], "vault-scan/1");
    let first = &json["findings"][0];
    for field in [
        "path",
        "rel_path",
        "line",
        "kind",
        "severity",
        "key",
        "value",
        "fingerprint",
        "allowed",
        "detail",
    ] {
        assert!(first.get(field).is_some(), "{field}");
    }
    assert_eq!(json["summary"]["warning"], 2);
    assert_eq!(json["summary"]["unchecked_refs"], 3);
}

#[test]
fn the_allowlist_suppresses_exactly_its_entries() {
    let tree = build();
    let before = scan_tree(&tree, &Options::default(), None);
    let jwt = before
        .findings
        .iter()
        .find(|f| f.kind.as_str() == "jwt")
        .expect("jwt");
    std::fs::write(
        tree.root().join(".vault-scan-allow"),
        format!(
            "# accepted\nfp={}\nlegacy/*.ini high-entropy\n",
            jwt.fingerprint
        ),
    )
    .expect("write allowlist");
    let after = scan_tree(&tree, &Options::default(), None);
    let allowed: Vec<_> = after
        .findings
        .iter()
        .filter(|f| f.allowed)
        .map(|f| (f.rel_path.as_str(), f.kind.as_str()))
        .collect();
    assert_eq!(
        allowed,
        vec![
            ("legacy/app.ini", "high-entropy"),
            ("web/settings.json", "jwt")
        ]
    );
    assert_eq!(reported(&after).len(), tree.planted.len() - 2);
    assert!(!after.human().contains(&jwt.fingerprint));
    assert_eq!(after.json()["summary"]["allowed"], 2);

    // An explicit allowlist replaces the tree's own.
    let explicit = Allowlist::parse("app/** github-token\n", &PathBuf::from("x")).expect("parse");
    let options = Options {
        allowlist: Some(explicit),
        ..Options::default()
    };
    let replaced = scan_tree(&tree, &options, None);
    let allowed: Vec<_> = replaced.findings.iter().filter(|f| f.allowed).collect();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0].kind.as_str(), "github-token");
}

/// A vault index over a fixed set of names (the real vault is vaultctl's test).
struct Names(HashMap<(String, String), u64>);

impl VaultIndex for Names {
    fn lookup(&self, r: &VaultRef) -> Lookup {
        match self.0.get(&(r.scope.clone(), r.key.clone())) {
            None => Lookup::MissingKey,
            Some(&latest) if r.version.is_some_and(|v| v > latest) => {
                Lookup::MissingVersion { latest }
            }
            Some(_) => Lookup::Found,
        }
    }
}

#[test]
fn references_to_missing_keys_and_versions_are_reported() {
    let tree = build();
    let names = Names(HashMap::from([
        (("global".into(), "db-secret".into()), 1),
        (("global".into(), "ci-password".into()), 1),
    ]));
    let report = scan_tree(&tree, &Options::default(), Some(&names));
    let missing: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.kind.as_str() == "missing-vault-ref")
        .map(|f| {
            (
                f.rel_path.as_str(),
                f.line,
                f.key.as_str(),
                f.masked.as_str(),
            )
        })
        .collect();
    assert_eq!(
        missing,
        vec![
            (
                "app/config.toml",
                11,
                "database.other",
                "vault://global/not-there"
            ),
            (
                "deploy/values.yaml",
                15,
                "users.password",
                "vault://global/ci-password#2"
            ),
        ]
    );
    assert_eq!(report.unchecked_refs, 0);
    assert!(
        report
            .human()
            .contains("(global ci-password has no version 2 (latest 1))")
    );
}

#[test]
fn broken_files_are_scanned_to_the_end_with_notes() {
    let tree = build();
    let root = tree.root();
    let token = format!("gh{}{}", "p_", planted::random(40, 36, planted::ALNUM));
    let cases = [
        (
            "broken/a.json",
            format!("{{\"a\": [1, 2,\n\"b\": \"{token}\"\n"),
        ),
        (
            "broken/b.yaml",
            format!("a: [\n  - x\nb: \"unclosed\nc: {token}\n"),
        ),
        (
            "broken/c.toml",
            format!("[t\nnot a pair\nk = \"{token}\"\nz = '''\n"),
        ),
        ("broken/d.ini", format!("[s\n=\nk = {token}\n")),
        ("broken/e.env", format!("no equals\nK=\"{token}\nX='\n")),
    ];
    for (rel, text) in &cases {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    let report = scan(&[root.join("broken")], &Options::default(), None).expect("scan");
    for (rel, _) in &cases {
        let name = rel.trim_start_matches("broken/");
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.rel_path == name && f.kind.as_str() == "github-token"),
            "{name}: {}",
            report.human()
        );
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.path.ends_with(name) && n.line.is_some()),
            "{name}: {}",
            report.human_notes()
        );
    }
    assert!(!report.human_notes().contains(&token[..8]));
}

#[test]
fn skipped_places_and_limits() {
    let tree = build();
    let root = tree.root();
    let report = scan_tree(&tree, &Options::default(), None);
    assert!(
        report
            .findings
            .iter()
            .all(|f| !f.rel_path.starts_with("node_modules"))
    );
    let notes = report.human_notes();
    assert!(
        notes.contains(&format!(
            "{}: symlink leads out of the scanned tree: not followed",
            root.join("link.toml").display()
        )),
        "{notes}"
    );

    let small = Options {
        max_file_size: 64,
        ..Options::default()
    };
    let report = scan_tree(&tree, &small, None);
    assert_eq!(report.files_scanned, 0);
    assert!(
        report
            .human_notes()
            .contains("larger than 64 bytes: skipped")
    );

    // A file named on the command line is read whatever its name (tokens and keys only).
    let readme = scan(&[root.join("README.md")], &Options::default(), None).expect("scan");
    assert_eq!(readme.findings.len(), 1);
    assert_eq!(readme.findings[0].kind.as_str(), "github-token");

    let err = scan(&[root.join("nope")], &Options::default(), None).unwrap_err();
    assert!(err.is_usage());
    assert_eq!(
        err.to_string(),
        format!(
            "cannot scan {}: no such file or directory",
            root.join("nope").display()
        )
    );
}

#[test]
fn unreadable_paths_get_clear_errors_and_notes() {
    use std::os::unix::fs::PermissionsExt;

    let tree = build();
    let root = tree.root();
    let fifo = root.join("pipe.toml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    // Named on the command line: an error, not a hang on the pipe.
    let err = scan(std::slice::from_ref(&fifo), &Options::default(), None).unwrap_err();
    assert!(!err.is_usage());
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read {}: not a regular file or directory",
            fifo.display()
        )
    );
    // Inside a tree: skipped like any other special file.
    let report = scan_tree(&tree, &Options::default(), None);
    assert_eq!(report.files_scanned, 5);

    let locked = root.join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    std::fs::write(locked.join("a.env"), "A=1\n").expect("write");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let readable_anyway = std::fs::read_dir(&locked).is_ok(); // root reads everything
    let report = scan_tree(&tree, &Options::default(), None);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    if !readable_anyway {
        assert!(
            report.human_notes().contains(&format!(
                "note: {}: cannot list directory: ",
                locked.display()
            )),
            "{}",
            report.human_notes()
        );
    }
}
