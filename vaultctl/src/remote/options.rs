//! How long remote mode waits for vaultd, and how often it sends a read again.
#![deny(missing_docs)]

use std::time::Duration;

use clap::Args;

use crate::commands::refs::parse_duration;

/// The client's timeouts and retries (flags, or `VAULTCTL_*` variables).
#[derive(Debug, Clone, Args)]
pub struct ClientOptions {
    /// Remote mode: give up connecting (TCP, TLS handshake, HTTP/2) to vaultd after this
    /// long: `5s`, `500ms` or a number of seconds.
    #[arg(
        long,
        global = true,
        env = "VAULTCTL_CONNECT_TIMEOUT",
        value_name = "DURATION",
        default_value = "5s",
        value_parser = parse_duration
    )]
    pub connect_timeout: Duration,

    /// Remote mode: give up waiting for the answer to one call after this long.
    #[arg(
        long,
        global = true,
        env = "VAULTCTL_REQUEST_TIMEOUT",
        value_name = "DURATION",
        default_value = "30s",
        value_parser = parse_duration
    )]
    pub request_timeout: Duration,

    /// Remote mode: how many times a read (get, list, status, open, audit, kek check)
    /// answered UNAVAILABLE is sent again, after 0.2 s, 0.4 s, ... (at most 2 s); a write is
    /// never sent again.
    #[arg(
        long,
        global = true,
        env = "VAULTCTL_RETRIES",
        value_name = "N",
        default_value_t = 2,
        value_parser = clap::value_parser!(u32).range(0..=10)
    )]
    pub retries: u32,
}

/// The pause before retry number `n` (from 1): 200 ms, doubling, at most 2 s.
pub fn backoff(n: u32) -> Duration {
    let ms = 200u64.saturating_mul(1 << n.saturating_sub(1).min(10));
    Duration::from_millis(ms.min(2000))
}

/// A duration as the flags take it: `5s`, `1500ms`.
pub fn show(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_two_seconds() {
        let pauses: Vec<u64> = (1..=6).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(pauses, [200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(backoff(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn durations_show_as_the_flags_take_them() {
        assert_eq!(show(Duration::from_secs(5)), "5s");
        assert_eq!(show(Duration::from_millis(1500)), "1500ms");
        assert_eq!(
            parse_duration(&show(Duration::from_millis(250))),
            Ok(Duration::from_millis(250))
        );
    }
}
