//! `vaultctl pki`: the TLS material of vaultd's mutual TLS: the dev CA and server
//! certificate, client certificates naming principals, and the revocation list.

use pki::PkiDir;

use crate::cli::{Cli, PkiCommand, PkiInitArgs, PkiIssueArgs, PkiRevokeArgs};
use crate::error::Error;
use crate::open::vault_dir;

/// Runs a `pki` subcommand.
pub fn run(cli: &Cli, command: &PkiCommand) -> Result<(), Error> {
    match command {
        PkiCommand::Init(args) => init(cli, args),
        PkiCommand::Issue(args) => issue(cli, args),
        PkiCommand::Revoke(args) => revoke(cli, args),
        PkiCommand::RenewServer(args) => renew_server(cli, args),
    }
}

/// `--pki-dir`, else `<vault dir>/tls`.
fn pki_dir(cli: &Cli, dir: Option<&std::path::PathBuf>) -> Result<PkiDir, Error> {
    match dir {
        Some(dir) => Ok(PkiDir::new(dir)),
        None => Ok(PkiDir::new(vault_dir(cli)?.join("tls"))),
    }
}

/// Bad input is a usage error (exit 2); everything else fails with exit 1.
fn from_pki(e: pki::Error) -> Error {
    match e {
        pki::Error::InvalidPrincipal { .. }
        | pki::Error::InvalidFingerprint { .. }
        | pki::Error::InvalidSerial { .. }
        | pki::Error::InvalidKeyHash { .. }
        | pki::Error::InvalidHost { .. } => Error::Usage(e.to_string()),
        _ => Error::Failed(e.to_string()),
    }
}

fn init(cli: &Cli, args: &PkiInitArgs) -> Result<(), Error> {
    let pki = pki_dir(cli, args.pki_dir.as_ref())?;
    pki.create(&args.hosts).map_err(from_pki)?;
    println!(
        "created a CA and a server certificate for {}",
        args.hosts.join(", ")
    );
    println!("  CA certificate:     {}", pki.ca_cert().display());
    println!("  server certificate: {}", pki.server_cert().display());
    println!("  server key:         {}", pki.server_key().display());
    println!("  revocation list:    {}", pki.revoked().display());
    println!("next: vaultctl pki issue --principal <id>");
    Ok(())
}

fn renew_server(cli: &Cli, args: &PkiInitArgs) -> Result<(), Error> {
    let pki = pki_dir(cli, args.pki_dir.as_ref())?;
    pki.renew_server(&args.hosts).map_err(from_pki)?;
    println!(
        "renewed the server certificate for {} (valid for a year)",
        args.hosts.join(", ")
    );
    println!("  server certificate: {}", pki.server_cert().display());
    println!("  server key:         {}", pki.server_key().display());
    println!(
        "next: copy both to vaultd's TLS directory if this is not it, then send vaultd SIGHUP"
    );
    Ok(())
}

fn issue(cli: &Cli, args: &PkiIssueArgs) -> Result<(), Error> {
    let pki = pki_dir(cli, args.pki_dir.as_ref())?;
    let issued = pki.issue_client(&args.principal).map_err(from_pki)?;
    if args.format.json() {
        let doc = serde_json::json!({
            "principal": args.principal,
            "cert": issued.cert.display().to_string(),
            "key": issued.key.display().to_string(),
            "fingerprint": issued.fingerprint,
        });
        println!("{doc}");
        return Ok(());
    }
    println!("issued a client certificate for {}", args.principal);
    println!("  cert:        {}", issued.cert.display());
    println!("  key:         {}", issued.key.display());
    println!("  fingerprint: {}", issued.fingerprint);
    Ok(())
}

fn revoke(cli: &Cli, args: &PkiRevokeArgs) -> Result<(), Error> {
    let pki = pki_dir(cli, args.pki_dir.as_ref())?;
    let revoked = match (&args.cert_or_fingerprint, &args.serial, &args.key_hash) {
        (Some(cert), None, None) => pki.revoke(cert),
        (None, Some(serial), None) => pki.revoke_serial(serial),
        (None, None, Some(key_hash)) => pki.revoke_key_hash(key_hash),
        _ => {
            return Err(Error::Usage(
                "give one of: a certificate file or fingerprint, --serial HEX, --key-hash HEX"
                    .into(),
            ));
        }
    }
    .map_err(from_pki)?;
    let whom = match (&revoked.principal, &revoked.cert) {
        (Some(p), Some(c)) => format!(" the certificate of {p} ({})", c.display()),
        (None, Some(c)) => format!(" {}", c.display()),
        _ => String::new(),
    };
    println!(
        "revoked{whom}: {} entries added to {} ({} listed already)",
        revoked.added,
        pki.revoked().display(),
        revoked.entries.len() - revoked.added
    );
    for entry in &revoked.entries {
        println!("  {entry}");
    }
    if revoked.fingerprint_only() {
        eprintln!(
            "warning: a fingerprint names one encoding of a certificate, and the holder of an \
             ECDSA certificate can re-encode it; no certificate in {} has this fingerprint, \
             so revoke by --serial or --key-hash (or the certificate file) as well",
            pki.clients_dir().display()
        );
    }
    println!("vaultd rereads the list within a second; no restart needed");
    Ok(())
}
