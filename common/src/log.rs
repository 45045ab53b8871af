//! Logging in Swift's manner, on the `log` facade: one line per event,
//! with time, server (`log_name`), level and, inside a request, its
//! transaction id (`(txn: tx...)`), filtered by `log_level`; and the storage
//! servers' access-log line.
//!
//! Where lines go (Swift's options, read by [`LogSettings`]):
//! * standard error, always: in the foreground that is the console, under
//!   systemd the journal, under `swift-saio` the server's log file;
//! * syslog as well, when the config names one: `log_udp_host` (and
//!   `log_udp_port`, 514) over UDP, else `log_address` (a unix socket such
//!   as `/dev/log`), with `log_facility` (`LOG_LOCAL0`). Unlike Swift, an
//!   unset `log_address` does not default to `/dev/log`: under systemd the
//!   journal already has every line from standard error, and two copies of
//!   each would help nobody. A syslog that cannot be reached at start-up is
//!   reported once and standard error carries on alone.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

/// Swift's log levels, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warning = 1,
    Info = 2,
    Debug = 3,
}

impl Level {
    /// Parses `log_level` values (`DEBUG`, `INFO`, `WARNING`/`WARN`, `ERROR`,
    /// `CRITICAL`), case-insensitively.
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_uppercase().as_str() {
            "DEBUG" => Some(Level::Debug),
            "INFO" | "NOTICE" => Some(Level::Info),
            "WARNING" | "WARN" => Some(Level::Warning),
            "ERROR" | "CRITICAL" => Some(Level::Error),
            _ => None,
        }
    }

    fn facade(self) -> log::Level {
        match self {
            Level::Error => log::Level::Error,
            Level::Warning => log::Level::Warn,
            Level::Info => log::Level::Info,
            Level::Debug => log::Level::Debug,
        }
    }

    fn from_facade(level: log::Level) -> Level {
        match level {
            log::Level::Error => Level::Error,
            log::Level::Warn => Level::Warning,
            log::Level::Info => Level::Info,
            log::Level::Debug | log::Level::Trace => Level::Debug,
        }
    }
}

/// Swift's logging options of a section (`[DEFAULT]` inherited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// `log_name`: the name lines carry (the server type by default).
    pub name: String,
    pub level: Level,
    /// `log_facility`, e.g. `LOG_LOCAL0`.
    pub facility: String,
    /// `log_address`: a syslog unix socket, when set.
    pub address: Option<PathBuf>,
    /// `log_udp_host` / `log_udp_port`: syslog over UDP, when set.
    pub udp_host: Option<String>,
    pub udp_port: u16,
    /// `log_headers`: request headers in the storage servers' access lines.
    pub headers: bool,
}

impl LogSettings {
    /// Reads the options of `section`; `default_name` is the server's type.
    pub fn from_section(section: &crate::config::Section, default_name: &str) -> Result<LogSettings, crate::config::ConfigError> {
        let level = section.get_str("log_level", "INFO")?;
        let facility = section.get_str("log_facility", "LOG_LOCAL0")?;
        if facility.parse::<syslog::Facility>().is_err() {
            return Err(section.value_error("log_facility", &facility, "a syslog facility such as LOG_LOCAL0"));
        }
        let port = section.get_u64("log_udp_port", 514)?;
        Ok(LogSettings {
            name: section.get_str("log_name", default_name)?,
            level: Level::parse(&level).ok_or_else(|| section.value_error("log_level", &level, "DEBUG, INFO, WARNING or ERROR"))?,
            facility,
            address: section.get("log_address").filter(|a| !a.trim().is_empty()).map(PathBuf::from),
            udp_host: section.get("log_udp_host").map(str::trim).filter(|h| !h.is_empty()).map(str::to_string),
            udp_port: u16::try_from(port).map_err(|_| section.value_error("log_udp_port", &port.to_string(), "a UDP port"))?,
            headers: section.get_bool("log_headers", false)?,
        })
    }

