//! The head checkpoint file (`<log>.head`): the newest record known durable, MACed.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use ring::hmac;
use serde::{Deserialize, Serialize};

use super::AuditDefect;
use super::chain::{Macs, damaged};
use super::key::{mac_hex, mac_matches};
use super::record::{ZERO_MAC, is_hex_mac};
use crate::Error;

/// A head file is a few hundred bytes.
const MAX_HEAD_LEN: u64 = 4096;
/// Domain separation of the head's MAC.
const HEAD_DOMAIN: &[u8] = b"vault audit head v2\n";

/// The head checkpoint: `{"seq":N,"mac":"<record N's mac>","tag":"<HMAC of seq and mac>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Head {
    pub(crate) seq: u64,
    pub(crate) mac: String,
    pub(crate) tag: String,
}

impl Head {
    pub(crate) fn new(seq: u64, mac: &str, key: &hmac::Key) -> Head {
        Head {
            seq,
            mac: mac.to_owned(),
            tag: mac_hex(key, &[&Self::tagged(seq, mac)]),
        }
    }

    /// What the tag covers: the domain, the seq in decimal and a newline, the record's MAC.
    fn tagged(seq: u64, mac: &str) -> Vec<u8> {
        let mut bytes = HEAD_DOMAIN.to_vec();
        bytes.extend_from_slice(format!("{seq}\n{mac}").as_bytes());
        bytes
    }
}

/// `<log>.head`: where the head checkpoint of the log at `log` is kept.
pub fn head_path(log: &Path) -> PathBuf {
    let mut name = OsString::from(log.as_os_str());
    name.push(".head");
    PathBuf::from(name)
}

/// Reads the head checkpoint of `log`, checking its MAC when `macs` holds the key; `None` if
/// the file does not exist.
pub(crate) fn read_head(log: &Path, macs: Macs<'_>) -> Result<Option<Head>, Error> {
    let path = head_path(log);
    let head_damaged = |reason: String| damaged(log, None, AuditDefect::HeadDamaged { reason });
    let text = match std::fs::metadata(&path) {
        Ok(meta) if meta.len() > MAX_HEAD_LEN => {
            return Err(head_damaged(format!("it is {} bytes long", meta.len())));
        }
        Ok(_) => std::fs::read(&path).map_err(Error::io(format!("reading {}", path.display())))?,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()))(e)),
    };
    let head: Head = serde_json::from_slice(&text).map_err(|e| {
        if super::record::is_legacy_line(&text) {
            damaged(log, None, AuditDefect::Legacy)
        } else {
            head_damaged(e.to_string())
        }
    })?;
    if !is_hex_mac(&head.mac) || !is_hex_mac(&head.tag) {
        return Err(head_damaged(
            "its mac or tag is not 64 lowercase hex digits".into(),
        ));
    }
    if head.seq == 0 && head.mac != ZERO_MAC {
        return Err(head_damaged("seq 0 with a mac other than zeros".into()));
    }
    if let Macs::Keyed(key) = macs
        && !mac_matches(key, &[&Head::tagged(head.seq, &head.mac)], &head.tag)
    {
        return Err(damaged(
            log,
            None,
            AuditDefect::HeadForged { seq: head.seq },
        ));
    }
    Ok(Some(head))
}

/// Replaces the head checkpoint of `log` atomically (synced temporary file + rename).
pub(crate) fn write_head(log: &Path, head: &Head) -> Result<(), Error> {
    let path = head_path(log);
    let dir = crate::config::parent_dir(log);
    // Strings and integers only: this cannot fail, and an empty head would lose the anchor.
    let text = serde_json::to_vec(head).expect("the audit head serializes");
    let temp = crate::config::synced_temp_file(dir, &text)?;
    temp.persist(&path)
        .map_err(|e| Error::io(format!("replacing {}", path.display()))(e.error))?;
    Ok(())
}

/// The head checkpoint of the log at `log` as (seq, MAC), its tag checked under `key`;
/// `None` if there is none.
pub fn verified_head(log: &Path, key: &super::AuditKey) -> Result<Option<(u64, String)>, Error> {
    Ok(read_head(log, Macs::Keyed(&key.hmac()))?.map(|h| (h.seq, h.mac)))
}
