//! The SQLite store at scale, each large-vault figure beside the same figure on a small vault
//! made in the same run (`scripts/bench.sh store`):
//!
//! - KV get (`Vault::get` of a 64-byte value, tiered mode on an in-memory software root KEK,
//!   the JIT cache off so that every get reads the store) of uniformly random keys, p50 and
//!   p99 per call, with 1,000,000 secrets against 1,000; rounds alternate between the two
//!   vaults so that the machine's other load falls on both;
//! - a full rewrap (after an epoch rotation, so every secret moves) of 1,000,000 secrets
//!   against 10,000 (run before and after the large one), in secrets per second, and against
//!   a floor of 100,000/s.
//!
//! Not criterion: criterion keeps per-sample means, and the targets are on per-call p99. The
//! vaults are filled once per run, in a temporary directory, through `Vault::set_many` in
//! large transactions. Writes the rows as JSON (`--json FILE`, read by `bench-report
//! --store`) and prints them.
//!
//! `--postgres LARGE_DIR SMALL_DIR` measures the same gets (only) on two PostgreSQL vaults
//! that `scripts/load-postgres.sh` made and filled (`--secrets` and 1,000 secrets, on their
//! pinned KEKs), as rows of the `postgres` group: a get there is a round trip to the server,
//! so it takes fewer of them.
//!
//! ```text
//! cargo bench -p benches --bench store -- [--quick] [--json FILE] [--secrets N] [--gets-only]
//!     [--postgres LARGE_DIR SMALL_DIR]
//! ```

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::report::store::{REWRAP_FLOOR, SCALE_TARGET, StoreRow};
use benches::{TARGET_SIZE, preloaded_key as key};
use envelope::SoftwareKek;
use vault::{EpochPolicy, InitOptions, Kek, RewrapOptions, StoreKind, Vault, WrapMode};

/// The small vault of the get comparison.
const SMALL: usize = 1_000;
/// The small vault of the rewrap comparison.
const REWRAP_SMALL: usize = 10_000;
/// The large vault, unless `--secrets` says otherwise.
const LARGE: usize = 1_000_000;
/// Secrets per `set_many` transaction while filling.
const FILL_CHUNK: usize = 50_000;
/// The one scope the secrets are in.
const SCOPE: &str = "global";

struct Settings {
    json: Option<PathBuf>,
    large: usize,
    /// Alternating rounds of gets, and gets per vault per round.
    rounds: usize,
    gets: usize,
    /// Gets on each vault before measuring.
    warmup: usize,
    /// `--gets-only`: no rewrap (to profile the gets).
    gets_only: bool,
    /// `--postgres LARGE_DIR SMALL_DIR`: PostgreSQL vaults to read instead.
    postgres: Option<(PathBuf, PathBuf)>,
}

fn settings() -> Settings {
    let mut args = std::env::args().skip(1);
    let mut s = Settings {
        json: None,
        large: LARGE,
        rounds: 6,
        gets: 100_000,
        warmup: 200_000,
        gets_only: false,
        postgres: None,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {
                s.rounds = 3;
                s.gets = 30_000;
                s.warmup = 100_000;
            }
            "--gets-only" => s.gets_only = true,
            "--postgres" => {
                let dirs = args.next().zip(args.next());
                let (large, small) = dirs.expect("--postgres takes LARGE_DIR SMALL_DIR");
                s.postgres = Some((large.into(), small.into()));
            }
            "--json" => s.json = args.next().map(PathBuf::from),
            "--secrets" => {
                s.large = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--secrets takes a number of secrets");
            }
            // cargo bench's `--bench`, and criterion arguments bench.sh passes to every group.
            _ => {}
        }
    }
    if s.postgres.is_some() {
        // A get there takes a round trip to the server, some 20 times a SQLite get's time:
        // as many calls would take minutes.
        s.gets /= 20;
        s.warmup /= 40;
    }
    s
}

/// A tiered SQLite vault in `dir` on a software root KEK, with `count` secrets of 64 bytes.
fn filled_vault(dir: &Path, count: usize) -> Vault {
    let options = InitOptions {
        mode: Some(WrapMode::Tiered),
        epoch_policy: EpochPolicy {
            max_wraps: 1 << 40,
            ..EpochPolicy::default()
        },
        ..InitOptions::new(StoreKind::Sqlite)
    };
    let kek = Kek {
        uri: "memory:bench".into(),
        provider: Arc::new(SoftwareKek::random("bench").expect("kek")),
    };
    let mut vault = Vault::init_with(dir, &options, vec![kek]).expect("init");
    // Every epoch wrap of the run leased at once: no vault.json rewrites while measuring.
    vault.set_epoch_lease(1 << 30);
    // Every get reads the store.
    vault.set_cache_ttl(Duration::ZERO);
    let value = [7u8; TARGET_SIZE];
    let started = Instant::now();
    for first in (0..count).step_by(FILL_CHUNK) {
        let keys: Vec<String> = (first..count.min(first + FILL_CHUNK)).map(key).collect();
        let entries: Vec<(&str, &str, &[u8])> = keys
            .iter()
            .map(|k| (SCOPE, k.as_str(), &value[..]))
            .collect();
        vault.set_many(&entries).expect("set_many");
    }
    let bytes = std::fs::metadata(dir.join("secrets.db")).map_or(0, |m| m.len());
    eprintln!(
        "store: {count} secrets filled in {:.1} s ({} MB)",
        started.elapsed().as_secs_f64(),
        bytes >> 20
    );
    vault
}

/// A small fast generator of uniformly spread key numbers (splitmix64).
struct Keys(u64);

