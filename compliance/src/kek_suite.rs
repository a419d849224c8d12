//! The KEK provider suite (see `kek_suite!`).
