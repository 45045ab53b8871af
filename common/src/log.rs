//! Logging in Swift's manner: one line per event on standard error,
//! prefixed with the server's `log_name`, filtered by `log_level`; and the
//! storage servers' access-log line.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

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
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static NAME: OnceLock<String> = OnceLock::new();

/// Sets the process's log name (e.g. `object-server`) and level.
pub fn init(name: &str, level: Level) {
    let _ = NAME.set(name.to_string());
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether messages at `level` are written.
pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one log line if `level` is enabled.
pub fn write(level: Level, message: &str) {
    if !enabled(level) {
        return;
    }
    let name = NAME.get().map(String::as_str).unwrap_or("swift");
    let prefix = match level {
        Level::Error => "ERROR: ",
        Level::Warning => "WARNING: ",
        _ => "",
    };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{name}: {prefix}{message}");
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
