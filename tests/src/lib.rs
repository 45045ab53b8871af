//! An all-in-one Swift cluster on one machine (Swift's "SAIO"): configs,
//! rings built with our ring builder, and every server started as a child
//! process. `swift-saio` runs one in the foreground; the cluster tests start
//! their own on ports chosen at run time.

use anyhow::{anyhow, bail, Context, Result};
use ring::builder::RingBuilder;
use ring::Device;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to lay out a cluster.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    pub bind_ip: String,
    /// 0 picks a free port.
    pub proxy_port: u16,
    pub devices: usize,
    pub replicas: f64,
    pub part_power: u32,
    /// Where the server binaries are; defaults to the directory of the
    /// running executable (or its parent, for test executables in `deps/`).
    pub bin_dir: Option<PathBuf>,
    /// Let the servers' logs through to our stderr.
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
            proxy_port: 8080,
            devices: 4,
            replicas: 3.0,
            part_power: 10,
            bin_dir: None,
            show_logs: false,
            consistency_daemons: false,
            extra_conf: String::new(),
        }
    }
}

impl Options {
    /// A cluster for a test: laid out under `dir`, every port picked at run
    /// time, a small ring (part power 6); the servers' logs go to stderr
    /// when `SWIFT_TEST_LOGS` is set.
    pub fn for_test(dir: &Path) -> Options {
        Options {
            data_dir: dir.to_path_buf(),
            proxy_port: 0,
            part_power: 6,
            show_logs: std::env::var_os("SWIFT_TEST_LOGS").is_some(),
            ..Options::default()
        }
    }
}

/// The daemons `consistency_daemons` runs: name, the server whose config
/// it reads, and the `interval` `swift-saio` gives it (short, so the
/// cluster heals while one watches).
pub const CONSISTENCY_DAEMONS: [(&str, &str, u32); 8] = [
    ("object-replicator", "object", 10),
    ("object-auditor", "object", 30),
    ("object-expirer", "object", 10),
    ("container-replicator", "container", 10),
    ("container-auditor", "container", 30),
    ("account-replicator", "account", 10),
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
    /// The port it listens on; 0 for daemons that listen on none
    /// (`container-updater N`, `object-updater N`).
    pub port: u16,
    pub config: PathBuf,
    binary: PathBuf,
    child: Option<Child>,
    show_logs: bool,
}

