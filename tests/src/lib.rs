//! An all-in-one Swift cluster on one machine (Swift's "SAIO"): configs,
//! rings built with our ring builder, and every server started as a child
//! process. `swift-saio` runs one in the foreground; the cluster tests start
//! their own on ports chosen at run time.
//!
//! With [`Options::hosts`] above 1 the storage servers are spread over as
//! many loopback addresses (127.0.0.1, 127.0.0.2, ...), so the rings hold
//! several hosts as a real multi-host cluster's do; servers on different
//! hosts share ports, as on real nodes, so each daemon must tell its own
//! devices from another host's by address *and* port. Every process's log
//! goes to `<data_dir>/logs/<name>.log`.

use anyhow::{anyhow, bail, Context, Result};
use ring::builder::RingBuilder;
use ring::Device;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to lay out a cluster.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    /// The proxy's address, and the first host's.
    pub bind_ip: String,
    /// How many hosts the storage servers are spread over: `bind_ip` and
    /// the IPv4 addresses after it (127.0.0.1 to 127.0.0.N), device `i`
    /// (1-based) on host `(i - 1) % hosts`. Above 1 each host is a zone of
    /// the rings, so a partition's replicas land on different hosts.
    pub hosts: usize,
    /// 0 picks a free port.
    pub proxy_port: u16,
    pub devices: usize,
    pub replicas: f64,
    pub part_power: u32,
    /// Storage policies: policy 0 (`Policy-0`, the default), and with 2
    /// or more `silver` (1), `policy-2`, ...; each an object ring of the
    /// same devices (`object-N.ring.gz`), as on a Swift all-in-one.
    pub policies: usize,
    /// Where the server binaries are; defaults to the directory of the
    /// running executable (or its parent, for test executables in `deps/`).
    pub bin_dir: Option<PathBuf>,
    /// Show the servers' logs on our stderr too (they always go to
    /// `<data_dir>/logs/<name>.log`).
    pub show_logs: bool,
    /// Run every server's replicator, auditor, expirer and reaper in the background
    /// (short intervals, so the cluster heals while one watches): what
    /// `swift-saio` does. Off by default, so tests drive them with
    /// [`Cluster::run_once`], as an operator does.
    pub consistency_daemons: bool,
    /// Lines added to the `[DEFAULT]` section of every server's config
    /// (proxy included) when the layout is created, e.g.
    /// `client_timeout = 2\n`.
    pub extra_conf: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            data_dir: PathBuf::from("saio"),
            bind_ip: "127.0.0.1".into(),
            hosts: 1,
            proxy_port: 8080,
            devices: 4,
            replicas: 3.0,
            part_power: 10,
            policies: 1,
            bin_dir: None,
            show_logs: false,
            consistency_daemons: false,
            extra_conf: String::new(),
        }
    }
}

impl Options {
    /// A cluster for a test: laid out under `dir`, every port picked at run
    /// time, a small ring (part power 6), one host (set `hosts` for more);
    /// the servers' logs go to stderr too when `SWIFT_TEST_LOGS` is set.
    pub fn for_test(dir: &Path) -> Options {
        Options {
            data_dir: dir.to_path_buf(),
            hosts: 1,
            proxy_port: 0,
            part_power: 6,
            show_logs: std::env::var_os("SWIFT_TEST_LOGS").is_some(),
            ..Options::default()
        }
    }

    /// The hosts' addresses: `bind_ip` and, for more than one host, the
    /// IPv4 addresses that follow it (`127.0.0.1` → `127.0.0.2`, ...; every
    /// address of 127.0.0.0/8 is this machine's on Linux, no set-up needed).
    pub fn host_ips(&self) -> Result<Vec<String>> {
        if self.hosts <= 1 {
            return Ok(vec![self.bind_ip.clone()]);
        }
        let first: Ipv4Addr = self
            .bind_ip
            .parse()
            .ok()
            .filter(|ip: &Ipv4Addr| !ip.is_unspecified())
            .ok_or_else(|| anyhow!("--hosts needs a specific IPv4 --bind-ip to count from, not {}", self.bind_ip))?;
        (0..self.hosts as u32)
            .map(|k| {
                let ip = u32::from(first).checked_add(k).map(Ipv4Addr::from);
                ip.filter(|ip| ip.octets()[0] == first.octets()[0])
                    .map(|ip| ip.to_string())
                    .ok_or_else(|| anyhow!("{} hosts from {} run past the end of its /8", self.hosts, self.bind_ip))
            })
            .collect()
    }
}

