//! The HTTP scaffold of the storage servers: settings from the config file,
//! the accept loop, `OPTIONS` and `405` handling, the access log, a
//! graceful shutdown on SIGTERM and a graceful reload on SIGHUP.

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
    /// Where and how to log (`log_*` options; name and level as above).
    pub log: log::LogSettings,
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
    /// Metrics from `log_statsd_*`, named `<log_name>.<metric>` as Swift's
    /// (`object-server.PUT.timing`, `object-updater.successes`); `None`
    /// when `log_statsd_host` is unset.
    pub statsd: Option<crate::statsd::StatsdClient>,
}

/// Options of Swift's process model that mean nothing to one
/// multi-threaded process (`workers`, `user`: run it as the user you want,
/// e.g. with systemd's `User=`, priorities): accepted, unused, and not
/// reported as unknown.
pub const PROCESS_OPTIONS: &[&str] =
    &["workers", "user", "eventlet_debug", "nice_priority", "ionice_class", "ionice_priority", "max_requests"];

/// Marks `PROCESS_OPTIONS` as read in `s`.
pub fn mark_process_options(s: &Section) {
    for key in PROCESS_OPTIONS {
        s.mark_used(key);
    }
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
        let log_name = s.get_str("log_name", server_type)?;
        let statsd = crate::statsd::StatsdClient::from_section(s, &log_name)?;
        let replication_server = match s.get("replication_server") {
            None => None,
            Some(_) => Some(s.get_bool("replication_server", false)?),
        };
        mark_process_options(s);
        Ok(ServerSettings {
            bind_ip: s.get_str("bind_ip", "0.0.0.0")?,
            bind_port: u16::try_from(port).map_err(|_| s.value_error("bind_port", &port.to_string(), "a TCP port"))?,
            devices: PathBuf::from(s.get_str("devices", "/srv/node")?),
            mount_check: s.get_bool("mount_check", true)?,
            swift_dir: PathBuf::from(s.get_str("swift_dir", "/etc/swift")?),
            log_name,
            log_level: log::Level::parse(&level).ok_or_else(|| s.value_error("log_level", &level, "DEBUG, INFO, WARNING or ERROR"))?,
            log: log::LogSettings::from_section(s, server_type)?,
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
            statsd,
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
        crate::log::with_trans_id(trans_id.clone(), pipeline.call(req)).await
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

/// One configuration of a server: the service built from its config files
/// and how it listens. Start-up builds the first; each reload a new one.
pub struct Serving<S> {
    pub service: Arc<S>,
    /// Where to listen: `bind_ip:bind_port`.
    pub bind: String,
    pub limits: ConnectionLimits,
    /// Whether the scaffold writes the access line.
    pub log_requests: bool,
    /// How long a stop or a reload lets in-flight requests finish.
    pub grace: Duration,
}

impl<S> Serving<S> {
    /// A storage server's: everything but the service from its settings.
    pub fn new(service: Arc<S>, settings: &ServerSettings) -> Serving<S> {
        Serving {
            service,
            bind: format!("{}:{}", settings.bind_ip, settings.bind_port),
            limits: settings.connections.clone(),
            log_requests: settings.log_requests,
            grace: settings.graceful_shutdown_timeout,
        }
    }
}

/// Builds a server's next [`Serving`] from its config files, as start-up
/// does; the error is one line for the log.
pub type Reload<S> = Arc<dyn Fn() -> Result<Serving<S>, String> + Send + Sync>;

/// What a signal asks of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// SIGTERM, SIGINT: stop, letting in-flight work finish.
    Stop,
    /// SIGHUP, SIGUSR1: read the configuration again and go on with it.
    Reload,
}

/// The signals servers and daemons obey, as Swift's do: SIGTERM and SIGINT
/// stop; SIGHUP reloads, and so does SIGUSR1 (Swift's "seamless" reload,
/// which ours always is).
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (inside a runtime). From then on none of these
    /// signals kills the process by itself.
    pub fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        let install = |kind: SignalKind| signal(kind).expect("installing a signal handler inside the runtime");
        Signals {
            term: install(SignalKind::terminate()),
            int: install(SignalKind::interrupt()),
            hup: install(SignalKind::hangup()),
            usr1: install(SignalKind::user_defined1()),
        }
    }

    /// The next signal's request.
    pub async fn next(&mut self) -> Control {
        tokio::select! {
            _ = self.term.recv() => Control::Stop,
            _ = self.int.recv() => Control::Stop,
            _ = self.hup.recv() => Control::Reload,
            _ = self.usr1.recv() => Control::Reload,
        }
    }
}