impl Proc {
    fn spawn(&mut self) -> Result<()> {
        let child = Command::new(&self.binary)
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(if self.show_logs { Stdio::inherit() } else { Stdio::null() })
            .stderr(if self.show_logs { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
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
    /// to listen (servers only: a daemon has nothing to wait for).
    pub fn restart(&mut self, bind_ip: &str) -> Result<()> {
        self.spawn()?;
        if self.port == 0 {
            return Ok(());
        }
        wait_listening(bind_ip, self.port, &self.name, self.child.as_mut())
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

fn wait_listening(ip: &str, port: u16, name: &str, mut child: Option<&mut Child>) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if common::testing::answers_http(ip, port) {
            return Ok(());
        }
        if let Some(c) = child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                bail!("{name} exited while starting ({status}); run with logs shown to see why");
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
        let bin_dir = match &opts.bin_dir {
            Some(d) => d.clone(),
            None => default_bin_dir()?,
        };
        let mut procs = Vec::new();
        for (kind, _) in STORAGE_TYPES {
            for i in 1..=count_configs(&etc.join(format!("{kind}-server")))? {
                let config = etc.join(format!("{kind}-server")).join(format!("{i}.conf"));
                let port = read_port(&config)?;
                procs.push(Proc {
                    name: format!("{kind}-server {i}"),
                    port,
                    config,
                    binary: bin_dir.join(format!("swift-{kind}-server")),
                    child: None,
                    show_logs: opts.show_logs,
                });
            }
        }
        // Swift's container-updater reads the container server's config
        // (its `[container-updater]` section): one per container server.
        for i in 1..=count_configs(&etc.join("container-server"))? {
            procs.push(Proc {
                name: format!("container-updater {i}"),
                port: 0,
                config: etc.join("container-server").join(format!("{i}.conf")),
                binary: bin_dir.join("swift-container-updater"),
                child: None,
                show_logs: opts.show_logs,
            });
        }
        // Likewise Swift's object-updater reads the object server's config
        // (`[object-updater]`): one per object server, replaying the async
        // pendings that server wrote.
        for i in 1..=count_configs(&etc.join("object-server"))? {
            procs.push(Proc {
                name: format!("object-updater {i}"),
                port: 0,
                config: etc.join("object-server").join(format!("{i}.conf")),
                binary: bin_dir.join("swift-object-updater"),
                child: None,
                show_logs: opts.show_logs,
            });
        }
        // The replicators, auditors, the expirer and the reaper read their
        // server's config too (`[object-replicator]`, ...), one of each per
        // server, as on a Swift node.
        if opts.consistency_daemons {
            for (daemon, kind, _) in CONSISTENCY_DAEMONS {
                for i in 1..=count_configs(&etc.join(format!("{kind}-server")))? {
                    procs.push(Proc {
                        name: format!("{daemon} {i}"),
                        port: 0,
                        config: etc.join(format!("{kind}-server")).join(format!("{i}.conf")),
                        binary: bin_dir.join(format!("swift-{daemon}")),
                        child: None,
                        show_logs: opts.show_logs,
                    });
                }
            }
        }
        let proxy_conf = etc.join("proxy-server.conf");
        let proxy_port = read_port(&proxy_conf)?;
        // A reused layout keeps the address it was made with.
        let mut opts = opts;
        if let Some(ip) = read_bind_ip(&proxy_conf)? {
            opts.bind_ip = ip;
        }
        procs.push(Proc {
            name: "proxy-server".into(),
            port: proxy_port,
            config: proxy_conf,
            binary: bin_dir.join("swift-proxy-server"),
            child: None,
            show_logs: opts.show_logs,
        });
        for p in &procs {
            if !p.binary.exists() {
                bail!("{} not found; build the workspace first (cargo build --release --workspace)", p.binary.display());
            }
            if p.port != 0 && std::net::TcpListener::bind((opts.bind_ip.as_str(), p.port)).is_err() {
                bail!("port {} (for {}) is already in use; is another cluster running on {}?", p.port, p.name, opts.data_dir.display());
            }
        }
        let mut cluster = Cluster { opts, etc, proxy_port, procs };
        for p in cluster.procs.iter_mut() {
            p.spawn()?;
        }
        let ip = cluster.opts.bind_ip.clone();
        for p in cluster.procs.iter_mut().filter(|p| p.port != 0) {
            let name = p.name.clone();
            wait_listening(&ip, p.port, &name, p.child.as_mut())?;
        }
        Ok(cluster)
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
    /// waits for it; fails unless it exits 0. Its log goes to our stderr
    /// when the servers' logs do.
    pub fn run_once(&self, daemon: &str, server: &str, i: usize, args: &[&str]) -> Result<()> {
        let bin_dir = match &self.opts.bin_dir {
            Some(d) => d.clone(),
            None => default_bin_dir()?,
        };
        let binary = bin_dir.join(format!("swift-{daemon}"));
        let config = self.etc.join(format!("{server}-server")).join(format!("{i}.conf"));
        let quiet = || if self.opts.show_logs { Stdio::inherit() } else { Stdio::null() };
        let status = Command::new(&binary)
            .arg(&config)
            .arg("once")
            .args(args)
            .stdin(Stdio::null())
            .stdout(quiet())
            .stderr(quiet())
            .status()
            .with_context(|| format!("starting {}", binary.display()))?;
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

/// Writes swift.conf, every server's config, the rings and the device dirs.
fn create_layout(opts: &Options) -> Result<()> {
    if opts.devices == 0 {
        bail!("--devices must be at least 1");
    }
    if opts.replicas < 1.0 || opts.replicas > opts.devices as f64 {
        bail!("--replicas must be between 1 and the number of devices ({})", opts.devices);
    }
    let data = std::fs::canonicalize({
        std::fs::create_dir_all(&opts.data_dir)?;
        &opts.data_dir
    })?;
    let etc = data.join("etc");
    std::fs::create_dir_all(&etc)?;
    let ip = &opts.bind_ip;
    let mut ports: Vec<(String, usize, u16, PathBuf)> = Vec::new();
    for (kind, _) in STORAGE_TYPES {
        std::fs::create_dir_all(etc.join(format!("{kind}-server")))?;
        for i in 1..=opts.devices {
            let port = free_port(ip)?;
            let devices = data.join("devices").join(i.to_string());
            std::fs::create_dir_all(devices.join(format!("sdb{i}")))?;
            // The device directories stand in for disks: mark them as mount
            // points for recon and mount_check, as Swift's `.ismount` stub does.
            std::fs::write(devices.join(format!("sdb{i}")).join(".ismount"), b"")?;
            ports.push((kind.to_string(), i, port, devices));
        }
    }
    let proxy_port = if opts.proxy_port == 0 { free_port(ip)? } else { opts.proxy_port };
    let recon = data.join("cache");
    std::fs::create_dir_all(&recon)?;
    // swift.conf last but one: its presence marks a complete layout, so it
    // is written after the rings (below).
    for (kind, i, port, devices) in &ports {
        // A short interval so that account listings catch up within seconds
        // (Swift's default is 300 s; its SAIO configs keep the default).
        // The same for the object-updater, so async pendings are replayed
        // within seconds of the container servers coming back.
        let mut daemons = match kind.as_str() {
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
         pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats tempauth copy dlo proxy-logging proxy-server\n\
         \n\
         [app:proxy-server]\n\
         use = egg:swift#proxy\n\
         allow_account_management = true\n\
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
         [filter:dlo]\nuse = egg:swift#dlo\n",
        etc = etc.display(),
        extra = opts.extra_conf,
    );
    std::fs::write(etc.join("proxy-server.conf"), proxy)?;
    // Rings: one device per server, each in its own zone.
    for (kind, _) in STORAGE_TYPES {
        let mut b = RingBuilder::new(opts.part_power, opts.replicas, 1).map_err(|e| anyhow!("{e}"))?;
        for (k, i, port, _) in ports.iter().filter(|(k, ..)| k == kind) {
            let _ = k;
            let dev = Device {
                id: 0,
                region: 1,
                zone: *i as i64,
                ip: ip.clone(),
                port: *port,
                replication_ip: ip.clone(),
                replication_port: *port,
                device: format!("sdb{i}"),
                weight: 100.0,
                meta: String::new(),
                extra: Default::default(),
            };
            b.add_dev(dev, None).map_err(|e| anyhow!("{e}"))?;
        }
        b.rebalance(None).map_err(|e| anyhow!("{kind} ring: {e}"))?;
        b.save(&etc.join(format!("{kind}.builder"))).map_err(|e| anyhow!("{e}"))?;
        b.get_ring().save(&etc.join(format!("{kind}.ring.gz")), 1).map_err(|e| anyhow!("{e}"))?;
    }
    let swift_conf = format!(
        "# written by swift-saio\n[swift-hash]\nswift_hash_path_prefix = {}\nswift_hash_path_suffix = {}\n\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n",
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
