//! The two outputs: a table for people (one line per phase, printed as
//! each phase ends) and one JSON object for scripts.

use crate::stats::PhaseReport;
use serde::Serialize;
use std::fmt::Write;

/// Everything a run measured, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub auth_url: String,
    pub storage_url: String,
    pub concurrency: u32,
    /// Bytes per object.
    pub object_size: u64,
    pub containers: u64,
    /// Seconds per timed phase, when `--duration` was given.
    pub duration_secs: Option<f64>,
    /// The user pressed Ctrl-C: phases were cut short, clean-up ran.
    pub interrupted: bool,
    /// In the order run: container_put, put, get, head, delete,
    /// container_delete.
    pub phases: Vec<PhaseReport>,
}

impl Report {
    /// Sum of failures over every phase.
    pub fn total_failures(&self) -> u64 {
        self.phases.iter().map(|p| p.failed).sum()
    }
}

/// Prints one line on stdout. A closed stdout (`swift-bench | head`) must
/// not stop the run half-way: the containers and objects would be left
/// behind, so write errors are ignored.
pub fn print_line(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// Column headings for [`table_row`].
pub fn table_header() -> String {
    format!(
        "{:<18} {:>9} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "phase", "ok", "failed", "req/s", "MB/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    )
}

/// One phase as a table line, followed by a line listing its failures
/// by status or kind when there were any.
pub fn table_row(label: &str, p: &PhaseReport) -> String {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
    let mut s = format!(
        "{:<18} {:>9} {:>8} {:>10.1} {:>9.2} {:>9} {:>9} {:>9} {:>9}",
        label,
        p.successes,
        p.failed,
        p.requests_per_sec,
        p.mb_per_sec,
        ms(p.latency_ms.p50),
        ms(p.latency_ms.p90),
        ms(p.latency_ms.p99),
        ms(p.latency_ms.max)
    );
    if let Some(why) = &p.skipped {
        let _ = write!(s, "  (skipped: {why})");
    }
    if !p.failures.is_empty() {
        let list: Vec<String> = p.failures.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        let _ = write!(s, "\n{:<18} failures: {}", "", list.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_listed_under_their_phase() {
        let mut p = PhaseReport::skipped("put", "x");
        p.skipped = None;
        p.failed = 3;
        p.failures.insert("503".into(), 2);
        p.failures.insert("connect_error".into(), 1);
        let row = table_row("object PUT", &p);
        assert!(row.contains("failures: 503 x2, connect_error x1"), "{row}");
    }
}
