//! The command line of every server and daemon, in Swift's forms
//! (`swift/common/utils` `parse_options`):
//!
//! ```text
//! swift-object-server     CONFIG [-v|--verbose] [verbose]
//! swift-object-updater    CONFIG [-o|--once] [-v|--verbose] [once] [verbose]
//! swift-object-replicator CONFIG [-o|--once] [-v] [-d|--devices D1,D2] [-p|--partitions P1,P2]
//! ```
//!
//! Every one also answers `-h`/`--help` and `-V`/`--version`
//! (`<binary> <VERSION>`). Swift lets the words `once` and `verbose` stand
//! after the config file for `--once` and `--verbose` (what `swift-init`
//! passes); so do we. A usage error exits 2 with clap's message; a config
//! file that does not exist exits 1, as in Swift.

use crate::daemon::{DaemonArgs, Scope};
use clap::{Args, CommandFactory, FromArgMatches, Parser};
use std::ffi::OsString;
use std::path::PathBuf;

/// What a server's command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerArgs {
    pub config: PathBuf,
    /// Swift's `-v`: log to the console too.
    pub verbose: bool,
}

/// The arguments every server and daemon shares.
#[derive(Args, Debug)]
struct Common {
    /// The Swift-style INI config file (e.g. /etc/swift/object-server.conf).
    config: PathBuf,
    /// Log to the console too (Swift's meaning).
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Parser, Debug)]
struct ServerCli {
    #[command(flatten)]
    common: Common,
    /// Swift's trailing word: `verbose` is the same as --verbose.
    #[arg(value_name = "WORD", value_parser = ["verbose"])]
    words: Vec<String>,
}

#[derive(Args, Debug)]
struct Run {
    #[command(flatten)]
    common: Common,
    /// Make one pass, then exit.
    #[arg(short, long)]
    once: bool,
    /// Swift's trailing words: `once` and `verbose` are the same as
    /// --once and --verbose.
    #[arg(value_name = "WORD", value_parser = ["once", "verbose"])]
    words: Vec<String>,
}

#[derive(Parser, Debug)]
struct DaemonCli {
    #[command(flatten)]
    run: Run,
}

#[derive(Parser, Debug)]
struct ScopedDaemonCli {
    #[command(flatten)]
    run: Run,
    /// Only these devices (comma-separated names).
    #[arg(short, long, value_name = "D1,D2", value_delimiter = ',')]
    devices: Vec<String>,
    /// Only these partitions (comma-separated numbers).
    #[arg(short, long, value_name = "P1,P2", value_delimiter = ',', value_parser = partition)]
    partitions: Vec<u32>,
}

fn partition(s: &str) -> Result<u32, String> {
    s.trim().parse().map_err(|_| format!("{s:?} is not a partition number"))
}

/// The clap command of `binary`, with its name and our version.
fn command<C: CommandFactory>(binary: &str, about: &str) -> clap::Command {
    C::command().name(binary.to_string()).bin_name(binary.to_string()).version(crate::VERSION).about(about.to_string())
}

/// Parses a server's arguments (without the program name).
pub fn parse_server(binary: &str, args: impl IntoIterator<Item = OsString>) -> Result<ServerArgs, clap::Error> {
    let about = format!("Runs the Swift {} with its config file.", binary.trim_start_matches("swift-"));
    let argv = std::iter::once(OsString::from(binary)).chain(args);
    let m = command::<ServerCli>(binary, &about).try_get_matches_from(argv)?;
    let cli = ServerCli::from_arg_matches(&m)?;
    Ok(ServerArgs { config: cli.common.config, verbose: cli.common.verbose || !cli.words.is_empty() })
}

/// Parses a daemon's arguments (without the program name); `scoped`
/// daemons take `--devices` and `--partitions`.
pub fn parse_daemon(binary: &str, scoped: bool, args: impl IntoIterator<Item = OsString>) -> Result<DaemonArgs, clap::Error> {
    let about = format!(
        "Runs the Swift {} with its config file: a pass every `interval` seconds, or one with --once.",
        binary.trim_start_matches("swift-")
    );
    let argv = std::iter::once(OsString::from(binary)).chain(args);
    let (run, scope) = if scoped {
        let m = command::<ScopedDaemonCli>(binary, &about).try_get_matches_from(argv)?;
        let cli = ScopedDaemonCli::from_arg_matches(&m)?;
        let devices = cli.devices.iter().map(|d| d.trim()).filter(|d| !d.is_empty()).map(String::from).collect();
        (cli.run, Scope { devices, partitions: cli.partitions })
    } else {
        let m = command::<DaemonCli>(binary, &about).try_get_matches_from(argv)?;
        (DaemonCli::from_arg_matches(&m)?.run, Scope::default())
    };
    let word = |w: &str| run.words.iter().any(|x| x == w);
    Ok(DaemonArgs { once: run.once || word("once"), verbose: run.common.verbose || word("verbose"), config: run.common.config, scope })
}

