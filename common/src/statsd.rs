//! Metrics to a StatsD server, as Swift's `StatsdClient`
//! (`swift/common/statsd_client.py`) sends them: one UDP datagram per
//! metric, `<name>:<value>|<type>[|@<rate>]`, named
//! `[<log_statsd_metric_prefix>.]<tail prefix>.<metric>` where the tail
//! prefix is the server's or daemon's log name (`proxy-server`,
//! `object-server`, `object-replicator`, ...).
//!
//! The options, read from a server's or daemon's section (which inherits
//! `[DEFAULT]`), with Swift's defaults:
//!
//! ```text
//! log_statsd_host =                        (unset: no metrics)
//! log_statsd_port = 8125
//! log_statsd_metric_prefix =               (empty)
//! log_statsd_default_sample_rate = 1.0
//! log_statsd_sample_rate_factor = 1.0
//! ```
//!
//! A metric is sent on a non-blocking UDP socket connected once, when the
//! client is built: a full socket buffer or an unreachable collector loses
//! the metric and never makes a request wait. Unlike Swift, the host name is
//! resolved once at start-up rather than at every send, because a name
//! lookup blocks; a host that cannot be resolved then is logged and the
//! client sends nothing.
//!
//! Why our own module rather than a crate such as `cadence`: what Swift
//! sends is six lines of formatting (counters and timers, with Swift's
//! sampling rule: `default_sample_rate * sample_rate_factor`, the
//! datagram dropped at random below 1 and tagged `|@rate`), and the exact
//! wire text, prefix rules and float formatting must match Swift's so that
//! existing dashboards keep working. `cadence` brings its own sinks,
//! builder and `crossbeam-channel` for buffering we do not want (Swift
//! sends each metric at once), and would still need the sampling and the
//! option parsing written here.

use crate::config::{ConfigError, Section};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

/// Swift's default `log_statsd_port`.
pub const DEFAULT_PORT: u16 = 8125;

