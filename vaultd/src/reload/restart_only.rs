//! The settings a reload cannot change: they are built into the listener, the vault, the
//! audit log or the server stack when the daemon starts. A reload that changes one is
//! refused whole, naming each.

use crate::config::Config;

/// The restart-only settings that differ between `running` and `new`, by their names in the
/// configuration file, in the file's order.
pub fn restart_only_changes(running: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (running, new);
    let (la, lb) = (&a.limits, &b.limits);
    let (aa, ab) = (&a.audit, &b.audit);
    [
        ("listen", a.listen != b.listen),
        ("vault_dir", a.vault_dir != b.vault_dir),
        // The effective paths: an empty setting stands for a path under vault_dir.
        ("audit_log", a.audit_log_path() != b.audit_log_path()),
        ("kek", a.kek != b.kek),
        // The logger is installed once, and the ops listener bound once.
        ("log_format", a.log_format != b.log_format),
        ("metrics_listen", a.metrics_listen != b.metrics_listen),
        // The revocation list is watched where it was found at start.
        ("tls.dir", a.tls_dir() != b.tls_dir()),
        (
            "limits.max_message_bytes",
            la.max_message_bytes != lb.max_message_bytes,
        ),
        (
            "limits.max_concurrent_requests",
            la.max_concurrent_requests != lb.max_concurrent_requests,
        ),
        (
            "limits.request_timeout_ms",
            la.request_timeout_ms != lb.request_timeout_ms,
        ),
        ("limits.kek_threads", la.kek_threads != lb.kek_threads),
        (
            "limits.cache_ttl_secs",
            la.cache_ttl_secs != lb.cache_ttl_secs,
        ),
        (
            "hardening.mlockall",
            a.hardening.mlockall != b.hardening.mlockall,
        ),
        (
            "audit.checkpoint_file",
            aa.checkpoint_file != ab.checkpoint_file,
        ),
        ("audit.syslog", aa.syslog != ab.syslog),
        ("audit.syslog_socket", aa.syslog_socket != ab.syslog_socket),
        (
            "audit.checkpoint_interval_secs",
            aa.checkpoint_interval_secs != ab.checkpoint_interval_secs,
        ),
        (
            "audit.max_segment_bytes",
            aa.max_segment_bytes != ab.max_segment_bytes,
        ),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

/// The refusal of a reload that changes `names` (not empty).
pub fn refusal(names: &[&str]) -> String {
    let them = if names.len() == 1 { "it" } else { "them" };
    format!(
        "{} cannot change while vaultd runs; restart vaultd to change {them}, or put the \
         running value back",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::AclRule;

    #[test]
    fn reloadable_changes_pass_and_restart_only_ones_are_named() {
        let running = Config::default();
        let mut new = running.clone();
        new.acl = vec![AclRule::allow_all("admin")];
        new.limits.rate_per_second = 7;
        new.limits.burst = 9;
        new.limits.max_secret_bytes = 1024;
        new.limits.handshake_timeout_ms = 500;
        assert_eq!(restart_only_changes(&running, &new), Vec::<&str>::new());

        new.listen = "127.0.0.1:9999".parse().expect("an address");
        new.vault_dir = PathBuf::from("/elsewhere");
        new.limits.request_timeout_ms += 1;
        let changed = restart_only_changes(&running, &new);
        // vault_dir moves the default audit log and TLS directory with it.
        assert_eq!(
            changed,
            [
                "listen",
                "vault_dir",
                "audit_log",
                "tls.dir",
                "limits.request_timeout_ms"
            ]
        );
        let text = refusal(&changed);
        assert!(text.starts_with("listen, vault_dir, audit_log"), "{text}");
        assert!(text.contains("restart vaultd"), "{text}");
    }

    #[test]
    fn an_explicit_path_equal_to_the_default_is_no_change() {
        let running = Config::default();
        let mut new = running.clone();
        new.audit_log = running.audit_log_path();
        new.tls.dir = running.tls_dir();
        assert_eq!(restart_only_changes(&running, &new), Vec::<&str>::new());
        new.kek = vec!["file:/k".into()];
        new.log_format = crate::logger::LogFormat::Json;
        new.metrics_listen = Some("127.0.0.1:9464".parse().expect("an address"));
        new.audit.syslog = true;
        new.audit.max_segment_bytes = 1 << 20;
        assert_eq!(
            restart_only_changes(&running, &new),
            [
                "kek",
                "log_format",
                "metrics_listen",
                "audit.syslog",
                "audit.max_segment_bytes"
            ]
        );
        assert!(refusal(&["kek"]).starts_with("kek cannot change while vaultd runs"));
    }
}