/// Where the accept loop learns to stop or reload.
trait Controls {
    async fn next(&mut self) -> Control;
}

impl Controls for Signals {
    async fn next(&mut self) -> Control {
        Signals::next(self).await
    }
}

/// Stops when a future resolves; never reloads.
struct StopOn<F>(std::pin::Pin<Box<F>>);

impl<F: Future<Output = ()>> Controls for StopOn<F> {
    async fn next(&mut self) -> Control {
        self.0.as_mut().await;
        Control::Stop
    }
}

#[cfg(test)]
impl Controls for tokio::sync::mpsc::UnboundedReceiver<Control> {
    async fn next(&mut self) -> Control {
        self.recv().await.unwrap_or(Control::Stop)
    }
}

/// hyper's connection settings for `limits`.
fn http1_builder(limits: &ConnectionLimits) -> hyper::server::conn::http1::Builder {
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
    builder
}

/// How long a stopping generation waits for the first request of a
/// connection it accepted before closing it.
const FIRST_REQUEST_WAIT: Duration = Duration::from_secs(2);

/// The connections accepted under one [`Serving`]: they keep its service
/// for their whole life, and `stop` ends them all gracefully.
struct Generation<S: Service> {
    serving: Serving<S>,
    pipeline: crate::pipeline::Next,
    builder: hyper::server::conn::http1::Builder,
    /// Set once to end the connections; closed when the last one ended.
    stop: tokio::sync::watch::Sender<bool>,
}

impl<S: Service> Generation<S> {
    fn new(serving: Serving<S>) -> Generation<S> {
        Generation {
            pipeline: serving.service.clone().pipeline(),
            builder: http1_builder(&serving.limits),
            stop: tokio::sync::watch::channel(false).0,
            serving,
        }
    }

