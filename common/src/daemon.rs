//! What Swift's background daemons (updaters, later replicators and
//! auditors) share, as `swift/common/daemon.py` does: the command line,
//! the sweep loop, and the recon cache they report into.

use crate::config::ConfigFile;
use crate::server::ServerSettings;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The options every sweeping daemon reads from its section: `interval`,
/// `concurrency`, and a rate, `<items>_per_second` or Swift's deprecated
/// `slowdown` (seconds between items: rate `1 / (slowdown + 0.01)`).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSettings {
    /// Seconds from the start of one sweep to the next (300).
    pub interval: Duration,
    /// Items worked on at once.
    pub concurrency: usize,
    /// Items per second at most (50).
    pub per_second: f64,
}

impl SweepSettings {
    /// Reads the options from `section`; `rate_key` names the rate option
    /// (`containers_per_second`, `objects_per_second`). Errors name the
    /// file, line and key.
    pub fn from_section(
        section: &crate::config::Section,
        default_concurrency: usize,
        rate_key: &str,
    ) -> Result<SweepSettings, crate::config::ConfigError> {
        let interval = non_negative(section, "interval", 300.0)?;
        let concurrency = section.get_usize("concurrency", default_concurrency)?;
        if concurrency == 0 {
            return Err(section.value_error("concurrency", "0", "a count of 1 or more"));
        }
        let default_rate = if section.contains_key("slowdown") {
            crate::log::warning(&format!("The slowdown option is deprecated in favor of {rate_key}."));
            1.0 / (non_negative(section, "slowdown", 0.01)? + 0.01)
        } else {
            50.0
        };
        Ok(SweepSettings {
            interval: Duration::from_secs_f64(interval),
            concurrency,
            per_second: non_negative(section, rate_key, default_rate)?,
        })
    }
}

/// A number option that must be finite and 0 or more (seconds, rates).
pub fn non_negative(section: &crate::config::Section, key: &str, default: f64) -> Result<f64, crate::config::ConfigError> {
    let v = section.get_f64(key, default)?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(section.value_error(key, &v.to_string(), "a number, 0 or more"))
    }
}

/// Which devices and partitions one pass covers: Swift's `--devices` and
/// `--partitions` (comma-separated; empty means all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub devices: Vec<String>,
    pub partitions: Vec<u32>,
}

impl Scope {
    /// Whether the pass covers `device`.
    pub fn has_device(&self, device: &str) -> bool {
        self.devices.is_empty() || self.devices.iter().any(|d| d == device)
    }

    /// Whether the pass covers `partition`.
    pub fn has_partition(&self, partition: u32) -> bool {
        self.partitions.is_empty() || self.partitions.contains(&partition)
    }

    /// Whether the pass covers everything (only a full pass reports its
    /// figures to recon, as in Swift).
    pub fn is_all(&self) -> bool {
        self.devices.is_empty() && self.partitions.is_empty()
    }
}

/// A daemon's command line (parsed by [`crate::cli::parse_daemon`]):
/// `swift-<name> CONFIG [once|--once|-o] [-v|--verbose]`, plus
/// `[-d|--devices d1,d2] [-p|--partitions p1,p2]` for the daemons that
/// take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonArgs {
    pub config: PathBuf,
    /// One sweep, then exit (Swift's `once` run mode).
    pub once: bool,
    /// Swift's `-v`: log to the console too. Ours always logs to stderr.
    pub verbose: bool,
    pub scope: Scope,
}

/// A background job on Swift's daemon frame (`swift/common/daemon.py`):
/// it knows how to build itself from its config file and how to make one
/// pass; the command line, the run modes, signals and the recon report
/// come from [`main`].
pub trait Daemon: Sized + Send + Sync + 'static {
    /// Swift's name: `object-updater` runs as `swift-object-updater` and
    /// reads `[object-updater]`.
    const NAME: &'static str;
    /// Whether the command line takes `--devices` and `--partitions`.
    const SCOPED: bool = false;
    /// The recon cache file its figures go to (`object.recon`, ...).
    const RECON_FILE: &'static str;

    /// Builds the daemon from its config file (its section over
    /// `[DEFAULT]`); the error is printed and the process exits 1.
    fn from_config(conf: &ConfigFile) -> Result<Self, String>;

    /// The storage settings it runs with: log name and level, devices,
    /// recon cache path.
    fn server(&self) -> &ServerSettings;

    /// From the start of one pass to the start of the next.
    fn interval(&self) -> Duration;

    /// One pass over `scope`; returns the figures for the recon cache.
    fn run_once(self: Arc<Self>, scope: Scope) -> impl Future<Output = Vec<(&'static str, serde_json::Value)>> + Send;
}

/// One pass, then its figures into the recon cache (full passes only).
async fn pass<D: Daemon>(daemon: Arc<D>, scope: Scope) {
    let cache = daemon.server().recon_cache_path.join(D::RECON_FILE);
    let all = scope.is_all();
    let values = daemon.run_once(scope).await;
    if all && !values.is_empty() {
        let _ = tokio::task::spawn_blocking(move || dump_recon_cache(&cache, &values)).await;
    }
}

