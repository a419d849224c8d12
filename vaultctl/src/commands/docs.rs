//! `completions SHELL` and `man`: shell completion scripts and man pages, generated from the
//! clap definitions, so they always match the commands and flags of this build.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::Error;
use crate::io::write_output;

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell, e.g. `vaultctl completions bash > /etc/bash_completion.d/vaultctl`, or
    /// `vaultctl completions zsh > "${fpath[1]}/_vaultctl"`.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Arguments of `man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command (`vaultctl.1`, `vaultctl-list.1`, `vaultctl-kek-add.1`,
    /// ...) into this directory instead of vaultctl.1 to stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Prints the completion script.
pub fn completions(args: &CompletionsArgs) -> Result<(), Error> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "vaultctl", &mut script);
    write_output(None, &script)
}

/// Prints the top page, or writes every page into `--out-dir`.
pub fn man(args: &ManArgs) -> Result<(), Error> {
    let command = Cli::command();
    let Some(dir) = &args.out_dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut page)
            .map_err(Error::io("rendering the man page"))?;
        return write_output(None, &page);
    };
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    // Built, so that each subcommand's page shows the global options too.
    let mut command = command.disable_help_subcommand(true);
    command.build();
    let mut written = 0;
    write_pages(command, "vaultctl", dir, &mut written)?;
    println!("wrote {written} man pages to {}", dir.display());
    Ok(())
}

/// Writes `command`'s page (`command` named as its file, `parent-child`; `bin` is how it is
/// typed, `parent child`) and, below it, one per subcommand.
fn write_pages(
    command: clap::Command,
    bin: &str,
    dir: &Path,
    written: &mut usize,
) -> Result<(), Error> {
    let command = command.bin_name(bin);
    let name = command.get_name().to_owned();
    // clap's own `help` subcommands need no page.
    let pages = command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help");
    for sub in pages {
        let page = sub.clone().name(format!("{name}-{}", sub.get_name()));
        write_pages(page, &format!("{bin} {}", sub.get_name()), dir, written)?;
    }
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .map_err(Error::io("rendering a man page"))?;
    std::fs::write(&path, page).map_err(Error::io(format!("writing {}", path.display())))?;
    *written += 1;
    Ok(())
}
