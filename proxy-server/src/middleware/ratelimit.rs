//! `egg:swift#ratelimit`: slows writes down to configured rates by making
//! requests wait (and refuses with 498 one that would wait too long).
//!
//! Settings (Swift's): `account_ratelimit` (container PUTs and DELETEs per
//! second per account; 0 = off), `container_ratelimit_<size>` (object
//! PUT/POST/DELETE/COPY per second per container, by the container's
//! object count, interpolated linearly between the sizes given),
//! `container_listing_ratelimit_<size>` (container GETs, likewise),
//! `max_sleep_time_seconds` (60: a request that would wait longer gets
//! `498 Rate Limited`), `log_sleep_time_seconds` (log waits longer than
//! this; 0 = never), `rate_buffer_seconds` (5: how much unused rate may be
//! saved up for a burst), `clock_accuracy` (1000: ticks per second), and
//! the deprecated `account_whitelist` / `account_blacklist` (a
//! blacklisted account gets `497 Blacklisted` after a second). An account's
//! `X-Account-Sysmeta-Global-Write-Ratelimit` is `WHITELIST`, `BLACKLIST`,
//! or a rate for all of its writes together.
//!
//! # Counters live in each proxy
//!
//! Swift keeps the "next free slot" of each limit in memcache, shared by
//! every proxy. This proxy keeps them in its own memory instead (it runs no
//! memcache client; see `cache`), so each proxy enforces the limits on the
//! requests it sees: **behind a load balancer spreading requests over N
//! proxies, a client gets up to N times the configured rate.** Divide the
//! rates by the number of proxies when that matters; a client that sticks
//! to one proxy (keep-alive, source-IP affinity) is held to the rate as
//! configured. The counters of idle keys are dropped once they can no
//! longer delay anyone, so memory follows the number of active accounts
//! and containers. Waiting is a tokio sleep: no thread is blocked.

