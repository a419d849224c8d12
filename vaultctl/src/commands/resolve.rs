//! `vaultctl resolve REF`: an explicit reveal of one secret on stdout, raw (no newline
//! added). Refused when stdout is a terminal unless `--reveal`, so a value does not end up
//! on screen or in terminal scrollback by accident.

use clap::Args;
use secret_refs::Resolver;

use super::refs::{PolicyArgs, Source};
use crate::cli::Cli;
use crate::error::Error;
use crate::io::{stdout_is_terminal, write_output};

/// Arguments of `resolve`.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The reference: `vault://SCOPE/KEY[#VERSION]`, `env://NAME`, `file:///PATH` or
    /// `exec:///PROGRAM?arg=...`.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Print the value even when stdout is a terminal.
    #[arg(long)]
    pub reveal: bool,
    /// What references may touch.
    #[command(flatten)]
    pub policy: PolicyArgs,
}

pub fn run(cli: &Cli, args: &ResolveArgs) -> Result<(), Error> {
    let refs_error = |context: String| move |source| Error::Refs { context, source };
    let reference =
        secret_refs::parse(&args.reference).map_err(refs_error("cannot resolve".into()))?;
    if stdout_is_terminal() && !args.reveal {
        return Err(Error::Usage(
            "refusing to print a secret to a terminal: pipe or redirect stdout, or pass --reveal"
                .into(),
        ));
    }
    let resolver = Resolver::new(args.policy.policy()?).map_err(refs_error(
        "--allow-env / --trusted-dir / --allow-exec".into(),
    ))?;
    let source = Source::for_refs(cli, std::iter::once(&reference))?;
    let resolver = match &source {
        Some(source) => resolver.with_vault(source),
        None => resolver,
    };
    let value = resolver
        .resolve(&reference)
        .map_err(refs_error("cannot resolve".into()))?;
    write_output(None, value.expose_secret())
}
