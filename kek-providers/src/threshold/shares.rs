//! Splitting a DEK into Shamir shares over GF(256) and combining them again, with vsss-rs.
//!
//! vsss-rs writes share k (0-based) as `x = k + 1 | y [32]`. Only `y` is wrapped (a member
//! wraps exactly a 32-byte key); `x` is implied by the share's position in the body and
//! checked when splitting. Every share buffer and the combined secret we hold is zeroized
//! on drop. vsss-rs's own per-byte temporaries (the polynomial's coefficients while
//! splitting, the interpolation points while combining) are heap values it frees without
//! zeroizing; that is outside this crate's reach.

use envelope::{DEK_LEN, Dek, Error, KekId};
use rand_core_06::{CryptoRng, RngCore};
use vsss_rs::Gf256;
use zeroize::{Zeroize, Zeroizing};

/// A share's length as vsss-rs writes it: the x-coordinate byte and one y byte per DEK byte.
const SHARE_LEN: usize = 1 + DEK_LEN;

/// Splits `dek` into `n` shares of which any `m` recover it; share k has x-coordinate k + 1.
/// Fresh randomness on every call.
pub(super) fn split(
    kek: &KekId,
    dek: &Dek,
    m: usize,
    n: usize,
) -> Result<Zeroizing<Vec<Vec<u8>>>, Error> {
    let mut rng = ShareRng::new();
    let shares = Gf256::split_array(m, n, dek.expose_secret(), &mut rng)
        .map(Zeroizing::new)
        .map_err(|_| Error::kek(kek, "splitting the DEK into shares failed"))?;
    if rng.failed {
        // The generator gave zeros for part of the coefficients: the shares are unsafe.
        return Err(Error::Random);
    }
    let well_formed = shares.len() == n
        && shares
            .iter()
            .enumerate()
            .all(|(k, share)| share.len() == SHARE_LEN && usize::from(share[0]) == k + 1);
    if !well_formed {
        return Err(Error::kek(
            kek,
            "the secret-sharing library made unexpected shares",
        ));
    }
    Ok(shares)
}

/// The y part of a share from [`split`], as the key its member wraps.
pub(super) fn share_key(share: &[u8]) -> Result<Dek, Error> {
    Dek::from_slice(share.get(1..).unwrap_or_default())
}

/// Combines at least two opened shares, each given as (0-based index, y), into the DEK.
pub(super) fn combine(kek: &KekId, opened: &[(usize, Dek)]) -> Result<Dek, Error> {
    let mut shares = Zeroizing::new(Vec::with_capacity(opened.len()));
    for (index, y) in opened {
        // Exact capacity: the buffer is never reallocated, so no copy is left unzeroized.
        let mut share = Vec::with_capacity(SHARE_LEN);
        share.push(u8::try_from(index + 1).map_err(|_| Error::kek(kek, "share index too big"))?);
        share.extend_from_slice(y.expose_secret());
        shares.push(share);
    }
    let secret = Gf256::combine_array(shares.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| Error::kek(kek, "combining the opened shares failed"))?;
    Dek::from_slice(&secret)
}

/// rand_core 0.6 (the version vsss-rs takes) over the envelope crate's CSPRNG (a per-thread
/// ChaCha20 reseeded from the OS): much cheaper than a system call per coefficient, which is
/// how often vsss-rs asks. That generator can fail, and `next_u32` cannot say so: a failure
/// is recorded, the output is zeros, and [`split`] discards the shares and returns the error.
struct ShareRng {
    block: Zeroizing<[u8; 256]>,
    used: usize,
    failed: bool,
}

impl ShareRng {
    fn new() -> Self {
        Self {
            block: Zeroizing::new([0; 256]),
            used: 256,
            failed: false,
        }
    }

    fn refill(&mut self) {
        if envelope::random_bytes(&mut self.block[..]).is_err() {
            self.failed = true;
            self.block.zeroize();
        }
        self.used = 0;
    }
}

impl RngCore for ShareRng {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = Zeroizing::new([0u8; 4]);
        self.fill_bytes(&mut bytes[..]);
        u32::from_le_bytes(*bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = Zeroizing::new([0u8; 8]);
        self.fill_bytes(&mut bytes[..]);
        u64::from_le_bytes(*bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let mut filled = 0;
        while filled < dest.len() {
            if self.used == self.block.len() {
                self.refill();
            }
            let len = (dest.len() - filled).min(self.block.len() - self.used);
            let source = &mut self.block[self.used..self.used + len];
            dest[filled..filled + len].copy_from_slice(source);
            // Bytes handed out are not kept.
            source.zeroize();
            self.used += len;
            filled += len;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core_06::Error> {
        self.fill_bytes(dest);
        if self.failed {
            Err(rand_core_06::Error::new(Error::Random))
        } else {
            Ok(())
        }
    }
}

impl CryptoRng for ShareRng {}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> KekId {
        KekId::new("threshold", "test", 1).expect("id")
    }

    #[test]
    fn any_m_shares_recover_the_dek_and_fewer_do_not() {
        let dek = Dek::generate().expect("dek");
        let shares = split(&id(), &dek, 3, 5).expect("split");
        let keys: Vec<Dek> = shares.iter().map(|s| share_key(s).expect("key")).collect();
        for a in 0..5 {
            for b in a + 1..5 {
                for c in b + 1..5 {
                    let opened: Vec<(usize, Dek)> = [a, b, c]
                        .iter()
                        .map(|&k| (k, keys[k].try_clone().expect("clone")))
                        .collect();
                    let back = combine(&id(), &opened).expect("combine");
                    assert_eq!(back.expose_secret(), dek.expose_secret(), "{a}{b}{c}");
                }
                let two = [
                    (a, keys[a].try_clone().expect("clone")),
                    (b, keys[b].try_clone().expect("clone")),
                ];
                let wrong = combine(&id(), &two).expect("combine");
                assert_ne!(wrong.expose_secret(), dek.expose_secret());
            }
        }
    }

    #[test]
    fn each_split_uses_fresh_randomness() {
        let dek = Dek::generate().expect("dek");
        let first = split(&id(), &dek, 2, 3).expect("split");
        let second = split(&id(), &dek, 2, 3).expect("split");
        assert_ne!(*first, *second);
    }

    #[test]
    fn the_rng_serves_across_block_boundaries() {
        let mut rng = ShareRng::new();
        let mut out = [0u8; 1000];
        rng.fill_bytes(&mut out);
        assert!(!rng.failed);
        assert!(out.iter().any(|&b| b != 0));
        assert_eq!(rng.used, 1000 - 3 * 256);
    }
}