/// A StatsD client with its metric-name prefix; cheap to clone (the socket
/// is shared). Build it with [`StatsdClient::from_section`].
#[derive(Clone)]
pub struct StatsdClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` when the host could not be resolved or no socket opened.
    socket: Option<UdpSocket>,
    target: String,
    /// `base.tail.`, or `tail.`, or empty.
    prefix: String,
    default_sample_rate: f64,
    sample_rate_factor: f64,
}

impl std::fmt::Debug for StatsdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsdClient")
            .field("target", &self.inner.target)
            .field("prefix", &self.inner.prefix)
            .field("default_sample_rate", &self.inner.default_sample_rate)
            .field("sample_rate_factor", &self.inner.sample_rate_factor)
            .finish()
    }
}

impl StatsdClient {
    /// The client a section's `log_statsd_*` options describe, naming its
    /// metrics `[<log_statsd_metric_prefix>.]<tail_prefix>.<metric>`;
    /// `None` when `log_statsd_host` is unset or empty.
    pub fn from_section(section: &Section, tail_prefix: &str) -> Result<Option<StatsdClient>, ConfigError> {
        Self::from_section_preferring(section, "", tail_prefix)
    }

    /// As [`from_section`](Self::from_section), but `<prefix>log_statsd_*`
    /// wins over `log_statsd_*` when set and not empty: proxy_logging reads
    /// `access_log_statsd_host` and friends this way.
    pub fn from_section_preferring(section: &Section, prefix: &str, tail_prefix: &str) -> Result<Option<StatsdClient>, ConfigError> {
        // Swift: `conf.get('access_' + key, conf.get(key))`, kept only when
        // not empty.
        let key = |name: &str| -> String {
            let preferred = format!("{prefix}{name}");
            if !prefix.is_empty() && section.get(&preferred).is_some_and(|v| !v.is_empty()) {
                preferred
            } else {
                name.to_string()
            }
        };
        let host = section.get_str(&key("log_statsd_host"), "")?;
        if host.is_empty() {
            return Ok(None);
        }
        let port_key = key("log_statsd_port");
        let port = section.get_u64(&port_key, u64::from(DEFAULT_PORT))?;
        let port = u16::try_from(port).map_err(|_| section.value_error(&port_key, &port.to_string(), "a UDP port"))?;
        let rate = |name: &str| -> Result<f64, ConfigError> {
            let k = key(name);
            let v = section.get_f64(&k, 1.0)?;
            if v < 0.0 {
                return Err(section.value_error(&k, &v.to_string(), "a rate, 0 or more"));
            }
            Ok(v)
        };
        let default_sample_rate = rate("log_statsd_default_sample_rate")?;
        let sample_rate_factor = rate("log_statsd_sample_rate_factor")?;
        let base_prefix = section.get_str(&key("log_statsd_metric_prefix"), "")?;
        Ok(Some(StatsdClient::new(&host, port, &base_prefix, tail_prefix, default_sample_rate, sample_rate_factor)))
    }

    /// A client sending to `host:port`. The prefix is made of the parts
    /// that are not empty, each followed by `.` (Swift's `_set_prefix`).
    pub fn new(host: &str, port: u16, base_prefix: &str, tail_prefix: &str, default_sample_rate: f64, sample_rate_factor: f64) -> Self {
        let prefix: String = [base_prefix, tail_prefix].iter().filter(|p| !p.is_empty()).map(|p| format!("{p}.")).collect();
        // An IPv6 literal may be written bare (`::1`) or bracketed.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let target = if bare.contains(':') { format!("[{bare}]:{port}") } else { format!("{bare}:{port}") };
        let socket = match connect(&target) {
            Ok(s) => Some(s),
            Err(e) => {
                crate::log::warning(&format!("Cannot send StatsD metrics to {target}: {e}"));
                None
            }
        };
        StatsdClient { inner: Arc::new(Inner { socket, target, prefix, default_sample_rate, sample_rate_factor }) }
    }

    /// The prefix every metric name gets (`proxy-server.`, ...).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Adds `value` to counter `metric` (`|c`).
    pub fn update_stats(&self, metric: &str, value: i64) {
        self.send(metric, &value.to_string(), "c", None);
    }

    /// Adds each count to its counter; counts of 0 send nothing, as Swift,
    /// which increments a counter only when its event happens.
    pub fn update_counts(&self, counts: &[(&str, u64)]) {
        for (metric, n) in counts {
            if *n > 0 {
                self.update_stats(metric, i64::try_from(*n).unwrap_or(i64::MAX));
            }
        }
    }

    /// Adds 1 to counter `metric`.
    pub fn increment(&self, metric: &str) {
        self.update_stats(metric, 1);
    }

    /// Takes 1 from counter `metric`.
    pub fn decrement(&self, metric: &str) {
        self.update_stats(metric, -1);
    }

    /// A timer of `millis` milliseconds, rounded to four decimals (`|ms`).
    pub fn timing(&self, metric: &str, millis: f64) {
        self.timing_at(metric, millis, None);
    }

    /// A timer sent at `sample_rate` (times the factor) instead of the
    /// default rate, as Swift's `sample_rate=` argument.
    pub fn timing_sampled(&self, metric: &str, millis: f64, sample_rate: f64) {
        self.timing_at(metric, millis, Some(sample_rate));
    }

    fn timing_at(&self, metric: &str, millis: f64, sample_rate: Option<f64>) {
        self.send(metric, &python_float((millis * 10_000.0).round() / 10_000.0), "ms", sample_rate);
    }

    /// Swift's `timing_stats` of the storage servers' verbs:
    /// `<VERB>.timing` for an answer that is not the server's fault (any
    /// status below 500), `<VERB>.errors.timing` for one that is (507 for
    /// an unmounted drive, 500). `sample_rate` is the verb's own (Swift
    /// samples `HEAD` and `REPLICATE` less), `None` the default.
    pub fn verb_timing(&self, verb: &str, status: u16, start: Instant, sample_rate: Option<f64>) {
        let millis = start.elapsed().as_secs_f64() * 1000.0;
        if status >= 500 {
            self.timing_at(&format!("{verb}.errors.timing"), millis, sample_rate);
        } else {
            self.timing_at(&format!("{verb}.timing"), millis, sample_rate);
        }
    }

    /// Swift's `@timing_stats` around a storage server's request: runs
    /// `handle` and times it as `<VERB>.timing` (or `.errors.timing`) when
    /// `rates` lists the verb, with its sample rate (`None`: the default).
    pub async fn time_verb(
        statsd: Option<&StatsdClient>,
        method: &http::Method,
        rates: &[(&str, Option<f64>)],
        handle: impl std::future::Future<Output = http::Response<crate::http::Body>>,
    ) -> http::Response<crate::http::Body> {
        let Some(statsd) = statsd else { return handle.await };
        let started = Instant::now();
        let resp = handle.await;
        if let Some((verb, rate)) = rates.iter().find(|(v, _)| *v == method.as_str()) {
            statsd.verb_timing(verb, resp.status().as_u16(), started, *rate);
        }
        resp
    }

    /// A timer of the milliseconds since `start`.
    pub fn timing_since(&self, metric: &str, start: Instant) {
        self.timing(metric, start.elapsed().as_secs_f64() * 1000.0);
    }

    /// Swift's `transfer_rate`: milliseconds per thousand bytes, as a
    /// timer; nothing when no byte moved.
    pub fn transfer_rate(&self, metric: &str, elapsed_secs: f64, bytes: u64) {
        if bytes > 0 {
            self.timing(metric, elapsed_secs * 1000.0 / bytes as f64 * 1000.0);
        }
    }

    /// Swift's `_send`: the sample rate (the default unless given) times
    /// the factor; below 1 the metric is sent with that probability and
    /// tagged with the rate.
    fn send(&self, metric: &str, value: &str, kind: &str, sample_rate: Option<f64>) {
        let Some(socket) = &self.inner.socket else { return };
        let rate = sample_rate.unwrap_or(self.inner.default_sample_rate) * self.inner.sample_rate_factor;
        if rate < 1.0 && rand::random::<f64>() >= rate {
            return;
        }
        let line = format_line(&self.inner.prefix, metric, value, kind, rate);
        // Non-blocking: a full buffer (WouldBlock) or a refused port (the
        // ICMP error of an earlier datagram) loses this metric, nothing more.
        let _ = socket.send(line.as_bytes());
    }
}

/// The datagram Swift's `_build_line_parts` makes.
fn format_line(prefix: &str, metric: &str, value: &str, kind: &str, rate: f64) -> String {
    if rate < 1.0 {
        format!("{prefix}{metric}:{value}|{kind}|@{}", python_float(rate))
    } else {
        format!("{prefix}{metric}:{value}|{kind}")
    }
}

/// A float as Python's `str()` writes it for the values metrics take:
/// shortest round-trip digits, and `.0` on whole numbers (`5.0`, not `5`).
fn python_float(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

/// A non-blocking UDP socket connected to `target` (resolved now).
fn connect(target: &str) -> std::io::Result<UdpSocket> {
    let addr: SocketAddr = target
        .to_socket_addrs()?
        // Swift tries IPv4 first, then IPv6.
        .min_by_key(|a| a.is_ipv6())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    let local: SocketAddr = if addr.is_ipv6() { "[::]:0".parse() } else { "0.0.0.0:0".parse() }
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let socket = UdpSocket::bind(local)?;
    socket.connect(addr)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn receiver() -> (UdpSocket, u16) {
        let r = UdpSocket::bind("127.0.0.1:0").unwrap();
        r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = r.local_addr().unwrap().port();
        (r, port)
    }

    fn recv(r: &UdpSocket) -> String {
        let mut buf = [0u8; 2048];
        let n = r.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn section(text: &str) -> Section {
        crate::config::ConfigFile::parse(text, "test.conf").unwrap().section("app:object-server").unwrap()
    }

    #[test]
    fn wire_format_of_counters_and_timers() {
        let (r, port) = receiver();
        let c = StatsdClient::new("127.0.0.1", port, "", "object-server", 1.0, 1.0);
        c.increment("async_pendings");
        assert_eq!(recv(&r), "object-server.async_pendings:1|c");
        c.decrement("x");
        assert_eq!(recv(&r), "object-server.x:-1|c");
        c.update_stats("suffix.hashes", 12);
        assert_eq!(recv(&r), "object-server.suffix.hashes:12|c");
        c.timing("PUT.timing", 12.345678);
        assert_eq!(recv(&r), "object-server.PUT.timing:12.3457|ms");
        c.timing("GET.timing", 5.0);
        assert_eq!(recv(&r), "object-server.GET.timing:5.0|ms");
        // 2 seconds for 4000 bytes: 500 ms per thousand bytes.
        c.transfer_rate("PUT.sda.timing", 2.0, 4000);
        c.transfer_rate("PUT.sdb.timing", 2.0, 0);
        c.increment("last");
        assert_eq!(recv(&r), "object-server.PUT.sda.timing:500.0|ms");
        assert_eq!(recv(&r), "object-server.last:1|c", "nothing for zero bytes");
        c.timing_sampled("HEAD.timing", 0.5, 1.0);
        assert!(recv(&r).starts_with("object-server.HEAD.timing:"));
        c.verb_timing("PUT", 201, Instant::now(), None);
        c.verb_timing("PUT", 404, Instant::now(), None);
        c.verb_timing("PUT", 507, Instant::now(), None);
        let names: Vec<String> = (0..3).map(|_| recv(&r).split(':').next().unwrap().to_string()).collect();
        assert_eq!(names, ["object-server.PUT.timing", "object-server.PUT.timing", "object-server.PUT.errors.timing"]);
    }

    #[test]
    fn options_prefix_and_sample_rate() {
        let (r, port) = receiver();
        let s = section(&format!(
            "[DEFAULT]\nlog_statsd_host = 127.0.0.1\nlog_statsd_port = {port}\nlog_statsd_metric_prefix = cluster1\n\
             [app:object-server]\nlog_statsd_default_sample_rate = 1.0\nlog_statsd_sample_rate_factor = 0.5\n"
        ));
        let c = StatsdClient::from_section(&s, "object-server").unwrap().unwrap();
        assert_eq!(c.prefix(), "cluster1.object-server.");
        // At rate 0.5 about half are sent, each tagged with the rate.
        for _ in 0..200 {
            c.increment("errors");
        }
        c.inner.socket.as_ref().unwrap().send(b"end").unwrap();
        let mut sent = 0;
        loop {
            let line = recv(&r);
            if line == "end" {
                break;
            }
            assert_eq!(line, "cluster1.object-server.errors:1|c|@0.5");
            sent += 1;
        }
        assert!((40..=160).contains(&sent), "{sent} of 200 at rate 0.5");
    }

    #[test]
    fn unset_host_means_no_client_and_bad_options_name_the_key() {
        assert!(StatsdClient::from_section(&section("[app:object-server]\n"), "object-server").unwrap().is_none());
        assert!(StatsdClient::from_section(&section("[app:object-server]\nlog_statsd_host =\n"), "x").unwrap().is_none());
        let e = StatsdClient::from_section(&section("[app:object-server]\nlog_statsd_host = h\nlog_statsd_port = 99999\n"), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("log_statsd_port"), "{e}");
        let e = StatsdClient::from_section(&section("[app:object-server]\nlog_statsd_host = h\nlog_statsd_sample_rate_factor = x\n"), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("log_statsd_sample_rate_factor"), "{e}");
    }

    #[test]
    fn access_options_win_for_proxy_logging() {
        let (r, port) = receiver();
        let s = section(&format!(
            "[DEFAULT]\nlog_statsd_host = 192.0.2.1\nlog_statsd_metric_prefix = x\n\
             [app:object-server]\naccess_log_statsd_host = 127.0.0.1\naccess_log_statsd_port = {port}\naccess_log_statsd_metric_prefix =\n"
        ));
        let c = StatsdClient::from_section_preferring(&s, "access_", "proxy-server").unwrap().unwrap();
        // An empty access_ option falls back to the plain one, as in Swift.
        assert_eq!(c.prefix(), "x.proxy-server.");
        c.increment("errors");
        assert_eq!(recv(&r), "x.proxy-server.errors:1|c");
    }

    #[test]
    fn no_collector_listening_never_blocks_or_fails() {
        let (r, port) = receiver();
        drop(r);
        let c = StatsdClient::new("127.0.0.1", port, "", "proxy-server", 1.0, 1.0);
        // The refusals come back as errors on later sends; all are ignored.
        for _ in 0..1000 {
            c.timing("object.GET.200.timing", 1.0);
        }
    }

    #[test]
    fn python_floats() {
        assert_eq!(python_float(0.5), "0.5");
        assert_eq!(python_float(3.0), "3.0");
        assert_eq!(python_float(0.1234), "0.1234");
        assert_eq!(format_line("p.", "m", "1", "c", 0.25), "p.m:1|c|@0.25");
    }
}
