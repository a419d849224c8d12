//! Rewrap at the library level: dry runs, progress, and resuming a run that was killed.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{all_stanzas, direct, epoch_of, id, kek, tiered, value};
use vault::{InitOptions, Kek, RewrapOptions, RewrapProgress, Vault};

const SECRETS: usize = 200;
const BATCH: usize = 16;

fn secret(n: usize) -> Vec<u8> {
    format!("secret number {n}").into_bytes()
}

fn key(n: usize) -> String {
    format!("k{n:03}")
}

fn fill(vault: &Vault) {
    for n in 0..SECRETS {
        vault.set("global", &key(n), &secret(n)).expect("set");
    }
}

fn assert_all_open(vault: &Vault) {
    for n in 0..SECRETS {
        assert_eq!(value(vault, "global", &key(n)), secret(n), "{}", key(n));
    }
}

fn progress_file(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("rewrap.json")
}

/// Runs a rewrap whose progress callback panics after the second batch, like a killed
/// process; returns the progress reports it saw.
fn killed_rewrap(vault: &Vault) -> Vec<RewrapProgress> {
    let mut seen = Vec::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        vault.rewrap(
            RewrapOptions {
                dry_run: false,
                batch: BATCH,
            },
            &mut |p| {
                seen.push(*p);
                if seen.len() == 2 {
                    panic!("killed after the second batch");
                }
            },
        )
    }));
    assert!(result.is_err(), "the run was killed");
    seen
}

fn rewrap_and_resume(options: &InitOptions, add_kek: bool) -> (tempfile::TempDir, Kek, Kek) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (kek("a"), kek("b"));
    let vault = Vault::init_with(dir.path(), options, vec![a.clone()]).expect("init");
    fill(&vault);
    if add_kek {
        vault.add_kek(b.clone()).expect("add b");
    } else {
        assert_eq!(vault.rotate().expect("rotate"), 2);
    }
    let before = all_stanzas(dir.path());

    // A dry run counts and changes nothing.
    let dry = vault
        .rewrap(
            RewrapOptions {
                dry_run: true,
                batch: BATCH,
            },
            &mut |_| {},
        )
        .expect("dry run");
    assert_eq!(dry.progress.rewrapped, SECRETS as u64, "{dry:?}");
    assert_eq!(dry.progress.examined, SECRETS as u64, "{dry:?}");
    assert!(!dry.resumed);
    assert_eq!(all_stanzas(dir.path()), before);
    assert!(!progress_file(dir.path()).exists());

    let seen = killed_rewrap(&vault);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].examined, 2 * BATCH as u64);
    assert_eq!(seen[1].total, SECRETS as u64);
    assert!(progress_file(dir.path()).exists(), "the position was saved");
    // The first two batches were written, the rest not.
    let after_kill = all_stanzas(dir.path());
    let moved = after_kill
        .iter()
        .zip(&before)
        .filter(|(now, then)| now.3 != then.3)
        .count();
    assert_eq!(moved, 2 * BATCH);
    // The vault still works after the panic.
    assert_all_open(&vault);

    let mut calls = Vec::new();
    let report = vault
        .rewrap(
            RewrapOptions {
                dry_run: false,
                batch: BATCH,
            },
            &mut |p| calls.push(*p),
        )
        .expect("resumed rewrap");
    assert!(report.resumed, "{report:?}");
    assert_eq!(report.progress.examined, SECRETS as u64, "{report:?}");
    assert_eq!(report.progress.rewrapped, SECRETS as u64, "{report:?}");
    // It went on from the saved position: only the remaining batches were walked.
    assert_eq!(calls.len(), (SECRETS - 2 * BATCH).div_ceil(BATCH));
    assert!(calls.windows(2).all(|w| w[0].examined < w[1].examined));
    assert!(
        !progress_file(dir.path()).exists(),
        "done: no position left"
    );
    assert_all_open(&vault);

    // Nothing is left to do, and a dry run says so.
    let dry = vault
        .rewrap(
            RewrapOptions {
                dry_run: true,
                batch: BATCH,
            },
            &mut |_| {},
        )
        .expect("dry run");
    assert_eq!(dry.progress.rewrapped, 0, "{dry:?}");
    let again = vault
        .rewrap(RewrapOptions::default(), &mut |_| {})
        .expect("rerun");
    assert!(!again.resumed);
    assert_eq!(again.progress.rewrapped, 0, "{again:?}");
    (dir, a, b)
}

#[test]
fn a_killed_direct_rewrap_resumes_and_covers_the_new_kek() {
    let (dir, a, b) = rewrap_and_resume(&direct(), true);
    for (scope, key, version, stanzas) in all_stanzas(dir.path()) {
        assert_eq!(stanzas, vec![id(&a), id(&b)], "{scope} {key} v{version}");
    }
    let vault = Vault::open(dir.path(), None, vec![b]).expect("b alone");
    assert_all_open(&vault);
}

#[test]
fn a_killed_tiered_rewrap_resumes_onto_the_newest_epoch() {
    let (dir, a, _) = rewrap_and_resume(&tiered(), false);
    for (scope, key, version, stanzas) in all_stanzas(dir.path()) {
        assert_eq!(stanzas.len(), 1, "{scope} {key} v{version}");
        assert_eq!(epoch_of(&stanzas[0]), 2, "{scope} {key} v{version}");
    }
    let vault = Vault::open(dir.path(), None, vec![a]).expect("open");
    vault.set_min_decryption_version(2).expect("retire epoch 1");
    assert_all_open(&vault);
}

#[test]
fn a_saved_position_for_other_keys_is_not_resumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (kek("a"), kek("b"), kek("c"));
    let vault = Vault::init_with(dir.path(), &direct(), vec![a.clone()]).expect("init");
    fill(&vault);
    vault.add_kek(b.clone()).expect("add b");
    killed_rewrap(&vault);
    assert!(progress_file(dir.path()).exists());
    // The target changes: the walk starts over, and covers every secret.
    vault.add_kek(c.clone()).expect("add c");
    let report = vault
        .rewrap(RewrapOptions::default(), &mut |_| {})
        .expect("rewrap");
    assert!(!report.resumed, "{report:?}");
    assert_eq!(report.progress.rewrapped, SECRETS as u64);
    let vault = Vault::open(dir.path(), None, vec![c]).expect("c alone");
    assert_all_open(&vault);
}
