//! The HTTP scaffold of the storage servers: settings from the config file,
//! the accept loop, `OPTIONS` and `405` handling, the access log, and a
//! graceful shutdown on SIGTERM.

use crate::backend_headers as bh;
use crate::config::{ConfigError, ConfigFile, Section};
use crate::http::{self as h, Body};
use crate::log;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Settings every storage server takes from its config file, under
/// Swift's option names (`[DEFAULT]` and the `[app:<type>-server]` section).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub bind_ip: String,
    pub bind_port: u16,
    pub devices: PathBuf,
    pub mount_check: bool,
    pub swift_dir: PathBuf,
    pub log_name: String,
    pub log_level: log::Level,
    /// Whether to write the access log (Swift's `log_requests`).
    pub log_requests: bool,
    /// Seconds to wait for a backend connection (server-to-server calls).
    pub conn_timeout: Duration,
    /// Seconds to wait for a backend's answer or next chunk.
    pub node_timeout: Duration,
    /// Client socket deadlines and the connection cap.
    pub connections: ConnectionLimits,
    /// Blocking disk operations one device runs at once.
    pub threads_per_disk: usize,
    /// `None`: serve both client and replication verbs (Swift's default);
    /// `Some(true)`: replication verbs only; `Some(false)`: none of them.
    pub replication_server: Option<bool>,
    /// How long SIGTERM waits for in-flight requests.
    pub graceful_shutdown_timeout: Duration,
    /// Where daemons and recon share their figures.
    pub recon_cache_path: PathBuf,
    /// The recon middleware's settings when `[pipeline:main]` names it
    /// (Swift's `pipeline = recon <type>-server`); `None` turns `/recon/*`
    /// off, as in Swift.
    pub recon: Option<crate::recon::ReconSettings>,
    /// The filters of `[pipeline:main]` before the app, in order.
    pub filters: Vec<crate::pipeline::StorageFilter>,
    /// Filters of the pipeline this server skips (`backend_ratelimit`,
    /// `xprofile`), for a warning at start-up.
    pub skipped_filters: Vec<String>,
}

impl ServerSettings {
    /// Reads the settings of server `server_type` (`object-server`, ...)
    /// from a loaded config file; `default_port` is Swift's port for it.
    pub fn from_config(conf: &ConfigFile, server_type: &str, default_port: u16) -> Result<ServerSettings, ConfigError> {
        let section = conf.app_section(server_type).unwrap_or_else(|| conf.defaults());
        let mut settings = Self::from_section(&section, server_type, default_port)?;
        settings.recon = crate::recon::ReconSettings::from_config(conf)?;
        let (filters, skipped) = crate::pipeline::storage_filters(conf)?;
        settings.filters = filters;
        settings.skipped_filters = skipped.into_iter().map(|f| format!("[filter:{}] (egg:swift#{})", f.name, f.entry_point)).collect();
        Ok(settings)
    }

    /// Reads the settings from one effective section (no pipeline, so recon
    /// stays off).
    pub fn from_section(s: &Section, server_type: &str, default_port: u16) -> Result<ServerSettings, ConfigError> {
        let secs = |key: &str, default: f64| -> Result<Duration, ConfigError> {
            let v = s.get_f64(key, default)?;
            Ok(Duration::from_secs_f64(v.max(0.0)))
        };
        let level = s.get_str("log_level", "INFO")?;
        let port = s.get_u64("bind_port", default_port as u64)?;
        let replication_server = match s.get("replication_server") {
            None => None,
            Some(_) => Some(s.get_bool("replication_server", false)?),
        };
        Ok(ServerSettings {
            bind_ip: s.get_str("bind_ip", "0.0.0.0")?,
            bind_port: u16::try_from(port).map_err(|_| s.value_error("bind_port", &port.to_string(), "a TCP port"))?,
            devices: PathBuf::from(s.get_str("devices", "/srv/node")?),
            mount_check: s.get_bool("mount_check", true)?,
            swift_dir: PathBuf::from(s.get_str("swift_dir", "/etc/swift")?),
            log_name: s.get_str("log_name", server_type)?,
            log_level: log::Level::parse(&level).ok_or_else(|| s.value_error("log_level", &level, "DEBUG, INFO, WARNING or ERROR"))?,
            log_requests: s.get_bool("log_requests", true)?,
            conn_timeout: secs("conn_timeout", 0.5)?,
            node_timeout: secs("node_timeout", 3.0)?,
            connections: ConnectionLimits::from_section(s)?,
            threads_per_disk: s.get_usize("threads_per_disk", 16)?.max(1),
            replication_server,
            graceful_shutdown_timeout: secs("graceful_shutdown_timeout", 30.0)?,
            recon_cache_path: PathBuf::from(s.get_str("recon_cache_path", "/var/cache/swift")?),
            recon: None,
            filters: Vec::new(),
            skipped_filters: Vec::new(),
        })
    }
}