/// The daemons `consistency_daemons` runs: name, the server whose config
/// it reads, and the `interval` `swift-saio` gives it. The replicators
/// keep Swift's 30 s (a pass every 10 s cost a tenth of this machine's two
/// cores under load, for REPLICATE passes that found nothing to do); the
/// auditors run every 30 s so that a rotten file is found while one
/// watches; the expirer keeps Swift's 300 s, so that an expired object
/// stays readable with `X-Open-Expired` for a while, as on a Swift
/// all-in-one.
pub const CONSISTENCY_DAEMONS: [(&str, &str, u32); 8] = [
    ("object-replicator", "object", 30),
    ("object-auditor", "object", 30),
    ("object-expirer", "object", 300),
    ("container-replicator", "container", 30),
    ("container-auditor", "container", 30),
    ("account-replicator", "account", 30),
    ("account-auditor", "account", 30),
    ("account-reaper", "account", 30),
];

/// The kinds of storage server, with Swift's SAIO base ports.
pub const STORAGE_TYPES: [(&str, u16); 3] = [("object", 6210), ("container", 6211), ("account", 6212)];

/// The standard functional-test users: (account, user, key, groups).
pub const USERS: &[(&str, &str, &str, &str)] = &[
    ("admin", "admin", "admin", ".admin .reseller_admin"),
    ("test", "tester", "testing", ".admin"),
    ("test", "tester3", "testing3", ""),
    ("test2", "tester2", "testing2", ".admin"),
    ("test5", "tester5", "testing5", "service"),
];

/// A running child server or daemon.
pub struct Proc {
    pub name: String,
    /// The address of its host (its config's `bind_ip`).
    pub ip: String,
    /// The port it listens on; 0 for daemons that listen on none
    /// (`container-updater N`, `object-updater N`).
    pub port: u16,
    pub config: PathBuf,
    /// Where its standard output and error go (appended to):
    /// `<data_dir>/logs/<name>.log`, the name's space a dash.
    pub log: PathBuf,
    binary: PathBuf,
    child: Option<Child>,
    show_logs: bool,
}

impl Proc {
    fn new(name: String, ip: &str, port: u16, config: PathBuf, binary: PathBuf, opts: &Options) -> Proc {
        let log = log_path(&opts.data_dir, &name);
        Proc { name, ip: ip.to_string(), port, config, log, binary, child: None, show_logs: opts.show_logs }
    }

    fn spawn(&mut self) -> Result<()> {
        let mut cmd = Command::new(&self.binary);
        cmd.arg(&self.config).stdin(Stdio::null());
        redirect_output(&mut cmd, &self.log, self.show_logs)?;
        let child = cmd.spawn().with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid with a valid signal.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
            }
            let end = Instant::now() + grace;
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the process again (after `kill` or `stop`) and waits for it
    /// to listen on its own address, [`Proc::ip`] (servers only: a daemon
    /// has nothing to wait for). `_bind_ip` is what callers passed before
    /// servers had addresses of their own; it is not used.
    pub fn restart(&mut self, _bind_ip: &str) -> Result<()> {
        self.spawn()?;
        if self.port == 0 {
            return Ok(());
        }
        let ip = self.ip.clone();
        wait_listening(&ip, self.port, &self.name, self.child.as_mut())
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `<data_dir>/logs/<name>.log`, a space in the name a dash
/// (`object-server 2` → `object-server-2.log`).
pub fn log_path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("logs").join(format!("{}.log", name.replace(' ', "-")))
}

/// Sends `cmd`'s standard output and error to the end of `log`, and with
/// `show` to our standard error as well (a thread copies them, line by
/// line, until the child closes them).
fn redirect_output(cmd: &mut Command, log: &Path, show: bool) -> Result<()> {
    use std::io::{BufRead, Write};
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log).with_context(|| format!("opening {}", log.display()))?;
    if !show {
        cmd.stdout(file.try_clone()?).stderr(file);
        return Ok(());
    }
    let (reader, writer) = std::io::pipe()?;
    cmd.stdout(writer.try_clone()?).stderr(writer);
    std::thread::spawn(move || {
        let mut file = file;
        for line in std::io::BufReader::new(reader).split(b'\n').map_while(|l| l.ok()) {
            let _ = file.write_all(&line).and_then(|_| file.write_all(b"\n"));
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&line).and_then(|_| err.write_all(b"\n"));
        }
    });
    Ok(())
}

