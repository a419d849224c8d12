//! `vaultctl exec`: resolve every reference first (any failure: nothing runs), then run the
//! command (no shell) with the values in its environment and pass its exit status through.
//! Values are never printed; the parent's copies are zeroized as soon as the child exists.
//! The variables the vault's KEKs read (a passphrase, a PIN) are not passed on.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;

use clap::Args;
use envelope::SecretBytes;
use secret_refs::Resolver;

use super::env_file::{self, Entry};
use super::refs::{PolicyArgs, Source, kek_variables};
use crate::cli::Cli;
use crate::error::Error;

/// Arguments of `exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Set NAME in the command's environment to the secret REF names, e.g.
    /// `DB_PASSWORD=vault://global/db-password` (repeatable; wins over --env-file).
    #[arg(long = "env", value_name = "NAME=REF")]
    pub env: Vec<String>,
    /// A file of `NAME=REF` lines (`#` comments and blank lines allowed).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// What references may touch.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// The command and its arguments, after `--`; run directly, not through a shell.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

pub fn run(cli: &Cli, args: &ExecArgs) -> Result<(), Error> {
    let entries = entries(args)?;
    let resolver = Resolver::new(args.policy.policy()?).map_err(|source| Error::Refs {
        context: "--allow-env / --trusted-dir / --allow-exec".into(),
        source,
    })?;
    let source = Source::for_refs(cli, entries.iter().map(|e| &e.reference))?;
    let resolver = match &source {
        Some(source) => resolver.with_vault(source),
        None => resolver,
    };
    let mut values: Vec<(&str, SecretBytes)> = Vec::with_capacity(entries.len());
    for entry in &entries {
        let value = resolver
            .resolve(&entry.reference)
            .map_err(|source| Error::Refs {
                // The error itself names the reference.
                context: format!(
                    "cannot set {} ({}), nothing was run",
                    entry.name, entry.origin
                ),
                source,
            })?;
        if value.expose_secret().contains(&0) {
            return Err(Error::Failed(format!(
                "cannot set {} ({}), nothing was run: {} holds a NUL byte, which an environment variable cannot",
                entry.name, entry.origin, entry.reference
            )));
        }
        values.push((&entry.name, value));
    }
    drop(source);

    let (program, program_args) = args
        .command
        .split_first()
        .ok_or_else(|| Error::Usage("give the command to run after --".into()))?;
    let mut command = Command::new(program);
    command.args(program_args);
    for name in kek_variables(cli) {
        command.env_remove(name);
    }
    for (name, value) in &values {
        command.env(name, OsStr::from_bytes(value.expose_secret()));
    }
    let status = super::exec_child::spawn_and_wait(command, values, program)?;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(Error::ChildExit(u8::try_from(code & 0xff).unwrap_or(1))),
        (None, Some(signal)) => Err(Error::ChildExit(u8::try_from(128 + signal).unwrap_or(255))),
        (None, None) => Err(Error::ChildExit(1)),
    }
}

/// The env file's entries, then --env's, later names replacing earlier ones.
fn entries(args: &ExecArgs) -> Result<Vec<Entry>, Error> {
    let mut entries = match &args.env_file {
        Some(path) => env_file::read(path)?,
        None => Vec::new(),
    };
    let mut from_flags: Vec<Entry> = Vec::new();
    for text in &args.env {
        let (name, reference) = env_file::parse_assignment(text)
            .map_err(|reason| Error::Usage(format!("--env: {reason}")))?;
        if from_flags.iter().any(|e| e.name == name) {
            return Err(Error::Usage(format!("--env {name} is given twice")));
        }
        entries.retain(|e| e.name != name);
        from_flags.push(Entry {
            name,
            reference,
            origin: "--env".into(),
        });
    }
    entries.extend(from_flags);
    if entries.is_empty() {
        return Err(Error::Usage(
            "nothing to inject: give --env NAME=REF or --env-file FILE".into(),
        ));
    }
    Ok(entries)
}
