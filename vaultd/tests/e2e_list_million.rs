//! End to end at scale: a SQLite vault of 1,000,000 secrets lists page by page through
//! `vaultctl list --page-size 10000` (on the vault directory, and through vaultd) and through
//! the List API: every secret exactly once, in order, with the total count; vaultctl prints
//! as the pages arrive, so its own memory does not grow with the number of secrets.
//!
//! A million takes minutes in a debug build, so that run is `#[ignore]`d:
//! `scripts/list-million.sh` runs it in release mode and prints its figures (fill and list
//! times, peak memory). The same check on 30,000 secrets runs with the suite.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Sandbox};
use proto::v1 as pb;

const ACL: &str = r#"
[[acl]]
principal = "admin"
scopes = ["*"]
operations = ["read", "write", "delete", "list", "seal", "open", "admin", "audit"]

[[acl]]
principal = "alice"
scopes = ["global"]
keys = ["k000000*"]
operations = ["list"]
"#;

/// Secrets per page, the most vaultd serves.
const PAGE: u32 = 10_000;
/// The small scope beside the big one: its listing is the memory baseline.
const SMALL_SCOPE: &str = "skill:small";
const SMALL: usize = 1_000;
/// Secrets per transaction of the fill.
const CHUNK: usize = 50_000;
/// How much more of its own memory (anonymous, not the mapped store file) vaultctl may use
/// to list everything than to list the small scope.
const MAX_GROWTH_KIB: u64 = 32 << 10;
/// The most names vaultd reads for one List page, and to count a listing name by name.
const CHECKED_AT_MOST: usize = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_thousand_secrets_list_page_by_page() {
    lists_every_secret_once_in_order(30_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a million secrets: minutes in a debug build; scripts/list-million.sh runs it in release mode"]
async fn a_million_secrets_list_page_by_page() {
    let secrets = std::env::var("LIST_MILLION_SECRETS")
        .ok()
        .map(|n| n.parse().expect("LIST_MILLION_SECRETS: a number"))
        .unwrap_or(1_000_000);
    lists_every_secret_once_in_order(secrets).await;
}

/// The `i`th name of the listing of a vault filled with `big` secrets: `global` comes
/// before `skill:small`.
fn name(big: usize, i: usize) -> (&'static str, String) {
    if i < big {
        ("global", format!("k{i:07}"))
    } else {
        (SMALL_SCOPE, format!("s{:04}", i - big))
    }
}

fn report(line: std::fmt::Arguments<'_>) {
    eprintln!("list-million: {line}");
}

async fn lists_every_secret_once_in_order(big: usize) {
    let all = big + SMALL;
    let sandbox = Sandbox::new();
    // The first start makes the development vault; it is filled while no daemon runs.
    let _ = sandbox.daemon().config(ACL).start().terminate();
    let filled = Instant::now();
    fill(&sandbox, big);
    let fill_time = filled.elapsed();
    report(format_args!(
        "{all} secrets filled in {:.1} s (set_many, {CHUNK} a transaction); store file {} MiB",
        fill_time.as_secs_f64(),
        store_size(&sandbox.vault_dir()) >> 20
    ));

    // vaultctl on the vault directory.
    let vault = sandbox.vault_dir();
    let local = |args: &[&str]| {
        let mut full = vec!["--vault", vault.to_str().expect("a UTF-8 path")];
        full.extend_from_slice(args);
        full.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let page = PAGE.to_string();
    let small = run_list(
        &[],
        &local(&["list", SMALL_SCOPE, "--page-size", &page]),
        |i| name(big, big + i),
    );
    assert_eq!(small.rows, SMALL as u64);
    let everything = run_list(&[], &local(&["list", "--page-size", &page]), |i| {
        name(big, i)
    });
    assert_eq!(everything.rows, all as u64);
    everything.report("vaultctl list (local)", &small);
    everything.assert_streams(&small);
    let counted = Instant::now();
    assert_eq!(
        run_count(&[], &local(&["list", "--count"])),
        all.to_string()
    );
    report(format_args!(
        "vaultctl list --count (local): {all} in {} ms",
        counted.elapsed().as_millis()
    ));

    // Through vaultd: the API, then vaultctl.
    let daemon = sandbox.daemon().config(ACL).start();
    let mut admin = daemon.client("admin").await;
    api_walk(&mut admin, big).await;
    let mut alice = daemon.client("alice").await;
    filtered_first_page(&mut alice, all).await;
    let exports = daemon.exports();
    let remote = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let small = run_list(
        &exports,
        &remote(&["list", SMALL_SCOPE, "--page-size", &page]),
        |i| name(big, big + i),
    );
    let everything = run_list(&exports, &remote(&["list", "--page-size", &page]), |i| {
        name(big, i)
    });
    assert_eq!(everything.rows, all as u64);
    everything.report("vaultctl list (through vaultd)", &small);
    everything.assert_streams(&small);
    assert_eq!(
        run_count(&exports, &remote(&["list", "--count"])),
        all.to_string()
    );
    let (hwm, anon) = memory_of(daemon.pid);
    report(format_args!(
        "vaultd after the listings: peak RSS {} MiB, anonymous RSS now {} MiB",
        hwm >> 10,
        anon >> 10
    ));
}

/// `big` secrets in `global` and [`SMALL`] in [`SMALL_SCOPE`], written through the vault
/// library in large transactions (a million Put calls would take far longer).
fn fill(sandbox: &Sandbox, big: usize) {
    let vault = sandbox.open_vault();
    // Every wrap of the fill leased at once: one vault.json write, not one per lease.
    vault.set_epoch_lease((big + SMALL) as u64 + 1);
    let value = [7u8; 64];
    for first in (0..big + SMALL).step_by(CHUNK) {
        let names: Vec<_> = (first..(big + SMALL).min(first + CHUNK))
            .map(|i| name(big, i))
            .collect();
        let entries: Vec<(&str, &str, &[u8])> = names
            .iter()
            .map(|(scope, key)| (*scope, key.as_str(), &value[..]))
            .collect();
        vault.set_many(&entries).expect("fill");
    }
}

fn store_size(vault_dir: &Path) -> u64 {
    ["secrets.db", "secrets.db-wal"]
        .iter()
        .filter_map(|file| std::fs::metadata(vault_dir.join(file)).ok())
        .map(|m| m.len())
        .sum()
}

/// Every page of the listing of every scope as the admin (a rule for every key: the total
/// is one count in the store), checked name by name against [`name`].
async fn api_walk(api: &mut Client, big: usize) {
    let started = Instant::now();
    let (mut seen, mut token, mut pages) = (0, String::new(), 0);
    let mut first_page = Duration::ZERO;
    loop {
        let asked = Instant::now();
        let reply = api
            .list(pb::ListRequest {
                scope: None,
                page_size: PAGE,
                page_token: token,
            })
            .await
            .expect("list")
            .into_inner();
        pages += 1;
        if pages == 1 {
            first_page = asked.elapsed();
            assert_eq!(reply.total_count, Some((big + SMALL) as u64));
        } else {
            assert_eq!(reply.total_count, None, "page {pages}");
        }
        for secret in &reply.secrets {
            let (scope, key) = name(big, seen);
            assert!(
                secret.scope == scope && secret.key == key,
                "listed {} {} where {scope} {key} was due",
                secret.scope,
                secret.key
            );
            seen += 1;
        }
        if reply.next_page_token.is_empty() {
            break;
        }
        token = reply.next_page_token;
    }
    assert_eq!(seen, big + SMALL, "every secret, each once");
    let elapsed = started.elapsed();
    report(format_args!(
        "List API as admin: {seen} secrets in {pages} pages of {PAGE}, {:.2} s ({:.0} secrets/s); \
         first page with the total count {} ms, a later page {} ms on average",
        elapsed.as_secs_f64(),
        seen as f64 / elapsed.as_secs_f64(),
        first_page.as_millis(),
        (elapsed - first_page).as_millis() / (pages - 1).max(1) as u128
    ));
}

/// Alice may list ten keys of `global`, so her first page holds those ten and a count means
/// checking the names one by one: over vaultd's bound ([`CHECKED_AT_MOST`]) it is left
/// unset, never cut short; under it, the walk is the whole listing.
async fn filtered_first_page(api: &mut Client, all: usize) {
    let asked = Instant::now();
    let reply = api
        .list(pb::ListRequest {
            scope: None,
            page_size: PAGE,
            page_token: String::new(),
        })
        .await
        .expect("list")
        .into_inner();
    let keys: Vec<_> = reply.secrets.iter().map(|s| s.key.as_str()).collect();
    let want: Vec<_> = (0..10).map(|i| format!("k{i:07}")).collect();
    assert_eq!(keys, want);
    if all > CHECKED_AT_MOST {
        assert_eq!(reply.total_count, None, "too many names to check");
        assert!(
            !reply.next_page_token.is_empty(),
            "the page stopped at the bound"
        );
    } else {
        assert_eq!(reply.total_count, Some(10));
        assert!(reply.next_page_token.is_empty(), "the page read to the end");
    }
    report(format_args!(
        "List API as alice (10 keys of global visible): first page {} ms, total count {:?}",
        asked.elapsed().as_millis(),
        reply.total_count
    ));
}

/// What a streamed `vaultctl list` did.
struct Listed {
    rows: u64,
    elapsed: Duration,
    first_row: Duration,
    /// Peak resident memory (VmHWM: with the pages of the mapped store file it read).
    peak_kib: u64,
    /// The most anonymous memory (heap, stacks) seen while it printed.
    anon_kib: u64,
}

impl Listed {
    fn report(&self, what: &str, small: &Listed) {
        report(format_args!(
            "{what}: {} secrets in {:.2} s ({:.0}/s), first row after {} ms; peak RSS {} MiB, \
             anonymous {} MiB (listing {SMALL} secrets: peak {} MiB, anonymous {} MiB)",
            self.rows,
            self.elapsed.as_secs_f64(),
            self.rows as f64 / self.elapsed.as_secs_f64(),
            self.first_row.as_millis(),
            self.peak_kib >> 10,
            self.anon_kib >> 10,
            small.peak_kib >> 10,
            small.anon_kib >> 10,
        ));
    }

    /// vaultctl's own memory stays about what listing a thousand secrets takes.
    fn assert_streams(&self, small: &Listed) {
        assert!(
            self.anon_kib <= small.anon_kib + MAX_GROWTH_KIB,
            "vaultctl held {} KiB to list {} secrets, {} KiB for {SMALL}",
            self.anon_kib,
            self.rows,
            small.anon_kib
        );
    }
}

fn vaultctl_command(exports: &[(String, String)], args: &[String]) -> Command {
    let mut command = common::vaultctl_command(exports);
    command
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    command
}

/// Runs a `vaultctl list` (table form), reading its rows as they come and checking the
/// `i`th against `expected(i)`, the last line against the count, and sampling its memory.
fn run_list(
    exports: &[(String, String)],
    args: &[String],
    expected: impl Fn(usize) -> (&'static str, String),
) -> Listed {
    let started = Instant::now();
    let mut child = vaultctl_command(exports, args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn vaultctl");
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let header = lines.next().expect("a header").expect("read");
    assert!(header.starts_with("SCOPE"), "{header}");
    let (mut rows, mut first_row, mut footer) = (0, Duration::ZERO, None);
    let (mut peak_kib, mut anon_kib) = (0, 0);
    for line in lines {
        let line = line.expect("read vaultctl's output");
        if rows % 1000 == 0 {
            let (hwm, anon) = memory_of(pid);
            peak_kib = peak_kib.max(hwm);
            anon_kib = anon_kib.max(anon);
        }
        let mut words = line.split_whitespace();
        let (Some(scope), Some(key)) = (words.next(), words.next()) else {
            panic!("not a row: {line:?}");
        };
        if key == "secrets" || key == "secret" {
            footer = Some(line);
            continue;
        }
        assert!(footer.is_none(), "a row after the count: {line}");
        let (want_scope, want_key) = expected(rows);
        assert!(
            scope == want_scope && key == want_key,
            "row {rows}: {scope} {key} where {want_scope} {want_key} was due"
        );
        if rows == 0 {
            first_row = started.elapsed();
        }
        rows += 1;
    }
    let status = child.wait().expect("wait for vaultctl");
    assert!(status.success(), "{args:?}: {status}");
    assert_eq!(
        footer,
        Some(format!("{rows} secrets")),
        "the count ends the table"
    );
    Listed {
        rows: rows as u64,
        elapsed: started.elapsed(),
        first_row,
        peak_kib,
        anon_kib,
    }
}

/// The output of a `vaultctl list --count`, trimmed.
fn run_count(exports: &[(String, String)], args: &[String]) -> String {
    let out = vaultctl_command(exports, args)
        .output()
        .expect("run vaultctl");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// VmHWM and RssAnon of a process, in KiB (0 once it is gone).
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("RssAnon:"))
}