    /// Serves one accepted connection until it closes or `stop` ends it.
    fn spawn(&self, stream: tokio::net::TcpStream, remote: SocketAddr, slot: tokio::sync::OwnedSemaphorePermit) {
        let limits = &self.serving.limits;
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
        let (svc, pipeline, log_requests) = (self.serving.service.clone(), self.pipeline.clone(), self.serving.log_requests);
        // Whether hyper has read a request head on this connection yet.
        let first_request = Arc::new(tokio::sync::Notify::new());
        let seen = first_request.clone();
        let handler = service_fn(move |req| {
            seen.notify_one();
            let (svc, pipeline) = (svc.clone(), pipeline.clone());
            async move { Ok::<_, std::convert::Infallible>(dispatch(svc, pipeline, req, remote, log_requests).await) }
        });
        let conn = self.builder.serve_connection(TokioIo::new(Box::pin(stream)), handler);
        let mut stop = self.stop.subscribe();
        tokio::spawn(async move {
            tokio::pin!(conn);
            // hyper ends a connection asked to shut down before it read
            // anything at once, without an answer: a client whose request
            // was on its way while a reload swapped generations would see
            // its connection closed. So a connection that has not read its
            // first request yet is asked once it has (it then gets that
            // answer, with `Connection: close`), or after FIRST_REQUEST_WAIT
            // if nothing comes; an idle keep-alive connection closes at
            // once, a busy one after its request.
            let mut served_one = false;
            let mut stopping = false;
            let mut wait_for_first = None;
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    _ = first_request.notified(), if !served_one => {
                        served_one = true;
                        if stopping {
                            wait_for_first = None;
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                    changed = stop.changed(), if !stopping => {
                        stopping = true;
                        if changed.is_err() || served_one {
                            conn.as_mut().graceful_shutdown();
                        } else {
                            wait_for_first = Some(Box::pin(tokio::time::sleep(FIRST_REQUEST_WAIT)));
                        }
                    }
                    _ = async { wait_for_first.as_mut().expect("guarded").await }, if wait_for_first.is_some() => {
                        wait_for_first = None;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(stop);
            drop(slot);
        });
    }

    /// Ends the generation's connections: idle ones at once, busy ones
    /// after their request (hyper answers it with `Connection: close`), a
    /// new one after its first request; whatever is left after `grace` is
    /// dropped.
    fn drain(self) -> impl Future<Output = ()> + Send + 'static {
        let (stop, grace) = (self.stop, self.serving.grace);
        async move {
            let _ = stop.send(true);
            if tokio::time::timeout(grace, stop.closed()).await.is_err() {
                log::warning("graceful shutdown timed out; dropping in-flight requests");
            }
        }
    }
}

/// Takes a connection slot (at most `max_clients` connections at once),
/// then the next connection.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<tokio::sync::Semaphore>,
) -> (tokio::sync::OwnedSemaphorePermit, std::io::Result<(tokio::net::TcpStream, SocketAddr)>) {
    let slot = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
    (slot, listener.accept().await)
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
    let bind = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let first = Serving { service, bind, limits: limits.clone(), log_requests, grace };
    serve_loop(first, listener, StopOn(Box::pin(shutdown)), None).await
}

/// Serves `first` on `listener` and obeys the process's [`Signals`]:
/// SIGTERM/SIGINT stop as [`serve`] does; SIGHUP (or SIGUSR1) calls
/// `reload` on the blocking pool and, if it succeeds, serves new
/// connections with the new service (on the same socket, or on a new one
/// when the address changed) while the old connections finish their
/// in-flight requests with the old one and close. A failed reload is
/// logged and the server goes on as it was. `signals` must be installed
/// before the listener is bound: a SIGHUP that arrives once clients can
/// connect must not find the default action (which ends the process).
pub async fn serve_reloading<S: Service>(
    first: Serving<S>,
    listener: TcpListener,
    signals: Signals,
    reload: impl Fn() -> Result<Serving<S>, String> + Send + Sync + 'static,
) {
    serve_loop(first, listener, signals, Some(Arc::new(reload))).await
}

async fn serve_loop<S: Service>(first: Serving<S>, mut listener: TcpListener, mut controls: impl Controls, reload: Option<Reload<S>>) {
    let mut current = Generation::new(first);
    // Past max_clients, stop accepting: new connections wait in the kernel's
    // backlog instead of each taking a task, buffers and a descriptor.
    // (Connections of older generations, still draining, count in the
    // semaphore they were accepted under.)
    let mut slots = Arc::new(tokio::sync::Semaphore::new(current.serving.limits.max_clients));
    let mut draining = tokio::task::JoinSet::new();
    let mut reloading: Option<tokio::task::JoinHandle<Result<Serving<S>, String>>> = None;
    // A reload asked for while one runs: the files may have changed again.
    let mut reload_again = false;
    let start_reload = |reload: &Reload<S>| {
        let reload = reload.clone();
        tokio::task::spawn_blocking(move || reload())
    };
    loop {
        tokio::select! {
            control = controls.next() => match (control, &reload) {
                (Control::Stop, _) => break,
                (Control::Reload, None) => log::warning("reload asked for; this server cannot reload, going on as it is"),
                (Control::Reload, Some(_)) if reloading.is_some() => reload_again = true,
                (Control::Reload, Some(r)) => {
                    log::info("SIGHUP received: reloading the configuration");
                    reloading = Some(start_reload(r));
                }
            },
            built = async { reloading.as_mut().expect("guarded by the condition").await }, if reloading.is_some() => {
                reloading = None;
                if reload_again {
                    reload_again = false;
                    reloading = reload.as_ref().map(start_reload);
                }
                let next = match built {
                    Ok(Ok(next)) => next,
                    Ok(Err(e)) => {
                        log::error(&format!("reload failed, going on with the configuration loaded before: {e}"));
                        continue;
                    }
                    Err(e) => {
                        log::error(&format!("reload failed, going on with the configuration loaded before: {e}"));
                        continue;
                    }
                };
                if next.bind != current.serving.bind {
                    match TcpListener::bind(&next.bind).await {
                        Ok(l) => {
                            log::info(&format!("listening on {} instead of {}", next.bind, current.serving.bind));
                            listener = l;
                        }
                        Err(e) => {
                            log::error(&format!("reload failed, going on with the configuration loaded before: binding to {}: {e}", next.bind));
                            continue;
                        }
                    }
                }
                if next.limits.max_clients != current.serving.limits.max_clients {
                    slots = Arc::new(tokio::sync::Semaphore::new(next.limits.max_clients));
                }
                let old = std::mem::replace(&mut current, Generation::new(next));
                draining.spawn(old.drain());
                log::info("reloaded: new connections get the new configuration; open ones finish their requests with the old");
            },
            Some(_) = draining.join_next(), if !draining.is_empty() => {},
            (slot, accepted) = accept(&listener, &slots) => match accepted {
                Ok((stream, remote)) => current.spawn(stream, remote, slot),
                Err(e) => {
                    // EMFILE and friends: back off briefly rather than spin.
                    log::error(&format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let grace = current.serving.grace;
    let current = current.drain();
    let all = async move {
        current.await;
        while draining.join_next().await.is_some() {}
    };
    // Each generation has its own deadline; this one only bounds the wait.
    let _ = tokio::time::timeout(grace + Duration::from_secs(1), all).await;
}

/// Resolves on SIGTERM or SIGINT. SIGHUP and SIGUSR1 do not stop the
/// process; reloading is up to the caller ([`serve_reloading`],
/// [`Reloaded`]).
pub async fn shutdown_signal() {
    let mut signals = Signals::install();
    while signals.next().await != Control::Stop {}
}

/// A value rebuilt from the config files on each SIGHUP (or SIGUSR1): the
/// daemons' configuration, taken afresh at the start of each pass. A failed
/// rebuild is logged and the old value kept.
pub struct Reloaded<T> {
    current: Arc<std::sync::Mutex<Arc<T>>>,
}

impl<T: Send + Sync + 'static> Reloaded<T> {
    /// Starts from `first` and rebuilds with `build` (on the blocking pool)
    /// on each reload signal. Call inside the runtime.
    pub fn new(first: Arc<T>, build: impl Fn() -> Result<T, String> + Send + Sync + 'static) -> Reloaded<T> {
        let current = Arc::new(std::sync::Mutex::new(first));
        let (cell, build) = (current.clone(), Arc::new(build));
        let mut signals = Signals::install();
        tokio::spawn(async move {
            loop {
                if signals.next().await != Control::Reload {
                    continue;
                }
                log::info("SIGHUP received: reloading the configuration for the next pass");
                let build = build.clone();
                match tokio::task::spawn_blocking(move || build()).await {
                    Ok(Ok(next)) => {
                        *cell.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
                        log::info("reloaded: the next pass runs with the new configuration");
                    }
                    Ok(Err(e)) => log::error(&format!("reload failed, going on with the configuration loaded before: {e}")),
                    Err(e) => log::error(&format!("reload failed, going on with the configuration loaded before: {e}")),
                }
            }
        });
        Reloaded { current }
    }

    /// The value as of now.
    pub fn get(&self) -> Arc<T> {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The `main` of a server binary (`binary CONFIG [-v]`, see
/// [`crate::cli`]): `load` reads the config file and everything it names
/// (`swift.conf`, rings) and builds the service; at start-up an error
/// exits 1, on SIGHUP it is logged and the server goes on (see
/// [`serve_reloading`]). Exits 0 after SIGTERM/SIGINT and the grace period.
pub fn main<S: Service>(binary: &str, load: impl Fn(&Path) -> Result<Serving<S>, String> + Send + Sync + 'static) -> ! {
    let args = crate::cli::server_args(binary);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|e| {
        eprintln!("Error starting the runtime: {e}");
        std::process::exit(1)
    });
    runtime.block_on(async move {
        // Some services need the runtime while they are built.
        let first = load(&args.config).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        });
        // Before the socket exists: from then on an operator's SIGHUP (or
        // swift-init reload) reloads instead of killing the server.
        let signals = Signals::install();
        let listener = match TcpListener::bind(&first.bind).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("Error binding to {}: {e}", first.bind);
                std::process::exit(1)
            }
        };
        log::info(&format!("{binary} {} listening on {}", crate::VERSION, first.bind));
        let config = args.config;
        serve_reloading(first, listener, signals, move || load(&config)).await;
    });
    // In-flight requests had their grace period; blocking disk work still
    // running must not hold the exit (a write never published is safe).
    std::process::exit(0)
}

/// Loads a server's config file; the error names the file, the line and
/// the problem.
pub fn load_config(path: &Path) -> Result<ConfigFile, String> {
    ConfigFile::load(path).map_err(|e| format!("Error trying to load config from {}: {e}", path.display()))
}

/// Loads a server's config file, exiting with a clear message (file, line,
/// problem) when it is unusable.
pub fn load_config_or_exit(path: &Path) -> ConfigFile {
    load_config(path).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    })
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

    /// A service that answers its generation; `/slow` waits for `gate`.
    struct Gen {
        n: u32,
        gate: Arc<tokio::sync::Notify>,
    }

    impl Service for Gen {
        fn server_type(&self) -> &'static str {
            "test-server"
        }
        fn allowed_methods(&self) -> Vec<&'static str> {
            vec!["GET", "OPTIONS"]
        }
        async fn handle(self: Arc<Self>, req: Request<Body>, _: RequestInfo) -> Response<Body> {
            if req.uri().path() == "/slow" {
                self.gate.notified().await;
            }
            h::text(StatusCode::OK, format!("generation {}", self.n))
        }
    }

    async fn send(stream: &mut tokio::net::TcpStream, path: &str, close: bool) {
        use tokio::io::AsyncWriteExt;
        let connection = if close { "close" } else { "keep-alive" };
        stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\n\r\n").as_bytes()).await.unwrap();
    }

    /// Reads one response (headers and a Content-Length body).
    async fn response(stream: &mut tokio::net::TcpStream) -> String {
        use tokio::io::AsyncReadExt;
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&raw).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text.lines().find_map(|l| l.strip_prefix("Content-Length: ")).map_or(0, |v| v.trim().parse::<usize>().unwrap());
                if raw.len() >= end + 4 + len {
                    return text;
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before a whole response: {text:?}");
            raw.extend_from_slice(&buf[..n]);
        }
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        send(&mut s, path, true).await;
        response(&mut s).await
    }

    #[tokio::test]
    async fn reload_swaps_the_service_and_lets_requests_in_flight_finish() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits =
            ConnectionLimits { client_timeout: Duration::from_secs(5), keepalive_timeout: Some(Duration::from_secs(5)), max_clients: 64 };
        let gate = Arc::new(tokio::sync::Notify::new());
        let serving = |n: u32| Serving {
            service: Arc::new(Gen { n, gate: gate.clone() }),
            bind: addr.to_string(),
            limits: limits.clone(),
            log_requests: false,
            grace: Duration::from_secs(5),
        };
        let first = serving(1);
        // Reloads build generations 2, 3, ...; the third attempt fails.
        let next = Arc::new(std::sync::atomic::AtomicU32::new(2));
        let (gate2, limits2, n2) = (gate.clone(), limits.clone(), next.clone());
        let reload: Reload<Gen> = Arc::new(move || {
            let n = n2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n == 3 {
                return Err("bad config".into());
            }
            Ok(Serving {
                service: Arc::new(Gen { n, gate: gate2.clone() }),
                bind: addr.to_string(),
                limits: limits2.clone(),
                log_requests: false,
                grace: Duration::from_secs(5),
            })
        });
        let (controls, rx) = tokio::sync::mpsc::unbounded_channel();
        let server = tokio::spawn(serve_loop(first, listener, rx, Some(reload)));

        assert!(get(addr, "/").await.ends_with("generation 1"));
        // A kept-alive idle connection and a request in flight, both on
        // generation 1.
        let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        send(&mut idle, "/", false).await;
        assert!(response(&mut idle).await.ends_with("generation 1"));
        let mut busy = tokio::net::TcpStream::connect(addr).await.unwrap();
        send(&mut busy, "/slow", false).await;

        controls.send(Control::Reload).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !get(addr, "/").await.ends_with("generation 2") {
            assert!(Instant::now() < deadline, "the reload never took effect");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The request in flight finishes with the service it started on,
        // and its connection then closes.
        gate.notify_one();
        let answer = response(&mut busy).await;
        assert!(answer.ends_with("generation 1") && answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
        // The idle connection was closed.
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 16];
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf)).await.unwrap().unwrap_or(0), 0);

        // A failed reload keeps the server as it was.
        controls.send(Control::Reload).unwrap();
        while next.load(std::sync::atomic::Ordering::SeqCst) < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(get(addr, "/").await.ends_with("generation 2"));

        controls.send(Control::Stop).unwrap();
        tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap();
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
