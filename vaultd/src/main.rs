//! vaultd: the vault daemon.
#![forbid(unsafe_code)]

fn main() {
    eprintln!("vaultd: not built yet");
    std::process::exit(1);
}
