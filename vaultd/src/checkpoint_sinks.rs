//! Where the audit log's signed checkpoints go, as configured in `[audit]`: an append-only
//! file (`vault::audit::FileSink`) and the system log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vault::audit::{Checkpoint, CheckpointSink, FileSink};

use crate::config::AuditConfig;

/// The sinks `config` names.
pub fn from_config(config: &AuditConfig) -> Result<Vec<Arc<dyn CheckpointSink>>, vault::Error> {
    let mut sinks: Vec<Arc<dyn CheckpointSink>> = Vec::new();
    if !config.checkpoint_file.as_os_str().is_empty() {
        sinks.push(Arc::new(FileSink::open(&config.checkpoint_file)?));
    }
    if config.syslog {
        let socket =
            (!config.syslog_socket.as_os_str().is_empty()).then(|| config.syslog_socket.clone());
        sinks.push(Arc::new(SyslogSink { socket }));
    }
    Ok(sinks)
}

/// Sends each checkpoint to syslog as one message (facility auth, severity notice, tag
/// `vaultd`): `vault-audit-checkpoint <the checkpoint's JSON line>`. Connects for each
/// checkpoint, so a restarted syslog daemon is found again.
#[derive(Debug)]
pub struct SyslogSink {
    /// The socket; `None` for the system's.
    socket: Option<PathBuf>,
}

impl SyslogSink {
    /// A sink writing to the syslog socket at `socket`, or the system's.
    pub fn new(socket: Option<&Path>) -> Self {
        SyslogSink {
            socket: socket.map(Path::to_path_buf),
        }
    }
}

impl CheckpointSink for SyslogSink {
    fn publish(&self, checkpoint: &Checkpoint) -> Result<(), vault::Error> {
        let formatter = syslog::Formatter3164 {
            facility: syslog::Facility::LOG_AUTH,
            hostname: None,
            process: "vaultd".into(),
            pid: std::process::id(),
        };
        let failed = |e: syslog::Error| {
            vault::Error::Unsupported(format!("sending the checkpoint to syslog: {e}"))
        };
        let mut logger = match &self.socket {
            Some(path) => syslog::unix_custom(formatter, path),
            None => syslog::unix(formatter),
        }
        .map_err(failed)?;
        logger
            .notice(format!("vault-audit-checkpoint {}", checkpoint.to_line()))
            .map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;

    use super::*;

    #[test]
    fn a_checkpoint_reaches_the_syslog_socket_as_one_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("log");
        let syslog = UnixDatagram::bind(&socket).expect("bind a syslog socket");
        let checkpoint = Checkpoint {
            format: vault::audit::CHECKPOINT_FORMAT.into(),
            vault: "0123456789abcdef".into(),
            log_start: "ab".repeat(32),
            seq: 42,
            mac: "cd".repeat(32),
            log_sha256: "ef".repeat(32),
            ts_ms: 1,
            public_key: "01".repeat(32),
            sig: "02".repeat(64),
        };
        SyslogSink::new(Some(&socket))
            .publish(&checkpoint)
            .expect("publish");
        let mut buf = [0u8; 4096];
        let n = syslog.recv(&mut buf).expect("a message");
        let message = String::from_utf8_lossy(&buf[..n]);
        // <facility auth (4) * 8 + notice (5)>
        assert!(message.starts_with("<37>"), "{message}");
        let line = message
            .split_once("vault-audit-checkpoint ")
            .map(|(_, line)| line)
            .expect("the tag");
        let sent: Checkpoint = serde_json::from_str(line).expect("the checkpoint's JSON line");
        assert_eq!(sent, checkpoint);

        drop(syslog);
        let err = SyslogSink::new(Some(&socket))
            .publish(&checkpoint)
            .expect_err("no syslog");
        assert!(err.to_string().contains("syslog"), "{err}");
    }
}
