//! The checks of `swift-recon`, one method each, printing Swift's lines in
//! Swift's order. Where Swift would stop with a traceback (a body that is
//! not JSON, a key missing from an answer, an OPTIONS answer without a
//! `Server` header), the host is reported with a `-> <url>: ...` line and
//! the report goes on.

use crate::format::{self, gen_stats, number, ptime, py_repr, py_str, truthy, PyNum, RULE};
use crate::scout::{Host, Scout, Scouted};
use md5::{Digest, Md5};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// The report writer and the settings every check shares.
pub struct SwiftRecon<W: Write> {
    out: W,
    scout: Scout,
    /// `-v`: print every answer and every match.
    pub verbose: bool,
    /// `--suppress`: hide connection errors (unless `-v`).
    pub suppress: bool,
    /// `account`, `container` or `object`.
    pub server_type: String,
    /// Hosts that failed `--validate-servers` so far, for the exit status.
    pub validation_failures: usize,
}

/// Prints one line; a closed stdout (`| head`) must not abort the run.
macro_rules! say {
    ($self:expr, $($arg:tt)*) => {{
        let _ = writeln!($self.out, $($arg)*);
    }};
}

impl<W: Write> SwiftRecon<W> {
    /// A reporter writing to `out`, asking each host for at most `timeout`.
    pub fn new(out: W, timeout: std::time::Duration, verbose: bool, suppress: bool) -> SwiftRecon<W> {
        SwiftRecon { out, scout: Scout::new(timeout), verbose, suppress, server_type: "object".into(), validation_failures: 0 }
    }

    /// The writer back (tests read what was printed).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Prints a line of the report.
    pub fn line(&mut self, text: &str) {
        say!(self, "{text}");
    }

    fn rule(&mut self) {
        say!(self, "{RULE}");
    }

    fn show_errors(&self) -> bool {
        !self.suppress || self.verbose
    }

    /// Asks every host and prints Swift's per-host lines: the error of each
    /// failed host, and with `-v` each answer.
    async fn scout(&mut self, hosts: &[Host], recon_type: &str) -> Vec<Scouted> {
        let answers = self.scout.recon(hosts, recon_type).await;
        for a in &answers {
            match &a.result {
                Ok(v) if self.verbose => say!(self, "-> {}: {}", a.url, py_repr(v)),
                Ok(_) => {}
                Err(e) if self.show_errors() => say!(self, "-> {}: {}", a.url, e.message),
                Err(_) => {}
            }
        }
        answers
    }

    /// Reports an answer that parsed but lacks what Swift reads from it.
    fn unexpected(&mut self, url: &str, what: &str) {
        if self.show_errors() {
            say!(self, "-> {url}: unexpected response: {what}");
        }
    }

