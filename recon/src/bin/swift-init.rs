//! `swift-init <server>[.<config>]... <command>`: starts, stops, reloads
//! and reports the servers and daemons of a node from their configs, as
//! Swift's `swift-init` (`swift/common/manager.py`) does:
//!
//! * a server is `proxy-server`, `object-replicator`, ... (`object` means
//!   `object-server`); `all`, `main` (the four servers) and `rest` (the
//!   daemons) name groups; `object.1` means the config `object-server/1.conf`;
//! * its configs are `<conf-dir>/<type>-server.conf` or every `*.conf`
//!   below `<conf-dir>/<type>-server*/` (the expirer's: the object
//!   servers' configs with an `[object-expirer]` section);
//! * each process's pid goes to `<run-dir>/` at the config's place with the
//!   server's name (`/etc/swift/object-server/1.conf` → for the replicator
//!   `/var/run/swift/object-replicator/1.pid`);
//! * `stop` is SIGTERM (waiting up to `--kill-wait` seconds), `reload`
//!   SIGHUP (ours reload in place without dropping a request; Swift's
//!   `reload-seamless` is the same), `status` checks the pid is alive.

use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every server and daemon this workspace builds, in Swift's order.
const ALL_SERVERS: [&str; 14] = [
    "account-auditor",
    "account-server",
    "container-auditor",
    "container-replicator",
    "container-server",
    "container-updater",
    "object-auditor",
    "object-server",
    "object-expirer",
    "object-replicator",
    "object-updater",
    "proxy-server",
    "account-replicator",
    "account-reaper",
];
const MAIN_SERVERS: [&str; 4] = ["proxy-server", "account-server", "container-server", "object-server"];
const COMMANDS: [&str; 8] = ["start", "stop", "restart", "reload", "reload-seamless", "force-reload", "status", "shutdown"];

#[derive(Parser, Debug)]
#[command(
    name = "swift-init",
    version = common::VERSION,
    about = "Starts, stops, reloads and reports Swift servers and daemons from their configs.",
    after_help = "SERVER: proxy-server (or proxy), object-server (object), container-server, account-server, \
                  object-replicator, object-auditor, object-updater, object-expirer, container-replicator, \
                  container-auditor, container-updater, account-replicator, account-auditor, account-reaper; \
                  all, main or rest; <server>.<n> for the config <type>-server/<n>.conf.\n\
                  COMMAND: start, stop, restart, reload (SIGHUP: in place, no request dropped), status \
                  (shutdown = stop, force-reload and reload-seamless = reload)."
)]
struct Cli {
    /// Servers, then the command (`start main` works too).
    #[arg(value_name = "SERVER... COMMAND", required = true, num_args = 2..)]
    words: Vec<String>,
    /// Where the configs are.
    #[arg(long, env = "SWIFT_DIR", default_value = "/etc/swift")]
    conf_dir: PathBuf,
    /// Where the pid files go.
    #[arg(short, long, default_value = "/var/run/swift")]
    run_dir: PathBuf,
    /// Where the binaries are (default: beside swift-init, else $PATH).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Seconds to wait for a stopped process to exit.
    #[arg(short, long, default_value_t = 15)]
    kill_wait: u64,
    /// Start daemons for one pass only.
    #[arg(short, long)]
    once: bool,
    /// Send the command to the Nth config of each server only.
    #[arg(short = 'c', long = "config-num", value_name = "N")]
    number: Option<usize>,
    /// Say more (configs found, stale pid files removed).
    #[arg(short, long)]
    verbose: bool,
}

/// One server to act on, as named on the command line.
struct Server {
    /// `object-replicator`, `proxy-server`, ...
    name: String,
    /// `object.1` → `1`: only the config `1.conf`.
    conf: Option<String>,
}

impl Server {
    /// `object` of `object-replicator`: its configs are `object-server*`.
    fn kind(&self) -> &str {
        self.name.split('-').next().unwrap_or(&self.name)
    }

