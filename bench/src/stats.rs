//! What one phase measured: per-worker recorders (no sharing on the hot
//! path), merged once at the end into a [`PhaseReport`].

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Why one request did not succeed. Every attempt ends either as a
/// success or as exactly one of these, so successes + failures = attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Failure {
    /// The server answered with a non-2xx status.
    Status(u16),
    /// No connection could be made (refused, unreachable, DNS).
    Connect,
    /// The connection broke before a complete response arrived.
    Connection,
    /// The response headers arrived but reading the body failed.
    Body,
    /// A GET body whose length differs from the object size we PUT.
    WrongLength,
    /// No complete response within `--timeout`.
    Timeout,
}

impl Failure {
    /// The key used in reports and JSON: the status code (`"503"`) or a
    /// snake_case name for failures without one.
    pub fn label(&self) -> String {
        match self {
            Failure::Status(code) => code.to_string(),
            Failure::Connect => "connect_error".into(),
            Failure::Connection => "connection_error".into(),
            Failure::Body => "body_error".into(),
            Failure::WrongLength => "wrong_length".into(),
            Failure::Timeout => "timeout".into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// One worker's measurements. Latencies go into a vector reserved up front
/// so recording is a store, not an allocation, on the request path.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Latency of each successful request, in microseconds (saturating).
    latencies_us: Vec<u32>,
    failures: BTreeMap<Failure, u64>,
    successes: u64,
    bytes: u64,
    /// Request indices that succeeded, kept only when the phase asks
    /// (the object PUT phase, so later phases know what exists).
    succeeded: Option<Vec<u64>>,
}

impl Recorder {
    /// A recorder with room for `expected` latencies.
    pub fn with_capacity(expected: usize, keep_indices: bool) -> Recorder {
        Recorder {
            latencies_us: Vec::with_capacity(expected),
            succeeded: keep_indices.then(|| Vec::with_capacity(expected)),
            ..Recorder::default()
        }
    }

    /// Records a success: its latency, the payload bytes moved, its index.
    pub fn success(&mut self, latency: Duration, bytes: u64, index: u64) {
        self.latencies_us.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        self.successes += 1;
        self.bytes += bytes;
        if let Some(s) = self.succeeded.as_mut() {
            s.push(index);
        }
    }

    /// Records a failure.
    pub fn failure(&mut self, why: Failure) {
        *self.failures.entry(why).or_insert(0) += 1;
    }
}

/// Latency percentiles of the successful requests of a phase, in
/// milliseconds; `None` when nothing succeeded.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// The figures of one phase, as printed and as emitted in `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// `container_put`, `put`, `get`, `head`, `delete`, `container_delete`.
    pub name: &'static str,
    /// Requests started (and all finished: the phase waits for them).
    pub attempts: u64,
    pub successes: u64,
    /// Sum of `failures`.
    pub failed: u64,
    /// Failures by status code or by kind (`connect_error`, `timeout`...).
    pub failures: BTreeMap<String, u64>,
    /// Wall-clock time of the phase.
    pub seconds: f64,
    /// Successful requests per second.
    pub requests_per_sec: f64,
    /// Object bytes moved by successful requests.
    pub bytes: u64,
    /// `bytes` per second in MB (10^6 bytes).
    pub mb_per_sec: f64,
    pub latency_ms: Latency,
    /// Why the phase did nothing, when it did nothing on purpose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl PhaseReport {
    /// A phase that was not run, and why.
    pub fn skipped(name: &'static str, why: &str) -> PhaseReport {
        PhaseReport {
            name,
            attempts: 0,
            successes: 0,
            failed: 0,
            failures: BTreeMap::new(),
            seconds: 0.0,
            requests_per_sec: 0.0,
            bytes: 0,
            mb_per_sec: 0.0,
            latency_ms: Latency::default(),
            skipped: Some(why.to_string()),
        }
    }
}

/// Merges the workers' recorders of one phase. Returns the report and the
/// sorted indices of successful requests (empty unless they were kept).
pub fn merge(name: &'static str, recorders: Vec<Recorder>, elapsed: Duration) -> (PhaseReport, Vec<u64>) {
    let total: usize = recorders.iter().map(|r| r.latencies_us.len()).sum();
    let mut latencies = Vec::with_capacity(total);
    let mut failures: BTreeMap<Failure, u64> = BTreeMap::new();
    let (mut successes, mut bytes) = (0u64, 0u64);
    let mut succeeded = Vec::new();
    for r in recorders {
        latencies.extend_from_slice(&r.latencies_us);
        for (why, n) in r.failures {
            *failures.entry(why).or_insert(0) += n;
        }
        successes += r.successes;
        bytes += r.bytes;
        if let Some(s) = r.succeeded {
            succeeded.extend(s);
        }
    }
    latencies.sort_unstable();
    succeeded.sort_unstable();
    let failed: u64 = failures.values().sum();
    let seconds = elapsed.as_secs_f64();
    let per_sec = |x: f64| if seconds > 0.0 { x / seconds } else { 0.0 };
    let ms = |p: f64| percentile(&latencies, p).map(|us| us as f64 / 1000.0);
    let report = PhaseReport {
        name,
        attempts: successes + failed,
        successes,
        failed,
        failures: failures.into_iter().map(|(k, v)| (k.label(), v)).collect(),
        seconds,
        requests_per_sec: per_sec(successes as f64),
        bytes,
        mb_per_sec: per_sec(bytes as f64) / 1e6,
        latency_ms: Latency { p50: ms(50.0), p90: ms(90.0), p99: ms(99.0), max: ms(100.0) },
        skipped: None,
    };
    (report, succeeded)
}

/// The nearest-rank percentile `p` (0 < p <= 100) of an ascending slice:
/// the smallest value with at least p% of the values at or below it.
/// `None` for an empty slice.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 90.0), Some(90));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7], 50.0), Some(7));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        // Ten values: p50 is the 5th, p90 the 9th, p99 the 10th.
        let v: Vec<u32> = (10..=100).step_by(10).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 90.0), Some(90));
        assert_eq!(percentile(&v, 99.0), Some(100));
        // p0 (not used, but must not underflow) is the minimum.
        assert_eq!(percentile(&v, 0.0), Some(10));
    }

    #[test]
    fn merged_totals_add_up() {
        let mut a = Recorder::with_capacity(4, true);
        let mut b = Recorder::with_capacity(4, true);
        a.success(Duration::from_millis(3), 100, 5);
        a.failure(Failure::Status(503));
        b.success(Duration::from_millis(1), 100, 2);
        b.failure(Failure::Status(503));
        b.failure(Failure::Connect);
        let (r, ok) = merge("put", vec![a, b], Duration::from_secs(2));
        assert_eq!((r.attempts, r.successes, r.failed), (5, 2, 3));
        assert_eq!(r.failures.get("503"), Some(&2));
        assert_eq!(r.failures.get("connect_error"), Some(&1));
        assert_eq!(ok, vec![2, 5]);
        assert_eq!(r.requests_per_sec, 1.0);
        assert_eq!(r.mb_per_sec, 100e-6);
        assert_eq!(r.latency_ms.p50, Some(1.0));
        assert_eq!(r.latency_ms.max, Some(3.0));
    }
}
