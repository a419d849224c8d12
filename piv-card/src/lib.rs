//! Test support: an emulated PIV card that answers as a YubiKey 5 would, for the YubiKey KEK
//! provider's tests; and the fixture that plugs it into pcscd.
//!
//! The card is piv-authenticator on trussed's virtual platform, all in RAM: every card starts
//! factory fresh (PIN 123456, PUK 12345678, the default 3DES management key). It runs on a
//! thread of the test process and talks to vsmartcard's vpcd, the reader driver pcscd loads,
//! over TCP (127.0.0.1:35963 for the first reader, 35964 for the second). [`PivCards::start`]
//! starts pcscd when it is not running, starts the cards, waits until pcscd sees each one in
//! its reader, and on drop stops them (and the pcscd it started). pcscd is machine-wide, so
//! the fixture holds a machine-wide lock: card tests run one at a time, across processes.
//! `VAULT_PCSCD` names another pcscd program; without pcscd or vpcd a card test skips with
//! a line on stderr, or fails under `VAULT_REQUIRE_HW` (test-support's skip rule).
#![forbid(unsafe_code)]

mod card;
mod fixture;
mod virt;
mod vpcd;

pub use card::FIRMWARE_VERSION;
pub use fixture::{DEFAULT_PIN, DEFAULT_PUK, MAX_CARDS, PivCard, PivCards};
