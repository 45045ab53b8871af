//! The proxy's options, under Swift's names, from `[app:proxy-server]`
//! (with `[DEFAULT]`) and `[filter:tempauth]`.

use common::config::{ConfigError, ConfigFile, Section};
use std::path::PathBuf;
use std::time::Duration;

/// Settings of `[app:proxy-server]`.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    pub bind_ip: String,
    pub bind_port: u16,
    pub swift_dir: PathBuf,
    pub log_name: String,
    pub log_level: common::log::Level,
    /// Where and how to log (`log_*` options).
    pub log: common::log::LogSettings,
    /// Create an account on first container PUT (and fake empty listings
    /// for missing accounts).
    pub account_autocreate: bool,
    /// Allow account PUT and DELETE through the API (reseller admins).
    pub allow_account_management: bool,
    pub conn_timeout: Duration,
    pub node_timeout: Duration,
    /// Client socket deadlines and the connection cap.
    pub connections: common::server::ConnectionLimits,
    pub post_quorum_timeout: Duration,
    /// Errors before a node is skipped, and for how long.
    pub error_suppression_limit: u32,
    pub error_suppression_interval: Duration,
    /// Nodes tried per request: `N * replicas` (Swift's default `2 * replicas`).
    pub request_node_count_factor: usize,
    /// Seconds account/container existence is cached.
    pub recheck_account_existence: Duration,
    pub recheck_container_existence: Duration,
    pub object_chunk_size: usize,
    pub client_chunk_size: usize,
    pub expose_info: bool,
    pub allow_open_expired: bool,
    pub strict_cors_mode: bool,
    /// Origins allowed for every container (`cors_allow_origin`).
    pub cors_allow_origin: Vec<String>,
    pub cors_expose_headers: Vec<String>,
    pub graceful_shutdown_timeout: Duration,
    pub log_requests: bool,
    /// The proxy app's own metrics (Swift's `proxy-server.errors`,
    /// `<type>.handoff_count`, ...), named `<log_name>.<metric>`; `None`
    /// without `log_statsd_host`. The request metrics come from
    /// proxy_logging, which reads its own section.
    pub statsd: Option<common::statsd::StatsdClient>,
}

impl ProxySettings {
    /// Reads `[app:proxy-server]` (or the app the pipeline ends with).
    pub fn from_config(conf: &ConfigFile) -> Result<ProxySettings, ConfigError> {
        let app = conf
            .pipeline()
            .and_then(|p| p.last().cloned())
            .and_then(|name| conf.app_section(&name))
            .or_else(|| conf.app_section("proxy-server"))
            .unwrap_or_else(|| conf.defaults());
        Self::from_section(&app)
    }

    fn from_section(s: &Section) -> Result<ProxySettings, ConfigError> {
        let secs = |key: &str, default: f64| -> Result<Duration, ConfigError> {
            let v = s.get_f64(key, default)?;
            if v < 0.0 {
                return Err(s.value_error(key, &v.to_string(), "a non-negative number of seconds"));
            }
            Ok(Duration::from_secs_f64(v))
        };
        let level = s.get_str("log_level", "INFO")?;
        let port = s.get_u64("bind_port", 8080)?;
        let node_count = s.get_str("request_node_count", "2 * replicas")?;
        let factor = parse_node_count(&node_count).ok_or_else(|| s.value_error("request_node_count", &node_count, "'<N> * replicas'"))?;
        common::server::mark_process_options(s);
        Ok(ProxySettings {
            bind_ip: s.get_str("bind_ip", "0.0.0.0")?,
            bind_port: u16::try_from(port).map_err(|_| s.value_error("bind_port", &port.to_string(), "a TCP port"))?,
            swift_dir: PathBuf::from(s.get_str("swift_dir", "/etc/swift")?),
            log_name: s.get_str("log_name", "proxy-server")?,
            log: common::log::LogSettings::from_section(s, "proxy-server")?,
            log_level: common::log::Level::parse(&level)
                .ok_or_else(|| s.value_error("log_level", &level, "DEBUG, INFO, WARNING or ERROR"))?,
            account_autocreate: s.get_bool("account_autocreate", false)?,
            allow_account_management: s.get_bool("allow_account_management", false)?,
            conn_timeout: secs("conn_timeout", 0.5)?,
            node_timeout: secs("node_timeout", 10.0)?,
            connections: common::server::ConnectionLimits::from_section(s)?,
            post_quorum_timeout: secs("post_quorum_timeout", 0.5)?,
            error_suppression_limit: s.get_u64("error_suppression_limit", 10)? as u32,
            error_suppression_interval: secs("error_suppression_interval", 60.0)?,
            request_node_count_factor: factor,
            recheck_account_existence: secs("recheck_account_existence", 60.0)?,
            recheck_container_existence: secs("recheck_container_existence", 60.0)?,
            object_chunk_size: s.get_usize("object_chunk_size", 65536)?.max(1),
            client_chunk_size: s.get_usize("client_chunk_size", 65536)?.max(1),
            expose_info: s.get_bool("expose_info", true)?,
            allow_open_expired: s.get_bool("allow_open_expired", false)?,
            strict_cors_mode: s.get_bool("strict_cors_mode", true)?,
            cors_allow_origin: s.get_list("cors_allow_origin")?,
            cors_expose_headers: s.get_list("cors_expose_headers")?,
            graceful_shutdown_timeout: secs("graceful_shutdown_timeout", 30.0)?,
            log_requests: s.get_bool("log_requests", true)?,
            statsd: common::statsd::StatsdClient::from_section(s, &s.get_str("log_name", "proxy-server")?)?,
        })
    }
}