fn wait_listening(ip: &str, port: u16, name: &str, mut child: Option<&mut Child>) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if common::testing::answers_http(ip, port) {
            return Ok(());
        }
        if let Some(c) = child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                bail!("{name} exited while starting ({status})");
            }
        }
        if Instant::now() > end {
            bail!("{name} did not listen on {ip}:{port} within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A cluster laid out on disk and running.
pub struct Cluster {
    pub opts: Options,
    pub etc: PathBuf,
    pub proxy_port: u16,
    /// Every storage server, then one `container-updater N` per container
    /// server, one `object-updater N` per object server, with
    /// `consistency_daemons` one of each of [`CONSISTENCY_DAEMONS`] per
    /// server, then the proxy (last).
    pub procs: Vec<Proc>,
}

fn free_port(ip: &str) -> Result<u16> {
    Ok(common::testing::free_port_on(ip)?)
}

/// A port free on every one of `ips`: servers of one kind on different
/// hosts listen on the same port, as on real nodes (6200 on each).
fn free_port_on_all(ips: &[String]) -> Result<u16> {
    for _ in 0..100 {
        let port = free_port(&ips[0])?;
        if ips[1..].iter().all(|ip| std::net::TcpListener::bind((ip.as_str(), port)).is_ok()) {
            return Ok(port);
        }
    }
    bail!("no port is free on all of {}", ips.join(", "))
}

fn default_bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or_else(|| anyhow!("executable has no directory"))?.to_path_buf();
    // Test executables live in target/<profile>/deps.
    Ok(if dir.ends_with("deps") { dir.parent().map(Path::to_path_buf).unwrap_or(dir) } else { dir })
}

fn random_hex(n: usize) -> String {
    (0..n).map(|_| format!("{:x}", rand::random::<u8>() & 0xf)).collect()
}

impl Cluster {
    /// Lays the cluster out under `opts.data_dir` on first use (configs,
    /// rings, device dirs) or reuses what is there, then starts every server
    /// and waits until each one answers.
    pub fn start(opts: Options) -> Result<Cluster> {
        let etc = opts.data_dir.join("etc");
        let layout_exists = etc.join("swift.conf").exists();
        if !layout_exists {
            create_layout(&opts)?;
        }
        std::fs::create_dir_all(opts.data_dir.join("logs"))?;
        let bin_dir = match &opts.bin_dir {
            Some(d) => d.clone(),
            None => default_bin_dir()?,
        };
        // A reused layout keeps the addresses it was made with: every
        // process runs on its config's `bind_ip`.
        let mut opts = opts;
        let proxy_conf = etc.join("proxy-server.conf");
        if let Some(ip) = read_bind_ip(&proxy_conf)? {
            opts.bind_ip = ip;
        }
        let mut procs = Vec::new();
        let mut host_ips: Vec<String> = Vec::new();
        for (kind, _) in STORAGE_TYPES {
            let dir = etc.join(format!("{kind}-server"));
            for i in 1..=count_configs(&dir)? {
                let config = dir.join(format!("{i}.conf"));
                let port = read_port(&config)?;
                let ip = read_bind_ip(&config)?.unwrap_or_else(|| opts.bind_ip.clone());
                if !host_ips.contains(&ip) {
                    host_ips.push(ip.clone());
                }
                let binary = bin_dir.join(format!("swift-{kind}-server"));
                procs.push(Proc::new(format!("{kind}-server {i}"), &ip, port, config, binary, &opts));
            }
        }
        opts.hosts = host_ips.len();
        // The daemons read their server's config, as on a Swift node: one
        // `container-updater` per container server (its `[container-updater]`
        // section), one `object-updater` per object server, replaying the
        // async pendings that server wrote, and with `consistency_daemons`
        // one replicator, auditor, expirer and reaper per server.
        let mut daemons: Vec<(&str, &str)> = vec![("container-updater", "container"), ("object-updater", "object")];
        if opts.consistency_daemons {
            daemons.extend(CONSISTENCY_DAEMONS.iter().map(|(daemon, kind, _)| (*daemon, *kind)));
        }
        for (daemon, kind) in daemons {
            let servers: Vec<(String, PathBuf)> =
                procs.iter().filter(|p| p.name.starts_with(&format!("{kind}-server "))).map(|p| (p.ip.clone(), p.config.clone())).collect();
            for (i, (ip, config)) in servers.into_iter().enumerate() {
                let binary = bin_dir.join(format!("swift-{daemon}"));
                procs.push(Proc::new(format!("{daemon} {}", i + 1), &ip, 0, config, binary, &opts));
            }
        }
        let proxy_port = read_port(&proxy_conf)?;
        let proxy_ip = opts.bind_ip.clone();
        procs.push(Proc::new("proxy-server".into(), &proxy_ip, proxy_port, proxy_conf, bin_dir.join("swift-proxy-server"), &opts));
        for p in &procs {
            if !p.binary.exists() {
                bail!("{} not found; build the workspace first (cargo build --release --workspace)", p.binary.display());
            }
            if p.port != 0 && std::net::TcpListener::bind((p.ip.as_str(), p.port)).is_err() {
                bail!("{}:{} (for {}) is already in use; is another cluster running on {}?", p.ip, p.port, p.name, opts.data_dir.display());
            }
        }
        let mut cluster = Cluster { opts, etc, proxy_port, procs };
        for p in cluster.procs.iter_mut() {
            p.spawn()?;
        }
        for p in cluster.procs.iter_mut().filter(|p| p.port != 0) {
            let (ip, name) = (p.ip.clone(), p.name.clone());
            wait_listening(&ip, p.port, &name, p.child.as_mut()).with_context(|| format!("its log is {}", p.log.display()))?;
        }
        Ok(cluster)
    }

    /// Where the processes' logs are: `<data_dir>/logs`.
    pub fn log_dir(&self) -> PathBuf {
        self.opts.data_dir.join("logs")
    }

    /// The hosts' addresses, in the order of the configs (the first one is
    /// the proxy's too).
    pub fn host_ips(&self) -> Vec<String> {
        let mut ips: Vec<String> = Vec::new();
        for p in self.procs.iter().filter(|p| p.port != 0) {
            if !ips.contains(&p.ip) {
                ips.push(p.ip.clone());
            }
        }
        ips
    }

    /// `http://ip:port/auth/v1.0`.
    pub fn auth_url(&self) -> String {
        format!("http://{}:{}/auth/v1.0", self.opts.bind_ip, self.proxy_port)
    }

    /// The storage servers of one kind (`object`, `container`, `account`).
    pub fn servers(&mut self, kind: &str) -> Vec<&mut Proc> {
        let prefix = format!("{kind}-server ");
        self.procs.iter_mut().filter(|p| p.name.starts_with(&prefix)).collect()
    }

    /// Runs `swift-<daemon> <config> once` (e.g. `object-replicator` with
    /// object server `i`'s config, as an operator does) plus `args`, and
    /// waits for it; fails unless it exits 0. Its log goes to
    /// `logs/<daemon>-<i>.log` (appended), and to our stderr too when the
    /// servers' logs do.
    pub fn run_once(&self, daemon: &str, server: &str, i: usize, args: &[&str]) -> Result<()> {
        let bin_dir = match &self.opts.bin_dir {
            Some(d) => d.clone(),
            None => default_bin_dir()?,
        };
        let binary = bin_dir.join(format!("swift-{daemon}"));
        let config = self.etc.join(format!("{server}-server")).join(format!("{i}.conf"));
        let mut cmd = Command::new(&binary);
        cmd.arg(&config).arg("once").args(args).stdin(Stdio::null());
        redirect_output(&mut cmd, &log_path(&self.opts.data_dir, &format!("{daemon}-{i}")), self.opts.show_logs)?;
        let status = cmd.status().with_context(|| format!("starting {}", binary.display()))?;
        if !status.success() {
            bail!("{} {} once exited with {status}", binary.display(), config.display());
        }
        Ok(())
    }

    /// Stops every server (SIGTERM, then SIGKILL after a grace period).
    pub fn stop(&mut self) {
        for p in self.procs.iter_mut().rev() {
            p.stop(Duration::from_secs(10));
        }
    }
}

/// Where one object lives in a cluster: its partition, name hash and
/// primaries (from the ring, never from assumptions about ports), and the
/// devices that are not its primaries.
#[derive(Debug, Clone)]
pub struct Placement {
    pub part: u32,
    pub hash: String,
    pub primaries: Vec<Device>,
    pub others: Vec<Device>,
}

impl Placement {
    /// `objects/<part>/<suffix>/<hash>`: the hash directory below a device.
    pub fn hash_dir_below_device(&self) -> String {
        format!("objects/{}/{}/{}", self.part, &self.hash[self.hash.len() - 3..], self.hash)
    }

    /// `d`'s hash directory of the object.
    pub fn hash_dir(&self, c: &Cluster, d: &Device) -> PathBuf {
        c.device_dir(d).join(self.hash_dir_below_device())
    }

    /// `d`'s `.data` file of the object, if it has one.
    pub fn data_file(&self, c: &Cluster, d: &Device) -> Option<PathBuf> {
        std::fs::read_dir(self.hash_dir(c, d)).ok()?.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|e| e == "data"))
    }

    /// `http://ip:port/<dev>/<part>/<account>/<container>/<object>`: the
    /// object straight from `d`'s object server.
    pub fn direct_url(&self, d: &Device, account: &str, container: &str, object: &str) -> String {
        format!("http://{}:{}/{}/{}/{account}/{container}/{object}", d.ip, d.port, d.device, self.part)
    }
}

