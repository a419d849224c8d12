//! Benchmarks of the vault live in `benches/` (criterion, one group per file), each with a
//! raw "limit" beside it: the cost of the cryptography alone, so that a ratio shows how much
//! the surrounding code adds. `scripts/bench-ratios.sh` prints and checks those ratios.
#![forbid(unsafe_code)]
