//! `swift-recon`: asks the storage servers named by the rings for their
//! `/recon/*` figures (and their `Server` type through `OPTIONS`) and
//! prints the report OpenStack Swift's `swift-recon` prints, line for line.
//!
//! Layers: [`options`] parses the command line, [`hosts`] reads the rings,
//! [`scout`] talks HTTP to every host at once, [`checks`] turns answers
//! into Swift's report lines using [`format`].

pub mod checks;
pub mod format;
pub mod hosts;
pub mod options;
pub mod scout;

use checks::SwiftRecon;
use common::swift_conf::SwiftConf;
use format::RULE;
use hosts::HostsError;
use options::{Options, Parsed};
use std::io::Write;
use std::time::Duration;

/// Exit status for bad input (arguments, swift dir, rings), as optparse.
pub const EXIT_USAGE: i32 = 2;

/// Runs `swift-recon` with the arguments after the program name, printing
/// the report to stdout; returns the exit status: 0, 1 when any host
/// failed `--validate-servers` (or for Swift's `Invalid Server Type`),
/// 2 for bad input.
pub fn run(args: &[String]) -> i32 {
    let mut stdout = std::io::stdout();
    // Swift prints the rule before it even parses the arguments.
    let _ = writeln!(stdout, "{RULE}");
    let options = match options::parse(args) {
        Parsed::Run(o) => o,
        Parsed::Help => {
            let _ = write!(stdout, "{}", options::help());
            return 0;
        }
        Parsed::InvalidServerType => {
            let _ = writeln!(stdout, "Invalid Server Type");
            let _ = write!(stdout, "{}", options::help());
            return 1;
        }
        Parsed::Error(msg) => {
            eprintln!("{}\nswift-recon: error: {msg}", options::USAGE);
            return EXIT_USAGE;
        }
    };
    if !options.swiftdir.is_dir() {
        eprintln!("swift-recon: swift dir {} does not exist or is not a directory", options.swiftdir.display());
        return EXIT_USAGE;
    }
    let conf = match SwiftConf::load_dir(&options.swiftdir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("swift-recon: cannot use {}: {e}", options.swiftdir.join("swift.conf").display());
            return EXIT_USAGE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("swift-recon: cannot start the async runtime: {e}");
            return EXIT_USAGE;
        }
    };
    runtime.block_on(reconnoiter(&options, &conf, stdout))
}

/// The checks the options ask for, for each server type in turn.
async fn reconnoiter<W: Write>(o: &Options, conf: &SwiftConf, out: W) -> i32 {
    let timeout = Duration::from_secs(u64::try_from(o.timeout).unwrap_or(0));
    let mut r = SwiftRecon::new(out, timeout, o.verbose, o.suppress);
    for server_type in &o.server_types {
        r.server_type = server_type.clone();
        let hosts = match hosts::ring_names(server_type, conf, o.policy.as_deref())
            .and_then(|names| hosts::get_hosts(&o.swiftdir, &names, o.region, o.zone))
        {
            Ok(h) => h,
            Err(HostsError::InvalidPolicy(p)) => {
                r.line(&format!("Invalid Storage Policy: {p}"));
                r.line(options::help().trim_end());
                return EXIT_USAGE;
            }
            Err(HostsError::Ring { path, message }) => {
                eprintln!("swift-recon: cannot load ring {path}: {message}");
                return EXIT_USAGE;
            }
        };
        r.line(&format!("--> Starting reconnaissance on {} hosts ({})", hosts.len(), server_type));
        r.line(RULE);
        let t = server_type.as_str();
        if o.all {
            match t {
                "object" => {
                    r.async_check(&hosts).await;
                    r.object_auditor_check(&hosts).await;
                    r.updater_check(&hosts).await;
                    r.expirer_check(&hosts).await;
                    r.reconstruction_check(&hosts).await;
                }
                "container" => {
                    r.auditor_check(&hosts).await;
                    r.updater_check(&hosts).await;
                    r.sharding_check(&hosts).await;
                }
                _ => r.auditor_check(&hosts).await,
            }
            r.replication_check(&hosts).await;
            r.umount_check(&hosts).await;
            r.load_check(&hosts).await;
            r.disk_usage(&hosts, o.top, o.lowest, o.human_readable).await;
            r.get_ringmd5(&hosts, &o.swiftdir).await;
            r.get_swiftconfmd5(&hosts, &o.swiftdir).await;
            r.quarantine_check(&hosts).await;
            r.socket_usage(&hosts).await;
            r.server_type_check(&hosts).await;
            r.driveaudit_check(&hosts).await;
            r.time_check(&hosts, o.jitter).await;
            r.version_check(&hosts).await;
            continue;
        }
        if o.async_check {
            if t == "object" {
                r.async_check(&hosts).await;
            } else {
                r.line("Error: Can't check asyncs on non object servers.");
                r.line(RULE);
            }
        }
        if o.unmounted {
            r.umount_check(&hosts).await;
        }
        if o.replication {
            r.replication_check(&hosts).await;
        }
        if o.auditor {
            if t == "object" {
                r.object_auditor_check(&hosts).await;
            } else {
                r.auditor_check(&hosts).await;
            }
        }
        if o.updater {
            if t == "account" {
                r.line("Error: Can't check updaters on account servers.");
                r.line(RULE);
            } else {
                r.updater_check(&hosts).await;
            }
        }
        if o.expirer {
            if t == "object" {
                r.expirer_check(&hosts).await;
            } else {
                r.line("Error: Can't check expirer on non object servers.");
                r.line(RULE);
            }
        }
        if o.sharding {
            if t == "container" {
                r.sharding_check(&hosts).await;
            } else {
                r.line("Error: Can't check sharding on non container servers.");
                r.line(RULE);
            }
        }
        if o.reconstruction {
            if t == "object" {
                r.reconstruction_check(&hosts).await;
            } else {
                r.line("Error: Can't check reconstruction stats on non object servers.");
                r.line(RULE);
            }
        }
        if o.validate_servers {
            r.server_type_check(&hosts).await;
        }
        if o.loadstats {
            r.load_check(&hosts).await;
        }
        if o.diskusage {
            r.disk_usage(&hosts, o.top, o.lowest, o.human_readable).await;
        }
        if o.md5 {
            r.get_ringmd5(&hosts, &o.swiftdir).await;
            r.get_swiftconfmd5(&hosts, &o.swiftdir).await;
        }
        if o.quarantined {
            r.quarantine_check(&hosts).await;
        }
        if o.sockstat {
            r.socket_usage(&hosts).await;
        }
        if o.driveaudit {
            r.driveaudit_check(&hosts).await;
        }
        if o.time {
            r.time_check(&hosts, o.jitter).await;
        }
        if o.swift_versions {
            r.version_check(&hosts).await;
        }
    }
    i32::from(r.validation_failures > 0)
}