impl Cluster {
    /// Where `/<account>/<container>/<object>` lives, by the object ring.
    pub fn placement(&self, account: &str, container: &str, object: &str) -> Result<Placement> {
        let conf = common::swift_conf::SwiftConf::load_dir(&self.etc)?;
        let ring = ring::Ring::load_named(&self.etc, "object", conf.hash.clone()).map_err(|e| anyhow!("{e}"))?;
        let (part, primaries) = ring.get_nodes(account, Some(container), Some(object)).map_err(|e| anyhow!("{e}"))?;
        let hash = conf.hash.hash_path(account, Some(container), Some(object)).map_err(|e| anyhow!("{e}"))?;
        let others = ring.table().devs().iter().flatten().filter(|d| !primaries.iter().any(|p| p.id == d.id)).cloned().collect();
        Ok(Placement { part, hash, primaries, others })
    }

    /// The directory of ring device `d` (`<data>/devices/<i>/sdb<i>`).
    pub fn device_dir(&self, d: &Device) -> PathBuf {
        self.opts.data_dir.join("devices").join(&d.device[3..]).join(&d.device)
    }
}

/// Overwrites `len` bytes of a file at `at`, in place (its xattrs stay as
/// they were): bit rot in a replica's `.data`.
pub fn rot(file: &Path, at: u64, len: usize) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(file)?;
    f.write_all_at(&vec![b'#'; len], at)?;
    Ok(())
}

