//! The revocation list as the daemon holds it: one set, shared by the TLS handshake (which
//! refuses revoked certificates) and the gates (which refuse them per request, so a
//! revocation also cuts off connections opened before it), reread while the daemon runs.
//!
//! It fails closed. At start, a list that is missing, unreadable, malformed or writable by
//! others stops the daemon. After start, the file is reread when its bytes change (a
//! SHA-256 of the content, polled: an edit that keeps the size and mtime is still seen),
//! and a list that went missing, unreadable, malformed or writable by others, or that held
//! entries and now holds none, is not taken: the last good set stays in force and an
//! error is logged (again at most once a minute while the problem lasts). Emptying the
//! list takes a restart, so deleting or truncating the file never unrevokes anyone.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use pki::RevocationList;

/// How often the file is looked at.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How often a problem that lasts is logged again.
const COMPLAIN_EVERY: Duration = Duration::from_secs(60);

/// Why a reread list was not taken; the last good set stays in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotTaken {
    /// The file is missing, unreadable, malformed, too large or writable by others.
    #[error("{0}")]
    Unusable(String),
    /// The file parsed but holds no entry, where the set in force has some.
    #[error(
        "{path} now holds no entry; the {kept} entries read before stay revoked (to clear \
         the list, empty it and restart vaultd)"
    )]
    Emptied {
        /// The list.
        path: String,
        /// How many entries stay in force.
        kept: usize,
    },
}

/// What one look at the file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// The same bytes as last time (or the same problem): nothing to do.
    Unchanged,
    /// New content, now in force, with this many entries.
    Reloaded(usize),
    /// New content, or a new problem, that was not taken.
    Kept(NotTaken),
}

/// What the file held at the last look, to tell a change from the same content again.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Content(pki::Sha256),
    Problem(String),
}

#[derive(Debug)]
struct Watch {
    seen: Seen,
    /// The problem in the way and when it was last logged.
    complained: Option<(NotTaken, Instant)>,
}

/// The revocation set in force, and the file it comes from.
#[derive(Debug)]
pub struct Revocations {
    path: PathBuf,
    current: RwLock<Arc<RevocationList>>,
    watch: Mutex<Watch>,
}

impl Revocations {
    /// Reads the list at start; a missing, unreadable, malformed (the error names the line)
    /// or group/other-writable list is an error.
    pub fn load(path: PathBuf) -> Result<Self, pki::Error> {
        let (digest, list) = read(&path)?;
        Ok(Revocations {
            path,
            current: RwLock::new(Arc::new(list)),
            watch: Mutex::new(Watch {
                seen: Seen::Content(digest),
                complained: None,
            }),
        })
    }

    /// The file the list is read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<RevocationList> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Looks at the file once and takes its content if it changed and may be taken.
    pub fn poll(&self) -> Polled {
        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        let seen = match read_bytes(&self.path) {
            Ok((digest, _)) if watch.seen == Seen::Content(digest) => return Polled::Unchanged,
            Ok((digest, bytes)) => Ok((digest, bytes)),
            Err(e) => Err(e.to_string()),
        };
        let (seen, verdict) = match seen {
            Err(problem) => (
                Seen::Problem(problem.clone()),
                Err(NotTaken::Unusable(problem)),
            ),
            Ok((digest, bytes)) => {
                let verdict = match RevocationList::parse_bytes(&self.path, &bytes) {
                    Ok(list) => self.take(list),
                    Err(e) => Err(NotTaken::Unusable(e.to_string())),
                };
                (Seen::Content(digest), verdict)
            }
        };
        if seen == watch.seen {
            return Polled::Unchanged;
        }
        watch.seen = seen;
        match verdict {
            Ok(count) => Polled::Reloaded(count),
            Err(not_taken) => Polled::Kept(not_taken),
        }
    }