/// How a server treats its client connections, under Swift's option names
/// (`swift/common/wsgi.py`): every server, the proxy included, reads them
/// from its app section (with `[DEFAULT]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionLimits {
    /// Each read from and each write to a client socket must make progress
    /// within this (Swift's `client_timeout`, eventlet's socket timeout): a
    /// stalled upload or a client that stops reading is cut off.
    pub client_timeout: Duration,
    /// The longest a connection waits for a request's headers, new or kept
    /// alive, counted from when it opened or its last response ended
    /// (Swift's `keepalive_timeout`, which defaults to `client_timeout`).
    /// Unlike eventlet, the whole header must arrive in this time, not just
    /// each piece of it, so a client trickling bytes cannot hold a
    /// connection. `None` (`keepalive_timeout = 0`): no keep-alive; a new
    /// connection's headers then get `client_timeout`.
    pub keepalive_timeout: Option<Duration>,
    /// Connections served at once (Swift's `max_clients`); further ones
    /// wait in the listen backlog until one closes.
    pub max_clients: usize,
}

impl ConnectionLimits {
    /// Reads `client_timeout`, `keepalive_timeout` and `max_clients`.
    pub fn from_section(s: &Section) -> Result<ConnectionLimits, ConfigError> {
        let positive_secs = |key: &str, default: f64| -> Result<f64, ConfigError> {
            let v = s.get_f64(key, default)?;
            if !(v >= 0.0 && v.is_finite()) {
                return Err(s.value_error(key, &v.to_string(), "a non-negative number of seconds"));
            }
            Ok(v)
        };
        let client = positive_secs("client_timeout", 60.0)?;
        if client == 0.0 {
            return Err(s.value_error("client_timeout", "0", "a positive number of seconds"));
        }
        let keepalive = positive_secs("keepalive_timeout", client)?;
        let max_clients = s.get_usize("max_clients", 1024)?;
        if max_clients == 0 {
            return Err(s.value_error("max_clients", "0", "at least 1"));
        }
        Ok(ConnectionLimits {
            client_timeout: Duration::from_secs_f64(client),
            keepalive_timeout: (keepalive > 0.0).then(|| Duration::from_secs_f64(keepalive)),
            max_clients,
        })
    }
}

/// Facts about one request that handlers and the access log share.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub remote: SocketAddr,
    pub trans_id: String,
    pub started: Instant,
}

/// A storage server's request handling, below the scaffold.
pub trait Service: Send + Sync + 'static {
    /// `object-server`, `container-server` or `account-server`.
    fn server_type(&self) -> &'static str;

    /// Every verb the server answers, `OPTIONS` included (sorted when
    /// reported in `Allow`).
    fn allowed_methods(&self) -> Vec<&'static str>;

    /// Whether the service answers `OPTIONS` itself (the proxy does: CORS
    /// preflight); storage servers leave it to the scaffold.
    fn handles_options(&self) -> bool {
        false
    }

    /// Handles a request whose method is allowed (and is not `OPTIONS`,
    /// unless `handles_options`), after the pipeline's filters.
    fn handle(self: Arc<Self>, req: Request<Body>, info: RequestInfo) -> impl Future<Output = Response<Body>> + Send;

    /// The filters of the server's `[pipeline:main]`, in order, and the
    /// recon endpoints its `recon` filter serves.
    fn filters(&self) -> (&[crate::pipeline::StorageFilter], Option<Arc<crate::recon::Recon>>) {
        (&[], None)
    }

    /// What requests pass through: the filters around `handle` (the proxy
    /// builds its own, longer line).
    fn pipeline(self: Arc<Self>) -> crate::pipeline::Next
    where
        Self: Sized,
    {
        let (filters, recon) = self.filters();
        let filters = filters.to_vec();
        crate::pipeline::build_storage(&filters, recon, Arc::new(crate::pipeline::ServiceApp(self)))
    }
}

/// Logs the pipeline filters a storage server runs without.
pub fn warn_skipped_filters(settings: &ServerSettings) {
    for f in &settings.skipped_filters {
        log::warning(&format!("{f} is not implemented by this server; running without it"));
    }
}

/// The `Allow` header value: sorted, comma and space separated.
pub fn allow_header(methods: &[&str]) -> String {
    let mut m: Vec<&str> = methods.to_vec();
    m.sort_unstable();
    m.dedup();
    m.join(", ")
}