/// `len` bytes of a pattern that differs with `seed`, for object bodies.
pub fn body_of(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8).collect()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn count_configs(dir: &Path) -> Result<usize> {
    let mut n = 0;
    while dir.join(format!("{}.conf", n + 1)).exists() {
        n += 1;
    }
    if n == 0 {
        bail!("no server configs in {}", dir.display());
    }
    Ok(n)
}

fn read_bind_ip(config: &Path) -> Result<Option<String>> {
    let conf = common::config::ConfigFile::load(config)?;
    Ok(conf.defaults().get("bind_ip").map(str::to_string))
}

fn read_port(config: &Path) -> Result<u16> {
    let conf = common::config::ConfigFile::load(config)?;
    let port = conf.defaults().get_u64("bind_port", 0)?;
    u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| anyhow!("{}: no bind_port", config.display()))
}

/// One storage server of a new layout: its kind, number (that of its
/// device, `sdb<i>`), host (0-based), address and port, and the
/// directory its device is in.
struct Server {
    kind: &'static str,
    i: usize,
    host: usize,
    ip: String,
    port: u16,
    devices: PathBuf,
}

/// Writes swift.conf, every server's config, the rings and the device dirs.
fn create_layout(opts: &Options) -> Result<()> {
    if opts.devices == 0 {
        bail!("--devices must be at least 1");
    }
    if opts.replicas < 1.0 || opts.replicas > opts.devices as f64 {
        bail!("--replicas must be between 1 and the number of devices ({})", opts.devices);
    }
    if opts.hosts == 0 || opts.hosts > opts.devices {
        bail!("--hosts must be between 1 and the number of devices ({})", opts.devices);
    }
    let host_ips = opts.host_ips()?;
    let data = std::fs::canonicalize({
        std::fs::create_dir_all(&opts.data_dir)?;
        &opts.data_dir
    })?;
    let etc = data.join("etc");
    std::fs::create_dir_all(&etc)?;
    let ip = &opts.bind_ip;
    // Device (and server) i is on host (i - 1) % hosts, in slot
    // (i - 1) / hosts of that host: the servers in one slot share a port.
    let host_of = |i: usize| (i - 1) % opts.hosts;
    let mut servers: Vec<Server> = Vec::new();
    for (kind, _) in STORAGE_TYPES {
        std::fs::create_dir_all(etc.join(format!("{kind}-server")))?;
        let mut slot_ports = Vec::new();
        for i in 1..=opts.devices {
            let slot = (i - 1) / opts.hosts;
            if slot == slot_ports.len() {
                slot_ports.push(free_port_on_all(&host_ips)?);
            }
            let devices = data.join("devices").join(i.to_string());
            std::fs::create_dir_all(devices.join(format!("sdb{i}")))?;
            // The device directories stand in for disks: mark them as mount
            // points for recon and mount_check, as Swift's `.ismount` stub does.
            std::fs::write(devices.join(format!("sdb{i}")).join(".ismount"), b"")?;
            let host = host_of(i);
            servers.push(Server { kind, i, host, ip: host_ips[host].clone(), port: slot_ports[slot], devices });
        }
    }
    let proxy_port = if opts.proxy_port == 0 { free_port(ip)? } else { opts.proxy_port };
    // One recon cache per host, as each Swift node has its own
    // /var/cache/swift (one host keeps the single `cache` it always had).
    let recon_of = |host: usize| if opts.hosts == 1 { data.join("cache") } else { data.join("cache").join(&host_ips[host]) };
    for host in 0..opts.hosts {
        std::fs::create_dir_all(recon_of(host))?;
    }
    // swift.conf last but one: its presence marks a complete layout, so it
    // is written after the rings (below).
    for Server { kind, i, host, ip, port, devices } in &servers {
        let recon = recon_of(*host);
        // A short interval so that account listings catch up within seconds
        // (Swift's default is 300 s; its SAIO configs keep the default).
        // The same for the object-updater, so async pendings are replayed
        // within seconds of the container servers coming back.
        let mut daemons = match *kind {
            "container" => format!("\n[container-updater]\ninterval = 5\nlog_name = container-updater-{i}\n"),
            "object" => format!("\n[object-updater]\ninterval = 5\nlog_name = object-updater-{i}\n"),
            _ => String::new(),
        };
        for (daemon, _, interval) in CONSISTENCY_DAEMONS.iter().filter(|(_, k, _)| k == kind) {
            daemons.push_str(&format!("\n[{daemon}]\ninterval = {interval}\nlog_name = {daemon}-{i}\n"));
            // Each node's expirer takes its share of the queue (Swift's
            // processes/process), rather than all racing for every task.
            if *daemon == "object-expirer" {
                daemons.push_str(&format!("processes = {}\nprocess = {}\n", opts.devices, i - 1));
            }
        }
        let text = format!(
            "# {kind}-server {i} of the all-in-one cluster (written by swift-saio)\n\
             [DEFAULT]\n\
             devices = {devices}\n\
             mount_check = false\n\
             bind_ip = {ip}\n\
             bind_port = {port}\n\
             workers = 1\n\
             swift_dir = {etc}\n\
             log_name = {kind}-server-{i}\n\
             recon_cache_path = {recon}\n\
             {extra}\n\
             [pipeline:main]\n\
             pipeline = healthcheck recon {kind}-server\n\
             \n\
             [app:{kind}-server]\n\
             use = egg:swift#{kind}\n\
             \n\
             [filter:healthcheck]\n\
             use = egg:swift#healthcheck\n\
             \n\
             [filter:recon]\n\
             use = egg:swift#recon\n\
             {daemons}",
            devices = devices.display(),
            etc = etc.display(),
            recon = recon.display(),
            extra = opts.extra_conf,
        );
        std::fs::write(etc.join(format!("{kind}-server")).join(format!("{i}.conf")), text)?;
    }
    let mut users = String::new();
    for (a, u, k, g) in USERS {
        users.push_str(&format!("user_{a}_{u} = {k} {g}\n"));
    }
    let proxy = format!(
        "# The proxy of the all-in-one cluster (written by swift-saio)\n\
         [DEFAULT]\n\
         bind_ip = {ip}\n\
         bind_port = {proxy_port}\n\
         workers = 1\n\
         swift_dir = {etc}\n\
         log_name = proxy-server\n\
         {extra}\n\
         [pipeline:main]\n\
         pipeline = catch_errors gatekeeper healthcheck proxy-logging cache etag-quoter domain_remap listing_formats bulk tempurl ratelimit crossdomain formpost tempauth staticweb copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server\n\
         \n\
         [app:proxy-server]\n\
         use = egg:swift#proxy\n\
         allow_account_management = true\n\
         allow_open_expired = true\n\
         account_autocreate = true\n\
         \n\
         [filter:tempauth]\n\
         use = egg:swift#tempauth\n\
         reseller_prefix = AUTH, SERVICE\n\
         SERVICE_require_group = service\n\
         {users}\n\
         [filter:catch_errors]\nuse = egg:swift#catch_errors\n\n\
         [filter:gatekeeper]\nuse = egg:swift#gatekeeper\n\n\
         [filter:healthcheck]\nuse = egg:swift#healthcheck\n\n\
         [filter:proxy-logging]\nuse = egg:swift#proxy_logging\n\n\
         [filter:cache]\nuse = egg:swift#memcache\n\n\
         [filter:listing_formats]\nuse = egg:swift#listing_formats\n\n\
         [filter:copy]\nuse = egg:swift#copy\n\n\
         [filter:dlo]\nuse = egg:swift#dlo\n\n\
         [filter:slo]\nuse = egg:swift#slo\n\n\
         [filter:bulk]\nuse = egg:swift#bulk\n\n\
         [filter:account-quotas]\nuse = egg:swift#account_quotas\n\n\
         [filter:container-quotas]\nuse = egg:swift#container_quotas\n\n\
         [filter:etag-quoter]\nuse = egg:swift#etag_quoter\n\n\
         [filter:domain_remap]\nuse = egg:swift#domain_remap\nstorage_domain = example.net\n\n\
         [filter:tempurl]\nuse = egg:swift#tempurl\n\n\
         [filter:ratelimit]\nuse = egg:swift#ratelimit\n\n\
         [filter:crossdomain]\nuse = egg:swift#crossdomain\n\n\
         [filter:formpost]\nuse = egg:swift#formpost\n\n\
         [filter:staticweb]\nuse = egg:swift#staticweb\n\n\
         [filter:versioned_writes]\nuse = egg:swift#versioned_writes\nallow_versioned_writes = true\nallow_object_versioning = true\n\n\
         [filter:symlink]\nuse = egg:swift#symlink\n",
        etc = etc.display(),
        extra = opts.extra_conf,
    );
    std::fs::write(etc.join("proxy-server.conf"), proxy)?;
    // Rings: one device per server, each in its own zone on one host,
    // else one zone per host (the first host is zone 1) with the same
    // weight on every host, so each partition has a replica on each of
    // `replicas` hosts, as an operator lays out a cluster that survives
    // losing a host.
    let on_host = |host: usize| (1..=opts.devices).filter(|i| host_of(*i) == host).count() as f64;
    for (kind, _) in STORAGE_TYPES {
        let mut b = RingBuilder::new(opts.part_power, opts.replicas, 1).map_err(|e| anyhow!("{e}"))?;
        for Server { i, host, ip, port, .. } in servers.iter().filter(|s| s.kind == kind) {
            let dev = Device {
                id: 0,
                region: 1,
                zone: if opts.hosts == 1 { *i } else { host + 1 } as i64,
                ip: ip.clone(),
                port: *port,
                replication_ip: ip.clone(),
                replication_port: *port,
                device: format!("sdb{i}"),
                weight: if opts.hosts == 1 { 100.0 } else { 100.0 / on_host(*host) },
                meta: String::new(),
                extra: Default::default(),
            };
            b.add_dev(dev, None).map_err(|e| anyhow!("{e}"))?;
        }
        b.rebalance(None).map_err(|e| anyhow!("{kind} ring: {e}"))?;
        b.save(&etc.join(format!("{kind}.builder"))).map_err(|e| anyhow!("{e}"))?;
        b.get_ring().save(&etc.join(format!("{kind}.ring.gz")), 1).map_err(|e| anyhow!("{e}"))?;
    }
    // Every further policy places its objects on the same devices.
    for n in 1..opts.policies {
        std::fs::copy(etc.join("object.builder"), etc.join(format!("object-{n}.builder")))?;
        std::fs::copy(etc.join("object.ring.gz"), etc.join(format!("object-{n}.ring.gz")))?;
    }
    let mut policies = String::from("[storage-policy:0]\nname = Policy-0\ndefault = yes\n");
    for n in 1..opts.policies {
        let name = if n == 1 { "silver".to_string() } else { format!("policy-{n}") };
        policies.push_str(&format!("\n[storage-policy:{n}]\nname = {name}\n"));
    }
    let swift_conf = format!(
        "# written by swift-saio\n[swift-hash]\nswift_hash_path_prefix = {}\nswift_hash_path_suffix = {}\n\n{policies}",
        random_hex(16),
        random_hex(16)
    );
    let tmp = etc.join("swift.conf.tmp");
    std::fs::write(&tmp, swift_conf)?;
    std::fs::rename(&tmp, etc.join("swift.conf"))?;
    Ok(())
}

