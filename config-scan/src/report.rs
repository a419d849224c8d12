//! The scan's result and its two renderings: lines for people, JSON for CI.
//!
//! JSON schema `vault-scan/1` (fields are only ever added under this name):
//!
//! ```text
//! {
//!   "schema": "vault-scan/1",
//!   "findings": [{
//!     "path": "config/app.toml",        // the file as scanned (root joined with rel_path)
//!     "rel_path": "app.toml",           // relative to its scan root: what globs match
//!     "line": 12,                       // 1-based
//!     "kind": "github-token",           // see Kind::as_str
//!     "severity": "blocking",           // or "warning"
//!     "key": "github.token",            // dotted key, "-" when none
//!     "value": "ghp_…(40 chars)",       // masked; a PEM header; a reference in full
//!     "fingerprint": "3f2a9c0d1e2b4a5c",
//!     "allowed": false,                 // true: an allowlist entry accepts it
//!     "detail": null                    // or why (e.g. which version is missing)
//!   }],
//!   "notes": [{"path": "...", "line": 3, "message": "string not closed"}],
//!   "summary": {"files_scanned": 9, "blocking": 1, "warning": 2, "allowed": 1,
//!               "unchecked_refs": 0}
//! }
//! ```

use serde_json::{Value, json};

use crate::finding::{Finding, Note, Severity};

/// The `schema` field of the JSON form.
pub const JSON_SCHEMA: &str = "vault-scan/1";

/// Everything a scan found.
#[derive(Debug, Default)]
pub struct Report {
    /// Findings, allowed ones included, by file then line.
    pub findings: Vec<Finding>,
    /// Files skipped or not read to the end.
    pub notes: Vec<Note>,
    /// Files read.
    pub files_scanned: usize,
    /// `vault://` references not checked because no vault was given.
    pub unchecked_refs: usize,
}

impl Report {
    /// Findings no allowlist entry accepts, of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| !f.allowed && f.severity() == severity)
            .count()
    }

    /// Findings an allowlist entry accepts.
    pub fn allowed(&self) -> usize {
        self.findings.iter().filter(|f| f.allowed).count()
    }

    /// One line per finding that is not allowed:
    /// `path:line: severity kind key=... value=... fp=...`, then a summary line.
    pub fn human(&self) -> String {
        let mut out = String::new();
        for f in self.findings.iter().filter(|f| !f.allowed) {
            out.push_str(&format!(
                "{}:{}: {} {} key={} value={} fp={}",
                f.path.display(),
                f.line,
                f.severity(),
                f.kind,
                f.key,
                f.masked,
                f.fingerprint
            ));
            if let Some(detail) = &f.detail {
                out.push_str(&format!(" ({detail})"));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "scanned {} files: {} blocking, {} warning, {} allowed\n",
            self.files_scanned,
            self.count(Severity::Blocking),
            self.count(Severity::Warning),
            self.allowed()
        ));
        out
    }

    /// The notes as `note: path[:line]: message` lines (for stderr).
    pub fn human_notes(&self) -> String {
        let mut out = String::new();
        for n in &self.notes {
            match n.line {
                Some(line) => out.push_str(&format!(
                    "note: {}:{line}: {}\n",
                    n.path.display(),
                    n.message
                )),
                None => out.push_str(&format!("note: {}: {}\n", n.path.display(), n.message)),
            }
        }
        out
    }

    /// The JSON form (see the module documentation for the schema).
    pub fn json(&self) -> Value {
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                json!({
                    "path": f.path.to_string_lossy(),
                    "rel_path": f.rel_path,
                    "line": f.line,
                    "kind": f.kind.as_str(),
                    "severity": f.severity().as_str(),
                    "key": f.key,
                    "value": f.masked,
                    "fingerprint": f.fingerprint,
                    "allowed": f.allowed,
                    "detail": f.detail,
                })
            })
            .collect();
        let notes: Vec<Value> = self
            .notes
            .iter()
            .map(
                |n| json!({"path": n.path.to_string_lossy(), "line": n.line, "message": n.message}),
            )
            .collect();
        json!({
            "schema": JSON_SCHEMA,
            "findings": findings,
            "notes": notes,
            "summary": {
                "files_scanned": self.files_scanned,
                "blocking": self.count(Severity::Blocking),
                "warning": self.count(Severity::Warning),
                "allowed": self.allowed(),
                "unchecked_refs": self.unchecked_refs,
            },
        })
    }
}