    /// The object of an answer, or `None` (reported) when it is not one.
    fn object<'a>(&mut self, a: &'a Scouted, keys: &[&str]) -> Option<&'a Map<String, Value>> {
        match a.result.as_ref().ok()? {
            Value::Object(m) => {
                if let Some(missing) = keys.iter().find(|k| !m.contains_key(**k)) {
                    self.unexpected(&a.url, &format!("no '{missing}' in it"));
                    return None;
                }
                Some(m)
            }
            _ => {
                self.unexpected(&a.url, "not a JSON object");
                None
            }
        }
    }

    fn print_stats_or(&mut self, values: &[Option<f64>], name: &str, missing: &str) {
        match gen_stats(values, name) {
            Some(s) => say!(self, "{}", format::format_stats(&s)),
            None => say!(self, "{missing}"),
        }
    }

    /// `-a`: async pendings (object servers).
    pub async fn async_check(&mut self, hosts: &[Host]) {
        self.single_stat_check(hosts, "async", "Checking async pendings", "async_pending").await;
    }

    /// `--driveaudit`: errors found by swift-drive-audit.
    pub async fn driveaudit_check(&mut self, hosts: &[Host]) {
        self.single_stat_check(hosts, "driveaudit", "Checking drive-audit errors", "drive_audit_errors").await;
    }

    async fn single_stat_check(&mut self, hosts: &[Host], recon_type: &str, title: &str, key: &str) {
        say!(self, "[{}] {title}", ptime(None));
        let answers = self.scout(hosts, recon_type).await;
        let mut values = Vec::new();
        for a in &answers {
            if let Some(m) = self.object(a, &[key]) {
                values.push(number(m.get(key)));
            }
        }
        self.print_stats_or(&values, key, &format!("[{key}] - No hosts returned valid data."));
        self.rule();
    }

    /// `-u`: devices that are not mounted, or that gave errors.
    pub async fn umount_check(&mut self, hosts: &[Host]) {
        say!(self, "[{}] Getting unmounted drives from {} hosts...", ptime(None), hosts.len());
        let answers = self.scout(hosts, "unmounted").await;
        let mut unmounted: Vec<(String, Vec<String>)> = Vec::new();
        let mut errors: Vec<(String, Vec<String>)> = Vec::new();
        for a in &answers {
            let Ok(v) = &a.result else { continue };
            let Some(list) = self.device_list(a, v) else { continue };
            let node = format!("{}:{}", a.host.0, a.host.1);
            let (mut u, mut e) = (Vec::new(), Vec::new());
            for entry in list {
                let device = py_str(&entry["device"]);
                match entry.get("mounted") {
                    Some(Value::Bool(_)) => u.push(device),
                    _ => e.push(device),
                }
            }
            unmounted.push((node.clone(), u));
            errors.push((node, e));
        }
        for (node, devices) in unmounted {
            for d in devices {
                say!(self, "Not mounted: {d} on {node}");
            }
        }
        for (node, devices) in errors {
            for d in devices {
                say!(self, "Device errors: {d} on {node}");
            }
        }
        self.rule();
    }

    /// A list of `{"device": .., "mounted": ..}` objects, or `None`
    /// (reported).
    fn device_list<'a>(&mut self, a: &Scouted, v: &'a Value) -> Option<Vec<&'a Map<String, Value>>> {
        let Value::Array(items) = v else {
            self.unexpected(&a.url, "not a JSON list");
            return None;
        };
        let mut list = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::Object(m) if m.contains_key("device") && m.contains_key("mounted") => list.push(m),
                _ => {
                    self.unexpected(&a.url, "a list entry without 'device' and 'mounted'");
                    return None;
                }
            }
        }
        Some(list)
    }

    /// `--validate-servers`: `OPTIONS /` to each host, whose `Server` header
    /// must name `<type>-server`. Unlike Swift, a host that cannot be asked
    /// (refused, timed out, not 200, no `Server` header) counts as an error
    /// too: it has not been validated.
    pub async fn server_type_check(&mut self, hosts: &[Host]) {
        say!(self, "[{}] Validating server type '{}' on {} hosts...", ptime(None), self.server_type, hosts.len());
        let answers = self.scout.server_types(hosts).await;
        let want = format!("{}-server", self.server_type);
        let mut invalid = Vec::new();
        let mut failed = 0;
        for a in &answers {
            match &a.result {
                Ok(t) if *t == want => {
                    if self.verbose {
                        say!(self, "-> {}: {}", a.url, t);
                    }
                }
                Ok(t) => invalid.push((a.url.clone(), t.clone())),
                Err(e) => {
                    failed += 1;
                    if self.show_errors() {
                        say!(self, "-> {}: {}", a.url, e.message);
                    }
                }
            }
        }
        let errors = invalid.len() + failed;
        say!(self, "{}/{} hosts ok, {} error[s] while checking hosts.", hosts.len() - errors, hosts.len(), errors);
        for (url, t) in &invalid {
            say!(self, "Invalid: {url} is {t}");
        }
        self.validation_failures += errors;
        self.rule();
    }

    /// `--expirer`: the object expirer's last pass.
    pub async fn expirer_check(&mut self, hosts: &[Host]) {
        say!(self, "[{}] Checking on expirers", ptime(None));
        let answers = self.scout(hosts, &format!("expirer/{}", self.server_type)).await;
        let keys = ["object_expiration_pass", "expired_last_pass"];
        let mut stats: Vec<Vec<Option<f64>>> = vec![Vec::new(); keys.len()];
        for a in &answers {
            if let Some(m) = self.object(a, &[]) {
                for (i, k) in keys.iter().enumerate() {
                    stats[i].push(number(m.get(*k)));
                }
            }
        }
        for (k, values) in keys.iter().zip(&stats) {
            self.print_stats_or(values, k, &format!("[{k}] - No hosts returned valid data."));
        }
        self.rule();
    }

    /// Swift's "Oldest completion was ..." / "Most recent completion was
    /// ..." lines over `(url, last completion time)` pairs.
    fn least_and_most_recent(&mut self, url_times: &[(Host, Option<f64>)]) {
        let mut least: Option<(&Host, f64)> = None;
        let mut most: Option<(&Host, f64)> = None;
        let (mut least_time, mut most_time) = (9_999_999_999.0, 0.0);
        for (host, last) in url_times {
            let Some(last) = *last else { continue };
            if last < least_time {
                least_time = last;
                least = Some((host, last));
            }
            if last > most_time {
                most_time = last;
                most = Some((host, last));
            }
        }
        let now = format::now();
        if let Some((host, t)) = least {
            if t == 0.0 {
                say!(self, "Oldest completion was NEVER by {}:{}.", host.0, host.1);
            } else {
                let (elapsed, unit) = format::seconds2timeunit(now - t);
                say!(self, "Oldest completion was {} ({} {} ago) by {}:{}.", ptime(Some(t)), format::py_int(elapsed), unit, host.0, host.1);
            }
        }
        if let Some((host, t)) = most {
            let (elapsed, unit) = format::seconds2timeunit(now - t);
            say!(
                self,
                "Most recent completion was {} ({} {} ago) by {}:{}.",
                ptime(Some(t)),
                format::py_int(elapsed),
                unit,
                host.0,
                host.1
            );
        }
    }

    /// `-R`: the object reconstructor's last pass.
    pub async fn reconstruction_check(&mut self, hosts: &[Host]) {
        say!(self, "[{}] Checking on reconstructors", ptime(None));
        let answers = self.scout(hosts, &format!("reconstruction/{}", self.server_type)).await;
        let mut times = Vec::new();
        let mut lasts = Vec::new();
        for a in &answers {
            if let Some(m) = self.object(a, &[]) {
                times.push(number(m.get("object_reconstruction_time")));
                lasts.push((a.host.clone(), get_or(m, "object_reconstruction_last", 0.0)));
            }
        }
        self.print_stats_or(&times, "object_reconstruction_time", "[object_reconstruction_time] - No hosts returned valid data.");
        self.least_and_most_recent(&lasts);
        self.rule();
    }

    /// `-r`: the replicator's last pass.
    pub async fn replication_check(&mut self, hosts: &[Host]) {
        say!(self, "[{}] Checking on replication", ptime(None));
        let answers = self.scout(hosts, &format!("replication/{}", self.server_type)).await;
        let keys = ["replication_time", "failure", "success", "attempted"];
        let mut stats: Vec<Vec<Option<f64>>> = vec![Vec::new(); keys.len()];
        let mut lasts = Vec::new();
        for a in &answers {
            let Some(m) = self.object(a, &[]) else { continue };
            // Object replicators report object_replication_*; a key that is
            // present but null stays null, as with Python's dict.get.
            stats[0].push(match m.get("replication_time") {
                Some(v) => number(Some(v)),
                None => get_or(m, "object_replication_time", 0.0),
            });
            if let Some(Value::Object(rs)) = m.get("replication_stats").filter(|v| truthy(Some(v))) {
                for (i, k) in ["failure", "success", "attempted"].iter().enumerate() {
                    stats[i + 1].push(number(rs.get(*k)));
                }
            }
            let last = match m.get("replication_last") {
                Some(v) => number(Some(v)),
                None => get_or(m, "object_replication_last", 0.0),
            };
            lasts.push((a.host.clone(), last));
        }
        for (k, values) in keys.iter().zip(&stats) {
            let name = if *k == "replication_time" { k.to_string() } else { format!("replication_{k}") };
            self.print_stats_or(values, &name, &format!("[{k}] - No hosts returned valid data."));
        }
        self.least_and_most_recent(&lasts);
        self.rule();
    }

    /// `--updater`: the updater's last sweep (containers and objects).
    pub async fn updater_check(&mut self, hosts: &[Host]) {
        say!(self, "[{}] Checking updater times", ptime(None));
        let answers = self.scout(hosts, &format!("updater/{}", self.server_type)).await;
        let key = format!("{}_updater_sweep", self.server_type);
        let mut values = Vec::new();
        for a in &answers {
            if let Some(m) = self.object(a, &[&key]) {
                if truthy(m.get(&key)) {
                    values.push(number(m.get(&key)));
                }
            }
        }
        self.print_stats_or(&values, "updater_last_sweep", "[updater_last_sweep] - No hosts returned valid data.");
        self.rule();
    }

    /// `--auditor` for accounts and containers.
    pub async fn auditor_check(&mut self, hosts: &[Host]) {
        let t = self.server_type.clone();
        let (adone, afail, apass, asince) = (
            format!("{t}_auditor_pass_completed"),
            format!("{t}_audits_failed"),
            format!("{t}_audits_passed"),
            format!("{t}_audits_since"),
        );
        say!(self, "[{}] Checking auditor stats", ptime(None));
        let answers = self.scout(hosts, &format!("auditor/{t}")).await;
        let keys = [adone.as_str(), afail.as_str(), apass.as_str(), asince.as_str()];
        let scan: Vec<&Map<String, Value>> = answers.iter().filter_map(|a| self.object(a, &keys)).collect();
        if scan.is_empty() {
            say!(self, "Error: No hosts available");
            return;
        }
        let mut since = Vec::new();
        for k in keys {
            let values: Vec<f64> = scan.iter().filter_map(|m| number(m.get(k))).collect();
            if values.is_empty() {
                say!(self, "[{k}] - No hosts returned valid data.");
            } else if k == asince {
                since = values;
            } else {
                let opts: Vec<Option<f64>> = values.into_iter().map(Some).collect();
                self.print_stats_or(&opts, k, "");
            }
        }
        if !since.is_empty() {
            let low = since.iter().copied().fold(f64::INFINITY, f64::min);
            let high = since.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let avg = since.iter().sum::<f64>() / since.len() as f64;
            say!(self, "[last_pass] oldest: {}, newest: {}, avg: {}", ptime(Some(low)), ptime(Some(high)), ptime(Some(avg)));
        }
        self.rule();
    }

    /// `--auditor` for objects: the ALL and ZBF auditors' figures, summed
    /// over the per-disk entries of a parallel audit.
    pub async fn object_auditor_check(&mut self, hosts: &[Host]) {
        // The trailing space is Swift's.
        say!(self, "[{}] Checking auditor stats ", ptime(None));
        let answers = self.scout(hosts, "auditor/object").await;
        let mut all_scan = Vec::new();
        let mut zbf_scan = Vec::new();
        for a in &answers {
            if let Some(m) = self.object(a, &["object_auditor_stats_ALL", "object_auditor_stats_ZBF"]) {
                if truthy(m.get("object_auditor_stats_ALL")) {
                    all_scan.push(&m["object_auditor_stats_ALL"]);
                }
                if truthy(m.get("object_auditor_stats_ZBF")) {
                    zbf_scan.push(&m["object_auditor_stats_ZBF"]);
                }
            }
        }
        for (label, scan, keys) in [
            ("ALL", &all_scan, &["audit_time", "bytes_processed", "passes", "errors", "quarantined"][..]),
            ("ZBF", &zbf_scan, &["audit_time", "bytes_processed", "errors", "quarantined"][..]),
        ] {
            if scan.is_empty() {
                say!(self, "[{label}_auditor] - No hosts returned valid data.");
                continue;
            }
            for k in keys {
                let values: Vec<Option<f64>> = scan.iter().map(|v| Some(nested_sum(k, v))).collect();
                self.print_stats_or(
                    &values,
                    &format!("{label}_{k}_last_path"),
                    &format!("[{label}_auditor] - No hosts returned valid data."),
                );
            }
        }
        self.rule();
    }

    /// `--sharding`: the container sharder's last pass.
    pub async fn sharding_check(&mut self, hosts: &[Host]) {
        say!(self, "[{}] Checking on sharders", ptime(None));
        let answers = self.scout(hosts, "sharding").await;
        let keys = ["sharding_time", "attempted", "failure", "success"];
        let mut stats: Vec<Vec<Option<f64>>> = vec![Vec::new(); keys.len()];
        let mut lasts = Vec::new();
        for a in &answers {
            let Some(m) = self.object(a, &[]) else { continue };
            stats[0].push(get_or(m, "sharding_time", 0.0));
            if let Some(Value::Object(ss)) = m.get("sharding_stats").filter(|v| truthy(Some(v))) {
                for (i, k) in keys[1..].iter().enumerate() {
                    stats[i + 1].push(number(ss.get(*k)));
                }
            }
            lasts.push((a.host.clone(), get_or(m, "sharding_last", 0.0)));
        }
        for (k, values) in keys.iter().zip(&stats) {
            self.print_stats_or(values, k, &format!("[{k}] - No hosts returned valid data."));
        }
        self.least_and_most_recent(&lasts);
        self.rule();
    }

    /// `-l`: load averages.
    pub async fn load_check(&mut self, hosts: &[Host]) {
        say!(self, "[{}] Checking load averages", ptime(None));
        let answers = self.scout(hosts, "load").await;
        let keys = ["1m", "5m", "15m"];
        let mut stats: Vec<Vec<Option<f64>>> = vec![Vec::new(); keys.len()];
        for a in &answers {
            if let Some(m) = self.object(a, &keys) {
                for (i, k) in keys.iter().enumerate() {
                    stats[i].push(number(m.get(*k)));
                }
            }
        }
        for (k, values) in keys.iter().zip(&stats) {
            self.print_stats_or(values, &format!("{k}_load_avg"), &format!("[{k}_load_avg] - No hosts returned valid data."));
        }
        self.rule();
    }

    /// `-q`: quarantined objects (per policy), containers and accounts.
    pub async fn quarantine_check(&mut self, hosts: &[Host]) {
        say!(self, "[{}] Checking quarantine", ptime(None));
        let answers = self.scout(hosts, "quarantined").await;
        // Per-policy rows first, in order of first appearance, then the
        // three totals: the order Swift's dict ends up in.
        let mut stats: Vec<(String, Vec<Option<f64>>)> = Vec::new();
        let (mut objq, mut conq, mut acctq) = (Vec::new(), Vec::new(), Vec::new());
        for a in &answers {
            let Some(m) = self.object(a, &["objects", "containers", "accounts"]) else { continue };
            objq.push(number(m.get("objects")));
            conq.push(number(m.get("containers")));
            acctq.push(number(m.get("accounts")));
            if let Some(Value::Object(policies)) = m.get("policies") {
                for (key, p) in policies {
                    let pkey = format!("objects_{key}");
                    let value = number(p.get("objects"));
                    match stats.iter_mut().find(|(k, _)| *k == pkey) {
                        Some((_, v)) => v.push(value),
                        None => stats.push((pkey, vec![value])),
                    }
                }
            }
        }
        stats.push(("objects".into(), objq));
        stats.push(("containers".into(), conq));
        stats.push(("accounts".into(), acctq));
        for (k, values) in &stats {
            self.print_stats_or(values, &format!("quarantined_{k}"), "No hosts returned valid data.");
        }
        self.rule();
    }

    /// `--sockstat`: socket usage.
    pub async fn socket_usage(&mut self, hosts: &[Host]) {
        say!(self, "[{}] Checking socket usage", ptime(None));
        let answers = self.scout(hosts, "sockstat").await;
        let keys = ["tcp_in_use", "tcp_mem_allocated_bytes", "tcp6_in_use", "time_wait", "orphan"];
        let mut stats: Vec<Vec<Option<f64>>> = vec![Vec::new(); keys.len()];
        for a in &answers {
            if let Some(m) = self.object(a, &["tcp_in_use", "tcp_mem_allocated_bytes", "time_wait", "orphan"]) {
                for (i, k) in keys.iter().enumerate() {
                    stats[i].push(if *k == "tcp6_in_use" { get_or(m, k, 0.0) } else { number(m.get(*k)) });
                }
            }
        }
        for (k, values) in keys.iter().zip(&stats) {
            self.print_stats_or(values, k, "No hosts returned valid data.");
        }
        self.rule();
    }

    /// `-d`: disk usage, with Swift's distribution graph and the `--top`
    /// and `--lowest` lists. Each IP is asked once, whatever its ports.
    pub async fn disk_usage(&mut self, hosts: &[Host], top: i64, lowest: i64, human_readable: bool) {
        let mut by_ip: BTreeMap<&str, u16> = BTreeMap::new();
        for (ip, port) in hosts {
            by_ip.entry(ip.as_str()).or_insert(*port);
        }
        let filtered: Vec<Host> = by_ip.into_iter().map(|(ip, port)| (ip.to_string(), port)).collect();
        let top = usize::try_from(top).unwrap_or(0);
        let lowest = usize::try_from(lowest).unwrap_or(0);
        let mut top_percents: Vec<(Option<(String, String)>, f64)> = vec![(None, 0.0); top];
        let mut low_percents: Vec<(Option<(String, String)>, f64)> = vec![(None, 100.0); lowest];
        let (mut raw_used, mut raw_avail) = (PyNum::Int(0), PyNum::Int(0));
        let mut per_host: Vec<(String, Vec<f64>)> = Vec::new();
        say!(self, "[{}] Checking disk usage now", ptime(None));
        let answers = self.scout(&filtered, "diskusage").await;
        for a in &answers {
            let Ok(v) = &a.result else { continue };
            let Some(list) = self.device_list(a, v) else { continue };
            let mut usage = Vec::new();
            for entry in list {
                let device = py_str(&entry["device"]);
                match &entry["mounted"] {
                    Value::Bool(true) => {}
                    Value::Bool(false) => continue,
                    other => {
                        say!(self, "-> {}/{}: Error: {}", a.url, device, py_str(other));
                        continue;
                    }
                }
                let nums = ["size", "used", "avail"].map(|k| entry.get(k).and_then(PyNum::from_json));
                let [Some(size), Some(used_n), Some(avail)] = nums else {
                    self.unexpected(&a.url, &format!("no usable size, used and avail for {device}"));
                    continue;
                };
                if size.as_f64() == 0.0 {
                    self.unexpected(&a.url, &format!("size 0 for {device}"));
                    continue;
                }
                let used = used_n.as_f64() / size.as_f64() * 100.0;
                raw_used = raw_used.add(&used_n);
                raw_avail = raw_avail.add(&avail);
                usage.push(format::round2(used));
                let ident = Some((a.url.clone(), device.clone()));
                // Keep the lists ranked as Swift does: the newcomer goes
                // after equals (stable sort), the last one drops out.
                if top_percents.iter().any(|(_, o)| *o < used) {
                    top_percents.push((ident.clone(), used));
                    top_percents.sort_by(|x, y| y.1.total_cmp(&x.1));
                    top_percents.pop();
                }
                if low_percents.iter().any(|(_, o)| *o > used) {
                    low_percents.push((ident, used));
                    low_percents.sort_by(|x, y| x.1.total_cmp(&y.1));
                    low_percents.pop();
                }
            }
            per_host.push((a.url.clone(), usage));
        }
        let (mut lows, mut highs) = (Vec::new(), Vec::new());
        let mut percents: BTreeMap<i64, usize> = BTreeMap::new();
        for (url, usage) in &per_host {
            if usage.is_empty() {
                say!(self, "-> {url}: Error. No drive info available.");
                continue;
            }
            lows.push(usage.iter().copied().fold(f64::INFINITY, f64::min));
            highs.push(usage.iter().copied().fold(f64::NEG_INFINITY, f64::max));
            for p in usage {
                *percents.entry(p.trunc() as i64).or_insert(0) += 1;
            }
        }
        if lows.is_empty() {
            say!(self, "No hosts returned valid data.");
        } else {
            let low = lows.iter().copied().fold(f64::INFINITY, f64::min);
            let high = highs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            say!(self, "Distribution Graph:");
            let mul = 69.0 / *percents.values().max().unwrap_or(&1) as f64;
            for (percent, count) in &percents {
                let stars = "*".repeat((*count as f64 * mul) as usize);
                say!(self, "{:>3}%{:>5} {}", format!(" {percent}"), count, stars);
            }
            let raw_total = raw_used.add(&raw_avail);
            let avg_used = if raw_total.as_f64() == 0.0 { 0.0 } else { 100.0 * raw_used.as_f64() / raw_total.as_f64() };
            let show = |n: &PyNum| if human_readable { format::size_suffix(n) } else { n.to_string() };
            say!(self, "Disk usage: space used: {} of {}", show(&raw_used), show(&raw_total));
            say!(self, "Disk usage: space free: {} of {}", show(&raw_avail), show(&raw_total));
            say!(
                self,
                "Disk usage: lowest: {}%, highest: {}%, avg: {}%",
                format::py_float(low),
                format::py_float(high),
                format::py_float(avg_used)
            );
        }
        self.rule();
        for (title, count, list) in [("TOP", top, &top_percents), ("LOWEST", lowest, &low_percents)] {
            if list.is_empty() {
                continue;
            }
            say!(self, "{title} {count}");
            for (ident, used) in list.iter() {
                if let Some((url, device)) = ident {
                    let host = url.trim_start_matches("http://").split(':').next().unwrap_or_default();
                    say!(self, "{:.2}%  {:<15} {}", used, host, device);
                }
            }
        }
    }

    /// `-T`: each host's clock must fall within our request's time window,
    /// widened by `--jitter`.
    pub async fn time_check(&mut self, hosts: &[Host], jitter: f64) {
        let jitter = jitter.abs();
        say!(self, "[{}] Checking time-sync", ptime(None));
        let answers = self.scout(hosts, "time").await;
        let (mut matches, mut errors) = (0, 0);
        for a in &answers {
            let Ok(v) = &a.result else {
                errors += 1;
                continue;
            };
            let Some(remote) = number(Some(v)) else {
                self.unexpected(&a.url, "not a number");
                errors += 1;
                continue;
            };
            if remote + jitter < a.ts_start || remote - jitter > a.ts_end {
                say!(
                    self,
                    "!! {} current time is {}, but remote is {}, differs by {:.4} sec",
                    a.url,
                    ptime(Some(a.ts_end)),
                    ptime(Some(remote)),
                    (a.ts_end - remote).abs()
                );
                continue;
            }
            matches += 1;
            if self.verbose {
                say!(self, "-> {} matches.", a.url);
            }
        }
        say!(self, "{}/{} hosts matched, {} error[s] while checking hosts.", matches, hosts.len(), errors);
        self.rule();
    }

    /// `--swift-versions`: every host should run the same version.
    pub async fn version_check(&mut self, hosts: &[Host]) {
        say!(self, "[{}] Checking versions", ptime(None));
        let answers = self.scout(hosts, "version").await;
        let mut versions = std::collections::BTreeSet::new();
        let mut errors = 0;
        for a in &answers {
            if a.result.is_err() {
                errors += 1;
                continue;
            }
            let Some(m) = self.object(a, &["version"]) else {
                errors += 1;
                continue;
            };
            let version = py_str(&m["version"]);
            if self.verbose {
                say!(self, "-> {} installed version {}", a.url, version);
            }
            versions.insert(version);
        }
        match versions.len() {
            0 => say!(self, "No hosts returned valid data."),
            1 => say!(self, "Versions matched ({}), {} error[s] while checking hosts.", versions.iter().next().map_or("", |v| v), errors),
            _ => say!(
                self,
                "Versions not matched ({}), {} error[s] while checking hosts.",
                versions.into_iter().collect::<Vec<_>>().join(", "),
                errors
            ),
        }
        self.rule();
    }

    /// `--md5` (rings): each host's ring md5s against the local files of the
    /// same name in `swift_dir`, for the rings of this server type.
    pub async fn get_ringmd5(&mut self, hosts: &[Host], swift_dir: &Path) {
        let mut names = Vec::new();
        if self.server_type == "object" {
            if let Ok(entries) = std::fs::read_dir(swift_dir) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with("object") && name.ends_with(".ring.gz") {
                        names.push(name);
                    }
                }
            }
            names.sort();
        } else {
            names.push(format!("{}.ring.gz", self.server_type));
        }
        let mut rings: BTreeMap<String, String> = BTreeMap::new();
        for name in names {
            match md5_file(&swift_dir.join(&name)) {
                Ok(sum) => {
                    rings.insert(name, sum);
                }
                Err(e) => eprintln!("swift-recon: cannot read {}: {e}", swift_dir.join(&name).display()),
            }
        }
        say!(self, "[{}] Checking ring md5sums", ptime(None));
        if self.verbose {
            for (file, sum) in &rings {
                say!(self, "-> On disk {file} md5sum: {sum}");
            }
        }
        let answers = self.scout(hosts, "ringmd5").await;
        let (mut matches, mut errors) = (0, 0);
        for a in &answers {
            if a.result.is_err() {
                errors += 1;
                continue;
            }
            let Some(m) = self.object(a, &[]) else {
                errors += 1;
                continue;
            };
            let mut success = true;
            for (remote_file, remote_sum) in m {
                let remote_name = remote_file.rsplit('/').next().unwrap_or(remote_file);
                if !remote_name.starts_with(self.server_type.as_str()) {
                    continue;
                }
                if remote_sum.as_str() != rings.get(remote_name).map(String::as_str) {
                    success = false;
                    say!(self, "!! {} ({} => {}) doesn't match on disk md5sum", a.url, remote_name, py_str(remote_sum));
                }
            }
            if !success {
                errors += 1;
                continue;
            }
            matches += 1;
            if self.verbose {
                say!(self, "-> {} matches.", a.url);
            }
        }
        say!(self, "{}/{} hosts matched, {} error[s] while checking hosts.", matches, hosts.len(), errors);
        self.rule();
    }

    /// `--md5` (swift.conf): each host's swift.conf md5 against
    /// `<swift_dir>/swift.conf`. The host's entry is found by file name:
    /// Swift looks for the literal key `/etc/swift/swift.conf`, which fails
    /// for any other swift_dir. As in Swift, a mismatch is printed but
    /// counted neither as a match nor as an error.
    pub async fn get_swiftconfmd5(&mut self, hosts: &[Host], swift_dir: &Path) {
        let conf_sum = match md5_file(&swift_dir.join("swift.conf")) {
            Ok(sum) => Some(sum),
            Err(e) => {
                eprintln!("swift-recon: cannot read {}: {e}", swift_dir.join("swift.conf").display());
                None
            }
        };
        say!(self, "[{}] Checking swift.conf md5sum", ptime(None));
        if self.verbose {
            say!(self, "-> On disk swift.conf md5sum: {}", conf_sum.as_deref().unwrap_or("None"));
        }
        let answers = self.scout(hosts, "swiftconfmd5").await;
        let (mut matches, mut errors) = (0, 0);
        for a in &answers {
            if a.result.is_err() {
                errors += 1;
                continue;
            }
            let Some(m) = self.object(a, &[]) else {
                errors += 1;
                continue;
            };
            let remote = m.iter().find(|(k, _)| k.rsplit('/').next() == Some("swift.conf")).map(|(_, v)| v);
            let remote_sum = remote.and_then(Value::as_str);
            if remote_sum.is_none() || remote_sum != conf_sum.as_deref() {
                say!(self, "!! {} ({}) doesn't match on disk md5sum", a.url, remote.map_or("None".into(), py_str));
            } else {
                matches += 1;
                if self.verbose {
                    say!(self, "-> {} matches.", a.url);
                }
            }
        }
        say!(self, "{}/{} hosts matched, {} error[s] while checking hosts.", matches, hosts.len(), errors);
        self.rule();
    }
}

