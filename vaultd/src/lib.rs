//! The vault daemon's parts: configuration, access control, and (as they land) the server.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acl;
pub mod config;
