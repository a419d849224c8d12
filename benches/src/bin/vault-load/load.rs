//! One load phase: N clients, each on its own mutual-TLS connection, running an operation
//! mix back to back for a warm-up and then for a measured window.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::v1 as pb;
use proto::v1::vault_service_client::VaultServiceClient;
use tokio::sync::Barrier;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// The operations a mix is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// KV Get of an existing key.
    Get,
    /// KV Put (a new version of the client's own key).
    Put,
    /// Transit Seal of `value_bytes`.
    Seal,
    /// Transit Open of an envelope sealed in setup.
    Open,
}

impl Op {
    /// Every operation, in table order.
    pub const ALL: [Op; 4] = [Op::Get, Op::Put, Op::Seal, Op::Open];

    /// The name used in `--mix` and the report.
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put => "put",
            Op::Seal => "seal",
            Op::Open => "open",
        }
    }
}

/// Weighted operations, e.g. `get=70,put=10,seal=10,open=10`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix(pub Vec<(Op, u32)>);

impl Mix {
    /// Parses `op=weight,...`.
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut parts = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected op=weight"))?;
            let op = Op::ALL
                .into_iter()
                .find(|op| op.name() == name.trim())
                .ok_or_else(|| format!("{name:?}: unknown operation (get, put, seal, open)"))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|e| format!("{part:?}: weight: {e}"))?;
            if weight > 0 {
                parts.push((op, weight));
            }
        }
        if parts.is_empty() {
            return Err("the mix has no operation with a weight above 0".into());
        }
        Ok(Mix(parts))
    }

    /// A mix of one operation.
    pub fn only(op: Op) -> Mix {
        Mix(vec![(op, 1)])
    }

    /// Whether `op` is in the mix.
    pub fn has(&self, op: Op) -> bool {
        self.0.iter().any(|(o, _)| *o == op)
    }

    fn pick(&self, roll: u64) -> Op {
        let total: u64 = self.0.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut at = roll % total;
        for (op, weight) in &self.0 {
            if at < u64::from(*weight) {
                return *op;
            }
            at -= u64::from(*weight);
        }
        self.0[0].0
    }

    /// `get=70,put=10`, for the report.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(op, w)| format!("{}={w}", op.name()))
            .collect();
        parts.join(",")
    }
}

/// Where to connect and as whom.
#[derive(Debug, Clone)]
pub struct Target {
    /// `https://HOST:PORT`, one or more (replicas of one vault): client `i` connects to the
    /// `i mod n`th.
    pub addrs: Vec<String>,
    /// CA certificate (PEM).
    pub ca: PathBuf,
    /// Client certificate (PEM).
    pub cert: PathBuf,
    /// Client key (PEM).
    pub key: PathBuf,
}

impl Target {
    /// A new connection (its own channel) for client `i`, to the `i mod n`th address.
    pub async fn connect(&self, i: usize) -> Result<VaultServiceClient<Channel>, String> {
        let addr = &self.addrs[i % self.addrs.len()];
        let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&self.ca)?))
            .identity(Identity::from_pem(read(&self.cert)?, read(&self.key)?));
        let channel = Endpoint::from_shared(addr.clone())
            .map_err(|e| format!("bad address {addr}: {e}"))?
            .tls_config(tls)
            .map_err(|e| format!("TLS settings: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e:?}"))?;
        Ok(VaultServiceClient::new(channel)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20))
    }
}

/// The scope every key lives in.
pub const SCOPE: &str = "global";
/// The transit context.
pub const CONTEXT: &str = "vault-load";
/// Keys shared by all clients (a quarter of the gets go to them).
pub const SHARED_KEYS: usize = 4;

/// The key of client `i`.
pub fn own_key(i: usize) -> String {
    format!("load-c{i}")
}

/// A shared key.
pub fn shared_key(i: usize) -> String {
    format!("load-shared-{i}")
}