/// A server's command line from the process's arguments; `--help`,
/// `--version` and usage errors end the process (0, 0, 2), as does a config
/// file that does not exist (1).
pub fn server_args(binary: &str) -> ServerArgs {
    let args = parse_server(binary, std::env::args_os().skip(1)).unwrap_or_else(|e| e.exit());
    require_file(binary, &args.config);
    args
}

/// A daemon's command line from the process's arguments; ends the process
/// as [`server_args`] does.
pub fn daemon_args(binary: &str, scoped: bool) -> DaemonArgs {
    let args = parse_daemon(binary, scoped, std::env::args_os().skip(1)).unwrap_or_else(|e| e.exit());
    require_file(binary, &args.config);
    args
}

/// Swift's check before anything starts: the config file must exist.
fn require_file(binary: &str, config: &std::path::Path) {
    if !config.exists() {
        eprintln!("{binary}: Error: unable to locate {}", config.display());
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn server_command_lines() {
        let args = |v: &[&str]| parse_server("swift-x-server", os(v));
        assert_eq!(args(&["x.conf"]).unwrap(), ServerArgs { config: "x.conf".into(), verbose: false });
        assert!(args(&["x.conf", "-v"]).unwrap().verbose);
        assert!(args(&["--verbose", "x.conf"]).unwrap().verbose);
        assert!(args(&["x.conf", "verbose"]).unwrap().verbose, "Swift's trailing word");
        for (bad, kind) in [
            (&["--help"][..], clap::error::ErrorKind::DisplayHelp),
            (&["x.conf", "-h"][..], clap::error::ErrorKind::DisplayHelp),
            (&["--version"][..], clap::error::ErrorKind::DisplayVersion),
            (&[][..], clap::error::ErrorKind::MissingRequiredArgument),
            (&["--bogus", "x.conf"][..], clap::error::ErrorKind::UnknownArgument),
            (&["x.conf", "y.conf"][..], clap::error::ErrorKind::InvalidValue),
            (&["x.conf", "--once"][..], clap::error::ErrorKind::UnknownArgument),
        ] {
            assert_eq!(args(bad).unwrap_err().kind(), kind, "{bad:?}");
        }
        let version = args(&["--version"]).unwrap_err().to_string();
        assert_eq!(version.trim(), format!("swift-x-server {}", crate::VERSION));
    }

    #[test]
    fn daemon_command_lines() {
        let a = |scoped: bool, v: &[&str]| parse_daemon("swift-x", scoped, os(v));
        assert_eq!(
            a(false, &["x.conf"]).unwrap(),
            DaemonArgs { config: "x.conf".into(), once: false, verbose: false, scope: Scope::default() }
        );
        assert!(a(false, &["x.conf", "once"]).unwrap().once);
        assert!(a(false, &["-o", "x.conf"]).unwrap().once);
        let both = a(false, &["x.conf", "--once", "-v"]).unwrap();
        assert!(both.once && both.verbose);
        let words = a(false, &["x.conf", "once", "verbose"]).unwrap();
        assert!(words.once && words.verbose);
        assert!(a(false, &[]).is_err());
        assert!(a(false, &["x.conf", "--devices", "sda"]).is_err(), "only scoped daemons take --devices");
        assert!(a(false, &["x.conf", "--bogus"]).is_err());
        assert!(a(false, &["x.conf", "y.conf"]).is_err());
        let s = a(true, &["x.conf", "once", "--devices", "sda,sdb", "-p", "3, 7"]).unwrap();
        assert_eq!(s.scope, Scope { devices: vec!["sda".into(), "sdb".into()], partitions: vec![3, 7] });
        assert!(s.once);
        assert_eq!(a(true, &["--devices=sdc", "x.conf"]).unwrap().scope.devices, vec!["sdc".to_string()]);
        assert!(a(true, &["x.conf", "--partitions", "x"]).is_err());
        assert!(a(true, &["x.conf", "--devices"]).is_err());
        let help = a(true, &["--help"]).unwrap_err();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("--partitions"));
        assert_eq!(a(false, &["-V"]).unwrap_err().to_string().trim(), format!("swift-x {}", crate::VERSION));
    }
}
