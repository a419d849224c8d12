//! `scan_bytes` reports of bytes in memory what `scan` reports of the same bytes in a file of
//! that name: the fuzz target scans through it, so it must not drift from what
//! `vaultctl scan` runs.

use config_scan::{Options, scan, scan_bytes};

/// A GitHub token, assembled at run time so the repository holds nothing that looks like one.
fn token() -> String {
    ["gh", "p_", "Q7zRw4K3xW9mJfP5vL2nR8sB4yJ6hdZt1MgE"].concat()
}

#[test]
fn scan_bytes_reports_what_scan_reports_of_the_same_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let token = token();
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "config.toml",
            format!("[db]\npassword = \"Zq8#rT2!vLm9$wXk4pB7\"\ntoken = \"{token}\"\nbroken\n")
                .into_bytes(),
        ),
        (
            "config.yaml",
            format!("a:\n  b: {token}\n: nokey\n").into_bytes(),
        ),
        (".env", b"API_KEY=\"open\nDB=vault://global/db\n".to_vec()),
        ("notes.txt", format!("see {token}\n").into_bytes()),
        ("latin1.ini", b"[s]\nkey = caf\xe9\n".to_vec()),
        ("binary.json", b"{\"a\": \"\0\"}".to_vec()),
    ];
    let small = Options {
        max_file_size: 16,
        ..Options::default()
    };
    // What the files gave, so the comparison is not of empty reports.
    let (mut findings, mut notes) = (0, 0);
    for options in [Options::default(), small] {
        for (name, bytes) in &files {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("write");
            let from_file = scan(std::slice::from_ref(&path), &options, None).expect("scan");
            let in_memory = scan_bytes(&path, bytes, &options, None);
            assert_eq!(in_memory.json(), from_file.json(), "{name}");
            assert_eq!(in_memory.human(), from_file.human(), "{name}");
            assert_eq!(in_memory.human_notes(), from_file.human_notes(), "{name}");
            findings += from_file.findings.len();
            notes += from_file.notes.len();
        }
    }
    assert!(
        findings >= 4 && notes >= 6,
        "{findings} findings, {notes} notes"
    );
}
