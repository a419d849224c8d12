//! The daemon's plain-HTTP listener (`metrics_listen`) as a scraper or a probe sees it: one
//! request per connection, read to the end (the server closes it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::Daemon;

/// Where the daemon serves `/metrics`, from its `vaultd metrics on http://ADDR` line.
pub fn metrics_addr(daemon: &Daemon) -> SocketAddr {
    daemon
        .printed
        .iter()
        .find_map(|line| line.strip_prefix("vaultd metrics on http://"))
        .unwrap_or_else(|| panic!("no metrics line in {:?}", daemon.printed))
        .parse()
        .expect("the metrics address")
}

/// `GET path` on `addr`: the status code and the body.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_owned())
}

/// The body of `/metrics` (which must answer 200).
pub fn scrape(addr: SocketAddr) -> String {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.ends_with("# EOF\n"),
        "an incomplete exposition: {body}"
    );
    body
}

/// The value of the sample `series` (a name with its labels as printed, such as
/// `vaultd_requests_total{method="get",code="OK"}`), or `None` if it is absent.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split(' ').next()?.parse().ok()
    })
}

/// Polls `GET path` every 20 ms until its status is `want` (at most 10 s); the last body.
pub fn until_status(addr: SocketAddr, path: &str, want: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(addr, path);
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} still answers {status} ({body:?}), not {want}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