    fn is_main(&self) -> bool {
        MAIN_SERVERS.contains(&self.name.as_str())
    }
}

struct Manager {
    cli: Cli,
    /// Whether a missing config is an error (every server named outright).
    strict: bool,
}

fn main() {
    let mut cli = Cli::parse();
    let mut command = cli.words.pop().expect("clap asks for two words at least");
    // Swift's swap: `swift-init start main` is `swift-init main start`.
    if !COMMANDS.contains(&command.as_str()) && COMMANDS.contains(&cli.words[0].as_str()) {
        let first = cli.words.remove(0);
        cli.words.push(command);
        command = first;
    }
    if !COMMANDS.contains(&command.as_str()) {
        eprintln!("ERROR: unknown command, {command} (one of {})", COMMANDS.join(", "));
        std::process::exit(1);
    }
    let (servers, strict) = match servers(&cli.words) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ERROR: {e}");
            std::process::exit(1);
        }
    };
    let m = Manager { cli, strict };
    let mut failed = false;
    for s in &servers {
        failed |= match command.as_str() {
            "start" => !m.start(s),
            "stop" | "shutdown" => !m.stop(s),
            "restart" => !(m.stop(s) & m.start(s)),
            "reload" | "reload-seamless" | "force-reload" => !m.reload(s),
            _ => !m.status(s),
        };
    }
    std::process::exit(i32::from(failed));
}

/// The servers the words name, and whether every one was named outright.
fn servers(words: &[String]) -> Result<(Vec<Server>, bool), String> {
    let mut out: Vec<Server> = Vec::new();
    let mut strict = true;
    for w in words {
        let group: Option<Vec<&str>> = match w.as_str() {
            "all" => Some(ALL_SERVERS.to_vec()),
            "main" => Some(MAIN_SERVERS.to_vec()),
            "rest" => Some(ALL_SERVERS.iter().copied().filter(|s| !MAIN_SERVERS.contains(s)).collect()),
            _ => None,
        };
        if let Some(group) = group {
            strict = false;
            out.extend(group.into_iter().map(|name| Server { name: name.to_string(), conf: None }));
            continue;
        }
        let (name, conf) = match w.split_once('.') {
            Some((n, c)) => (n, Some(c.to_string())),
            None => (w.as_str(), None),
        };
        let name = if name.contains('-') { name.to_string() } else { format!("{name}-server") };
        if !ALL_SERVERS.contains(&name.as_str()) {
            return Err(format!("unknown server {w}"));
        }
        out.push(Server { name, conf });
    }
    Ok((out, strict))
}

impl Manager {
    /// The configs of `s`, sorted, as Swift's `search_tree` finds them.
    fn conf_files(&self, s: &Server) -> Vec<PathBuf> {
        let prefix = format!("{}-server", s.kind());
        let mut found = search(&self.cli.conf_dir, &prefix, s.conf.as_deref());
        if s.name == "object-expirer" {
            // The expirer reads an object server's config when one has its
            // section (Swift's preference), else object-expirer.conf.
            let with_section: Vec<PathBuf> = found
                .iter()
                .filter(|c| common::config::ConfigFile::load(c).is_ok_and(|f| f.has_section("object-expirer")))
                .cloned()
                .collect();
            found = if with_section.is_empty() { search(&self.cli.conf_dir, "object-expirer", s.conf.as_deref()) } else { with_section };
        }
        match self.cli.number {
            Some(n) => found.into_iter().nth(n.saturating_sub(1)).into_iter().collect(),
            None => found,
        }
    }

    /// `conf`'s pid file: the config's place below the run dir, with the
    /// server's name for the type's and `.pid` for `.conf`.
    fn pid_file(&self, s: &Server, conf: &Path) -> PathBuf {
        let rel = conf.strip_prefix(&self.cli.conf_dir).unwrap_or(conf).to_string_lossy().into_owned();
        let rel = rel.replacen(&format!("{}-server", s.kind()), &s.name, 1).replacen(".conf", ".pid", 1);
        self.cli.run_dir.join(rel)
    }