/// The test value.
pub fn value(bytes: usize) -> Vec<u8> {
    (0..bytes).map(|i| (i % 251) as u8).collect()
}

/// The value of a put during the load: the test value with `tag` (random) over its first
/// bytes, so that the check after the load can tell which put a key holds.
pub fn put_value(bytes: usize, tag: u64) -> Vec<u8> {
    let mut value = value(bytes);
    let n = bytes.min(8);
    value[..n].copy_from_slice(&tag.to_le_bytes()[..n]);
    value
}

/// What a phase needs besides the target.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Concurrent clients (connections).
    pub clients: usize,
    /// Warm-up before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub window: Duration,
    /// The mix.
    pub mix: Mix,
    /// Value (plaintext) size.
    pub value_bytes: usize,
    /// An envelope to Open (sealed in setup).
    pub envelope: Vec<u8>,
    /// Gets read random keys among this many preloaded secrets
    /// ([`benches::preloaded_key`]) instead of the client's own and the shared keys.
    pub keys: Option<usize>,
}

/// Per-operation results of a phase.
#[derive(Debug, Default, Clone)]
pub struct OpStats {
    /// Latencies (ns) of the successful calls completed in the window, sorted.
    pub latencies: Vec<u64>,
    /// Failed calls in the window and warm-up, by status code.
    pub errors: BTreeMap<String, u64>,
    /// One message per failing status code.
    pub samples: BTreeMap<String, String>,
}

impl OpStats {
    fn merge(&mut self, other: OpStats) {
        self.latencies.extend(other.latencies);
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        for (code, message) in other.samples {
            self.samples.entry(code).or_insert(message);
        }
    }

    /// The `q` quantile in microseconds (0 when nothing was recorded).
    pub fn quantile_us(&self, q: f64) -> f64 {
        let n = self.latencies.len();
        if n == 0 {
            return 0.0;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.latencies[rank - 1] as f64 / 1000.0
    }

    /// Errors of every code.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The puts one client made to its own key, warm-up included.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    /// Puts acknowledged.
    pub acknowledged: u64,
    /// Puts that failed: each may or may not have been applied.
    pub failed: u64,
    /// The highest version acknowledged and the tag of the value put there.
    pub last: Option<(u64, u64)>,
}

impl Written {
    /// What is wrong with the versions acknowledged, if anything, the key having been at
    /// version `first` before: each acknowledged put made a version of its own, and a failed
    /// one may have made one.
    fn miscounted(&self, first: u64) -> Option<String> {
        let last = self.last.map_or(first, |(v, _)| v);
        let made = first + self.acknowledged;
        (last < made || last > made + self.failed).then(|| {
            format!(
                "{} puts acknowledged after version {first}, the last at version {last}",
                self.acknowledged
            )
        })
    }

    /// What is wrong with a read of the key that found `version`, holding the last
    /// acknowledged put's value or not, if anything: it must be the last acknowledged
    /// version with that value, or (a failed put having been applied) a later one within
    /// the failures.
    fn wrong_read(&self, version: u64, holds_last_value: bool) -> Option<String> {
        let last = self.last.map_or(0, |(v, _)| v);
        match version {
            v if v == last && holds_last_value => None,
            v if v == last => Some(format!("version {last} holds another value")),
            v if v > last && v <= last + self.failed => None,
            v => Some(format!(
                "version {v}, the last acknowledged is {last} ({} failed puts)",
                self.failed
            )),
        }
    }

    fn merge(&mut self, other: &Written) {
        self.acknowledged += other.acknowledged;
        self.failed += other.failed;
        if other.last > self.last {
            self.last = other.last;
        }
    }
}

/// A phase's results.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    /// Per operation.
    pub ops: BTreeMap<Op, OpStats>,
    /// The measured window.
    pub window: Duration,
    /// Each client's puts, by client number.
    pub writes: BTreeMap<usize, Written>,
}

