//! Secret references: strings that say where a secret lives, so configuration files and
//! command lines hold a reference and the secret is fetched at the last moment.
//!
//! # Syntax
//! - `vault://SCOPE/KEY[#VERSION]`: a vault secret. The scope is everything before the
//!   **last** `/` and the key everything after it (scopes never contain `/`, keys never
//!   contain `/`, `:` or `#`), so `vault://channel:slack:acme/bot-token#3` is scope
//!   `channel:slack:acme`, key `bot-token`, version 3. No version means the latest.
//!   Scope and key follow the vault's name rules; nothing is percent-decoded.
//! - `env://NAME`: an environment variable (`[A-Za-z_][A-Za-z0-9_]*`).
//! - `file:///ABS/PATH`: a file's contents. The path is absolute (three slashes: there is no
//!   host), percent-decoded, with no empty, `.` or `..` components and no query or fragment.
//! - `exec:///ABS/PROGRAM?arg=A&arg=B`: the standard output of a program run **without a
//!   shell**; each `arg=` is one argument, percent-decoded (`%20` for a space, `%26` for `&`,
//!   `%3D` for `=`; `+` is a plus sign, not a space).
//!
//! In paths and arguments the characters `A-Z a-z 0-9 - . _ ~ / : @ + ,` stand for
//! themselves and every other byte is written `%XX`; `Display` produces this canonical form
//! and parsing it gives the same reference back. The parser is pure, bounded
//! ([`MAX_REF_LEN`] bytes) and never panics.
//!
//! Resolving is the [`Resolver`]'s job, under a [`Policy`]: nothing is allowed by default.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod parse;
mod percent;
mod policy;
mod reference;
mod resolve;
mod vault_source;

pub use error::Error;
pub use parse::{
    MAX_ENV_NAME_LEN, MAX_EXEC_ARG_LEN, MAX_EXEC_ARGS, MAX_PATH_LEN, MAX_REF_LEN, parse,
};
pub use policy::{DEFAULT_EXEC_TIMEOUT, DEFAULT_MAX_SECRET_LEN, Policy};
pub use reference::SecretRef;
pub use resolve::Resolver;
pub use vault_source::VaultSource;