/// A minimal blocking HTTP/1.1 client for tests: one request per
/// connection, whole bodies.
pub mod client {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    /// A response: status, headers (names lower-cased) and body.
    #[derive(Debug, Clone)]
    pub struct Resp {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Resp {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }

        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }

        /// Whether the whole body arrived: as long as its `Content-Length`
        /// says (a connection closed early makes a shorter one).
        pub fn is_complete(&self) -> bool {
            match self.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
                Some(len) => self.body.len() == len,
                None => true,
            }
        }
    }

    /// A tempauth login: the storage URL and token to use.
    pub struct Session {
        pub url: String,
        pub token: String,
    }

    /// Logs `user` in at `auth_url` (tempauth v1). Panics unless it works.
    pub fn login(auth_url: &str, user: &str, key: &str) -> Session {
        let r = request("GET", auth_url, &[("X-Auth-User", user), ("X-Auth-Key", key)], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        Session {
            url: r.header("x-storage-url").expect("storage URL").to_string(),
            token: r.header("x-auth-token").expect("token").to_string(),
        }
    }

    impl Session {
        /// `method` on the storage URL plus `path`, with the token.
        pub fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
            self.try_req(method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
        }

        /// Like `req`, but returns connection errors.
        pub fn try_req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<Resp> {
            let mut h = vec![("X-Auth-Token", self.token.as_str())];
            h.extend_from_slice(headers);
            try_request(method, &format!("{}{}", self.url, path), &h, body)
        }
    }

    /// Sends `method url` with `headers` and `body`; `url` is
    /// `http://host:port/path`. Panics on connection errors (tests).
    pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        try_request(method, url, headers, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    /// Like `request`, but returns connection errors.
    pub fn try_request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<Resp> {
        let rest = url.strip_prefix("http://").expect("http URL");
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let mut s = TcpStream::connect(host)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        let mut has_len = false;
        for (k, v) in headers {
            if k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding") {
                has_len = true;
            }
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !has_len && (method == "PUT" || method == "POST" || !body.is_empty()) {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        parse(&raw, method == "HEAD")
    }

    fn parse(raw: &[u8], head_only: bool) -> std::io::Result<Resp> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no header end"))?;
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 =
            lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).ok_or_else(|| bad("bad status"))?;
        let headers: Vec<(String, String)> =
            lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
        let mut body = raw[end + 4..].to_vec();
        if head_only {
            body.clear();
        } else if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
            body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
        }
        Ok(Resp { status, headers, body })
    }

    fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let i = b.windows(2).position(|w| w == b"\r\n")?;
            let size = usize::from_str_radix(std::str::from_utf8(&b[..i]).ok()?.split(';').next()?.trim(), 16).ok()?;
            b = &b[i + 2..];
            if size == 0 {
                return Some(out);
            }
            out.extend_from_slice(b.get(..size)?);
            b = b.get(size + 2..)?;
        }
    }
}