use super::{info, BoxFuture, Build, Handler, Next};
use crate::proxy::Proxy;
use common::config::Section;
use common::http::{self as h, Body};
use http::{Method, Request, Response, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `swift.source` of the middleware's info look-ups.
const SOURCE: &str = "RL";

/// How long a blacklisted account's requests wait before their 497.
const BLACKLIST_SLEEP: Duration = Duration::from_secs(1);

/// Prune idle counters when there are more than this many.
const PRUNE_AT: usize = 10_000;

/// Left in a request this middleware has judged, so that it is not limited
/// twice (a second `ratelimit` in the pipeline, or the subrequests of the
/// middlewares to its right, which carry it).
#[derive(Debug, Clone, Copy)]
struct RateLimited;

/// One `<prefix><size> = <rate>` line of limits, sorted by size.
#[derive(Debug, Clone, Default, PartialEq)]
struct SizeLimits(Vec<(u64, f64)>);

impl SizeLimits {
    fn from_section(section: &Section, prefix: &str) -> Result<SizeLimits, String> {
        let mut limits = Vec::new();
        for key in section.keys().filter(|k| k.starts_with(prefix)).map(str::to_string).collect::<Vec<_>>() {
            let size = key[prefix.len()..]
                .parse::<u64>()
                .map_err(|_| format!("{}: {key}: the size after {prefix} must be an integer", section.name()))?;
            let rate = section.get_f64(&key, 0.0).map_err(|e| e.to_string())?;
            limits.push((size, rate));
        }
        limits.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        Ok(SizeLimits(limits))
    }

    /// Swift's `get_maxrate`: requests per second for a container of
    /// `size` objects; `None` when no limit applies (or the size is 0).
    fn max_rate(&self, size: u64) -> Option<f64> {
        if size == 0 {
            return None;
        }
        let i = self.0.iter().rposition(|&(s, _)| s <= size)?;
        let (cur_size, cur_rate) = self.0[i];
        Some(match self.0.get(i + 1) {
            Some(&(next_size, next_rate)) => (size - cur_size) as f64 * (next_rate - cur_rate) / (next_size - cur_size) as f64 + cur_rate,
            None => cur_rate,
        })
    }

    fn to_json(&self) -> serde_json::Value {
        self.0.iter().map(|&(s, r)| serde_json::json!([s, r])).collect()
    }
}

#[derive(Debug, Clone)]
struct Settings {
    account_ratelimit: f64,
    max_sleep_time_seconds: f64,
    log_sleep_time_seconds: f64,
    clock_accuracy: i64,
    rate_buffer_seconds: i64,
    whitelist: Vec<String>,
    blacklist: Vec<String>,
    container_limits: SizeLimits,
    container_listing_limits: SizeLimits,
}

impl Settings {
    fn from_section(section: &Section) -> Result<Settings, String> {
        let err = |e: common::config::ConfigError| e.to_string();
        let clock_accuracy = section.get_i64("clock_accuracy", 1000).map_err(err)?;
        if clock_accuracy <= 0 {
            return Err(format!("{}: clock_accuracy must be positive", section.name()));
        }
        let whitelist = section.get_list("account_whitelist").map_err(err)?;
        let blacklist = section.get_list("account_blacklist").map_err(err)?;
        if !whitelist.is_empty() || !blacklist.is_empty() {
            eprintln!(
                "ratelimit: account_whitelist and account_blacklist are deprecated; set X-Account-Sysmeta-Global-Write-Ratelimit: WHITELIST or BLACKLIST on the accounts instead"
            );
        }
        Ok(Settings {
            account_ratelimit: section.get_f64("account_ratelimit", 0.0).map_err(err)?,
            max_sleep_time_seconds: section.get_f64("max_sleep_time_seconds", 60.0).map_err(err)?,
            log_sleep_time_seconds: section.get_f64("log_sleep_time_seconds", 0.0).map_err(err)?,
            clock_accuracy,
            rate_buffer_seconds: section.get_i64("rate_buffer_seconds", 5).map_err(err)?,
            whitelist,
            blacklist,
            container_limits: SizeLimits::from_section(section, "container_ratelimit_")?,
            container_listing_limits: SizeLimits::from_section(section, "container_listing_ratelimit_")?,
        })
    }
}

/// Why a request may not go on now.
#[derive(Debug, PartialEq)]
struct MaxSleepHit {
    /// Seconds it would have had to wait.
    need: f64,
}

/// The per-proxy counters: for each key, the clock tick (in
/// `1/clock_accuracy` seconds) at which the limit's next request is due.
#[derive(Default)]
struct Counters(Mutex<HashMap<String, i64>>);

impl Counters {
    /// Swift's `_get_sleep_time` on memcache's `incr`, here on a map: how
    /// long this request must wait for `key` at `max_rate` per second,
    /// taking its slot; or, past the maximum wait, no slot and an error.
    fn sleep_time(&self, s: &Settings, key: &str, max_rate: f64, now_m: i64) -> Result<f64, MaxSleepHit> {
        let accuracy = s.clock_accuracy;
        let per_request_m = (accuracy as f64 / max_rate).round() as i64;
        // A poisoned lock only means another request panicked mid-update;
        // the map is still a map.
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > PRUNE_AT {
            let horizon = now_m - s.rate_buffer_seconds * accuracy;
            map.retain(|_, due| *due >= horizon);
        }
        let running = map.entry(key.to_string()).or_insert(0);
        *running += per_request_m;
        let mut need_m = 0;
        if now_m - *running > s.rate_buffer_seconds * accuracy {
            *running = now_m + per_request_m;
        } else {
            need_m = (*running - now_m - per_request_m).max(0);
        }
        let max_sleep_m = s.max_sleep_time_seconds * accuracy as f64;
        if max_sleep_m - need_m as f64 <= accuracy as f64 * 0.01 {
            *running -= per_request_m;
            return Err(MaxSleepHit { need: need_m as f64 / accuracy as f64 });
        }
        Ok(need_m as f64 / accuracy as f64)
    }
}

pub struct RateLimit {
    settings: Settings,
    valid_api_versions: Vec<String>,
    counters: Counters,
    /// Each account's `X-Account-Sysmeta-Global-Write-Ratelimit`, as read
    /// at the instant kept with it: every request needs it, so it is read
    /// again only after `account_ttl` (the proxy's
    /// `recheck_account_existence`, as long as Swift trusts memcache).
    accounts: Mutex<HashMap<String, (Instant, Option<String>)>>,
    account_ttl: Duration,
    /// How long a blacklisted account's requests wait ([`BLACKLIST_SLEEP`]).
    blacklist_sleep: Duration,
    next: Next,
}

pub fn factory(section: &Section, proxy: &Proxy, next: Next, build: &mut Build) -> Result<Next, String> {
    let settings = Settings::from_section(section)?;
    build.capabilities.insert(
        "ratelimit".into(),
        serde_json::json!({
            "account_ratelimit": settings.account_ratelimit,
            "max_sleep_time_seconds": settings.max_sleep_time_seconds,
            "container_ratelimits": settings.container_limits.to_json(),
            "container_listing_ratelimits": settings.container_listing_limits.to_json(),
        }),
    );
    let valid_api_versions = proxy.swift.constraints.valid_api_versions.clone();
    Ok(Arc::new(RateLimit::new(settings, valid_api_versions, proxy.settings.recheck_account_existence, next)))
}

fn now_ticks(accuracy: i64) -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    (now * accuracy as f64).round() as i64
}

