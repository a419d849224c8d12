//! The vault daemon: configuration, access control, the request gates, the gRPC service
//! over mutual TLS, and the development mode.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acl;
pub mod checkpoint_sinks;
pub mod config;
pub mod denials;
pub mod dev;
pub mod gates;
pub mod health;
mod key_pattern;
pub mod logger;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod pool;
pub mod principal;
pub mod reload;
pub mod revocation;
pub mod root_keks;
pub mod server;
pub mod service;
pub mod tls;