    /// Every pid file of `s` with its pid, running or not.
    fn pid_files(&self, s: &Server) -> Vec<(PathBuf, Option<i32>)> {
        let mut files = search_pids(&self.cli.run_dir, &s.name);
        if s.conf.is_some() || self.cli.number.is_some() {
            let wanted: Vec<PathBuf> = self.conf_files(s).iter().map(|c| self.pid_file(s, c)).collect();
            files.retain(|f| wanted.contains(f));
        }
        files.into_iter().map(|f| (f.clone(), std::fs::read_to_string(&f).ok().and_then(|t| t.trim().parse().ok()))).collect()
    }

    /// The running processes of `s`; stale pid files are removed.
    fn running(&self, s: &Server) -> Vec<(i32, PathBuf)> {
        let mut out = Vec::new();
        for (file, pid) in self.pid_files(s) {
            match pid {
                Some(pid) if is_running(pid, &s.name) => out.push((pid, file)),
                _ => {
                    if self.cli.verbose {
                        println!("Removing stale pid file {}", file.display());
                    }
                    let _ = std::fs::remove_file(&file);
                }
            }
        }
        out
    }

    fn binary(&self, s: &Server) -> PathBuf {
        let name = format!("swift-{}", s.name);
        let beside = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join(&name)));
        match (&self.cli.bin_dir, beside) {
            (Some(dir), _) => dir.join(name),
            (None, Some(b)) if b.exists() => b,
            _ => PathBuf::from(name),
        }
    }

    fn start(&self, s: &Server) -> bool {
        let confs = self.conf_files(s);
        if confs.is_empty() {
            if self.strict || self.cli.verbose {
                println!("Unable to locate config for {}", s.name);
            }
            return !self.strict;
        }
        let running = self.running(s);
        if !running.is_empty() {
            for (pid, file) in &running {
                println!("{} running ({pid} - {})", s.name, file.display());
            }
            println!("{} already started...", s.name);
            return true;
        }
        let once = self.cli.once && !s.is_main();
        let mut children = Vec::new();
        for conf in confs {
            println!("{} {}...({})", if once { "Running" } else { "Starting" }, s.name, conf.display());
            let mut cmd = Command::new(self.binary(s));
            cmd.arg(&conf);
            if once {
                cmd.arg("once");
            }
            // Its own process group: a signal to ours (Ctrl-C) is not for it.
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn();
            let child = match child {
                Ok(c) => c,
                Err(e) => {
                    println!("{}: {e}", self.binary(s).display());
                    return false;
                }
            };
            let pid_file = self.pid_file(s, &conf);
            let written =
                pid_file.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| std::fs::write(&pid_file, child.id().to_string()));
            if let Err(e) = written {
                println!("cannot write {}: {e}", pid_file.display());
            }
            children.push((child, pid_file));
        }
        // Swift's WARNING_WAIT: a process that fails at start-up (a bad
        // config, a port in use) does so within moments; report it.
        let mut ok = true;
        let end = Instant::now() + Duration::from_secs(2);
        while !children.is_empty() && Instant::now() < end {
            children.retain_mut(|(child, pid_file)| match child.try_wait() {
                Ok(Some(status)) => {
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut e, &mut err);
                    }
                    if !(once && status.success()) {
                        print!("{err}");
                        println!("{} exited: {status}", s.name);
                        ok = false;
                    }
                    let _ = std::fs::remove_file(pid_file);
                    false
                }
                _ => true,
            });
            std::thread::sleep(Duration::from_millis(50));
        }
        ok
    }

    fn signal(&self, s: &Server, sig: i32) -> Vec<(i32, PathBuf)> {
        let running = self.running(s);
        for (pid, _) in &running {
            println!("Signal {}  pid: {pid}  signal: {sig}", s.name);
            // SAFETY: kill(2) with a valid signal on a pid whose command
            // line is this server's (checked by `running`).
            unsafe {
                libc::kill(*pid, sig);
            }
        }
        running
    }

    fn stop(&self, s: &Server) -> bool {
        let signalled = self.signal(s, libc::SIGTERM);
        if signalled.is_empty() {
            println!("No {} running", s.name);
            return !self.strict;
        }
        let end = Instant::now() + Duration::from_secs(self.cli.kill_wait);
        let mut left = signalled;
        loop {
            left.retain(|(pid, file)| {
                let alive = is_running(*pid, &s.name);
                if !alive {
                    println!("{} ({pid}) appears to have stopped", s.name);
                    let _ = std::fs::remove_file(file);
                }
                alive
            });
            if left.is_empty() {
                return true;
            }
            if Instant::now() >= end {
                println!("Waited {} seconds for {} to die; giving up", self.cli.kill_wait, s.name);
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn reload(&self, s: &Server) -> bool {
        if self.signal(s, libc::SIGHUP).is_empty() {
            println!("No {} running", s.name);
            return !self.strict;
        }
        true
    }

    fn status(&self, s: &Server) -> bool {
        let running = self.running(s);
        if running.is_empty() {
            println!("No {} running", s.name);
            return false;
        }
        for (pid, file) in running {
            let conf = self.conf_files(s).into_iter().find(|c| self.pid_file(s, c) == file);
            let shown = conf.as_deref().unwrap_or(&file).display().to_string();
            println!("{} running ({pid} - {shown})", s.name);
        }
        true
    }
}

/// Swift's `search_tree(root, prefix*, .conf, dir_ext=.conf.d)`: files
/// `<prefix>*.conf` and `<prefix>*.conf.d` dirs in `root`, and every
/// `.conf` file or `.conf.d` dir below a dir `<prefix>*`; `only` keeps
/// those named `<only>.conf`.
fn search(root: &Path, prefix: &str, only: Option<&str>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in sorted_entries(root) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !name.starts_with(prefix) {
            continue;
        }
        if path.is_dir() && !name.ends_with(".conf.d") {
            walk(&path, &mut out);
        } else if name.ends_with(".conf") || name.ends_with(".conf.d") {
            out.push(path);
        }
    }
    if let Some(only) = only {
        let want = format!("{only}.conf");
        out.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == want || n.to_string_lossy() == format!("{want}.d")));
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for path in sorted_entries(dir) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.ends_with(".conf") || name.ends_with(".conf.d") {
            out.push(path);
        } else if path.is_dir() {
            walk(&path, out);
        }
    }
}