/// A write, in Swift's sense of the word for rate limits.
fn is_write(method: &Method) -> bool {
    matches!(method.as_str(), "PUT" | "DELETE" | "POST" | "COPY")
}

impl Handler for RateLimit {
    fn call(&self, mut req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            if req.extensions().get::<RateLimited>().is_some() {
                return self.next.call(req).await;
            }
            let Some(segs) = common::path::unquote(req.uri().path()).ok().and_then(|p| common::path::split_path(&p, 1, 4, true).ok())
            else {
                return self.next.call(req).await;
            };
            let mut it = segs.into_iter();
            let (version, account, container, object) =
                (it.next().flatten(), it.next().flatten(), it.next().flatten(), it.next().flatten());
            let (Some(version), Some(account)) = (version, account) else {
                return self.next.call(req).await;
            };
            if !self.valid_api_versions.contains(&version) {
                return self.next.call(req).await;
            }
            req.extensions_mut().insert(RateLimited);
            let (parts, body) = req.into_parts();
            if let Some(refusal) = self.limit(&parts, &version, &account, container.as_deref(), object.as_deref()).await {
                return refusal;
            }
            self.next.call(Request::from_parts(parts, body)).await
        })
    }
}

impl RateLimit {
    fn new(settings: Settings, valid_api_versions: Vec<String>, account_ttl: Duration, next: Next) -> RateLimit {
        RateLimit {
            settings,
            valid_api_versions,
            counters: Counters::default(),
            accounts: Mutex::default(),
            account_ttl,
            blacklist_sleep: BLACKLIST_SLEEP,
            next,
        }
    }

