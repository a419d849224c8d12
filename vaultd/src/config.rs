//! The daemon configuration: file < env < flags (see `Config`).
