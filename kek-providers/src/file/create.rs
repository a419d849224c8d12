//! Creating a file KEK: a new random key in a new key file.

use envelope::Dek;

use super::FileKekSpec;
use crate::{BuiltKek, Created, Error, durable_file};

/// Writes a new random key to the spec's path, which must not exist yet: overwriting a key
/// file would make every secret sealed under the old key unreadable.
pub(crate) fn create(spec: &FileKekSpec) -> Result<BuiltKek, Error> {
    let key = Dek::generate()?;
    durable_file::create_new(spec.path(), key.expose_secret(), || Error::KeyFileExists {
        path: spec.path().to_path_buf(),
    })?;
    let mut built = spec.build(key)?;
    built.created = Some(Created::File(spec.path().to_path_buf()));
    Ok(built)
}