    /// The account's global write rate limit setting (sysmeta).
    async fn global_ratelimit(&self, parts: &http::request::Parts, version: &str, account: &str) -> Option<String> {
        {
            let cache = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, value)) = cache.get(account).filter(|(at, _)| at.elapsed() < self.account_ttl) {
                let _ = at;
                return value.clone();
            }
        }
        let value = info(&self.next, parts, &format!("/{version}/{account}"), SOURCE)
            .await
            .and_then(|hm| h::header_str(&hm, "x-account-sysmeta-global-write-ratelimit").map(str::to_string));
        let mut cache = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > PRUNE_AT {
            let ttl = self.account_ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        cache.insert(account.to_string(), (Instant::now(), value.clone()));
        value
    }

    /// Waits as the limits require; the refusal when the request may not go on.
    async fn limit(
        &self,
        parts: &http::request::Parts,
        version: &str,
        account: &str,
        container: Option<&str>,
        object: Option<&str>,
    ) -> Option<Response<Body>> {
        let s = &self.settings;
        let global = self.global_ratelimit(parts, version, account).await;
        if s.whitelist.iter().any(|a| a == account) || global.as_deref() == Some("WHITELIST") {
            return None;
        }
        if s.blacklist.iter().any(|a| a == account) || global.as_deref() == Some("BLACKLIST") {
            eprintln!("ratelimit: returning 497 because of blacklisting: {account}");
            tokio::time::sleep(self.blacklist_sleep).await;
            let mut resp = h::text(StatusCode::OK, "Your account has been blacklisted");
            *resp.status_mut() = StatusCode::from_u16(497).unwrap_or(StatusCode::FORBIDDEN);
            return Some(resp);
        }
        for (key, rate) in self.keys(parts, version, account, container, object, global.as_deref()).await {
            match self.counters.sleep_time(s, &key, rate, now_ticks(s.clock_accuracy)) {
                Ok(need) => {
                    if s.log_sleep_time_seconds > 0.0 && need > s.log_sleep_time_seconds {
                        eprintln!(
                            "ratelimit: sleep log: {need} for {account}/{}/{}",
                            container.unwrap_or("None"),
                            object.unwrap_or("None")
                        );
                    }
                    if need > 0.0 {
                        tokio::time::sleep(Duration::from_secs_f64(need)).await;
                    }
                }
                Err(hit) => {
                    let path = [Some(account), container, object].into_iter().flatten().collect::<Vec<_>>().join("/");
                    eprintln!("ratelimit: returning 498 for {} to {path}: max sleep time exceeded: {:.2}", parts.method, hit.need);
                    let mut resp = h::text(StatusCode::OK, "Slow down");
                    *resp.status_mut() = StatusCode::from_u16(498).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
                    return Some(resp);
                }
            }
        }
        None
    }

    /// Swift's `get_ratelimitable_key_tuples`: the limits that apply, in
    /// the order they are checked, as (counter key, requests per second).
    async fn keys(
        &self,
        parts: &http::request::Parts,
        version: &str,
        account: &str,
        container: Option<&str>,
        object: Option<&str>,
        global: Option<&str>,
    ) -> Vec<(String, f64)> {
        let s = &self.settings;
        let method = &parts.method;
        let mut keys = Vec::new();
        if let Some(container) = container {
            if s.account_ratelimit > 0.0 && object.is_none() && (method == Method::PUT || method == Method::DELETE) {
                keys.push((format!("ratelimit/{account}"), s.account_ratelimit));
            }
            let limits = match object {
                Some(_) if is_write(method) => Some((&s.container_limits, "ratelimit")),
                None if method == Method::GET => Some((&s.container_listing_limits, "ratelimit_listing")),
                _ => None,
            };
            // The container's size costs a look-up: only when a limit could apply.
            if let Some((limits, kind)) = limits.filter(|(l, _)| !l.0.is_empty()) {
                let size = info(&self.next, parts, &format!("/{version}/{account}/{container}"), SOURCE)
                    .await
                    .and_then(|hm| h::header_str(&hm, "x-container-object-count").and_then(|v| v.trim().parse::<u64>().ok()))
                    .unwrap_or(0);
                if let Some(rate) = limits.max_rate(size).filter(|r| *r > 0.0) {
                    keys.push((format!("{kind}/{account}/{container}"), rate));
                }
            }
        }
        if is_write(method) {
            if let Some(rate) = global.and_then(|g| g.trim().parse::<f64>().ok()).filter(|r| *r > 0.0 && r.is_finite()) {
                keys.push((format!("ratelimit/global-write/{account}"), rate));
            }
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{request, Recorder, Seen};
    use super::*;
    use common::config::ConfigFile;
    use http::HeaderValue;

    fn settings(extra: &str) -> Settings {
        let conf = ConfigFile::parse(&format!("[filter:rl]\nuse = egg:swift#ratelimit\n{extra}"), "p.conf").unwrap();
        Settings::from_section(&conf.filter_section("rl").unwrap()).unwrap()
    }

    /// An app whose containers hold `objects` objects and whose accounts
    /// carry `global` as their global write rate limit.
    fn app(objects: &'static str, global: Option<&'static str>) -> Arc<Recorder> {
        Recorder::new(move |seen: &Seen| {
            let mut r = h::status(StatusCode::NO_CONTENT);
            if seen.method == Method::HEAD {
                r.headers_mut().insert("x-container-object-count", HeaderValue::from_static(objects));
                if let Some(g) = global {
                    r.headers_mut().insert("x-account-sysmeta-global-write-ratelimit", HeaderValue::from_static(g));
                }
            }
            r
        })
    }

    fn limiter(extra: &str, next: Arc<Recorder>) -> RateLimit {
        RateLimit::new(settings(extra), vec!["v1".into()], Duration::from_secs(60), next)
    }

    #[test]
    fn size_limits_interpolate() {
        let s = settings("container_ratelimit_100 = 100\ncontainer_ratelimit_200 = 50\ncontainer_ratelimit_500 = 20\n");
        let l = &s.container_limits;
        assert_eq!(l.max_rate(0), None);
        assert_eq!(l.max_rate(50), None);
        assert_eq!(l.max_rate(100), Some(100.0));
        assert_eq!(l.max_rate(150), Some(75.0));
        assert_eq!(l.max_rate(350), Some(35.0));
        assert_eq!(l.max_rate(10_000), Some(20.0));
        assert_eq!(l.to_json(), serde_json::json!([[100, 100.0], [200, 50.0], [500, 20.0]]));
    }

    #[test]
    fn requests_queue_at_the_rate_then_hit_the_max_sleep() {
        let s = settings("max_sleep_time_seconds = 1\n");
        let c = Counters::default();
        let now = 1_000_000;
        // 10 per second: each request is 100 ticks after the one before.
        let waits: Vec<f64> = (0..9).map(|_| c.sleep_time(&s, "k", 10.0, now).unwrap()).collect();
        assert_eq!(waits, vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]);
        assert_eq!(c.sleep_time(&s, "k", 10.0, now).unwrap(), 0.9);
        assert_eq!(c.sleep_time(&s, "k", 10.0, now), Err(MaxSleepHit { need: 1.0 }));
        // The refused request took no slot; time passing frees them.
        assert_eq!(c.sleep_time(&s, "k", 10.0, now + 1000).unwrap(), 0.0);
        // Other keys are independent.
        assert_eq!(c.sleep_time(&s, "other", 10.0, now).unwrap(), 0.0);
    }

    #[tokio::test]
    async fn container_puts_are_limited_and_refused_past_the_max_sleep() {
        let next = app("1000", None);
        let m = limiter("account_ratelimit = 1\nmax_sleep_time_seconds = 0.5\n", next.clone());
        assert_eq!(m.call(request("PUT", "/v1/a/c1", &[], "")).await.status(), StatusCode::NO_CONTENT);
        let second = m.call(request("PUT", "/v1/a/c2", &[], "")).await;
        assert_eq!(second.status().as_u16(), 498);
        // Object writes and reads are not held to the account rate.
        assert_eq!(m.call(request("PUT", "/v1/a/c1/o", &[], "")).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(m.call(request("GET", "/v1/a/c1", &[], "")).await.status(), StatusCode::NO_CONTENT);
        // Not an API path: untouched.
        assert_eq!(m.call(request("PUT", "/info", &[], "")).await.status(), StatusCode::NO_CONTENT);
    }

    #[tokio::test]
    async fn object_writes_follow_the_container_size() {
        let next = app("1000", None);
        let m = limiter("container_ratelimit_500 = 1\ncontainer_listing_ratelimit_2000 = 1\nmax_sleep_time_seconds = 0.5\n", next.clone());
        assert_eq!(m.call(request("PUT", "/v1/a/c/o1", &[], "")).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(m.call(request("DELETE", "/v1/a/c/o1", &[], "")).await.status().as_u16(), 498);
        assert_eq!(m.call(request("PUT", "/v1/a/other/o1", &[], "")).await.status(), StatusCode::NO_CONTENT);
        // The listing limit starts at 2000 objects: these listings are free.
        for _ in 0..3 {
            assert_eq!(m.call(request("GET", "/v1/a/c", &[], "")).await.status(), StatusCode::NO_CONTENT);
        }
        let heads = next.seen().iter().filter(|s| s.method == Method::HEAD && s.source == Some(SOURCE)).count();
        assert!(heads >= 3);
    }

    #[tokio::test]
    async fn lists_and_account_sysmeta() {
        let m = limiter("account_ratelimit = 1\nmax_sleep_time_seconds = 0.5\naccount_whitelist = a\n", app("0", None));
        for _ in 0..3 {
            assert_eq!(m.call(request("PUT", "/v1/a/c", &[], "")).await.status(), StatusCode::NO_CONTENT);
        }
        let m = limiter("account_ratelimit = 1\nmax_sleep_time_seconds = 0.5\n", app("0", Some("WHITELIST")));
        for _ in 0..3 {
            assert_eq!(m.call(request("PUT", "/v1/a/c", &[], "")).await.status(), StatusCode::NO_CONTENT);
        }
        let m = limiter("max_sleep_time_seconds = 0.5\n", app("0", Some("1")));
        assert_eq!(m.call(request("POST", "/v1/a/c/o", &[], "")).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(m.call(request("POST", "/v1/a/c/o", &[], "")).await.status().as_u16(), 498);
    }

    #[tokio::test]
    async fn a_blacklisted_account_is_refused() {
        let mut m = limiter("account_blacklist = a\n", app("0", None));
        m.blacklist_sleep = Duration::ZERO;
        let resp = m.call(request("GET", "/v1/a", &[], "")).await;
        assert_eq!(resp.status().as_u16(), 497);
        let mut m = limiter("", app("0", Some("BLACKLIST")));
        m.blacklist_sleep = Duration::ZERO;
        assert_eq!(m.call(request("GET", "/v1/b/c", &[], "")).await.status().as_u16(), 497);
    }
}