impl PhaseResult {
    /// Successful calls of `op` per second in the window.
    pub fn ops_per_sec(&self, op: Op) -> f64 {
        self.ops.get(&op).map_or(0.0, |s| {
            s.latencies.len() as f64 / self.window.as_secs_f64()
        })
    }

    /// Errors of every operation.
    pub fn error_count(&self) -> u64 {
        self.ops.values().map(OpStats::error_count).sum()
    }

    /// Adds another slice of the same phase (windows add up).
    pub fn merge(&mut self, other: PhaseResult) {
        self.window += other.window;
        merge_writes(&mut self.writes, &other.writes);
        for (op, s) in other.ops {
            let mine = self.ops.entry(op).or_default();
            mine.merge(s);
            mine.latencies.sort_unstable();
        }
    }
}

/// Adds `other`'s puts to `into`'s.
pub fn merge_writes(into: &mut BTreeMap<usize, Written>, other: &BTreeMap<usize, Written>) {
    for (client, w) in other {
        into.entry(*client).or_default().merge(w);
    }
}

/// What setup leaves for the load.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The envelope the clients open (empty unless asked for).
    pub envelope: Vec<u8>,
    /// The version of each client's own key after setup, by client number.
    pub baseline: Vec<u64>,
}

/// Puts every key the clients read (through the first address) and, when `seal`, seals (and
/// checks) the envelope they open.
pub async fn setup(
    target: &Target,
    clients: usize,
    value_bytes: usize,
    seal: bool,
) -> Result<Setup, String> {
    let mut api = target.connect(0).await?;
    let value = value(value_bytes);
    let keys = (0..clients)
        .map(own_key)
        .chain((0..SHARED_KEYS).map(shared_key));
    let mut baseline = Vec::with_capacity(clients);
    for key in keys {
        let version = api
            .put(pb::PutRequest {
                scope: SCOPE.into(),
                key: key.clone(),
                value: value.clone(),
                expected_version: None,
            })
            .await
            .map_err(|s| format!("setup: put {SCOPE}/{key}: {:?}: {}", s.code(), s.message()))?
            .into_inner()
            .version;
        if baseline.len() < clients {
            baseline.push(version);
        }
    }
    if !seal {
        return Ok(Setup {
            envelope: Vec::new(),
            baseline,
        });
    }
    let sealed = api
        .seal(pb::SealRequest {
            context: CONTEXT.into(),
            plaintext: value.clone(),
        })
        .await
        .map_err(|s| format!("setup: seal: {:?}: {}", s.code(), s.message()))?
        .into_inner()
        .envelope;
    let opened = api
        .open(pb::OpenRequest {
            context: CONTEXT.into(),
            envelope: sealed.clone(),
        })
        .await
        .map_err(|s| format!("setup: open: {:?}: {}", s.code(), s.message()))?
        .into_inner()
        .plaintext;
    if opened != value {
        return Err("setup: open did not return the sealed value".into());
    }
    Ok(Setup {
        envelope: sealed,
        baseline,
    })
}

/// Runs one phase against `target`.
pub async fn run(target: &Target, plan: &Plan) -> Result<PhaseResult, String> {
    // Connect every client first: handshakes are not part of the measurement.
    let mut connections = Vec::with_capacity(plan.clients);
    for i in 0..plan.clients {
        connections.push(target.connect(i).await?);
    }
    let barrier = Arc::new(Barrier::new(plan.clients));
    let plan = Arc::new(plan.clone());
    let mut tasks = Vec::with_capacity(plan.clients);
    for (i, api) in connections.into_iter().enumerate() {
        let barrier = Arc::clone(&barrier);
        let plan = Arc::clone(&plan);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            client(i, api, &plan).await
        }));
    }
    let mut ops: BTreeMap<Op, OpStats> = plan
        .mix
        .0
        .iter()
        .map(|(op, _)| (*op, OpStats::default()))
        .collect();
    let mut writes = BTreeMap::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let (stats, written) = task
            .await
            .map_err(|e| format!("a client task failed: {e}"))?;
        for (op, s) in stats {
            ops.entry(op).or_default().merge(s);
        }
        if written != Written::default() {
            writes.insert(i, written);
        }
    }
    for s in ops.values_mut() {
        s.latencies.sort_unstable();
    }
    Ok(PhaseResult {
        ops,
        window: plan.window,
        writes,
    })
}