/// The `main` of every daemon binary: parses Swift's command line, reads
/// the config file, then runs one pass (`once`) or a pass every
/// `interval` until SIGTERM/SIGINT, reading the config file again on
/// SIGHUP. Start-up errors exit 1 (usage: 2).
pub fn main<D: Daemon>() -> ! {
    let args = crate::cli::daemon_args(&format!("swift-{}", D::NAME), D::SCOPED);
    let conf = crate::server::load_config_or_exit(&args.config);
    let daemon = D::from_config(&conf).unwrap_or_else(|e| {
        eprintln!("Error in {}: {e}", args.config.display());
        std::process::exit(1)
    });
    crate::log::init_with(&daemon.server().log);
    conf.warn_unused();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|e| {
        eprintln!("Error starting the runtime: {e}");
        std::process::exit(1)
    });
    let daemon = Arc::new(daemon);
    runtime.block_on(async move {
        if args.once {
            pass(daemon, args.scope).await;
        } else {
            let interval = daemon.interval();
            // SIGHUP: the next pass runs with the config file read again
            // (the interval stays the one read at start-up).
            let config = args.config.clone();
            let daemon = crate::server::Reloaded::new(daemon, move || {
                let conf = crate::server::load_config(&config)?;
                let d = D::from_config(&conf)?;
                crate::log::init_with(&d.server().log);
                conf.warn_unused();
                Ok(d)
            });
            run_forever(interval, crate::server::shutdown_signal(), || pass(daemon.get(), args.scope.clone())).await;
        }
    });
    // Blocking work still queued must not hold the exit.
    std::process::exit(0)
}

/// Runs `work` on every item: at most `concurrency` at once, and, with
/// `per_second` above 0, starting no more than that many a second (Swift's
/// `RateLimitedIterator`). Returns the results in completion order.
pub async fn sweep<I, F, Fut, T>(items: I, concurrency: usize, per_second: f64, work: F) -> Vec<T>
where
    I: IntoIterator,
    F: Fn(I::Item) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut pace = (per_second > 0.0).then(|| {
        let mut i = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut tasks = tokio::task::JoinSet::new();
    let mut out = Vec::new();
    for item in items {
        if let Some(pace) = pace.as_mut() {
            pace.tick().await;
        }
        let Ok(permit) = slots.clone().acquire_owned().await else { break };
        let fut = work(item);
        tasks.spawn(async move {
            let r = fut.await;
            drop(permit);
            r
        });
        while let Some(done) = tasks.try_join_next() {
            if let Ok(r) = done {
                out.push(r);
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok(r) = done {
            out.push(r);
        }
    }
    out
}

/// Runs `sweep` every `interval` until `stop` resolves: first after a
/// random part of the interval (so daemons started together spread out),
/// then each `interval` from the start of the previous sweep.
pub async fn run_forever<F, Fut>(interval: Duration, stop: impl Future<Output = ()>, mut sweep: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    tokio::pin!(stop);
    let first = interval.mul_f64(rand::random::<f64>());
    tokio::select! {
        _ = tokio::time::sleep(first) => {}
        _ = &mut stop => return,
    }
    loop {
        let begin = Instant::now();
        tokio::select! {
            _ = sweep() => {}
            _ = &mut stop => return,
        }
        let rest = interval.saturating_sub(begin.elapsed());
        tokio::select! {
            _ = tokio::time::sleep(rest) => {}
            _ = &mut stop => return,
        }
    }
}

/// Swift's `dump_recon_cache`: merges `values` into the JSON file at `path`
/// (keeping the keys other daemons wrote) and replaces it atomically.
/// Blocking; failures are logged, never fatal.
pub fn dump_recon_cache(path: &Path, values: &[(&str, serde_json::Value)]) {
    let mut doc: serde_json::Map<String, serde_json::Value> =
        std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    for (k, v) in values {
        doc.insert(k.to_string(), v.clone());
    }
    let tmp = path.with_extension(format!("tmp.{}.{:x}", std::process::id(), rand::random::<u32>()));
    let result = std::fs::write(&tmp, serde_json::Value::Object(doc).to_string()).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        crate::log::error(&format!("ERROR: Exception dumping recon cache {}: {e}", path.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recon_cache_floats_read_back_exactly() {
        // A time.time() a CI run wrote and read back one ULP off, before
        // serde_json's float_roundtrip (Python's json round-trips exactly).
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("x.recon");
        let t = 1796222329.4533865_f64;
        dump_recon_cache(&cache, &[("since", serde_json::json!(t))]);
        dump_recon_cache(&cache, &[("other", serde_json::json!(1))]);
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
        assert_eq!(doc["since"].as_f64(), Some(t));
    }

    #[tokio::test]
    async fn sweeps_are_bounded_and_return_every_result() {
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (r, m) = (running.clone(), most.clone());
        let mut out = sweep(0..20, 3, 0.0, move |i| {
            let (r, m) = (r.clone(), m.clone());
            async move {
                let now = r.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                m.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                tokio::task::yield_now().await;
                r.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                i * 2
            }
        })
        .await;
        out.sort();
        assert_eq!(out, (0..20).map(|i| i * 2).collect::<Vec<_>>());
        assert!(most.load(std::sync::atomic::Ordering::SeqCst) <= 3);
    }

    #[test]
    fn recon_cache_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("object.recon");
        std::fs::write(&path, r#"{"other": 1}"#).unwrap();
        dump_recon_cache(&path, &[("mine", serde_json::json!(2.5))]);
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc, serde_json::json!({"other": 1, "mine": 2.5}));
    }

    #[tokio::test]
    async fn sweeps_until_stopped() {
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = count.clone();
        let stop = async {
            while count.load(std::sync::atomic::Ordering::SeqCst) < 3 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        run_forever(Duration::from_millis(5), stop, || {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async {}
        })
        .await;
        assert!(count.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    }
}
