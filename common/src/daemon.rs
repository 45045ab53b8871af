//! What Swift's background daemons (updaters, later replicators and
//! auditors) share, as `swift/common/daemon.py` does: the command line,
//! the sweep loop, and the recon cache they report into.

use std::future::Future;
use std::path::{Path, PathBuf};
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

/// A daemon's command line: `swift-<name> CONFIG [once|--once|-o]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonArgs {
    pub config: PathBuf,
    /// One sweep, then exit (Swift's `once` run mode).
    pub once: bool,
}

/// Parses a daemon's arguments (without the program name); `Err` is the
/// usage line.
pub fn parse_args(name: &str, args: &[String]) -> Result<DaemonArgs, String> {
    let once = args.iter().any(|a| a == "once" || a == "--once" || a == "-o");
    let config = args.iter().find(|a| !a.starts_with('-') && *a != "once").map(PathBuf::from);
    config.map(|config| DaemonArgs { config, once }).ok_or_else(|| format!("Usage: {name} CONFIG [once|--once]"))
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
    fn command_line() {
        let a = |v: &[&str]| parse_args("swift-x", &v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(a(&["x.conf"]).unwrap(), DaemonArgs { config: "x.conf".into(), once: false });
        assert!(a(&["x.conf", "once"]).unwrap().once);
        assert!(a(&["-o", "x.conf"]).unwrap().once);
        assert!(a(&[]).is_err());
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