    /// Standard error only, at `level`.
    pub fn stderr(name: &str, level: Level) -> LogSettings {
        LogSettings {
            name: name.to_string(),
            level,
            facility: "LOG_LOCAL0".into(),
            address: None,
            udp_host: None,
            udp_port: 514,
            headers: false,
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static LOGGER: OnceLock<SwiftLogger> = OnceLock::new();

type Syslog = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

/// The process's logger: standard error, and syslog when configured.
struct SwiftLogger {
    name: String,
    syslog: Option<Mutex<Syslog>>,
}

tokio::task_local! {
    /// The transaction id of the request the current task serves.
    static TRANS_ID: String;
}

/// Runs `fut` with `trans_id` as its transaction id: every line it logs
/// (on its own task) ends with `(txn: <trans_id>)`.
pub async fn with_trans_id<F: std::future::Future>(trans_id: String, fut: F) -> F::Output {
    TRANS_ID.scope(trans_id, fut).await
}

/// The current task's transaction id, if it serves a request.
pub fn trans_id() -> Option<String> {
    TRANS_ID.try_with(|t| t.clone()).ok()
}

/// A line as written to standard error.
fn format_line(name: &str, level: Level, message: &str, txn: Option<&str>) -> String {
    let label = match level {
        Level::Error => "ERROR",
        Level::Warning => "WARNING",
        Level::Info => "INFO",
        Level::Debug => "DEBUG",
    };
    let mut line = format!("{} {name} {label}: {message}", crate::timestamp::Timestamp::now().isoformat());
    if let Some(t) = txn {
        line.push_str(&format!(" (txn: {t})"));
    }
    line
}

impl log::Log for SwiftLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        enabled(Level::from_facade(metadata.level()))
    }

    fn log(&self, record: &log::Record) {
        let level = Level::from_facade(record.level());
        if enabled(level) {
            self.write_line(&self.name, level, &record.args().to_string());
        }
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

impl SwiftLogger {
    /// Writes one line, as `name`, to standard error and syslog.
    fn write_line(&self, name: &str, level: Level, message: &str) {
        let message = message.to_string();
        let txn = trans_id();
        {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{}", format_line(name, level, &message, txn.as_deref()));
        }
        if let Some(syslog) = &self.syslog {
            // Syslog stamps the time and the name itself.
            let text = match &txn {
                Some(t) => format!("{message} (txn: {t})"),
                None => message,
            };
            let mut s = syslog.lock().unwrap_or_else(|e| e.into_inner());
            let _ = match level {
                Level::Error => s.err(text),
                Level::Warning => s.warning(text),
                Level::Info => s.info(text),
                Level::Debug => s.debug(text),
            };
        }
    }
}

/// Connects to the syslog the settings name, if any.
fn connect_syslog(settings: &LogSettings) -> Result<Option<Syslog>, String> {
    let formatter = syslog::Formatter3164 {
        facility: settings.facility.parse().unwrap_or(syslog::Facility::LOG_LOCAL0),
        hostname: None,
        process: settings.name.clone(),
        pid: std::process::id(),
    };
    if let Some(host) = &settings.udp_host {
        let server = format!("{host}:{}", settings.udp_port);
        let local = if host.contains(':') { "[::]:0" } else { "0.0.0.0:0" };
        return syslog::udp(formatter, local, server.as_str()).map(Some).map_err(|e| format!("syslog at {server}: {e}"));
    }
    match &settings.address {
        Some(path) => syslog::unix_custom(formatter, path).map(Some).map_err(|e| format!("syslog at {}: {e}", path.display())),
        None => Ok(None),
    }
}

/// Sets up the process's logging from its settings (once; later calls only
/// change the level).
pub fn init_with(settings: &LogSettings) {
    LEVEL.store(settings.level as u8, Ordering::Relaxed);
    let mut failed = None;
    let logger = LOGGER.get_or_init(|| {
        let syslog = match connect_syslog(settings) {
            Ok(s) => s.map(Mutex::new),
            Err(e) => {
                failed = Some(e);
                None
            }
        };
        SwiftLogger { name: settings.name.clone(), syslog }
    });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
    if let Some(e) = failed {
        warning(&format!("cannot log to {e}; logging to standard error only"));
    }
}

/// Sets the process's log name (e.g. `object-server`) and level, logging
/// to standard error.
pub fn init(name: &str, level: Level) {
    init_with(&LogSettings::stderr(name, level));
}

/// Whether messages at `level` are written.
pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one log line if `level` is enabled (nothing before `init`).
pub fn write(level: Level, message: &str) {
    log::log!(level.facade(), "{message}");
}

/// Logs an error.
pub fn error(message: &str) {
    write(Level::Error, message);
}

/// Logs a warning.
pub fn warning(message: &str) {
    write(Level::Warning, message);
}

/// Logs an informational message.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Logs an informational message under another name than the process's
/// (the proxy's `access_log_name`): the same line, the same destinations.
pub fn info_as(name: &str, message: &str) {
    if !enabled(Level::Info) {
        return;
    }
    match LOGGER.get() {
        Some(logger) => logger.write_line(name, Level::Info, message),
        None => {
            let _ = writeln!(std::io::stderr().lock(), "{}", format_line(name, Level::Info, message, trans_id().as_deref()));
        }
    }
}

/// Logs a debugging message.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// One request as the access log records it.
pub struct AccessEntry<'a> {
    pub remote_addr: &'a str,
    pub method: &'a str,
    /// The request path as received (still quoted), with the query string.
    pub path: &'a str,
    pub status: u16,
    /// Response body bytes, when known.
    pub bytes: Option<u64>,
    pub referer: Option<&'a str>,
    pub trans_id: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub duration: std::time::Duration,
    pub policy_index: Option<&'a str>,
}

/// Swift's storage-server access line:
/// `ip - - [date] "METHOD path" status bytes "referer" "txn" "agent" secs "-" pid policy`.
pub fn access_line(e: &AccessEntry) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let dash = |v: Option<&str>| v.filter(|s| !s.is_empty()).unwrap_or("-").to_string();
    format!(
        "{} - - [{}] \"{} {}\" {} {} \"{}\" \"{}\" \"{}\" {:.4} \"-\" {} {}",
        e.remote_addr,
        crate::timestamp::log_date(now),
        e.method,
        e.path,
        e.status,
        e.bytes.map_or("-".to_string(), |b| b.to_string()),
        dash(e.referer),
        dash(e.trans_id),
        dash(e.user_agent),
        e.duration.as_secs_f64(),
        std::process::id(),
        dash(e.policy_index),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_time_name_level_and_transaction() {
        let line = format_line("object-server", Level::Warning, "disk full", Some("tx123"));
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(crate::timestamp::Timestamp::from_isoformat(time).is_ok(), "{time}");
        assert_eq!(rest, "object-server WARNING: disk full (txn: tx123)");
        assert!(format_line("proxy-server", Level::Info, "up", None).ends_with("proxy-server INFO: up"));
    }

    #[tokio::test]
    async fn the_transaction_id_follows_the_request() {
        assert_eq!(trans_id(), None);
        let seen = with_trans_id("tx9".into(), async { trans_id() }).await;
        assert_eq!(seen.as_deref(), Some("tx9"));
    }

    #[test]
    fn settings_from_a_section() {
        let conf = crate::config::ConfigFile::parse(
            "[DEFAULT]\nlog_name = obj1\nlog_level = debug\nlog_facility = LOG_LOCAL2\nlog_udp_host = 127.0.0.1\nlog_udp_port = 5140\n\
             [app:object-server]\n",
            "o.conf",
        )
        .unwrap();
        let s = LogSettings::from_section(&conf.app_section("object-server").unwrap(), "object-server").unwrap();
        assert_eq!((s.name.as_str(), s.level, s.facility.as_str(), s.udp_port), ("obj1", Level::Debug, "LOG_LOCAL2", 5140));
        assert_eq!(s.udp_host.as_deref(), Some("127.0.0.1"));
        let bad = crate::config::ConfigFile::parse("[DEFAULT]\nlog_facility = LOG_NOWHERE\n", "b.conf").unwrap();
        assert!(LogSettings::from_section(&bad.defaults(), "x").is_err());
    }

    #[test]
    fn syslog_over_udp_gets_rfc3164_lines() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let mut settings = LogSettings::stderr("object-server", Level::Info);
        settings.udp_host = Some("127.0.0.1".into());
        settings.udp_port = receiver.local_addr().unwrap().port();
        settings.facility = "LOG_LOCAL1".into();
        let mut syslog = connect_syslog(&settings).unwrap().unwrap();
        syslog.warning("disk full (txn: tx1)").unwrap();
        let mut buf = [0u8; 512];
        let n = receiver.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]);
        // <PRI> = facility LOCAL1 (17) * 8 + warning (4) = 140.
        assert!(got.starts_with("<140>"), "{got}");
        assert!(got.contains("object-server[") && got.ends_with("disk full (txn: tx1)"), "{got}");
    }
}