/// Answers `OPTIONS` (any path) and unknown verbs, then hands the request to
/// the service; logs the access line.
async fn dispatch<S: Service>(
    service: Arc<S>,
    pipeline: crate::pipeline::Next,
    req: Request<Incoming>,
    remote: SocketAddr,
    log_requests: bool,
) -> Response<Body> {
    let started = Instant::now();
    let trans_id = h::header_str(req.headers(), bh::TRANS_ID).map(str::to_string).unwrap_or_else(new_trans_id);
    let method = req.method().clone();
    let path = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let referer = h::header_str(req.headers(), "referer").map(str::to_string);
    let agent = h::header_str(req.headers(), "user-agent").map(str::to_string);
    let policy = h::header_str(req.headers(), bh::BACKEND_STORAGE_POLICY_INDEX).map(str::to_string);
    let allowed = service.allowed_methods();
    let mut resp = if method == Method::OPTIONS && !service.handles_options() {
        let mut r = h::status(StatusCode::OK);
        let hd = r.headers_mut();
        hd.insert(http::header::ALLOW, HeaderValue::from_str(&allow_header(&allowed)).expect("method names are ASCII"));
        hd.insert(
            http::header::SERVER,
            HeaderValue::from_str(&format!("{}/{}", service.server_type(), crate::VERSION)).expect("version is ASCII"),
        );
        hd.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
        r
    } else if !allowed.contains(&method.as_str()) {
        let mut r = h::text(StatusCode::METHOD_NOT_ALLOWED, format!("Method {method} is not allowed"));
        r.headers_mut().insert(http::header::ALLOW, HeaderValue::from_str(&allow_header(&allowed)).expect("method names are ASCII"));
        r
    } else {
        let info = RequestInfo { remote, trans_id: trans_id.clone(), started };
        let mut req = req.map(|b| http_body_util::BodyExt::boxed(http_body_util::BodyExt::map_err(b, |e| Box::new(e) as h::BoxError)));
        req.extensions_mut().insert(info);
        pipeline.call(req).await
    };
    // The proxy's catch_errors middleware gives its own id.
    if let (Ok(v), false) = (HeaderValue::from_str(&trans_id), resp.headers().contains_key(bh::TRANS_ID)) {
        resp.headers_mut().insert(bh::TRANS_ID, v);
    }
    if log_requests {
        let bytes = resp
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .filter(|_| method != Method::HEAD);
        log::info(&log::access_line(&log::AccessEntry {
            remote_addr: &remote.ip().to_string(),
            method: method.as_str(),
            path: &path,
            status: resp.status().as_u16(),
            bytes,
            referer: referer.as_deref(),
            trans_id: Some(&trans_id),
            user_agent: agent.as_deref(),
            duration: started.elapsed(),
            policy_index: policy.as_deref(),
        }));
    }
    resp
}

/// A transaction id in Swift's shape: `tx` + 21 hex digits + `-` + hex time.
pub fn new_trans_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let r: u128 = rand::random();
    format!("tx{:021x}-{:010x}", r & ((1u128 << 84) - 1), now)
}

/// Serves connections from `listener` until `shutdown` resolves, then stops
/// accepting and waits up to `grace` for in-flight requests. `limits` bound
/// what each connection may hold and how many are served at once.
pub async fn serve<S: Service>(
    service: Arc<S>,
    listener: TcpListener,
    limits: &ConnectionLimits,
    log_requests: bool,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let pipeline = service.clone().pipeline();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper enforces the header timeout only when it has a timer. Its timer
    // starts when a connection opens and again each time one goes idle, so
    // it bounds both a slow request head and an idle keep-alive connection.
    builder.timer(hyper_util::rt::TokioTimer::new());
    builder.header_read_timeout(limits.keepalive_timeout.unwrap_or(limits.client_timeout));
    builder.keep_alive(limits.keepalive_timeout.is_some());
    // A client may send its request and then shut down its side (legal in
    // HTTP/1.1, and what `nc -N` does): it still gets its answer, as from
    // Swift. (Without this, hyper takes the EOF for an abort.)
    builder.half_close(true);
    // Swift allows 90 metadata items plus its own headers; hyper's default
    // of 100 headers would refuse such requests before they reach us.
    builder.max_headers(256);
    // Swift (eventlet) writes header names in Title-Case; clients and
    // Swift's own tests compare them case-sensitively.
    builder.title_case_headers(true);
    // Past max_clients, stop accepting: new connections wait in the kernel's
    // backlog instead of each taking a task, buffers and a descriptor.
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_clients));
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off briefly rather than spin.
                    log::error(&format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // Every write must make progress within client_timeout, or a client
        // that stops reading a download would hold it forever. Reads get a
        // backstop a second longer than any read deadline above it (handlers
        // time each body chunk themselves and answer 408; hyper times the
        // head): it catches the rest, such as a body hyper drains after a
        // handler ignored it.
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        let longest_read = limits.client_timeout.max(limits.keepalive_timeout.unwrap_or_default());
        stream.set_read_timeout(Some(longest_read + Duration::from_secs(1)));
        stream.set_write_timeout(Some(limits.client_timeout));
        let svc = service.clone();
        let pipeline = pipeline.clone();
        let handler = service_fn(move |req| {
            let (svc, pipeline) = (svc.clone(), pipeline.clone());
            async move { Ok::<_, std::convert::Infallible>(dispatch(svc, pipeline, req, remote, log_requests).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(Box::pin(stream)), handler);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        log::warning("graceful shutdown timed out; dropping in-flight requests");
    }
}

/// Resolves on SIGTERM or SIGINT.
///
/// SIGHUP (Swift's reload, and what log rotation often sends) must not kill
/// a server that is taking writes: until reloads are implemented it is
/// logged and the process goes on with the config it has.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    let mut hup = signal(SignalKind::hangup()).expect("installing a SIGHUP handler");
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => log::warning("SIGHUP: reloading is not implemented; going on with the configuration loaded at start-up"),
        }
    }
}

