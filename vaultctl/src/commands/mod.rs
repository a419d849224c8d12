//! One file per group of subcommands.

pub(crate) mod audit;
mod audit_replicas;
pub(crate) mod backup;
pub(crate) mod docs;
mod env_file;
pub(crate) mod exec;
mod exec_child;
mod init;
mod kek;
pub(crate) mod keys;
mod pki;
pub(crate) mod refs;
pub(crate) mod resolve;
pub(crate) mod scan;
mod secrets;
mod status;
mod transit;

pub use secrets::{ListPrinter, ListRow, print_count};
pub use transit::envelope_bytes;

use crate::cli::{Cli, Command};
use crate::error::Error;

/// Runs the parsed command line.
pub fn run(cli: &Cli) -> Result<(), Error> {
    // `pki`, `scan`, `backup` and `restore` only touch local files, and `completions` and
    // `man` none, so they run here even with --addr; `exec` and `resolve` read vault://
    // references from vaultd themselves in remote mode.
    if !matches!(
        cli.command,
        Command::Pki(_)
            | Command::Scan(_)
            | Command::Exec(_)
            | Command::Resolve(_)
            | Command::Completions(_)
            | Command::Man(_)
            | Command::Backup(_)
            | Command::Restore(_)
    ) && let Some(remote) = crate::remote::Remote::from_cli(cli)?
    {
        return crate::remote::run(cli, &remote);
    }
    match &cli.command {
        Command::Init(args) => init::run(cli, args),
        Command::Set(args) => secrets::set(cli, args),
        Command::Get(args) => secrets::get(cli, args),
        Command::List(args) => secrets::list(cli, args),
        Command::Delete(args) => secrets::delete(cli, args),
        Command::Seal(args) => transit::seal(cli, args),
        Command::Open(args) => transit::open(cli, args),
        Command::Status(args) => status::run(cli, args),
        Command::Kek(command) => kek::run(cli, command),
        Command::Rotate => keys::rotate(cli),
        Command::Rewrap(args) => keys::rewrap(cli, args),
        Command::MinDecryptionVersion(args) => keys::min_decryption_version(cli, args),
        Command::Lock => keys::lock(cli),
        Command::Unlock(args) => keys::unlock(cli, args),
        Command::Upgrade => keys::upgrade(cli),
        Command::Audit(command) => audit::run(cli, command),
        Command::Pki(command) => pki::run(cli, command),
        Command::Scan(args) => scan::run(cli, args),
        Command::Exec(args) => exec::run(cli, args),
        Command::Resolve(args) => resolve::run(cli, args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
        Command::Backup(args) => backup::backup(cli, args),
        Command::Restore(args) => backup::restore(cli, args),
    }
}