/// `request_node_count = 2 * replicas` (or a plain number, read as that
/// many times one replica set).
fn parse_node_count(v: &str) -> Option<usize> {
    let v = v.trim();
    if let Some((n, rest)) = v.split_once('*') {
        if rest.trim() == "replicas" {
            return n.trim().parse().ok().filter(|n| *n > 0);
        }
        return None;
    }
    v.parse::<usize>().ok().filter(|n| *n > 0).map(|n| n.div_ceil(3).max(1))
}

/// One tempauth user: `user_<account>_<user> = <key> [groups...] [url]`.
#[derive(Debug, Clone)]
pub struct TempAuthUser {
    pub account: String,
    pub user: String,
    pub key: String,
    /// `.admin`, `.reseller_admin`, `.reseller_reader` and plain groups.
    pub groups: Vec<String>,
    /// An explicit storage URL, when configured.
    pub storage_url: Option<String>,
}

/// Settings of `[filter:tempauth]`.
#[derive(Debug, Clone)]
pub struct TempAuthSettings {
    /// Reseller prefixes with their trailing `_` (`AUTH_`, `SERVICE_`).
    pub reseller_prefixes: Vec<String>,
    /// `<PREFIX>_require_group` per prefix.
    pub require_group: Vec<(String, String)>,
    pub auth_prefix: String,
    pub token_life: Duration,
    pub storage_url_scheme: Option<String>,
    pub users: Vec<TempAuthUser>,
    /// Key that signs tokens; every proxy sharing the config must agree.
    pub token_secret: Option<String>,
}

impl TempAuthSettings {
    /// Reads a tempauth filter's section (`use = egg:swift#tempauth`,
    /// whatever the section's name).
    pub fn from_section(s: &Section) -> Result<TempAuthSettings, ConfigError> {
        let prefixes: Vec<String> = s
            .get_list("reseller_prefix")
            .map(|l| if l.is_empty() { vec!["AUTH".to_string()] } else { l })?
            .into_iter()
            .map(|p| {
                let p = p.trim().trim_matches('\'').trim_matches('"').to_string();
                if p.is_empty() || p.ends_with('_') {
                    p
                } else {
                    format!("{p}_")
                }
            })
            .collect();
        let mut require_group = Vec::new();
        for p in &prefixes {
            let key = format!("{p}require_group");
            if let Some(v) = s.get(&key) {
                require_group.push((p.clone(), v.to_string()));
            }
        }
        let mut auth_prefix = s.get_str("auth_prefix", "/auth/")?;
        if !auth_prefix.starts_with('/') {
            auth_prefix.insert(0, '/');
        }
        if !auth_prefix.ends_with('/') {
            auth_prefix.push('/');
        }
        let mut users = Vec::new();
        for (key, value) in s.iter() {
            let Some(rest) = key.strip_prefix("user_") else { continue };
            s.mark_used(key);
            // user_<account>_<user>: the account may not contain '_' in this
            // form (Swift's user64_ form is for names that do).
            let Some((account, user)) = rest.split_once('_') else {
                return Err(s.value_error(key, value, "a key named user_<account>_<user>"));
            };
            let mut words = value.split_whitespace();
            let Some(user_key) = words.next() else {
                return Err(s.value_error(key, value, "'<key> [group ...] [storage url]'"));
            };
            let mut groups = Vec::new();
            let mut storage_url = None;
            for w in words {
                if w.starts_with("http://") || w.starts_with("https://") {
                    storage_url = Some(w.to_string());
                } else {
                    groups.push(w.to_string());
                }
            }
            users.push(TempAuthUser {
                account: account.to_string(),
                user: user.to_string(),
                key: user_key.to_string(),
                groups,
                storage_url,
            });
        }
        let token_life = s.get_f64("token_life", 86400.0)?;
        Ok(TempAuthSettings {
            reseller_prefixes: prefixes,
            require_group,
            auth_prefix,
            token_life: Duration::from_secs_f64(token_life.max(1.0)),
            storage_url_scheme: s.get("storage_url_scheme").map(str::to_string).filter(|v| v != "default"),
            users,
            token_secret: s.get("token_secret").map(str::to_string),
        })
    }
}
