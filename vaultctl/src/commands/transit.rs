//! `seal` and `open`: envelope encryption of caller data; nothing is stored.

use envelope::MAX_PAYLOAD_LEN;

use crate::cli::{Cli, EnvelopeFormat, OpenArgs, SealArgs};
use crate::error::Error;
use crate::io::{read_public, read_secret, stdout_is_terminal, write_output};
use crate::open::open_vault;

pub fn seal(cli: &Cli, args: &SealArgs) -> Result<(), Error> {
    let io = &args.io;
    if io.output.is_none() && args.format == EnvelopeFormat::Binary && stdout_is_terminal() {
        return Err(Error::Usage(
            "refusing to write a binary envelope to a terminal: use --out FILE, --format json, or redirect stdout".into(),
        ));
    }
    let vault = open_vault(cli)?;
    let data = read_secret(
        io.input.as_deref(),
        "Data to seal (not echoed): ",
        MAX_PAYLOAD_LEN,
    )?;
    let sealed = vault.seal_data(&io.context, None, data.expose_secret())?;
    if args.format == EnvelopeFormat::Json {
        let mut text = envelope::to_json(&sealed)?;
        text.push('\n');
        write_output(io.output.as_deref(), text.as_bytes())
    } else {
        write_output(io.output.as_deref(), &sealed)
    }
}

pub fn open(cli: &Cli, args: &OpenArgs) -> Result<(), Error> {
    let io = &args.io;
    let vault = open_vault(cli)?;
    let input = read_public(io.input.as_deref(), envelope::MAX_JSON_LEN)?;
    let binary = envelope_bytes(input)?;
    let plain = vault.open_data(&io.context, None, &binary)?;
    write_output(io.output.as_deref(), plain.expose_secret())
}

/// The binary envelope in `input`, which holds either form (JSON starts with `{`).
pub fn envelope_bytes(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    if input.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        let text = std::str::from_utf8(&input)
            .map_err(|_| envelope::Error::Json("the JSON envelope is not UTF-8".into()))?;
        Ok(envelope::from_json(text)?)
    } else {
        Ok(input)
    }
}
