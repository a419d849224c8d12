//! Which criterion benchmark is compared with which limit, and the targets the issues set:
//! envelope seal >= 0.6 and open >= 0.8 of two bare ChaCha20-Poly1305 operations (64 B),
//! open >= 0.8 at 64 KiB too;
//! tiered mode >= 0.8 of the same vault on a software root KEK (64 B), for every provider;
//! PKCS#11 direct seal/open >= 0.85 of bare C_Encrypt/C_Decrypt (1 and 2 threads); TPM direct
//! open >= 0.85 of a bare Load+Unseal+Flush. Other sizes and pairs are reported, as are the
//! unlock and start-up times, which have no limit.

use crate::{SECRET_SIZES, TARGET_SIZE};

/// A benchmark, its limit and its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The criterion benchmark.
    pub measured: String,
    /// The benchmark it is divided by, if any.
    pub limit: Option<String>,
    /// The lowest ratio accepted, if any.
    pub target: Option<f64>,
}

fn pair(measured: &str, limit: &str, target: Option<f64>) -> Pair {
    Pair {
        measured: measured.into(),
        limit: Some(limit.into()),
        target,
    }
}

fn alone(measured: &str) -> Pair {
    Pair {
        measured: measured.into(),
        limit: None,
        target: None,
    }
}

/// Seal and open at every size, each with its limit; the targets at [`TARGET_SIZE`].
fn sized(
    measured: (&str, &str),
    limit: (&str, &str),
    targets: (f64, f64),
) -> impl Iterator<Item = Pair> {
    SECRET_SIZES.into_iter().flat_map(move |(size, label)| {
        let at = |t: f64| (size == TARGET_SIZE).then_some(t);
        [
            pair(
                &format!("{}_{label}", measured.0),
                &format!("{}_{label}", limit.0),
                at(targets.0),
            ),
            pair(
                &format!("{}_{label}", measured.1),
                &format!("{}_{label}", limit.1),
                at(targets.1),
            ),
        ]
    })
}

/// Tiered mode on the provider's root KEK against a software root (64 B, >= 0.8).
fn tiered() -> [Pair; 2] {
    [
        pair("tiered_seal_64B", "software_seal_64B", Some(0.8)),
        pair("tiered_open_64B", "software_open_64B", Some(0.8)),
    ]
}

/// The pairs of criterion group `group` (empty for an unknown group).
pub fn pairs(group: &str) -> Vec<Pair> {
    match group {
        "envelope" => sized(("seal", "open"), ("limit_seal", "limit_open"), (0.6, 0.8))
            .map(|p| match p.measured.as_str() {
                // Large secrets open at what the AEAD costs (kept locked mappings).
                "open_64KiB" => Pair {
                    target: Some(0.8),
                    ..p
                },
                _ => p,
            })
            .collect(),
        "keyring" => sized(
            ("tiered_seal", "tiered_open"),
            ("memory_kek_seal", "memory_kek_open"),
            (0.8, 0.8),
        )
        .collect(),
        "software" => SECRET_SIZES
            .into_iter()
            .flat_map(|(_, label)| {
                [
                    pair(
                        &format!("file_direct_seal_{label}"),
                        &format!("memory_kek_seal_{label}"),
                        None,
                    ),
                    pair(
                        &format!("file_direct_open_{label}"),
                        &format!("memory_kek_open_{label}"),
                        None,
                    ),
                ]
            })
            .chain([alone("passphrase_unlock_open_vault")])
            .collect(),
        "pkcs11" => [
            pair("direct_seal_64B", "limit_encrypt_32B", Some(0.85)),
            pair("direct_open_64B", "limit_decrypt_32B", Some(0.85)),
            pair(
                "direct_seal_64B_2threads",
                "limit_encrypt_32B_2threads",
                Some(0.85),
            ),
            pair(
                "direct_open_64B_2threads",
                "limit_decrypt_32B_2threads",
                Some(0.85),
            ),
        ]
        .into_iter()
        .chain(tiered())
        .collect(),
        "tpm" => [
            pair("direct_open_64B", "limit_load_unseal_flush", Some(0.85)),
            pair("direct_seal_64B", "limit_create", None),
        ]
        .into_iter()
        .chain(tiered())
        .chain([alone("startup_open_vault")])
        .collect(),
        "yubikey" | "keystore" => tiered()
            .into_iter()
            .chain([alone("unlock_open_vault")])
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CRITERION_GROUPS;

    #[test]
    fn every_group_has_pairs_and_targets_at_64_bytes_and_the_64_kib_open() {
        for group in CRITERION_GROUPS {
            let pairs = pairs(group);
            assert!(!pairs.is_empty(), "{group}");
            for p in pairs.iter().filter(|p| p.target.is_some()) {
                let sized = p.measured.contains("64B") || p.measured == "open_64KiB";
                assert!(sized, "{group}/{}", p.measured);
                assert!(p.limit.is_some(), "{group}/{}", p.measured);
            }
        }
        let envelope = pairs("envelope");
        assert_eq!(envelope.len(), 8);
        assert!(envelope.contains(&pair("open_64B", "limit_open_64B", Some(0.8))));
        assert!(envelope.contains(&pair("seal_64KiB", "limit_seal_64KiB", None)));
        assert!(envelope.contains(&pair("open_64KiB", "limit_open_64KiB", Some(0.8))));
        assert!(pairs("nonsense").is_empty());
    }
}
