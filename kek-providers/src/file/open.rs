//! Opening a file KEK: reading an existing key file, refusing one others can read.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;

use envelope::{DEK_LEN, Dek, SecretBytes};

use super::FileKekSpec;
use crate::{BuiltKek, Error};

/// Reads the key file at the spec's path.
pub(crate) fn open(spec: &FileKekSpec) -> Result<BuiltKek, Error> {
    let path = spec.path();
    let invalid = |reason: String| Error::KeyFileInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = File::open(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => Error::KeyFileMissing {
            path: path.to_path_buf(),
        },
        _ => Error::io("opening", path)(e),
    })?;
    // Checked on the open file, not the path, so the file checked is the file read.
    let meta = file.metadata().map_err(Error::io("reading", path))?;
    if !meta.is_file() {
        return Err(invalid("it is not a regular file".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::KeyFilePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    // Straight into locked memory; one byte over the key length is enough to refuse.
    let key = SecretBytes::read_from(&mut file, DEK_LEN).map_err(|e| match e {
        envelope::Error::SecretTooLarge { .. } => {
            invalid(format!("it is longer than the {DEK_LEN} bytes of a key"))
        }
        envelope::Error::Read(kind) => Error::io("reading", path)(kind.into()),
        other => other.into(),
    })?;
    if key.len() != DEK_LEN {
        return Err(invalid(format!(
            "it is {} bytes long, a key is {DEK_LEN}; it was truncated or is another file",
            key.len()
        )));
    }
    spec.build(Dek::from_slice(key.expose_secret())?)
}