impl Keys {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % below as u64) as usize
    }
}

/// `count` gets of random keys of `vault` (which holds `size` secrets), each timed, in ns.
fn timed_gets(vault: &Vault, size: usize, count: usize, keys: &mut Keys, into: &mut Vec<u64>) {
    for _ in 0..count {
        let name = key(keys.next(size));
        let started = Instant::now();
        let value = vault.get(SCOPE, &name, None).expect("get");
        black_box(&value);
        into.push(started.elapsed().as_nanos() as u64);
    }
}

fn quantile_us(sorted: &[u64], q: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[at] as f64 / 1e3
}

/// The get rows (on PostgreSQL, in its group).
fn get_rows(s: &Settings, small: &Vault, large: &Vault) -> Vec<StoreRow> {
    let on = if s.postgres.is_some() {
        "postgres "
    } else {
        ""
    };
    let mut keys = Keys(0x5eed);
    let mut ignored = Vec::new();
    timed_gets(small, SMALL, s.warmup, &mut keys, &mut ignored);
    timed_gets(large, s.large, s.warmup, &mut keys, &mut ignored);
    let (mut at_small, mut at_large) = (Vec::new(), Vec::new());
    for _ in 0..s.rounds {
        timed_gets(small, SMALL, s.gets, &mut keys, &mut at_small);
        timed_gets(large, s.large, s.gets, &mut keys, &mut at_large);
    }
    at_small.sort_unstable();
    at_large.sort_unstable();
    let name = |what: &str, n: usize| format!("get_{what}_{TARGET_SIZE}B ({n} secrets)");
    ["p50", "p99"]
        .into_iter()
        .zip([0.5, 0.99])
        .map(|(what, q)| {
            let (small_us, large_us) = (quantile_us(&at_small, q), quantile_us(&at_large, q));
            eprintln!(
                "store: {on}get {what}: {small_us:.2} µs at {SMALL}, {large_us:.2} µs at {}",
                s.large
            );
            StoreRow {
                benchmark: name(what, s.large),
                limit: name(what, SMALL),
                ops_per_sec: 1e6 / large_us,
                limit_ops_per_sec: 1e6 / small_us,
                median_us: (what == "p50").then_some(large_us),
                p99_ms: (what == "p99").then_some(large_us / 1e3),
                target: Some(SCALE_TARGET),
                group: s.postgres.as_ref().map(|_| "postgres".into()),
            }
        })
        .collect()
}

/// Rotates the epoch, then rewraps every secret; (secrets rewrapped, seconds).
fn rewrap(vault: &Vault, count: usize) -> (u64, f64) {
    vault.rotate().expect("rotate");
    let started = Instant::now();
    let report = vault
        .rewrap(RewrapOptions::default(), &mut |_| {})
        .expect("rewrap");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(
        report.progress.rewrapped, count as u64,
        "every secret moves to the new epoch"
    );
    eprintln!(
        "store: rewrap of {count}: {:.0} secrets/s",
        count as f64 / seconds
    );
    (report.progress.rewrapped, seconds)
}

fn rewrap_rows(large_count: usize, small: &Vault, large: &Vault) -> Vec<StoreRow> {
    let before = rewrap(small, REWRAP_SMALL);
    let at_large = rewrap(large, large_count);
    let after = rewrap(small, REWRAP_SMALL);
    let small_rate = (before.0 + after.0) as f64 / (before.1 + after.1);
    let large_rate = at_large.0 as f64 / at_large.1;
    let name = |n: usize| format!("rewrap ({n} secrets)");
    vec![
        StoreRow {
            benchmark: name(large_count),
            limit: name(REWRAP_SMALL),
            ops_per_sec: large_rate,
            limit_ops_per_sec: small_rate,
            median_us: None,
            p99_ms: None,
            target: Some(SCALE_TARGET),
            group: None,
        },
        StoreRow {
            benchmark: name(large_count),
            limit: format!("floor of {REWRAP_FLOOR} secrets/s"),
            ops_per_sec: large_rate,
            limit_ops_per_sec: REWRAP_FLOOR,
            median_us: None,
            p99_ms: None,
            target: Some(1.0),
            group: None,
        },
    ]
}

/// A vault filled before the run, on the KEKs it pinned, with the cache off.
fn opened_vault(dir: &Path) -> Vault {
    let keks = Kek::build_all(dir, &[]).expect("the vault's KEKs");
    let mut vault = Vault::open(dir, None, keks).expect("open");
    vault.set_cache_ttl(Duration::ZERO);
    vault
}

fn main() {
    let s = settings();
    if let Some((large, small)) = &s.postgres {
        write(
            &s,
            &get_rows(&s, &opened_vault(small), &opened_vault(large)),
        );
        return;
    }
    let dirs = tempfile::tempdir().expect("tempdir");
    let dir = |name: &str| dirs.path().join(name);
    let small = filled_vault(&dir("small"), SMALL);
    let rewrap_small = filled_vault(&dir("rewrap-small"), REWRAP_SMALL);
    let large = filled_vault(&dir("large"), s.large);
    let mut rows = get_rows(&s, &small, &large);
    if !s.gets_only {
        rows.extend(rewrap_rows(s.large, &rewrap_small, &large));
    }
    write(&s, &rows);
}

/// Prints the rows as JSON, and writes them to `--json FILE`.
fn write(s: &Settings, rows: &[StoreRow]) {
    let json = serde_json::to_string_pretty(&rows).expect("rows as JSON");
    println!("{json}");
    if let Some(path) = &s.json {
        std::fs::write(path, json + "\n")
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}
