//! `--env-file`: one `NAME=REF` per line; blank lines and lines starting with `#` are
//! skipped. Strict: any other line is an error naming the file and line. The file holds
//! references, not values, so it may be checked in.

use std::path::Path;

use secret_refs::SecretRef;

use crate::error::Error;

/// Largest env file read (references are short; this bounds a mistaken path).
const MAX_ENV_FILE_LEN: u64 = 1 << 20;

/// One `NAME=REF` and where it came from (`FILE:LINE` or `--env`).
#[derive(Debug)]
pub struct Entry {
    /// The variable to set in the child.
    pub name: String,
    /// What to set it to.
    pub reference: SecretRef,
    /// Where it was written, for error messages.
    pub origin: String,
}

/// Parses `NAME=REF`; errors are prefixed by the caller with the origin.
pub fn parse_assignment(text: &str) -> Result<(String, SecretRef), String> {
    let (name, reference) = text
        .split_once('=')
        .ok_or("write NAME=REF, e.g. DB_PASSWORD=vault://global/db-password")?;
    check_name(name)?;
    let reference = secret_refs::parse(reference).map_err(|e| e.to_string())?;
    Ok((name.to_owned(), reference))
}

fn check_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') || name.len() > 128 {
        return Err(format!(
            "{:?} is not a variable name: 1-128 of A-Z a-z 0-9 _, not starting with a digit",
            vault::shorten_name(name)
        ));
    }
    Ok(())
}

/// Reads the entries of an env file, in order.
pub fn read(path: &Path) -> Result<Vec<Entry>, Error> {
    use std::io::Read;
    let what = format!("reading {}", path.display());
    let file = std::fs::File::open(path).map_err(Error::io(what.clone()))?;
    let mut text = String::new();
    file.take(MAX_ENV_FILE_LEN + 1)
        .read_to_string(&mut text)
        .map_err(Error::io(what))?;
    if text.len() as u64 > MAX_ENV_FILE_LEN {
        return Err(Error::Usage(format!(
            "{} is larger than {MAX_ENV_FILE_LEN} bytes; an env file holds NAME=REF lines",
            path.display()
        )));
    }
    let mut entries: Vec<Entry> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let origin = format!("{}:{}", path.display(), index + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, reference) =
            parse_assignment(line).map_err(|reason| Error::Usage(format!("{origin}: {reason}")))?;
        if let Some(first) = entries.iter().find(|e| e.name == name) {
            return Err(Error::Usage(format!(
                "{origin}: {name} is already set at {}",
                first.origin
            )));
        }
        entries.push(Entry {
            name,
            reference,
            origin,
        });
    }
    Ok(entries)
}
