//! vaultctl: the vault's command-line interface. Local mode works on a vault directory.
#![forbid(unsafe_code)]

mod choices;
mod cli;
mod commands;
mod error;
mod io;
mod logger;
mod open;
mod remote;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    logger::init();
    // No core dumps: they would hold whatever secrets the process had in memory.
    if let Err(e) = envelope::memory::harden_process() {
        log::warn!("{e}");
    }
    let cli = cli::Cli::parse();
    let result = if cli.require_mlock {
        envelope::memory::require_locking().map_err(error::Error::from)
    } else {
        Ok(())
    };
    match result.and_then(|()| commands::run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // `exec`'s command already said what it had to say.
        Err(error::Error::ChildExit(code)) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