/// The pid files of `server`: `<server>*.pid` in `run_dir` and every
/// `.pid` below a dir `<server>*`.
fn search_pids(run_dir: &Path, server: &str) -> Vec<PathBuf> {
    fn pids(dir: &Path, out: &mut Vec<PathBuf>) {
        for p in sorted_entries(dir) {
            if p.is_dir() {
                pids(&p, out);
            } else if p.extension().is_some_and(|e| e == "pid") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for p in sorted_entries(run_dir) {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // `object-server` must not take `object-server-foo`'s files: the
        // name is followed by `.`, `/` or nothing.
        let Some(rest) = name.strip_prefix(server) else { continue };
        if p.is_dir() && rest.is_empty() {
            pids(&p, &mut out);
        } else if rest == ".pid" || (rest.starts_with('.') && rest.ends_with(".pid")) {
            out.push(p);
        }
    }
    out
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    v.sort();
    v
}

/// Whether `pid` is a live (not zombie) process running `swift-<server>`,
/// so that a pid reused by another program is never signalled.
fn is_running(pid: i32, server: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let binary = format!("swift-{server}");
    let ours = cmdline.split(|b| *b == 0).next().is_some_and(|argv0| String::from_utf8_lossy(argv0).ends_with(&binary));
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(true);
    ours && !zombie
}
