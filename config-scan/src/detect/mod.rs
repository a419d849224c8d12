//! The detectors: token formats, PEM blocks, value rules (entropy, AWS secret keys,
//! placeholders, references).

pub(crate) mod pem;
pub(crate) mod tokens;
pub(crate) mod values;