/// The config file named on a server's command line (`swift-<name>-server
/// CONFIG [-v|--verbose]`, Swift's form). `-h`/`--help` prints the usage
/// and exits 0; a missing config or an unknown option exits 2 with the
/// usage, so `--help` is never taken for a file name.
pub fn config_path_from_args(binary: &str) -> PathBuf {
    let usage = format!("Usage: {binary} CONFIG [-v|--verbose]\n\nRuns the server with the Swift-style INI config file CONFIG.");
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match parse_server_args(&args) {
        Ok(ServerArgs::Help) => {
            println!("{usage}");
            std::process::exit(0)
        }
        Ok(ServerArgs::Config(path)) => path,
        Err(e) => {
            eprintln!("{e}\n{usage}");
            std::process::exit(2)
        }
    }
}

/// What a server's command line asks for.
#[derive(Debug, PartialEq)]
enum ServerArgs {
    Help,
    Config(PathBuf),
}

fn parse_server_args(args: &[std::ffi::OsString]) -> Result<ServerArgs, String> {
    let mut config = None;
    for a in args {
        match a.to_str() {
            Some("-h" | "--help") => return Ok(ServerArgs::Help),
            // Swift's `-v`: log to the console too; ours always does.
            Some("-v" | "--verbose") => {}
            Some(flag) if flag.starts_with('-') => return Err(format!("no such option: {flag}")),
            _ if config.is_none() => config = Some(PathBuf::from(a)),
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    config.map(ServerArgs::Config).ok_or_else(|| "no config file given".to_string())
}

/// Loads a server's config file, exiting with a clear message (file, line,
/// problem) when it is unusable.
pub fn load_config_or_exit(path: &Path) -> ConfigFile {
    match ConfigFile::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error trying to load config from {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

/// Binds the server's listening socket, exiting with a clear message when
/// the address cannot be used.
pub async fn bind_or_exit(settings: &ServerSettings) -> TcpListener {
    let addr = format!("{}:{}", settings.bind_ip, settings.bind_port);
    match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("Error binding to {addr}: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(text: &str) -> Result<ConnectionLimits, ConfigError> {
        let conf = ConfigFile::parse(&format!("[DEFAULT]\n{text}"), "test.conf").unwrap();
        ConnectionLimits::from_section(&conf.defaults())
    }

    #[test]
    fn server_command_lines() {
        let args = |v: &[&str]| parse_server_args(&v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>());
        assert_eq!(args(&["--help"]), Ok(ServerArgs::Help));
        assert_eq!(args(&["x.conf", "-h"]), Ok(ServerArgs::Help));
        assert_eq!(args(&["x.conf", "-v"]), Ok(ServerArgs::Config("x.conf".into())));
        assert!(args(&[]).is_err());
        assert!(args(&["--bogus", "x.conf"]).is_err());
        assert!(args(&["x.conf", "y.conf"]).is_err());
    }

    #[test]
    fn connection_limits_use_swift_names_and_defaults() {
        let d = limits("").unwrap();
        assert_eq!((d.client_timeout, d.keepalive_timeout, d.max_clients), (Duration::from_secs(60), Some(Duration::from_secs(60)), 1024));
        // keepalive_timeout follows client_timeout unless set; 0 turns it off.
        let l = limits("client_timeout = 5\nmax_clients = 3\n").unwrap();
        assert_eq!((l.client_timeout, l.keepalive_timeout, l.max_clients), (Duration::from_secs(5), Some(Duration::from_secs(5)), 3));
        assert_eq!(limits("keepalive_timeout = 0\n").unwrap().keepalive_timeout, None);
        assert_eq!(limits("keepalive_timeout = 2.5\n").unwrap().keepalive_timeout, Some(Duration::from_millis(2500)));
        for bad in ["client_timeout = 0", "client_timeout = -1", "client_timeout = soon", "keepalive_timeout = -2", "max_clients = 0"] {
            assert!(limits(bad).is_err(), "{bad}");
        }
    }
}
