//! Running one phase: `concurrency` worker tasks pull request indices from
//! one atomic counter until the count or the deadline is reached, each
//! recording into its own [`Recorder`]; the phase ends when every request
//! in flight has finished, so nothing started is left uncounted.

use crate::client::{Op, SwiftClient};
use crate::stats::{self, Failure, PhaseReport, Recorder};
use http::Uri;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Chooses the target of request number `i` (the RNG is the worker's own).
pub type Target = Arc<dyn Fn(u64, &mut StdRng) -> Uri + Send + Sync>;

/// When a phase stops starting new requests.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// After this many requests.
    Count(u64),
    /// Once this much time has passed since the phase began.
    Duration(Duration),
}

/// Everything one phase needs.
pub struct Phase {
    /// Report name (`put`, `get`...).
    pub name: &'static str,
    /// Label for the progress line (`object PUT`).
    pub label: &'static str,
    pub op: Op,
    pub target: Target,
    pub limit: Limit,
    pub concurrency: usize,
    pub timeout: Duration,
    /// Keep the indices of successful requests (for the object PUT phase).
    pub keep_indices: bool,
    /// Draw a progress line on stdout (only when it is a terminal).
    pub progress: bool,
    /// Set when the user interrupts: stop starting requests (the ones in
    /// flight still finish and are counted). `None` for clean-up phases,
    /// which always run to the end.
    pub interrupted: Option<Arc<AtomicBool>>,
}

/// Counters the progress line reads while workers run.
struct Shared {
    next: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
}

/// Runs the phase to completion; returns its report and the sorted
/// indices of the successful requests (if `keep_indices`).
pub async fn run(client: &SwiftClient, phase: Phase) -> (PhaseReport, Vec<u64>) {
    let shared = Arc::new(Shared { next: AtomicU64::new(0), done: AtomicU64::new(0), failed: AtomicU64::new(0) });
    let start = Instant::now();
    let (count, deadline) = match phase.limit {
        Limit::Count(n) => (Some(n), None),
        Limit::Duration(d) => (None, Some(start + d)),
    };
    // Reserve each worker's latency vector once; a timed phase starts with
    // a generous guess and grows rarely (amortised, off the common path).
    let per_worker = match count {
        Some(n) => (n / phase.concurrency as u64 + 1).min(1 << 22) as usize,
        None => 1 << 16,
    };
    let workers = match count {
        Some(n) => (phase.concurrency as u64).min(n).max(1) as usize,
        None => phase.concurrency,
    };
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let client = client.clone();
        let shared = shared.clone();
        let target = phase.target.clone();
        let (op, timeout, keep) = (phase.op, phase.timeout, phase.keep_indices);
        let interrupted = phase.interrupted.clone();
        handles.push(tokio::spawn(async move {
            let mut rec = Recorder::with_capacity(per_worker, keep);
            let mut rng = StdRng::from_entropy();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) || interrupted.as_ref().is_some_and(|f| f.load(Ordering::Relaxed)) {
                    break;
                }
                let i = shared.next.fetch_add(1, Ordering::Relaxed);
                if count.is_some_and(|n| i >= n) {
                    break;
                }
                let uri = target(i, &mut rng);
                let began = Instant::now();
                let outcome = match tokio::time::timeout(timeout, client.execute(op, uri)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(Failure::Timeout),
                };
                match outcome {
                    Ok(bytes) => rec.success(began.elapsed(), bytes, i),
                    Err(why) => {
                        rec.failure(why);
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                shared.done.fetch_add(1, Ordering::Relaxed);
            }
            rec
        }));
    }
    let stop_progress = Arc::new(AtomicBool::new(false));
    let ticker = phase.progress.then(|| {
        let (shared, stop, label) = (shared.clone(), stop_progress.clone(), phase.label);
        tokio::spawn(async move {
            let period = Duration::from_millis(250);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tick.tick().await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                draw_progress(label, &shared, count, deadline, start);
            }
        })
    });
    let mut recorders = Vec::with_capacity(workers);
    for h in handles {
        match h.await {
            Ok(rec) => recorders.push(rec),
            // A worker can only end early by panicking, which would be a
            // bug here; its requests are lost, so say so loudly.
            Err(e) => eprintln!("swift-bench: a {} worker died: {e}; its requests are missing from the figures", phase.label),
        }
    }
    let elapsed = start.elapsed();
    stop_progress.store(true, Ordering::Relaxed);
    if let Some(t) = ticker {
        t.abort();
        // Erase the progress line so the table starts clean.
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[2K");
        let _ = out.flush();
    }
    stats::merge(phase.name, recorders, elapsed)
}

fn draw_progress(label: &str, shared: &Shared, count: Option<u64>, deadline: Option<Instant>, start: Instant) {
    let done = shared.done.load(Ordering::Relaxed);
    let failed = shared.failed.load(Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let goal = match (count, deadline) {
        (Some(n), _) => format!("{done}/{n}"),
        (None, Some(d)) => format!("{done} ({:.0}s left)", d.saturating_duration_since(Instant::now()).as_secs_f64()),
        (None, None) => done.to_string(),
    };
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "\r\x1b[2K{label}: {goal} done, {failed} failed, {rate:.0} req/s");
    let _ = out.flush();
}