/// Python's `d.get(key, default)` as a number: the default only when the
/// key is absent (a present `null` stays `None`).
fn get_or(m: &Map<String, Value>, key: &str, default: f64) -> Option<f64> {
    match m.get(key) {
        None => Some(default),
        v => number(v),
    }
}

/// The sum of every value named `key` at any depth (Swift's
/// `nested_get_value`): a parallel audit nests the figures per disk.
fn nested_sum(key: &str, v: &Value) -> f64 {
    let Value::Object(m) = v else { return 0.0 };
    let mut total = 0.0;
    for (k, v) in m {
        if v.is_object() {
            total += nested_sum(key, v);
        }
        if k == key {
            total += number(Some(v)).unwrap_or(0.0);
        }
    }
    total
}

/// The hex md5 of a file's bytes.
pub fn md5_file(path: &Path) -> std::io::Result<String> {
    let data = std::fs::read(path)?;
    Ok(Md5::digest(&data).iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_values_are_summed() {
        let v = json!({"disk1": {"passes": 2, "errors": 1}, "disk2": {"passes": 3}, "passes": 1});
        assert_eq!(nested_sum("passes", &v), 6.0);
        assert_eq!(nested_sum("errors", &v), 1.0);
        assert_eq!(nested_sum("quarantined", &v), 0.0);
    }

    #[test]
    fn get_or_keeps_a_present_null() {
        let m = json!({"a": null, "b": 2}).as_object().unwrap().clone();
        assert_eq!(get_or(&m, "a", 0.0), None);
        assert_eq!(get_or(&m, "b", 0.0), Some(2.0));
        assert_eq!(get_or(&m, "c", 0.0), Some(0.0));
    }
}