    /// Whether the file as it is now could be taken (a reload checks this before it changes
    /// anything): its entry count, or why it would not be taken. Changes nothing.
    pub fn check(&self) -> Result<usize, NotTaken> {
        let (_, list) = read(&self.path).map_err(|e| NotTaken::Unusable(e.to_string()))?;
        let current = self.current();
        if list.is_empty() && !current.is_empty() {
            return Err(NotTaken::Emptied {
                path: self.path.display().to_string(),
                kept: current.len(),
            });
        }
        Ok(list.len())
    }

    /// Looks at the file now, as the watcher does (SIGHUP: no wait for the next poll), and
    /// logs the outcome as the watcher would.
    pub fn poll_now(&self) -> Polled {
        let polled = self.poll();
        self.report(polled.clone(), Instant::now());
        polled
    }

    /// Puts `list` in force unless it would empty a set that has entries.
    fn take(&self, list: RevocationList) -> Result<usize, NotTaken> {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if list.is_empty() && !current.is_empty() {
            return Err(NotTaken::Emptied {
                path: self.path.display().to_string(),
                kept: current.len(),
            });
        }
        let count = list.len();
        *current = Arc::new(list);
        Ok(count)
    }

    /// Polls the file every [`POLL_INTERVAL`] for the life of the daemon, logging what it
    /// takes and (rate-limited) what it refuses.
    pub fn watch(self: &Arc<Self>) {
        let revocations = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let polled = revocations.poll();
                revocations.report(polled, Instant::now());
            }
        });
    }

    /// Logs the outcome of a poll: a reload once, a problem when it first appears or
    /// changes and then every [`COMPLAIN_EVERY`] while it lasts.
    fn report(&self, polled: Polled, now: Instant) {
        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        match polled {
            Polled::Reloaded(count) => {
                watch.complained = None;
                log::info!(
                    "revocation list {} reloaded: {count} entries",
                    self.path.display()
                );
            }
            Polled::Kept(not_taken) => {
                log::error!("revocation list not reloaded, the last good one stays: {not_taken}");
                watch.complained = Some((not_taken, now));
            }
            Polled::Unchanged => {
                if let Some((not_taken, at)) = &mut watch.complained
                    && now.duration_since(*at) >= COMPLAIN_EVERY
                {
                    log::error!("revocation list still not reloaded: {not_taken}");
                    *at = now;
                }
            }
        }
    }
}

/// The digest of the file's bytes and the list they hold.
fn read(path: &Path) -> Result<(pki::Sha256, RevocationList), pki::Error> {
    let (digest, bytes) = read_bytes(path)?;
    Ok((digest, RevocationList::parse_bytes(path, &bytes)?))
}

