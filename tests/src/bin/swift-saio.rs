//! `swift-saio`: a whole Swift cluster on this machine, in the foreground.

use clap::Parser;
use cluster::{Cluster, Options, USERS};
use std::path::PathBuf;

/// Starts an all-in-one Swift cluster (account, container and object
/// servers, their updaters, replicators, auditors, the expirer, the reaper
/// and a proxy) on this machine and keeps it running until Ctrl-C.
///
/// Every process's output goes to DATA_DIR/logs/<name>.log (e.g.
/// proxy-server.log, object-server-1.log, object-replicator-2.log).
#[derive(Parser)]
#[command(name = "swift-saio", version)]
struct Args {
    /// Where the configs (DATA_DIR/etc, the swift_dir for swift-recon and
    /// swift-get-nodes), rings, data and logs live (created on first use)
    #[arg(long, default_value = "./saio")]
    data_dir: PathBuf,
    /// The address the proxy binds to, and the first host's
    #[arg(long, default_value = "127.0.0.1")]
    bind_ip: String,
    /// Spread the storage servers over N hosts: --bind-ip and the
    /// addresses after it (127.0.0.1 to 127.0.0.N; loopback addresses need
    /// no set-up on Linux), one ring zone per host
    #[arg(long, default_value_t = 1, value_name = "N")]
    hosts: usize,
    #[arg(long, default_value_t = 8080)]
    proxy_port: u16,
    /// Devices (and servers of each kind), one per zone (one host: each
    /// device is a zone of its own)
    #[arg(long, default_value_t = 4)]
    devices: usize,
    #[arg(long, default_value_t = 3.0)]
    replicas: f64,
    #[arg(long, default_value_t = 10)]
    part_power: u32,
    /// Show every server's log lines on the terminal too (they always go
    /// to DATA_DIR/logs)
    #[arg(long)]
    verbose: bool,
    /// Leave out the replicators, auditors, expirer and reaper: the
    /// servers and updaters only, as a Swift all-in-one after `startmain`
    /// (for benchmarks against one; a cluster needs them to heal)
    #[arg(long)]
    no_consistency_daemons: bool,
}

fn main() {
    let a = Args::parse();
    let opts = Options {
        data_dir: a.data_dir.clone(),
        bind_ip: a.bind_ip.clone(),
        hosts: a.hosts,
        proxy_port: a.proxy_port,
        devices: a.devices,
        replicas: a.replicas,
        part_power: a.part_power,
        // Two, as the reference Swift all-in-one (Swift's cross-policy
        // functional tests need a second one).
        policies: 2,
        bin_dir: None,
        show_logs: a.verbose,
        consistency_daemons: !a.no_consistency_daemons,
        extra_conf: String::new(),
    };
    let fresh = !a.data_dir.join("etc/swift.conf").exists();
    let mut cluster = match Cluster::start(opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("swift-saio: {e:#}");
            eprintln!("swift-saio: the servers' logs are in {}", a.data_dir.join("logs").display());
            std::process::exit(1);
        }
    };
    let url = cluster.auth_url();
    if !fresh {
        println!(
            "Reusing the layout in {}: --bind-ip, --hosts, --proxy-port, --devices, --replicas and --part-power apply only to a new --data-dir.",
            a.data_dir.display()
        );
    }
    println!(
        "swift-saio: {} cluster in {} ({} processes) is up.",
        if fresh { "new" } else { "existing" },
        a.data_dir.display(),
        cluster.procs.len()
    );
    let hosts = cluster.host_ips();
    if hosts.len() > 1 {
        println!("Storage servers on {} hosts:", hosts.len());
        for ip in &hosts {
            let servers: Vec<String> = cluster
                .procs
                .iter()
                .filter(|p| p.port != 0 && &p.ip == ip && p.name != "proxy-server")
                .map(|p| format!("{} :{}", p.name, p.port))
                .collect();
            println!("  {ip}: {}", servers.join(", "));
        }
    }
    if cluster.opts.bind_ip == "127.0.0.1" {
        println!("Listening on loopback addresses only (use --bind-ip to change).");
    }
    println!("Logs: {}/<name>.log, e.g. tail -F {}", cluster.log_dir().display(), cluster.log_dir().join("proxy-server.log").display());
    println!();
    println!("Auth URL: {url}");
    println!("Users (account:user key):");
    for (acct, user, key, groups) in USERS {
        println!("  {acct}:{user} {key} {groups}");
    }
    println!();
    println!("Try:");
    println!("  curl -i -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' {url}");
    println!("  swift -A {url} -U test:tester -K testing stat");
    println!("  swift-recon --swiftdir {} --all", cluster.etc.display());
    println!();
    println!("Ctrl-C (or SIGTERM) stops the cluster; run again with the same --data-dir to reuse it.");
    wait_for_signal();
    eprintln!("swift-saio: stopping");
    cluster.stop();
}

/// Waits for SIGINT or SIGTERM.
fn wait_for_signal() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static STOP: AtomicBool = AtomicBool::new(false);
    extern "C" fn on_signal(_: libc::c_int) {
        STOP.store(true, Ordering::SeqCst);
    }
    // SAFETY: installing an async-signal-safe handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
