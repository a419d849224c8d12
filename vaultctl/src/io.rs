//! Reading secret input and writing output without leaving secrets in unlocked memory or
//! half-written files.

use std::fs::{self, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use envelope::SecretBytes;

use crate::error::Error;

/// Largest value `set` accepts (the vault's own limit is checked again there).
pub const MAX_SECRET_INPUT: usize = 1 << 20;

/// Reads a secret from `file`, else from a no-echo prompt when stdin is a terminal, else
/// from stdin, straight into locked memory.
pub fn read_secret(file: Option<&Path>, prompt: &str, max: usize) -> Result<SecretBytes, Error> {
    if let Some(path) = file {
        let what = format!("reading {}", path.display());
        let mut f = fs::File::open(path).map_err(Error::io(what.clone()))?;
        return Ok(SecretBytes::read_from(&mut f, max)?);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(kek_providers::read_hidden(prompt)?);
    }
    Ok(SecretBytes::read_from(&mut stdin.lock(), max)?)
}

/// Reads non-secret input (an envelope) from `file` or stdin, at most `max` bytes.
pub fn read_public(file: Option<&Path>, max: usize) -> Result<Vec<u8>, Error> {
    let mut data = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    match file {
        Some(path) => {
            let what = format!("reading {}", path.display());
            let f = fs::File::open(path).map_err(Error::io(what.clone()))?;
            f.take(limit)
                .read_to_end(&mut data)
                .map_err(Error::io(what))?;
        }
        None => {
            std::io::stdin()
                .lock()
                .take(limit)
                .read_to_end(&mut data)
                .map_err(Error::io("reading stdin"))?;
        }
    }
    if data.len() > max {
        return Err(Error::Usage(format!(
            "input is larger than the limit of {max} bytes"
        )));
    }
    Ok(data)
}

/// Writes `bytes` to `file` (mode 0600, via a temporary file renamed into place, so a
/// failure leaves any old file intact) or to stdout.
pub fn write_output(file: Option<&Path>, bytes: &[u8]) -> Result<(), Error> {
    let Some(path) = file else {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes).map_err(Error::io("writing stdout"))?;
        return out.flush().map_err(Error::io("writing stdout"));
    };
    let what = format!("writing {}", path.display());
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::Usage(format!("{} is not a file path", path.display())))?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(Error::io(what))
}

/// Whether stdout is a terminal (binary output is refused there).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}
