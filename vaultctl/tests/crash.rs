//! SIGKILL during a stream of 1000 `vaultctl set` calls: every acknowledged write survives,
//! no write is torn, and the vault still opens.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Sandbox;
use kek_providers::KekEnv;
use vault::{Kek, Vault};

const WRITES: usize = 1000;
const KEYS: usize = 40;

/// A small deterministic generator for kill timings (xorshift64*).
struct Timings(u64);

impl Timings {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

struct Write_ {
    key: String,
    value: Vec<u8>,
    acked_version: Option<u64>,
}

/// The median wall time of an uninterrupted `set` on this machine, in microseconds, so
/// that kills land inside the process's life however fast or slow the machine is.
fn typical_set_duration_us(sb: &Sandbox) -> u64 {
    let mut samples: Vec<u64> = (0..15)
        .map(|i| {
            let start = Instant::now();
            sb.ok(&["set", "global", &format!("calibrate-{i}")], b"v");
            start.elapsed().as_micros() as u64
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2].max(1)
}

#[test]
fn sigkill_during_a_stream_of_sets_loses_no_acknowledged_write() {
    let sb = Sandbox::new();
    let uri = sb.init_file_kek();
    let mut timings = Timings(0x9E37_79B9_7F4A_7C15);
    let lifetime_us = typical_set_duration_us(&sb);
    let mut writes = Vec::with_capacity(WRITES);
    let mut killed = 0;
    for i in 0..WRITES {
        let key = format!("k{}", i % KEYS);
        let value = format!("value-{i}-{}", "x".repeat(i % 97)).into_bytes();
        let mut child = sb
            .cmd(&["set", "global", &key])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        // A killed child may close stdin early; a failed write is part of the experiment.
        let _ = child.stdin.take().expect("stdin").write_all(&value);
        let roll = timings.next();
        if roll.is_multiple_of(3) {
            // Anywhere in the process's life: start-up, sealing, the commit, or just after it.
            std::thread::sleep(Duration::from_micros(roll % lifetime_us));
            let _ = child.kill(); // SIGKILL
        }
        let out = child.wait_with_output().expect("wait");
        let acked_version = if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            let version = text.trim().rsplit(' ').next().and_then(|v| v.parse().ok());
            Some(version.expect("an acknowledged set prints its version"))
        } else {
            killed += 1;
            None
        };
        writes.push(Write_ {
            key,
            value,
            acked_version,
        });
    }
    eprintln!("{killed} of {WRITES} sets were killed (median set: {lifetime_us} us)");
    assert!(killed > 100, "the experiment killed only {killed} writes");
    assert!(WRITES - killed > 100, "too few writes were acknowledged");

    let dir = sb.vault_dir();
    let built = kek_providers::open(&uri, &KekEnv { vault_dir: &dir }).expect("kek");
    let vault = Vault::open(
        &dir,
        None,
        vec![Kek {
            uri: built.uri,
            provider: built.provider,
        }],
    )
    .expect("the vault opens after the kills");

    for w in &writes {
        if let Some(version) = w.acked_version {
            let got = vault
                .get("global", &w.key, Some(version))
                .expect("acknowledged write present");
            assert_eq!(
                got.expose_secret(),
                &w.value[..],
                "{} version {version}",
                w.key
            );
        }
    }
    // The latest value of each key is the last acknowledged write or a later, killed
    // write that had committed: never a torn or older value.
    let mut by_key: HashMap<&str, Vec<&Write_>> = HashMap::new();
    for w in &writes {
        by_key.entry(&w.key).or_default().push(w);
    }
    for (key, ws) in by_key {
        let latest = vault.get("global", key, None).expect("latest");
        let last_acked = ws
            .iter()
            .rposition(|w| w.acked_version.is_some())
            .unwrap_or(0);
        assert!(
            ws[last_acked..]
                .iter()
                .any(|w| w.value == latest.expose_secret()),
            "{key} holds a value older than its last acknowledged write"
        );
    }
    assert_eq!(
        vault.list(None).expect("list").len(),
        KEYS + 15,
        "the written keys and the calibration keys"
    );
}