/// The file's bytes and their SHA-256; refused if group or others may write it.
fn read_bytes(path: &Path) -> Result<(pki::Sha256, Vec<u8>), pki::Error> {
    pki::check_not_writable_by_others(path)?;
    let bytes = pki::read_list_bytes(path)?;
    Ok((pki::sha256(&bytes), bytes))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const KEY: &str =
        "spki-sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const OTHER: &str =
        "spki-sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    fn list_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("revoked.txt");
        write(&path, text);
        (tmp, path)
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn holds(revocations: &Revocations, entry: &str) -> bool {
        revocations
            .current()
            .contains(&pki::RevocationEntry::parse(entry).unwrap())
    }

    #[test]
    fn start_refuses_a_missing_malformed_or_writable_list() {
        let (_tmp, path) = list_file(&format!("# ok\n{KEY}\nnot an entry\n"));
        let err = Revocations::load(path.clone()).unwrap_err();
        assert!(err.to_string().contains("revoked.txt:3:"), "{err}");
        write(&path, KEY);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
        let err = Revocations::load(path.clone()).unwrap_err();
        assert!(err.to_string().contains("chmod go-w"), "{err}");
        std::fs::remove_file(&path).unwrap();
        assert!(Revocations::load(path).is_err());
    }

    #[test]
    fn changes_are_taken_by_content_and_a_same_content_rewrite_is_no_change() {
        let (_tmp, path) = list_file(&format!("{KEY}\n"));
        let revocations = Revocations::load(path.clone()).unwrap();
        assert_eq!(revocations.poll(), Polled::Unchanged);
        // Same bytes written again: no reload.
        write(&path, &format!("{KEY}\n"));
        assert_eq!(revocations.poll(), Polled::Unchanged);
        // Other bytes of the same length, with the old mtime put back: still seen.
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        write(&path, &format!("{OTHER}\n"));
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(revocations.poll(), Polled::Reloaded(1));
        assert!(holds(&revocations, OTHER) && !holds(&revocations, KEY));
        // Removing some entries (not all) is taken.
        write(&path, &format!("{KEY}\n{OTHER}\n"));
        assert_eq!(revocations.poll(), Polled::Reloaded(2));
        write(&path, &format!("{KEY}\n"));
        assert_eq!(revocations.poll(), Polled::Reloaded(1));
        assert!(holds(&revocations, KEY) && !holds(&revocations, OTHER));
    }

    #[test]
    fn a_broken_or_emptied_list_keeps_the_last_good_set() {
        let (_tmp, path) = list_file(&format!("{KEY}\n"));
        let revocations = Revocations::load(path.clone()).unwrap();
        let mut breakages: Vec<Box<dyn Fn()>> = vec![
            Box::new(|| std::fs::remove_file(&path).unwrap()),
            Box::new(|| write(&path, "")),
            Box::new(|| write(&path, "# all gone\n\n")),
            Box::new(|| write(&path, "spki-sha256:nope\n")),
            Box::new(|| std::fs::write(&path, b"\xff\n").unwrap()),
            Box::new(|| {
                write(&path, &format!("{OTHER}\n"));
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
            }),
        ];
        for (i, break_it) in breakages.drain(..).enumerate() {
            break_it();
            match revocations.poll() {
                Polled::Kept(why) => {
                    let emptied = matches!(why, NotTaken::Emptied { kept: 1, .. });
                    assert_eq!(emptied, i == 1 || i == 2, "{i}: {why}");
                }
                other => panic!("{i}: {other:?}"),
            }
            // The same problem again is no news.
            assert_eq!(revocations.poll(), Polled::Unchanged, "{i}");
            assert!(holds(&revocations, KEY), "{i}");
            write(&path, &format!("{KEY}\n"));
            assert_eq!(revocations.poll(), Polled::Reloaded(1), "{i}");
        }
    }

    #[test]
    fn an_empty_list_stays_empty_without_complaint() {
        let (_tmp, path) = list_file("# nothing yet\n");
        let revocations = Revocations::load(path.clone()).unwrap();
        write(&path, "");
        assert_eq!(revocations.poll(), Polled::Reloaded(0));
        write(&path, &format!("{KEY}\n"));
        assert_eq!(revocations.poll(), Polled::Reloaded(1));
    }

    #[test]
    fn a_lasting_problem_is_logged_again_only_after_a_while() {
        let (_tmp, path) = list_file(&format!("{KEY}\n"));
        let revocations = Revocations::load(path.clone()).unwrap();
        std::fs::remove_file(&path).unwrap();
        let start = Instant::now();
        let polled = revocations.poll();
        revocations.report(polled, start);
        let complained_at =
            |r: &Revocations| r.watch.lock().unwrap().complained.clone().map(|c| c.1);
        assert_eq!(complained_at(&revocations), Some(start));
        revocations.report(revocations.poll(), start + Duration::from_secs(1));
        assert_eq!(
            complained_at(&revocations),
            Some(start),
            "not again within a minute"
        );
        let later = start + COMPLAIN_EVERY;
        revocations.report(revocations.poll(), later);
        assert_eq!(complained_at(&revocations), Some(later));
        write(&path, &format!("{KEY}\n"));
        revocations.report(revocations.poll(), later);
        assert_eq!(complained_at(&revocations), None, "fixed");
    }
}