/// One client: calls back to back until the window ends. A call counts when it starts and
/// ends inside the window; errors count in the warm-up too, and so do the puts it made.
async fn client(
    i: usize,
    mut api: VaultServiceClient<Channel>,
    plan: &Plan,
) -> (BTreeMap<Op, OpStats>, Written) {
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ ((i as u64 + 1) << 17);
    let mut next = move || {
        // xorshift64*
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let value = value(plan.value_bytes);
    let own = own_key(i);
    let shared: Vec<String> = (0..SHARED_KEYS).map(shared_key).collect();
    let mut stats: BTreeMap<Op, OpStats> = BTreeMap::new();
    let mut written = Written::default();
    let begin = Instant::now();
    let measure_from = begin + plan.warmup;
    let end = measure_from + plan.window;
    loop {
        let started = Instant::now();
        if started >= end {
            break;
        }
        let roll = next();
        let op = plan.mix.pick(roll);
        let result = match op {
            Op::Get => {
                let key = if let Some(n) = plan.keys {
                    benches::preloaded_key((next() % n as u64) as usize)
                } else if (roll >> 32) % 4 == 0 {
                    shared[(roll >> 40) as usize % SHARED_KEYS].clone()
                } else {
                    own.clone()
                };
                api.get(pb::GetRequest {
                    scope: SCOPE.into(),
                    key,
                    version: None,
                })
                .await
                .map(|r| r.into_inner().value.len() == plan.value_bytes)
            }
            Op::Put => {
                let tag = next();
                let result = api
                    .put(pb::PutRequest {
                        scope: SCOPE.into(),
                        key: own.clone(),
                        value: put_value(plan.value_bytes, tag),
                        expected_version: None,
                    })
                    .await;
                match &result {
                    Ok(reply) => {
                        written.acknowledged += 1;
                        written.last = written.last.max(Some((reply.get_ref().version, tag)));
                    }
                    Err(_) => written.failed += 1,
                }
                result.map(|_| true)
            }
            Op::Seal => api
                .seal(pb::SealRequest {
                    context: CONTEXT.into(),
                    plaintext: value.clone(),
                })
                .await
                .map(|r| !r.into_inner().envelope.is_empty()),
            Op::Open => api
                .open(pb::OpenRequest {
                    context: CONTEXT.into(),
                    envelope: plan.envelope.clone(),
                })
                .await
                .map(|r| r.into_inner().plaintext.len() == plan.value_bytes),
        };
        let done = Instant::now();
        let s = stats.entry(op).or_default();
        match result {
            Ok(true) => {
                if started >= measure_from && done <= end {
                    s.latencies.push((done - started).as_nanos() as u64);
                }
            }
            Ok(false) => {
                let code = "WRONG_REPLY".to_owned();
                *s.errors.entry(code.clone()).or_default() += 1;
                s.samples
                    .entry(code)
                    .or_insert_with(|| "the reply has the wrong size".into());
            }
            Err(status) => {
                let code = format!("{:?}", status.code());
                *s.errors.entry(code.clone()).or_default() += 1;
                s.samples
                    .entry(code)
                    .or_insert_with(|| status.message().to_owned());
            }
        }
    }
    (stats, written)
}

/// The check after the load that no acknowledged put was lost, on one daemon.
#[derive(Debug, Clone, Default)]
pub struct CheckResult {
    /// Keys written.
    pub keys: u64,
    /// Keys that held their last acknowledged put on every address.
    pub keys_read_back: u64,
    /// Puts acknowledged.
    pub acknowledged: u64,
    /// What was wrong, one line per key and address (the first few).
    pub problems: Vec<String>,
}

/// Reads back, from every address of `target`, each key the clients put to, until it holds
/// its last acknowledged put or `patience` runs out (a replica's cache may serve a value a
/// little stale). A key passes when each address returns the last acknowledged version with
/// its value, and that version is the setup's plus the puts acknowledged (each put made one
/// version, none lost); a failed put may have been applied, so with failures a later version
/// within their number passes too.
pub async fn check_writes(
    target: &Target,
    baseline: &[u64],
    writes: &BTreeMap<usize, Written>,
    value_bytes: usize,
    patience: Duration,
) -> Result<CheckResult, String> {
    let mut result = CheckResult::default();
    let mut apis = Vec::new();
    for a in 0..target.addrs.len() {
        apis.push(target.connect(a).await?);
    }
    let deadline = Instant::now() + patience;
    for (&client, w) in writes {
        let Some((_, tag)) = w.last else { continue };
        result.keys += 1;
        result.acknowledged += w.acknowledged;
        let key = own_key(client);
        let first = baseline.get(client).copied().unwrap_or_default();
        let mut problem = w.miscounted(first).map(|wrong| format!("{key}: {wrong}"));
        for (a, api) in apis.iter_mut().enumerate() {
            if problem.is_some() {
                break;
            }
            loop {
                let read = api
                    .get(pb::GetRequest {
                        scope: SCOPE.into(),
                        key: key.clone(),
                        version: None,
                    })
                    .await
                    .map(tonic::Response::into_inner);
                let wrong = match &read {
                    Err(status) => Some(format!("{:?}: {}", status.code(), status.message())),
                    Ok(r) => w.wrong_read(r.version, r.value == put_value(value_bytes, tag)),
                };
                match wrong {
                    None => break,
                    Some(wrong) if Instant::now() >= deadline => {
                        problem = Some(format!("{key} on {}: {wrong}", target.addrs[a]));
                        break;
                    }
                    Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
        match problem {
            None => result.keys_read_back += 1,
            Some(p) if result.problems.len() < 10 => result.problems.push(p),
            Some(_) => {}
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_acknowledged_put_must_read_back() {
        // Setup left the key at version 3; 5 puts were acknowledged, the last at 8.
        let mut w = Written {
            acknowledged: 5,
            failed: 0,
            last: Some((8, 42)),
        };
        assert_eq!(w.miscounted(3), None);
        assert_eq!(w.wrong_read(8, true), None);
        assert!(
            w.wrong_read(8, false).is_some(),
            "another value at the version"
        );
        assert!(w.wrong_read(7, true).is_some(), "a lost put");
        assert!(w.wrong_read(9, true).is_some(), "a version nobody put");
        // Two acknowledgements of one version: one of the puts is not there.
        assert!(w.miscounted(4).is_some());
        // A failed put may have been applied, or not.
        w.failed = 1;
        assert_eq!(w.wrong_read(9, false), None);
        assert_eq!(w.miscounted(2), None);
        assert!(w.miscounted(1).is_some());
    }

    #[test]
    fn rounds_add_up_and_keep_the_highest_version() {
        let mut all = BTreeMap::new();
        let round = |acknowledged, last| {
            BTreeMap::from([(
                0,
                Written {
                    acknowledged,
                    failed: 0,
                    last: Some(last),
                },
            )])
        };
        merge_writes(&mut all, &round(2, (5, 1)));
        merge_writes(&mut all, &round(3, (8, 2)));
        assert_eq!(all[&0].acknowledged, 5);
        assert_eq!(all[&0].last, Some((8, 2)));
        assert_eq!(&put_value(64, 7)[..8], &7u64.to_le_bytes());
        assert_eq!(put_value(4, u64::MAX), vec![0xff; 4]);
    }
}
