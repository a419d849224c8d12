//! Replay of a fuzz target's checked-in corpus (`fuzz/corpus/<target>/`: the seeds and every
//! input that ever crashed the target), so a crate's tests can run the target's checks over
//! it and a fixed crash stays fixed in a plain `cargo test`.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};

/// The directory of fuzz target `target`'s checked-in corpus.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Runs `check` on every file of fuzz target `target`'s corpus, in file-name order, with the
/// file's name and contents, and returns how many it ran. A failing check fails with the
/// target and seed named (the checks assert on what a seed's name says it expects), and a
/// missing or empty corpus fails too: a replay of nothing would pass whatever the checks did.
pub fn for_each_seed(target: &str, mut check: impl FnMut(&str, &[u8])) -> usize {
    let seeds = seeds(target);
    for (name, bytes) in &seeds {
        // The seed's name goes with the failure whatever the check's own message says.
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(name, bytes))) {
            eprintln!("fuzz corpus seed {target}/{name} failed its check");
            resume_unwind(panic);
        }
    }
    seeds.len()
}

/// Checks what a seed's name says it expects of the target's check: an `ok-*` seed is
/// accepted, a `bad-*` seed refused; any other (`regression-*`, a crash that was fixed) may go
/// either way, so long as the check does not panic.
#[track_caller]
pub fn assert_as_named(name: &str, accepted: bool) {
    if name.starts_with("ok-") {
        assert!(accepted, "{name} was refused");
    } else if name.starts_with("bad-") {
        assert!(!accepted, "{name} was accepted");
    }
}

/// Every file of `target`'s corpus as (file name, contents), sorted by name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "fuzz corpus {}: {e} (every fuzz target keeps its seeds there)",
            dir.display()
        )
    });
    let mut seeds: Vec<_> = entries
        .map(|entry| entry.expect("fuzz corpus directory entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let name = path
                .file_name()
                .expect("a corpus file has a name")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, bytes)
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no fuzz corpus in {}", dir.display());
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_replayed_in_name_order_and_counted() {
        let mut names = Vec::new();
        let count = for_each_seed("kek_uri", |name, _| names.push(name.to_owned()));
        assert_eq!(count, names.len());
        assert!(count > 0);
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    }

    #[test]
    #[should_panic(expected = "no-such-target")]
    fn a_missing_corpus_fails() {
        for_each_seed("no-such-target", |_, _| {});
    }

    #[test]
    #[should_panic(expected = "was refused")]
    fn a_failing_check_fails_the_replay() {
        for_each_seed("kek_uri", |name, _| assert_as_named(name, false));
    }

    #[test]
    fn names_say_what_is_expected() {
        assert_as_named("ok-a", true);
        assert_as_named("bad-a", false);
        assert_as_named("regression-a", true);
        assert_as_named("regression-a", false);
        assert!(std::panic::catch_unwind(|| assert_as_named("bad-a", true)).is_err());
    }
}
