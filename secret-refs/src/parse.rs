//! The strict, bounded parser. Pure (no I/O, no environment), never panics, and rejects
//! anything it does not fully understand; see the crate documentation for the syntax.

use std::path::PathBuf;

use vault::Scope;

use crate::{Error, SecretRef, percent};

/// Longest reference text accepted.
pub const MAX_REF_LEN: usize = 8192;
/// Longest decoded file or program path.
pub const MAX_PATH_LEN: usize = 4096;
/// Longest `env://` variable name.
pub const MAX_ENV_NAME_LEN: usize = 128;
/// Most arguments of an `exec://` reference.
pub const MAX_EXEC_ARGS: usize = 64;
/// Longest decoded `exec://` argument.
pub const MAX_EXEC_ARG_LEN: usize = 4096;

/// Parses a secret reference: `vault://SCOPE/KEY[#VERSION]`, `env://NAME`,
/// `file:///ABS/PATH` or `exec:///ABS/PROGRAM[?arg=A&arg=B...]`.
pub fn parse(text: &str) -> Result<SecretRef, Error> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(unknown_scheme());
    };
    if !matches!(scheme, "vault" | "env" | "file" | "exec") {
        return Err(unknown_scheme());
    }
    let fail = |reason: String| Error::Parse {
        reference: vault::shorten_name(text),
        reason,
    };
    if text.len() > MAX_REF_LEN {
        return Err(fail(format!("longer than {MAX_REF_LEN} bytes")));
    }
    match scheme {
        "vault" => parse_vault(rest),
        "env" => parse_env_name(rest).map(|name| SecretRef::Env { name }),
        "file" => {
            if rest.contains(['?', '#']) {
                return Err(fail(
                    "file references take no query or fragment; percent-encode '?' and '#' in the path (%3F, %23)".into(),
                ));
            }
            parse_path(rest, "file").map(|path| SecretRef::File { path })
        }
        _ => parse_exec(rest),
    }
    .map_err(fail)
}

fn unknown_scheme() -> Error {
    Error::Parse {
        reference: String::new(),
        reason: "a reference starts with vault://, env://, file:// or exec://".into(),
    }
}

/// `SCOPE/KEY[#VERSION]`. The scope is everything before the last `/` (scopes such as
/// `channel:slack:acme` contain `:` but never `/`), the key everything after it.
fn parse_vault(rest: &str) -> Result<SecretRef, String> {
    let (name, version) = match rest.split_once('#') {
        Some((name, version)) => (name, Some(parse_version(version)?)),
        None => (rest, None),
    };
    let (scope, key) = name
        .rsplit_once('/')
        .ok_or("write it as vault://SCOPE/KEY[#VERSION], e.g. vault://global/db-password#2")?;
    let scope = Scope::parse(scope).map_err(|e| e.to_string())?;
    vault::check_key(key).map_err(|e| e.to_string())?;
    Ok(SecretRef::Vault {
        scope,
        key: key.to_owned(),
        version,
    })
}

fn parse_version(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "the version {:?} is not a number from 1 up without leading zeros",
            vault::shorten_name(text)
        )
    };
    if text.is_empty()
        || text.len() > 20
        || text.starts_with('0')
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    text.parse::<u64>().map_err(|_| bad())
}

fn parse_env_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > MAX_ENV_NAME_LEN {
        return Err(format!(
            "the variable name must be 1 to {MAX_ENV_NAME_LEN} characters"
        ));
    }
    let mut bytes = text.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err("a variable name is A-Z a-z 0-9 _ and does not start with a digit".into());
    }
    Ok(text.to_owned())
}

/// An absolute, normalised path after percent-decoding: `/` first, no empty, `.` or `..`
/// components, no trailing `/`, no control characters.
fn parse_path(text: &str, what: &str) -> Result<PathBuf, String> {
    if !text.starts_with('/') {
        return Err(format!(
            "{what} references need an absolute path: {what}:///ABS/PATH (three slashes; no host)"
        ));
    }
    let path = percent::decode(text)?;
    if path.len() > MAX_PATH_LEN {
        return Err(format!("the path is longer than {MAX_PATH_LEN} bytes"));
    }
    if path.chars().any(char::is_control) {
        return Err("the path contains a control character".into());
    }
    if !path.starts_with('/') {
        return Err("the path must start with '/'; it may not be percent-encoded".into());
    }
    for component in path[1..].split('/') {
        if matches!(component, "" | "." | "..") {
            return Err(
                "the path has an empty, '.' or '..' component (or ends with '/'); write the plain absolute path".into(),
            );
        }
    }
    Ok(PathBuf::from(path))
}

/// `/ABS/PROGRAM[?arg=A&arg=B...]`: no shell is involved, each `arg=` is one argument.
fn parse_exec(rest: &str) -> Result<SecretRef, String> {
    if rest.contains('#') {
        return Err("exec references take no fragment; percent-encode '#' as %23".into());
    }
    let (program, query) = match rest.split_once('?') {
        Some((program, query)) => (program, Some(query)),
        None => (rest, None),
    };
    let program = parse_path(program, "exec")?;
    let mut args = Vec::new();
    if let Some(query) = query {
        for pair in query.split('&') {
            if args.len() == MAX_EXEC_ARGS {
                return Err(format!("more than {MAX_EXEC_ARGS} arguments"));
            }
            let value = pair.strip_prefix("arg=").ok_or(
                "the query holds arguments only: ?arg=A&arg=B (percent-encode '&', '=', '?' and spaces)",
            )?;
            let arg = percent::decode(value)?;
            if arg.len() > MAX_EXEC_ARG_LEN {
                return Err(format!(
                    "an argument is longer than {MAX_EXEC_ARG_LEN} bytes"
                ));
            }
            if arg.contains('\0') {
                return Err("an argument contains a NUL byte".into());
            }
            args.push(arg);
        }
    }
    Ok(SecretRef::Exec { program, args })
}
