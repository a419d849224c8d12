//! The `config_scan` fuzz target's check, shared by the target
//! (fuzz/fuzz_targets/config_scan.rs) and the corpus replay (tests/fuzz_corpus.rs).
//!
//! The input's first byte picks the file's format (its value modulo 6: TOML, YAML, JSON, INI,
//! `.env`, or a file of no known format, where only token formats and private keys are
//! looked for); the rest is the file. It is scanned under that name with the public
//! `config_scan::scan_bytes`, which reads and scans it as `config_scan::scan` (what
//! `vaultctl scan` runs) does a file, without writing it anywhere: the target runs at the
//! speed of the scanner rather than of the filesystem.

use std::path::Path;

use config_scan::{Kind, Options, Report, scan_bytes};

/// File names, by the input's first byte modulo 6.
const FILE_NAMES: [&str; 6] = [
    "config.toml",
    "config.yaml",
    "config.json",
    "config.ini",
    ".env",
    "notes.txt",
];

/// A GitHub token placed on a line of its own after the fuzzed file: whatever the file around
/// it, no output may show more than its first 4 characters. Assembled at run time, so that the
/// repository holds nothing that looks like a credential.
fn canary() -> String {
    ["gh", "p_", "Q7zRw4K3xW9mJfP5vL2nR8sB4yJ6hdZt1MgE"].concat()
}

/// A token of the same kind that shares no 5-character window with [`canary`].
fn decoy() -> String {
    ["gh", "p_", "a8VbN2cX5kL7pQ3eT9uY6wH4sD1fG0jRoImZ"].concat()
}

/// The most characters of a value that output shows (config-scan's masking rule).
const MAX_SHOWN: usize = 4;

/// Every 5-character window of the canary after its first 4 characters.
fn canary_windows() -> Vec<String> {
    let canary = canary();
    (MAX_SHOWN..=canary.len() - 5)
        .map(|i| canary[i..i + 5].to_owned())
        .collect()
}

/// Everything a scan prints: the human report, the notes and the JSON report.
fn output(report: &Report) -> String {
    format!(
        "{}{}{}",
        report.human(),
        report.human_notes(),
        report.json()
    )
}

/// Checks the structure of every finding: a masked value shows at most 4 characters, a
/// fingerprint is 16 hex digits, a line number is within the file.
fn check_findings(report: &Report, lines: usize) {
    for finding in &report.findings {
        assert!(
            (1..=lines.max(1)).contains(&finding.line),
            "line {} of a {lines}-line file",
            finding.line
        );
        assert!(
            finding.fingerprint.len() == 16
                && finding.fingerprint.bytes().all(|b| b.is_ascii_hexdigit()),
            "fingerprint {:?}",
            finding.fingerprint
        );
        if !finding.kind.value_is_reference() && finding.kind != Kind::PemPrivateKey {
            let (shown, rest) = finding
                .masked
                .split_once('…')
                .unwrap_or_else(|| panic!("{:?} is not masked", finding.masked));
            assert!(
                shown.chars().count() <= MAX_SHOWN && rest.ends_with(" chars)"),
                "{:?} shows too much",
                finding.masked
            );
        }
    }
}

/// What one input gave: the findings in the file, and whether the token planted after it was
/// found (`None` when the file holds part of the token, so none was planted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    pub findings: usize,
    pub canary_found: Option<bool>,
}

/// Scans `data` (format byte, then the file), after checking that the scan does not panic,
/// that every finding is well-formed, and that a token appended to the file is never shown
/// beyond its first 4 characters.
pub fn check_config_scan(data: &[u8]) -> Scanned {
    let Some((&selector, content)) = data.split_first() else {
        return Scanned {
            findings: 0,
            canary_found: None,
        };
    };
    let path = Path::new(FILE_NAMES[usize::from(selector) % FILE_NAMES.len()]);
    let lines = content.split(|&b| b == b'\n').count();
    let report = scan_bytes(path, content, &Options::default(), None);
    check_findings(&report, lines);
    let findings = report.findings.len();

    let text = String::from_utf8_lossy(content);
    let windows = canary_windows();
    let mut canary_found = None;
    if !windows.iter().any(|window| text.contains(window.as_str())) {
        let planted = |token: &str| {
            let mut planted = content.to_vec();
            planted.extend_from_slice(format!("\nplanted_value = \"{token}\"\n").as_bytes());
            let report = scan_bytes(path, &planted, &Options::default(), None);
            check_findings(&report, lines + 2);
            report
        };
        let report = planted(&canary());
        // The same file with another token planted: a window shown there too comes from the
        // file as the scan decodes it (a JSON escape such as `M\g` reads `Mg`, shown in a
        // key or a reference), not from the planted token.
        let decoy = output(&planted(&decoy()));
        let shown = output(&report);
        if let Some(window) = windows
            .iter()
            .find(|window| shown.contains(window.as_str()) && !decoy.contains(window.as_str()))
        {
            panic!("the planted token shows {window:?} in:\n{shown}");
        }
        canary_found = Some(report.findings.iter().any(|f| f.kind == Kind::GithubToken));
    }
    Scanned {
        findings,
        canary_found,
    }
}
