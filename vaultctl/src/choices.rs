//! The fixed sets of values some options take (clap value enums, so `--help` lists them and
//! a bad value is refused with the list), and the one `--format` of the commands that print
//! data.
#![deny(missing_docs)]

use clap::{Args, ValueEnum};

/// The stores `init --store` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreChoice {
    /// Embedded SQLite in the vault directory: durable.
    Sqlite,
    /// Process memory: lost on exit; for tests.
    Memory,
    /// PostgreSQL (`--store-url`): several vaultd replicas can share it.
    Postgres,
}

impl From<StoreChoice> for vault::StoreKind {
    fn from(choice: StoreChoice) -> Self {
        match choice {
            StoreChoice::Sqlite => vault::StoreKind::Sqlite,
            StoreChoice::Memory => vault::StoreKind::Memory,
            StoreChoice::Postgres => vault::StoreKind::Postgres,
        }
    }
}

/// The wrap modes `init --mode` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeChoice {
    /// Each DEK wrapped by the root KEKs: the hardware on every seal and open.
    Direct,
    /// Each DEK wrapped by an epoch key that the root KEKs wrap: the hardware on unlock and
    /// rotation only.
    Tiered,
}

impl From<ModeChoice> for vault::WrapMode {
    fn from(choice: ModeChoice) -> Self {
        match choice {
            ModeChoice::Direct => vault::WrapMode::Direct,
            ModeChoice::Tiered => vault::WrapMode::Tiered,
        }
    }
}

/// How a command prints what it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Lines and tables for people.
    #[value(alias = "human")]
    Text,
    /// JSON for programs (one document; `audit tail`: one record per line).
    Json,
}

/// The output format of a command that prints data.
#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, value_name = "FORMAT")]
    pub format: OutputFormat,
}

impl FormatArgs {
    /// Whether JSON was asked for.
    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }
}

/// The forms `seal` writes an envelope in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvelopeFormat {
    /// The canonical binary envelope.
    Binary,
    /// The JSON export form (base64 fields).
    Json,
}
