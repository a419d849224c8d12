//! The store suite (see `store_suite!`).
