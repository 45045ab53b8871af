//! `swift-ring-builder`: the operator's command line for ring builders,
//! following Swift's `swift/cli/ringbuilder.py` (reference §1.8): the same
//! commands, argument syntax, messages and exit codes (0 ok, 1 warning,
//! 2 error), so operators' habits and scripts carry over.
//!
//! Swift's CLI is positional (`<builder_file> <command> <args...>`) with
//! optparse-style device options mixed in, so the arguments are walked by
//! hand rather than with clap. Messages go to stdout as Swift prints them;
//! only Swift's warnings that it writes to stderr go there.

use crate::builder::{py_float, BuilderError, RingBuilder, MAX_BALANCE};
use crate::device::Device;
use crate::ring_data::RingData;
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// `println!` that ignores a closed stdout (`swift-ring-builder ... | head`)
/// instead of panicking.
macro_rules! out {
    () => {{ let _ = writeln!(std::io::stdout()); }};
    ($($arg:tt)*) => {{ let _ = writeln!(std::io::stdout(), $($arg)*); }};
}

/// `eprintln!` that ignores a closed stderr.
macro_rules! err {
    ($($arg:tt)*) => {{ let _ = writeln!(std::io::stderr(), $($arg)*); }};
}

pub const EXIT_SUCCESS: i32 = 0;
pub const EXIT_WARNING: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

const MAJOR_VERSION: u32 = 1;
const MINOR_VERSION: u32 = 3;
const DEFAULT_FORMAT_VERSION: u16 = 1;

/// A command ended early with this exit code (its message is already out).
struct Exit(i32);

type CmdResult = Result<i32, Exit>;

/// Prints `msg` on stdout (Swift prints its errors there) and gives exit 2.
fn error(msg: impl std::fmt::Display) -> Exit {
    out!("{msg}");
    Exit(EXIT_ERROR)
}

/// Runs `swift-ring-builder` with `args` (including the program name) and
/// returns the exit code.
pub fn run(args: Vec<String>) -> i32 {
    let code = match main(args) {
        Ok(code) => code,
        Err(Exit(code)) => code,
    };
    let _ = std::io::stdout().flush();
    code
}

/// The state every command works on: the arguments, the file names and the
/// loaded builder (absent only for commands that do not need one).
struct Cli {
    argv: Vec<String>,
    builder_file: PathBuf,
    ring_file: PathBuf,
    builder: Option<RingBuilder>,
}

fn main(argv: Vec<String>) -> CmdResult {
    // No builder file is named --help or --version: answer them as every
    // other tool of ours does.
    if argv.len() < 2 || matches!(argv[1].as_str(), "-h" | "--help") {
        print_help();
        return Ok(EXIT_SUCCESS);
    }
    if matches!(argv[1].as_str(), "-V" | "--version") {
        println!("swift-ring-builder {}", env!("CARGO_PKG_VERSION"));
        return Ok(EXIT_SUCCESS);
    }
    let (builder_file, ring_file) = builder_and_ring_file(&argv[1]);
    let command = argv.get(2).map(String::as_str).unwrap_or("default").to_string();
    if builder_file != argv[1] && !matches!(command.as_str(), "write_builder" | "version") {
        out!("Note: using {builder_file} instead of {} as builder file", argv[1]);
    }
    let builder_path = PathBuf::from(&builder_file);
    let builder = if builder_path.exists() {
        match RingBuilder::load(&builder_path) {
            Ok(b) => Some(b),
            Err(BuilderError::File { reason, .. }) => {
                return Err(error(format!("Problem occurred while reading builder file: {builder_file}. {reason}")))
            }
            Err(e) => return Err(error(format!("Problem occurred while reading builder file: {builder_file}. {e}"))),
        }
    } else if matches!(command.as_str(), "create" | "write_builder" | "version") {
        None
    } else {
        return Err(error(format!("Ring Builder file does not exist: {builder_file}")));
    };
    let mut cli = Cli { argv, builder_file: builder_path, ring_file: PathBuf::from(ring_file), builder };
    match command.as_str() {
        "default" => cli.default_listing(),
        "create" => cli.create(),
        "add" => cli.add(),
        "rebalance" => cli.rebalance(),
        "search" => cli.search(),
        "list_parts" => cli.list_parts(),
        "set_weight" => cli.set_weight(),
        "set_region" => cli.set_region_or_zone(Tier::Region),
        "set_zone" => cli.set_region_or_zone(Tier::Zone),
        "set_info" => cli.set_info(),
        "remove" => cli.remove(),
        "validate" => cli.validate(),
        "write_ring" => cli.write_ring(),
        "write_builder" => cli.write_builder(),
        "dispersion" => cli.dispersion(),
        "pretend_min_part_hours_passed" => cli.pretend_min_part_hours_passed(),
        "set_min_part_hours" => cli.set_min_part_hours(),
        "set_replicas" => cli.set_replicas(),
        "set_overload" => cli.set_overload(),
        "version" => cli.version(),
        "prepare_increase_partition_power"
        | "increase_partition_power"
        | "cancel_increase_partition_power"
        | "finish_increase_partition_power" => Err(error(format!("{command} is not supported by this swift-ring-builder yet."))),
        other => Err(error(format!("Unknown command: {other}"))),
    }
}

/// Swift's `parse_builder_ring_filename_args`: `X.ring.gz` names the
/// builder `X.builder`; `X.builder` names the ring `X.ring.gz`; any other
/// name is the builder and gets `.ring.gz` appended for the ring.
fn builder_and_ring_file(first: &str) -> (String, String) {
    if let Some(stem) = first.strip_suffix(".ring.gz") {
        (format!("{stem}.builder"), first.to_string())
    } else if let Some(stem) = first.strip_suffix(".builder") {
        (first.to_string(), format!("{stem}.ring.gz"))
    } else {
        (first.to_string(), format!("{first}.ring.gz"))
    }
}

// ---------------------------------------------------------------------------
// Usage texts (Swift's command docstrings, shortened to their synopsis).

const USAGE_DEFAULT: &str = "swift-ring-builder <builder_file>
    Shows information about the ring and the devices within. Output
    includes a table that describes the report parameters (id, region,
    port, flags, etc).
    flags: possible values are 'DEL' and ''
        DEL - indicates that the device is marked for removal from
              ring and will be removed in next rebalance.";

const USAGE_CREATE: &str = "swift-ring-builder <builder_file> create <part_power> <replicas>
                                         <min_part_hours>
    Creates <builder_file> with 2^<part_power> partitions and <replicas>.
    <min_part_hours> is number of hours to restrict moving a partition more
    than once.";

const USAGE_ADD: &str = "swift-ring-builder <builder_file> add
    [r<region>]z<zone>-<ip>:<port>[R<r_ip>:<r_port>]/<device_name>_<meta>
     <weight>
    [[r<region>]z<zone>-<ip>:<port>[R<r_ip>:<r_port>]/<device_name>_<meta>
     <weight>] ...

    Where <r_ip> and <r_port> are replication ip and port.

or

swift-ring-builder <builder_file> add
    --region <region> --zone <zone> --ip <ip or hostname> --port <port>
    [--replication-ip <r_ip or r_hostname>] [--replication-port <r_port>]
    --device <device_name> --weight <weight>
    [--meta <meta>]

    Adds devices to the ring with the given information. No partitions will be
    assigned to the new device until after running 'rebalance'. This is so you
    can make multiple device changes and rebalance them all just once.";

const SEARCH_OPTIONS: &str = "    --region <region> --zone <zone> --ip <ip or hostname> --port <port>
    --replication-ip <r_ip or r_hostname> --replication-port <r_port>
    --device <device_name> --meta <meta> --weight <weight>";

const USAGE_SEARCH_VALUE: &str = "The <search-value> can be of the form:
    d<device_id>r<region>z<zone>-<ip>:<port>R<r_ip>:<r_port>/
     <device_name>_<meta>

    Where <r_ip> and <r_port> are replication ip and port.

    Any part is optional, but you must include at least one part.

    Examples:
        d74              Matches the device id 74
        r4               Matches devices in region 4
        z1               Matches devices in zone 1
        z1-1.2.3.4       Matches devices in zone 1 with the ip 1.2.3.4
        1.2.3.4          Matches devices in any zone with the ip 1.2.3.4
        z1:5678          Matches devices in zone 1 using port 5678
        :5678            Matches devices that use port 5678
        R5.6.7.8         Matches devices that use replication ip 5.6.7.8
        R:5678           Matches devices that use replication port 5678
        1.2.3.4R5.6.7.8  Matches devices that use ip 1.2.3.4 and replication ip
                         5.6.7.8
        /sdb1            Matches devices with the device name sdb1
        _shiny           Matches devices with shiny in the meta data
        _\"snet: 5.6.7.8\" Matches devices with snet: 5.6.7.8 in the meta data
        [::1]            Matches devices in any zone with the ip ::1
        z1-[::1]:5678    Matches devices in zone 1 with ip ::1 and port 5678

    Most specific example:
        d74r4z1-1.2.3.4:5678/sdb1_\"snet: 5.6.7.8\"";

fn usage_search() -> String {
    format!(
        "swift-ring-builder <builder_file> search <search-value>\n\nor\n\nswift-ring-builder <builder_file> search\n{SEARCH_OPTIONS}\n\n    Shows information about matching devices."
    )
}

fn usage_list_parts() -> String {
    format!(
        "swift-ring-builder <builder_file> list_parts <search-value> [<search-value>] ..\n\nor\n\nswift-ring-builder <builder_file> list_parts\n{SEARCH_OPTIONS}\n\n    Returns a 2 column list of all the partitions that are assigned to any of\n    the devices matching the search values given."
    )
}

fn usage_set_weight() -> String {
    format!(
        "swift-ring-builder <builder_file> set_weight <search-value> <new_weight>\n    [<search-value> <new_weight>] ...\n    [--yes]\n\nor\n\nswift-ring-builder <builder_file> set_weight\n{SEARCH_OPTIONS} <new_weight>\n    [--yes]\n\n    Resets the devices' weights. No partitions will be reassigned to or from\n    the device until after running 'rebalance'."
    )
}

fn usage_set_tier(what: &str) -> String {
    format!(
        "swift-ring-builder <builder_file> set_{what} <search-value> <{what}>\n    [<search-value> <{what}>] ...\n\nor\n\nswift-ring-builder <builder_file> set_{what}\n{SEARCH_OPTIONS} <new {what}> [--yes]\n\n    Resets the devices' {what}s. No partitions will be reassigned to or from\n    the device until after running 'rebalance'."
    )
}

const USAGE_SET_INFO: &str = "swift-ring-builder <builder_file> set_info
    <search-value> <ip>:<port>[R<r_ip>:<r_port>]/<device_name>_<meta>
    [<search-value> <ip>:<port>[R<r_ip>:<r_port>]/<device_name>_<meta>] ...
    [--yes]

or

swift-ring-builder <builder_file> set_info
    --ip <ip or hostname> --port <port>
    --replication-ip <r_ip or r_hostname> --replication-port <r_port>
    --device <device_name> --meta <meta>
    --change-ip <ip or hostname> --change-port <port>
    --change-replication-ip <r_ip or r_hostname>
    --change-replication-port <r_port>
    --change-device <device_name>
    --change-meta <meta>
    [--yes]

    For each search-value, resets the matched device's information.
    This information isn't used to assign partitions, so you can use
    'write_ring' afterward to rewrite the current ring with the newer
    device information.";

fn usage_remove() -> String {
    format!(
        "swift-ring-builder <builder_file> remove <search-value> [search-value ...]\n    [--yes]\n\nor\n\nswift-ring-builder <builder_file> remove\n{SEARCH_OPTIONS}\n    [--yes]\n\n    Removes the device(s) from the ring. This will not take effect until after\n    running 'rebalance'."
    )
}

const USAGE_REBALANCE: &str = "swift-ring-builder <builder_file> rebalance [options]
    Attempts to rebalance the ring by reassigning partitions that haven't been
    recently reassigned.

Options:
  -f, --force           Force a rebalanced ring to save even if < 1% of parts
                        changed
  -s SEED, --seed=SEED  seed to use for rebalance
  -d, --debug           print debug information
  --format-version=FORMAT_VERSION
                        specify ring format version";

const USAGE_DISPERSION: &str = "swift-ring-builder <builder_file> dispersion <search_filter> [options]

    Output report on dispersion.

    --recalculate option will rebuild cached dispersion info and save builder
    --verbose option will display dispersion graph broken down by tier";

const USAGE_VALIDATE: &str = "swift-ring-builder <builder_file> validate
    Just runs the validation routines on the ring.";

const USAGE_WRITE_RING: &str = "swift-ring-builder <builder_file> write_ring [--format-version 1|2] [--dev-id-bytes 2|4]
    Just rewrites the distributable ring file. This is done automatically after
    a successful rebalance, so really this is only useful after one or more
    'set_info' calls when no rebalance is needed but you want to send out the
    new device information.";

const USAGE_WRITE_BUILDER: &str = "swift-ring-builder <ring_file> write_builder [min_part_hours]
    Recreate a builder from a ring file (lossy) if you lost your builder
    backups.  (Protip: don't lose your builder backups).
    [min_part_hours] is one of those numbers lost to the builder,
    you can change it with set_min_part_hours.";

const USAGE_PRETEND: &str = "swift-ring-builder <builder_file> pretend_min_part_hours_passed
    Resets the clock on the last time a rebalance happened, thus
    circumventing the min_part_hours check.";

const USAGE_SET_MIN_PART_HOURS: &str = "swift-ring-builder <builder_file> set_min_part_hours <hours>
    Changes the <min_part_hours> to the given <hours>. This should be set to
    however long a full replication/update cycle takes.";

const USAGE_SET_REPLICAS: &str = "swift-ring-builder <builder_file> set_replicas <replicas>
    Changes the replica count to the given <replicas>. <replicas> may
    be a floating-point value, in which case some partitions will have
    floor(<replicas>) replicas and some will have ceiling(<replicas>)
    in the correct proportions.

    A rebalance is needed to make the change take effect.";

const USAGE_SET_OVERLOAD: &str = "swift-ring-builder <builder_file> set_overload <overload>[%]
    Changes the overload factor to the given <overload>.

    A rebalance is needed to make the change take effect.";

const USAGE_VERSION: &str = "swift-ring-builder <ring_file> version";

const FORMAT_VERSION_DEFAULT_NOTE: &str = "Defaulting to --format-version=1. This ensures the ring
written will be readable by older versions of Swift.
In a future release, the default will change to
--format-version=2
";

fn print_help() {
    out!("swift-ring-builder {MAJOR_VERSION}.{MINOR_VERSION}\n");
    out!("{USAGE_DEFAULT}\n");
    let usages = [
        USAGE_ADD.to_string(),
        USAGE_CREATE.to_string(),
        USAGE_DISPERSION.to_string(),
        usage_list_parts(),
        USAGE_PRETEND.to_string(),
        USAGE_REBALANCE.to_string(),
        usage_remove(),
        usage_search(),
        USAGE_SET_INFO.to_string(),
        USAGE_SET_MIN_PART_HOURS.to_string(),
        USAGE_SET_OVERLOAD.to_string(),
        usage_set_tier("region"),
        USAGE_SET_REPLICAS.to_string(),
        usage_set_weight(),
        usage_set_tier("zone"),
        USAGE_VALIDATE.to_string(),
        USAGE_VERSION.to_string(),
        USAGE_WRITE_BUILDER.to_string(),
        USAGE_WRITE_RING.to_string(),
    ];
    for u in usages {
        out!("{u}\n");
    }
    out!("{USAGE_SEARCH_VALUE}\n");
    out!("Quick list: add create dispersion list_parts pretend_min_part_hours_passed");
    out!("            rebalance remove search set_info set_min_part_hours set_overload");
    out!("            set_region set_replicas set_weight set_zone validate version");
    out!("            write_builder write_ring");
    out!("Exit codes: 0 = operation successful\n            1 = operation completed with warnings\n            2 = error");
}

fn usage_error(usage: &str) -> Exit {
    error(usage)
}

fn usage_with_search_value(usage: &str) -> Exit {
    out!("{usage}\n");
    error(USAGE_SEARCH_VALUE)
}

// ---------------------------------------------------------------------------
// Python-compatible number parsing, so the messages read like Swift's.

fn py_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// Python's `int(s)`.
fn parse_int(s: &str) -> Result<i64, String> {
    let t = s.trim().replace('_', "");
    t.parse::<i64>()
        .ok()
        .filter(|_| !s.trim().starts_with('_') && !s.trim().ends_with('_'))
        .ok_or_else(|| format!("invalid literal for int() with base 10: {}", py_repr(s)))
}

/// Python's `float(s)`.
fn parse_float(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let ok = !t.is_empty()
        && (t.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
            || matches!(lower.trim_start_matches(['+', '-']), "inf" | "infinity" | "nan"));
    ok.then(|| t.parse::<f64>().ok()).flatten().ok_or_else(|| format!("could not convert string to float: {}", py_repr(s)))
}

/// A weight as Swift takes it from the command line: a float, and we also
/// refuse what cannot be a weight (negative, infinite, NaN).
fn parse_weight(s: &str, context: &str) -> Result<f64, String> {
    let w = parse_float(s)?;
    if !w.is_finite() || w < 0.0 {
        return Err(format!("Invalid weight value: {context}"));
    }
    Ok(w)
}

// ---------------------------------------------------------------------------
// Addresses (Swift's validate_and_normalize_ip / _address).

/// Lower-cases and canonicalises an IP address; IPv6 addresses get the
/// compressed form `inet_ntop` gives, so searches match however they were
/// typed.
fn normalize_ip(ip: &str) -> Result<String, String> {
    let lower = ip.to_ascii_lowercase();
    if lower.parse::<Ipv4Addr>().is_ok() {
        return Ok(lower);
    }
    if let Ok(v6) = lower.parse::<Ipv6Addr>() {
        return Ok(v6.to_string());
    }
    Err(format!("Invalid ip {ip}"))
}

fn is_valid_hostname(host: &str) -> bool {
    if host.is_empty() || host.len() > 255 {
        return false;
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// An IP address or a host name.
fn normalize_address(address: &str) -> Result<String, String> {
    let inner = address.trim_start_matches('[').trim_end_matches(']');
    if address.starts_with('[') && address.ends_with(']') {
        return normalize_ip(inner);
    }
    let lower = inner.to_ascii_lowercase();
    if let Ok(ip) = normalize_ip(&lower) {
        return Ok(ip);
    }
    if is_valid_hostname(&lower) {
        return Ok(lower);
    }
    Err(format!("Invalid address {address}"))
}

fn is_ipv6(ip: &str) -> bool {
    ip.parse::<Ipv6Addr>().is_ok()
}

fn valid_device_name(name: &str) -> bool {
    !(name.is_empty() || name.starts_with(' ') || name.ends_with(' '))
}

// ---------------------------------------------------------------------------
// Device options (Swift's optparse set in ring/utils.py parse_args).

/// Device options and positional arguments of the device commands.
#[derive(Debug, Default)]
struct DevOpts {
    id: Option<i64>,
    region: Option<i64>,
    zone: Option<i64>,
    ip: Option<String>,
    port: Option<i64>,
    replication_ip: Option<String>,
    replication_port: Option<i64>,
    device: Option<String>,
    weight: Option<f64>,
    meta: String,
    change_ip: Option<String>,
    change_port: Option<i64>,
    change_replication_ip: Option<String>,
    change_replication_port: Option<i64>,
    change_device: Option<String>,
    change_meta: String,
    yes: bool,
    args: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum OptKind {
    Int,
    Str,
    Float,
    Flag,
}

const DEV_OPTIONS: &[(&str, &str, OptKind)] = &[
    ("-u", "--id", OptKind::Int),
    ("-r", "--region", OptKind::Int),
    ("-z", "--zone", OptKind::Int),
    ("-i", "--ip", OptKind::Str),
    ("-p", "--port", OptKind::Int),
    ("-j", "--replication-ip", OptKind::Str),
    ("-q", "--replication-port", OptKind::Int),
    ("-d", "--device", OptKind::Str),
    ("-w", "--weight", OptKind::Float),
    ("-m", "--meta", OptKind::Str),
    ("-I", "--change-ip", OptKind::Str),
    ("-P", "--change-port", OptKind::Int),
    ("-J", "--change-replication-ip", OptKind::Str),
    ("-Q", "--change-replication-port", OptKind::Int),
    ("-D", "--change-device", OptKind::Str),
    ("-M", "--change-meta", OptKind::Str),
    ("-y", "--yes", OptKind::Flag),
];

/// An option found on the command line: its long name and its value.
type FoundOption = (&'static str, Option<String>);

/// An optparse-style walk: `--opt value`, `--opt=value`, `-o value`,
/// `-ovalue`, `--` ends options. A token that looks like a negative number
/// is positional, so `-5` reaches the weight check instead of being an
/// unknown option. Returns each option found (by its long name) and the
/// positional arguments.
fn walk_options(argvish: &[String], spec: &[(&'static str, &'static str, OptKind)]) -> Result<(Vec<FoundOption>, Vec<String>), String> {
    let mut found = Vec::new();
    let mut args = Vec::new();
    let mut i = 0;
    while i < argvish.len() {
        let tok = &argvish[i];
        i += 1;
        if tok == "--" {
            args.extend(argvish[i..].iter().cloned());
            break;
        }
        let negative_number = tok.len() > 1 && tok.starts_with('-') && tok[1..].starts_with(|c: char| c.is_ascii_digit() || c == '.');
        if !tok.starts_with('-') || tok == "-" || negative_number {
            args.push(tok.clone());
            continue;
        }
        let (opt, inline) = if tok.starts_with("--") {
            match tok.split_once('=') {
                Some((o, v)) => (o.to_string(), Some(v.to_string())),
                None => (tok.clone(), None),
            }
        } else if tok.len() > 2 {
            (tok[..2].to_string(), Some(tok[2..].to_string()))
        } else {
            (tok.clone(), None)
        };
        let Some(&(_, long, kind)) = spec.iter().find(|(s, l, _)| *s == opt || *l == opt) else {
            return Err(format!("no such option: {opt}"));
        };
        if kind == OptKind::Flag {
            if inline.is_some() && tok.starts_with("--") {
                return Err(format!("{long} option does not take a value"));
            }
            found.push((long, None));
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let Some(v) = argvish.get(i) else {
                    return Err(format!("{opt} option requires an argument"));
                };
                i += 1;
                v.clone()
            }
        };
        found.push((long, Some(value)));
    }
    Ok((found, args))
}

const OTHER_OPTIONS: &[(&str, &str, OptKind)] = &[
    ("-f", "--force", OptKind::Flag),
    ("-s", "--seed", OptKind::Str),
    ("-d", "--debug", OptKind::Flag),
    ("", "--format-version", OptKind::Str),
    ("", "--dev-id-bytes", OptKind::Str),
    ("", "--recalculate", OptKind::Flag),
    ("-v", "--verbose", OptKind::Flag),
];

fn option_error(msg: String) -> Exit {
    err!("Usage: swift-ring-builder <builder_file> <command> [options]\n");
    err!("swift-ring-builder: error: {msg}");
    Exit(EXIT_ERROR)
}

fn parse_dev_opts(argvish: &[String]) -> Result<DevOpts, Exit> {
    let (found, args) = walk_options(argvish, DEV_OPTIONS).map_err(option_error)?;
    let mut o = DevOpts { args, ..DevOpts::default() };
    for (name, value) in found {
        let v = value.unwrap_or_default();
        let int = || parse_int(&v).map_err(|_| option_error(format!("option {name}: invalid integer value: {}", py_repr(&v))));
        let float = || parse_float(&v).map_err(|_| option_error(format!("option {name}: invalid floating-point value: {}", py_repr(&v))));
        match name {
            "--id" => o.id = Some(int()?),
            "--region" => o.region = Some(int()?),
            "--zone" => o.zone = Some(int()?),
            "--ip" => o.ip = Some(v),
            "--port" => o.port = Some(int()?),
            "--replication-ip" => o.replication_ip = Some(v),
            "--replication-port" => o.replication_port = Some(int()?),
            "--device" => o.device = Some(v),
            "--weight" => o.weight = Some(float()?),
            "--meta" => o.meta = v,
            "--change-ip" => o.change_ip = Some(v),
            "--change-port" => o.change_port = Some(int()?),
            "--change-replication-ip" => o.change_replication_ip = Some(v),
            "--change-replication-port" => o.change_replication_port = Some(int()?),
            "--change-device" => o.change_device = Some(v),
            "--change-meta" => o.change_meta = v,
            "--yes" => o.yes = true,
            _ => {}
        }
    }
    Ok(o)
}

impl DevOpts {
    /// Swift's `validate_args`: whether the option form is in use (any
    /// search/device option given with a non-empty value).
    fn new_cmd_format(&self) -> bool {
        let nonempty = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        self.id.is_some()
            || self.region.is_some()
            || self.zone.is_some()
            || nonempty(&self.ip)
            || self.port.is_some_and(|p| p != 0)
            || nonempty(&self.replication_ip)
            || self.replication_port.is_some_and(|p| p != 0)
            || nonempty(&self.device)
            || self.weight.is_some()
            || !self.meta.is_empty()
    }

    /// Swift's `parse_search_values_from_opts`.
    fn search(&self) -> Result<Search, String> {
        let addr = |v: &Option<String>| -> Result<Option<String>, String> {
            match v.as_deref() {
                Some(s) if !s.is_empty() => normalize_address(s).map(Some),
                _ => Ok(None),
            }
        };
        Ok(Search {
            id: self.id,
            region: self.region,
            zone: self.zone,
            ip: addr(&self.ip)?,
            port: self.port,
            replication_ip: addr(&self.replication_ip)?,
            replication_port: self.replication_port,
            device: self.device.clone(),
            weight: self.weight,
            meta: Some(self.meta.clone()),
        })
    }

    /// Swift's `build_dev_from_opts` for `add` in option form.
    fn device(&self) -> Result<Device, String> {
        let required = [
            ("-r", "--region", self.region.is_none()),
            ("-z", "--zone", self.zone.is_none()),
            ("-i", "--ip", self.ip.is_none()),
            ("-p", "--port", self.port.is_none()),
            ("-d", "--device", self.device.is_none()),
            ("-w", "--weight", self.weight.is_none()),
        ];
        if let Some((s, l, _)) = required.iter().find(|r| r.2) {
            return Err(format!("Required argument {s}/{l} not specified."));
        }
        let ip_text = self.ip.clone().unwrap_or_default();
        let ip = normalize_address(&ip_text)?;
        let replication_ip = normalize_address(self.replication_ip.as_deref().filter(|s| !s.is_empty()).unwrap_or(&ip_text))?;
        let port = to_port(self.port.unwrap_or(0))?;
        let replication_port = match self.replication_port {
            Some(p) if p != 0 => to_port(p)?,
            _ => port,
        };
        let device = self.device.clone().unwrap_or_default();
        if !valid_device_name(&device) {
            return Err("Invalid device name".into());
        }
        let weight = self.weight.unwrap_or(0.0);
        if !weight.is_finite() || weight < 0.0 {
            return Err(format!("Invalid weight value: {weight}"));
        }
        Ok(Device {
            id: 0,
            region: self.region.unwrap_or(1),
            zone: self.zone.unwrap_or(0),
            ip,
            port,
            replication_ip,
            replication_port,
            device,
            weight,
            meta: self.meta.clone(),
            extra: Default::default(),
        })
    }

    /// Swift's `parse_change_values_from_opts` for `set_info`.
    fn change(&self) -> Result<Change, String> {
        let addr = |v: &Option<String>| -> Result<Option<String>, String> {
            match v.as_deref() {
                Some(s) if !s.is_empty() => normalize_address(s).map(Some),
                _ => Ok(None),
            }
        };
        Ok(Change {
            ip: addr(&self.change_ip)?,
            port: self.change_port.filter(|&p| p != 0).map(to_port).transpose()?,
            replication_ip: addr(&self.change_replication_ip)?,
            replication_port: self.change_replication_port.filter(|&p| p != 0).map(to_port).transpose()?,
            device: self.change_device.clone().filter(|d| !d.is_empty()),
            meta: Some(self.change_meta.clone()).filter(|m| !m.is_empty()),
        })
    }
}

fn to_port(p: i64) -> Result<u16, String> {
    u16::try_from(p).map_err(|_| format!("Invalid port {p}"))
}

// ---------------------------------------------------------------------------
// Search values.

/// What to match devices on; `None` fields match anything. `meta` matches
/// as a substring, addresses after normalisation (Swift's `search_devs`).
#[derive(Debug, Default, Clone, PartialEq)]
struct Search {
    id: Option<i64>,
    region: Option<i64>,
    zone: Option<i64>,
    ip: Option<String>,
    port: Option<i64>,
    replication_ip: Option<String>,
    replication_port: Option<i64>,
    device: Option<String>,
    weight: Option<f64>,
    meta: Option<String>,
}

impl Search {
    fn matches(&self, dev: &Device) -> bool {
        let norm = |ip: &str| normalize_address(ip).unwrap_or_default();
        self.id.is_none_or(|v| v == dev.id as i64)
            && self.region.is_none_or(|v| v == dev.region)
            && self.zone.is_none_or(|v| v == dev.zone)
            && self.ip.as_ref().is_none_or(|v| *v == norm(&dev.ip))
            && self.port.is_none_or(|v| v == dev.port as i64)
            && self.replication_ip.as_ref().is_none_or(|v| *v == norm(&dev.replication_ip))
            && self.replication_port.is_none_or(|v| v == dev.replication_port as i64)
            && self.device.as_ref().is_none_or(|v| *v == dev.device)
            && self.weight.is_none_or(|v| v == dev.weight)
            && self.meta.as_ref().is_none_or(|v| dev.meta.contains(v.as_str()))
    }
}

/// Reads a prefix made of characters accepted by `ok` (after the first,
/// which the caller has checked); returns it and the rest.
fn take_while(s: &str, start: usize, ok: impl Fn(char) -> bool) -> (&str, &str) {
    let end = s[start..].find(|c: char| !ok(c)).map_or(s.len(), |i| start + i);
    (&s[..end], &s[end..])
}

/// `<letter><digits>` at the front of `s`, as Swift's parsers read them.
fn take_number(s: &str, prefix: char) -> Result<(Option<i64>, &str), String> {
    if !s.starts_with(prefix) {
        return Ok((None, s));
    }
    let (num, rest) = take_while(s, 1, |c| c.is_ascii_digit());
    Ok((Some(parse_int(&num[1..])?), rest))
}

/// An IP at the front of a search or change value: digits and dots, or a
/// bracketed IPv6 address.
fn take_ip(s: &str) -> (Option<String>, &str) {
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        let (ip, rest) = take_while(s, 1, |c| c.is_ascii_digit() || c == '.');
        (Some(ip.to_string()), rest)
    } else if let Some(inner) = s.strip_prefix('[') {
        let end = inner.find(']').map_or(s.len(), |i| i + 2);
        let ip = s[..end].trim_start_matches('[').trim_end_matches(']');
        (Some(ip.to_string()), &s[end..])
    } else {
        (None, s)
    }
}

fn take_port(s: &str) -> Result<(Option<i64>, &str), String> {
    take_number(s, ':')
}

/// Swift's `parse_search_value`:
/// `d<id>r<region>z<zone>-<ip>:<port>R<r_ip>:<r_port>/<device>_<meta>`.
fn parse_search_value(value: &str) -> Result<Search, String> {
    let mut m = Search::default();
    let (id, s) = take_number(value, 'd')?;
    m.id = id;
    let (region, s) = take_number(s, 'r')?;
    m.region = region;
    let (zone, s) = take_number(s, 'z')?;
    m.zone = zone;
    let s = s.strip_prefix('-').unwrap_or(s);
    let (ip, s) = take_ip(s);
    m.ip = ip.map(|ip| normalize_ip(&ip)).transpose()?;
    let (port, mut s) = take_port(s)?;
    m.port = port;
    if let Some(rest) = s.strip_prefix('R') {
        let (rip, rest) = take_ip(rest);
        m.replication_ip = rip.map(|ip| normalize_ip(&ip)).transpose()?;
        let (rport, rest) = take_port(rest)?;
        m.replication_port = rport;
        s = rest;
    }
    if s.starts_with('/') {
        let end = s.find('_').unwrap_or(s.len());
        m.device = Some(s[1..end].to_string());
        s = &s[end..];
    }
    if let Some(meta) = s.strip_prefix('_') {
        m.meta = Some(meta.to_string());
        s = "";
    }
    if !s.is_empty() {
        return Err(format!("Invalid <search-value>: {}", py_repr(value)));
    }
    Ok(m)
}

/// Swift's `parse_add_value`: `[r<region>]z<zone>-<ip>:<port>[R<r_ip>:<r_port>]/<device>[_<meta>]`.
/// The region is `None` when not given (the caller warns and uses 1).
fn parse_add_value(value: &str) -> Result<(Option<i64>, Device), String> {
    let invalid = || format!("Invalid add value: {value}");
    let (region, rest) = take_number(value, 'r')?;
    if !rest.starts_with('z') {
        return Err(invalid());
    }
    let (zone, rest) = take_number(rest, 'z')?;
    let Some(rest) = rest.strip_prefix('-') else { return Err(invalid()) };
    let (ip, port, mut rest) = parse_address(rest)?;
    let (mut replication_ip, mut replication_port) = (ip.clone(), port);
    if let Some(r) = rest.strip_prefix('R') {
        let (rip, rport, r) = parse_address(r)?;
        replication_ip = rip;
        replication_port = rport;
        rest = r;
    }
    if !rest.starts_with('/') {
        return Err(invalid());
    }
    let end = rest.find('_').unwrap_or(rest.len());
    let device = rest[1..end].to_string();
    if !valid_device_name(&device) {
        return Err("Invalid device name".into());
    }
    let meta = rest[end..].strip_prefix('_').unwrap_or("").to_string();
    let dev = Device {
        id: 0,
        region: region.unwrap_or(1),
        zone: zone.unwrap_or(0),
        ip,
        port,
        replication_ip,
        replication_port,
        device,
        weight: 0.0,
        meta,
        extra: Default::default(),
    };
    Ok((region, dev))
}

/// `<ip>:<port>` up to the next `R` or `/`; IPv6 in brackets.
fn parse_address(rest: &str) -> Result<(String, u16, &str), String> {
    let (address, remainder) = {
        let end = if rest.starts_with('[') {
            // Skip the bracketed address before looking for `R` or `/`.
            let close = rest.find(']').unwrap_or(rest.len());
            close + rest[close..].find(['R', '/']).unwrap_or(rest.len() - close)
        } else {
            rest.find(['R', '/']).unwrap_or(rest.len())
        };
        (&rest[..end], &rest[end..])
    };
    let address = address.replacen('[', "", 1).replacen(']', "", 1);
    let Some(colon) = address.rfind(':') else {
        return Err("Invalid port in add value".into());
    };
    let port_text = &address[colon + 1..];
    let port = parse_int(port_text)
        .ok()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("Invalid port {} in add value", &address[colon..]))?;
    let ip = normalize_ip(&address[..colon])?;
    Ok((ip, port, remainder))
}

/// The new values of `set_info`.
#[derive(Debug, Default)]
struct Change {
    ip: Option<String>,
    port: Option<u16>,
    replication_ip: Option<String>,
    replication_port: Option<u16>,
    device: Option<String>,
    meta: Option<String>,
}

impl Change {
    fn is_empty(&self) -> bool {
        self.ip.is_none()
            && self.port.is_none()
            && self.replication_ip.is_none()
            && self.replication_port.is_none()
            && self.device.is_none()
            && self.meta.is_none()
    }

    fn apply(&self, dev: &mut Device) {
        if let Some(v) = &self.ip {
            dev.ip = v.clone();
        }
        if let Some(v) = self.port {
            dev.port = v;
        }
        if let Some(v) = &self.replication_ip {
            dev.replication_ip = v.clone();
        }
        if let Some(v) = self.replication_port {
            dev.replication_port = v;
        }
        if let Some(v) = &self.device {
            dev.device = v.clone();
        }
        if let Some(v) = &self.meta {
            dev.meta = v.clone();
        }
    }
}

/// Swift's `calculate_change_value`: an optional ip then an optional port.
fn take_change_address(s: &str) -> Result<(Option<String>, Option<u16>, &str), String> {
    let (ip, rest) = take_ip(s);
    let ip = ip.map(|ip| normalize_ip(&ip)).transpose()?;
    let (port, rest) = take_port(rest)?;
    let port = port.map(to_port).transpose()?;
    Ok((ip, port, rest))
}

/// The `set_info` change value `<ip>:<port>R<r_ip>:<r_port>/<device>_<meta>`.
fn parse_change_value(value: &str) -> Result<Change, String> {
    let mut c = Change::default();
    let (ip, port, mut s) = take_change_address(value)?;
    c.ip = ip;
    c.port = port;
    if let Some(rest) = s.strip_prefix('R') {
        let (rip, rport, rest) = take_change_address(rest)?;
        c.replication_ip = rip;
        c.replication_port = rport;
        s = rest;
    }
    if s.starts_with('/') {
        let end = s.find('_').unwrap_or(s.len());
        c.device = Some(s[1..end].to_string());
        s = &s[end..];
    }
    if let Some(meta) = s.strip_prefix('_') {
        c.meta = Some(meta.to_string());
        s = "";
    }
    if !s.is_empty() || c.is_empty() {
        return Err(format!("Invalid set info change value: {}", py_repr(value)));
    }
    Ok(c)
}

// ---------------------------------------------------------------------------
// Small formatting helpers.

/// Python's `str(timedelta(seconds=n))`: `0:55:06`, `1 day, 0:00:00`.
fn timedelta(secs: u64) -> String {
    let days = secs / 86400;
    let rem = secs % 86400;
    let hms = format!("{}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    match days {
        0 => hms,
        1 => format!("1 day, {hms}"),
        d => format!("{d} days, {hms}"),
    }
}

fn dashes() -> String {
    "-".repeat(79)
}

fn unix_time() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn ask(question: &str) -> bool {
    let _ = write!(std::io::stdout(), "{question}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => {
            out!();
            false
        }
        Ok(_) => line.trim_end_matches(['\n', '\r']) == "y",
    }
}

#[derive(Clone, Copy)]
enum Tier {
    Region,
    Zone,
}

// ---------------------------------------------------------------------------
// The commands.

impl Cli {
    fn builder(&mut self) -> &mut RingBuilder {
        self.builder.as_mut().expect("commands other than create/write_builder/version run with a loaded builder")
    }

    fn rest(&self) -> Vec<String> {
        self.argv.iter().skip(3).cloned().collect()
    }

    fn backup_dir(&self) -> Result<PathBuf, Exit> {
        let dir = self.builder_file.parent().map(Path::to_path_buf).unwrap_or_default().join("backups");
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(dir),
            Err(e) => Err(error(format!("Unable to create backup directory {}: {e}", dir.display()))),
        }
    }

    fn save_builder(&mut self) -> Result<(), Exit> {
        let path = self.builder_file.clone();
        self.builder().save(&path).map_err(|e| error(format!("Unable to write builder file: {e}")))
    }

    fn search_devs(&self, search: &Search) -> Vec<Device> {
        self.builder.as_ref().map_or_else(Vec::new, |b| b.iter_devs().filter(|d| search.matches(d)).cloned().collect())
    }

    /// No command: the summary and the device table.
    fn default_listing(&mut self) -> CmdResult {
        let b = self.builder.as_ref().expect("builder loaded");
        out!("{}, build version {}, id {}", self.builder_file.display(), b.version, b.id.as_deref().unwrap_or("(not assigned)"));
        let regions: BTreeSet<i64> = b.iter_devs().map(|d| d.region).collect();
        let zones: BTreeSet<(i64, i64)> = b.iter_devs().map(|d| (d.region, d.zone)).collect();
        let empty_error = b.weight_of_one_part().err().map(|e| e.to_string());
        let balance = if empty_error.is_some() { 0.0 } else { b.get_balance() };
        let ring = b.get_ring();
        out!(
            "{} partitions, {:.6} replicas, {} regions, {} zones, {} devices, {}-byte IDs, {:.2} balance, {:.2} dispersion",
            b.parts(),
            b.replicas,
            regions.len(),
            zones.len(),
            b.iter_devs().count(),
            ring.dev_id_bytes,
            balance,
            b.dispersion
        );
        out!(
            "The minimum number of hours before a partition can be reassigned is {} ({} remaining)",
            b.min_part_hours,
            timedelta(b.min_part_seconds_left())
        );
        out!("The overload factor is {:.2}% ({:.6})", b.overload * 100.0, b.overload);
        let mut ring_matches = false;
        if !self.ring_file.exists() {
            out!("Ring file {} not found, probably it hasn't been written yet", self.ring_file.display());
        } else {
            match RingData::load(&self.ring_file) {
                Err(e) => out!("Ring file {} is invalid: {e}", self.ring_file.display()),
                Ok(on_disk) => {
                    ring_matches = on_disk.devs == ring.devs
                        && on_disk.replica2part2dev == ring.replica2part2dev
                        && on_disk.part_shift == ring.part_shift
                        && on_disk.next_part_power == ring.next_part_power
                        && on_disk.version == ring.version;
                    let state = if ring_matches { "up-to-date" } else { "obsolete" };
                    out!("Ring file {} is {state}", self.ring_file.display());
                }
            }
        }
        let balances = if empty_error.is_some() { vec![Some(0.0); b.devs.len()] } else { b.balance_per_dev() };
        print_device_table(b, &balances);
        if let Some(next) = b.next_part_power {
            if next == b.part_power + 1 {
                out!("\nPreparing increase of partition power ({} -> {next})", b.part_power);
                out!("Run \"swift-object-relinker relink\" on all nodes before moving on to increase_partition_power.");
            } else if next == b.part_power {
                out!("\nIncreased partition power ({} -> {next})", b.part_power);
                if !ring_matches {
                    out!("First run \"swift-ring-builder <builderfile> write_ring\" now and copy the updated .ring.gz file to all nodes.");
                }
                out!("Run \"swift-object-relinker cleanup\" on all nodes before moving on to finish_increase_partition_power.");
            }
        }
        if let Some(e) = empty_error {
            out!("{e}");
        }
        Ok(EXIT_SUCCESS)
    }

    fn create(&mut self) -> CmdResult {
        if self.argv.len() < 6 {
            return Err(usage_error(USAGE_CREATE));
        }
        let part_power = parse_int(&self.argv[3]).map_err(error)?;
        let replicas = parse_float(&self.argv[4]).map_err(error)?;
        let min_part_hours = parse_int(&self.argv[5]).map_err(error)?;
        if part_power < 1 {
            return Err(error(format!("part_power must be at least 1 (was {part_power})")));
        }
        if part_power > 32 {
            return Err(error(format!("part_power must be at most 32 (was {part_power})")));
        }
        if min_part_hours < 0 {
            return Err(error(format!("min_part_hours must be non-negative (was {min_part_hours})")));
        }
        let min_part_hours =
            u32::try_from(min_part_hours).map_err(|_| error(format!("min_part_hours is too large (was {min_part_hours})")))?;
        let mut builder = RingBuilder::new(part_power as u32, replicas, min_part_hours).map_err(error)?;
        let backup = self.backup_dir()?.join(format!("{}.{}", unix_time(), file_name(&self.builder_file)));
        builder.save(&backup).map_err(|e| error(format!("Unable to write builder file: {e}")))?;
        builder.save(&self.builder_file).map_err(|e| error(format!("Unable to write builder file: {e}")))?;
        Ok(EXIT_SUCCESS)
    }

    fn add(&mut self) -> CmdResult {
        if self.argv.len() < 5 {
            return Err(usage_error(USAGE_ADD));
        }
        if self.builder().next_part_power.is_some() {
            out!("Partition power increase in progress. You need ");
            return Err(error("to finish the increase first before adding devices."));
        }
        let unchanged = |msg: String| {
            out!("{msg}");
            error("The on-disk ring builder is unchanged.")
        };
        let opts = parse_dev_opts(&self.rest())?;
        let mut new_devs = Vec::new();
        if !opts.args.is_empty() {
            if opts.new_cmd_format() || opts.args.len() % 2 == 1 {
                return Err(usage_error(USAGE_ADD));
            }
            for pair in opts.args.chunks(2) {
                let (region, mut dev) = parse_add_value(&pair[0]).map_err(unchanged)?;
                if region.is_none() {
                    err!("WARNING: No region specified for {}. Defaulting to region 1.\n", pair[0]);
                }
                dev.weight = parse_weight(&pair[1], &pair[0]).map_err(unchanged)?;
                new_devs.push(dev);
            }
        } else {
            new_devs.push(opts.device().map_err(unchanged)?);
        }
        for dev in new_devs {
            let b = self.builder();
            if let Some(existing) = b.iter_devs().find(|d| d.ip == dev.ip && d.port == dev.port && d.device == dev.device) {
                out!("Device {} already uses {}:{}/{}.", existing.id, existing.ip, existing.port, existing.device);
                return Err(error("The on-disk ring builder is unchanged.\n"));
            }
            let weight = dev.weight;
            let mut shown = dev.clone();
            let id = b.add_dev(dev, None).map_err(|e| unchanged(e.to_string()))?;
            shown.id = id;
            out!("Device {} with {} weight got id {id}", shown.describe(), py_float(weight));
        }
        self.save_builder()?;
        Ok(EXIT_SUCCESS)
    }

    fn rebalance(&mut self) -> CmdResult {
        let (found, args) = walk_options(&self.rest(), &OTHER_OPTIONS[..4]).map_err(option_error)?;
        let mut force = false;
        let mut seed_text = None;
        let mut format_version = None;
        for (name, value) in found {
            match name {
                "--force" => force = true,
                "--seed" => seed_text = value,
                "--format-version" => format_version = Some(parse_format_version(value.as_deref())?),
                _ => {}
            }
        }
        let format_version = format_version.unwrap_or_else(|| {
            out!("{FORMAT_VERSION_DEFAULT_NOTE}");
            DEFAULT_FORMAT_VERSION
        });
        let seed = seed_text.filter(|s| !s.is_empty()).or_else(|| args.first().cloned()).map(|s| seed_from(&s));
        let b = self.builder();
        if b.next_part_power.is_some() {
            out!("Partition power increase in progress.");
            return Err(error("You need to finish the increase first before rebalancing."));
        }
        let devs_changed = b.devs_changed;
        let min_part_seconds_left = b.min_part_seconds_left();
        let last_balance = b.get_balance();
        let last_dispersion = b.dispersion;
        let had_table = b.ever_rebalanced();
        let outcome = match b.rebalance(seed) {
            Ok(o) => o,
            Err(e) => return Err(validation_block(&e)),
        };
        let (parts, balance, removed) = (outcome.changed_parts, outcome.balance, outcome.removed_devs);
        if parts == 0 && !force && removed == 0 {
            out!("No partitions could be reassigned.");
            if min_part_seconds_left > 0 {
                out!(
                    "The time between rebalances must be at least min_part_hours: {} hours ({} remaining)",
                    b.min_part_hours,
                    timedelta(b.min_part_seconds_left())
                );
            } else {
                out!("There is no need to do so at this time");
            }
            return Ok(EXIT_WARNING);
        }
        let dispersion = b.dispersion;
        let balance_changed = (last_balance - balance).abs() >= 1.0 || (last_balance == MAX_BALANCE && balance == MAX_BALANCE);
        // A builder that never had a table has no dispersion to compare with.
        let dispersion_changed = !had_table || (last_dispersion - dispersion).abs() >= 1.0;
        if !(force || devs_changed || balance_changed || dispersion_changed) {
            out!("Cowardly refusing to save rebalance as it did not change at least 1%.");
            return Ok(EXIT_WARNING);
        }
        if let Err(e) = b.validate() {
            return Err(validation_block(&e));
        }
        out!(
            "Reassigned {} ({:.2}%) partitions. Balance is now {:.2}.  Dispersion is now {:.2}",
            parts,
            100.0 * parts as f64 / b.parts() as f64,
            balance,
            dispersion
        );
        let mut status = EXIT_SUCCESS;
        if dispersion > 0.0 {
            out!("{}", dashes());
            out!(
                "NOTE: Dispersion of {dispersion:.6} indicates some parts are not\n      optimally dispersed.\n\n      You may want to adjust some device weights, increase\n      the overload or review the dispersion report."
            );
            out!("{}", dashes());
            status = EXIT_WARNING;
        } else if balance > 5.0 && balance / 100.0 > b.overload {
            out!("{}", dashes());
            out!("NOTE: Balance of {balance:.2} indicates you should push this ");
            out!("      ring, wait at least {} hours, and rebalance/repush.", b.min_part_hours);
            out!("{}", dashes());
            status = EXIT_WARNING;
        }
        let backup_dir = self.backup_dir()?;
        let ts = unix_time();
        let ring = self.builder().get_ring();
        let ring_backup = backup_dir.join(format!("{ts}.{}", file_name(&self.ring_file)));
        ring.save(&ring_backup, format_version).map_err(|e| error(format!("Unable to write ring file: {e}")))?;
        let builder_backup = backup_dir.join(format!("{ts}.{}", file_name(&self.builder_file)));
        self.builder().save(&builder_backup).map_err(|e| error(format!("Unable to write builder file: {e}")))?;
        ring.save(&self.ring_file, format_version).map_err(|e| error(format!("Unable to write ring file: {e}")))?;
        self.save_builder()?;
        Ok(status)
    }

    fn search(&mut self) -> CmdResult {
        if self.argv.len() < 4 {
            return Err(usage_with_search_value(&usage_search()));
        }
        let opts = parse_dev_opts(&self.rest())?;
        let search = if !opts.args.is_empty() {
            if opts.new_cmd_format() || opts.args.len() != 1 {
                return Err(usage_error(&usage_search()));
            }
            parse_search_value(&opts.args[0]).map_err(error)?
        } else {
            opts.search().map_err(error)?
        };
        let devs = self.search_devs(&search);
        if devs.is_empty() {
            return Err(error("No matching devices found"));
        }
        let b = self.builder.as_ref().expect("builder loaded");
        let parts = b.parts_per_dev();
        let balances = b.balance_per_dev();
        out!(
            "Devices:    id  region  zone      ip address  port  replication ip  replication port      name weight partitions balance meta"
        );
        for dev in devs {
            let id = dev.id as usize;
            let balance = if b.weight_of_one_part().is_err() { 0.0 } else { balances.get(id).copied().flatten().unwrap_or(0.0) };
            out!(
                "         {:>5} {:>7} {:>5} {:>15} {:>5} {:>15} {:>17} {:>9} {:>6.2} {:>10} {:>7.2} {}",
                dev.id,
                dev.region,
                dev.zone,
                dev.ip,
                dev.port,
                dev.replication_ip,
                dev.replication_port,
                dev.device,
                dev.weight,
                parts.get(id).copied().unwrap_or(0),
                balance,
                dev.meta
            );
        }
        Ok(EXIT_SUCCESS)
    }

    fn list_parts(&mut self) -> CmdResult {
        if self.argv.len() < 4 {
            return Err(usage_with_search_value(&usage_list_parts()));
        }
        if !self.builder().ever_rebalanced() {
            return Err(error(format!(
                "Specified builder file \"{}\" is not rebalanced yet. Please rebalance first.",
                self.builder_file.display()
            )));
        }
        let opts = parse_dev_opts(&self.rest())?;
        let mut devs = Vec::new();
        if !opts.args.is_empty() {
            if opts.new_cmd_format() {
                return Err(usage_error(&usage_list_parts()));
            }
            for arg in &opts.args {
                let search = parse_search_value(arg).map_err(error)?;
                devs.extend(self.search_devs(&search));
            }
        } else {
            devs.extend(self.search_devs(&opts.search().map_err(error)?));
        }
        if devs.is_empty() {
            return Err(error("No matching devices found"));
        }
        let ids: BTreeSet<u32> = devs.iter().map(|d| d.id).collect();
        let b = self.builder.as_ref().expect("builder loaded");
        // Partitions in the order Swift first meets them (replica rows in
        // turn), then a stable sort by match count, most first.
        let mut order: Vec<usize> = Vec::new();
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for row in b.replica2part2dev.iter().flatten() {
            for (part, dev) in row.iter().enumerate() {
                if ids.contains(dev) {
                    let c = counts.entry(part).or_insert_with(|| {
                        order.push(part);
                        0
                    });
                    *c += 1;
                }
            }
        }
        if order.is_empty() {
            return Err(error("No matching devices found"));
        }
        order.sort_by(|a, b| counts[b].cmp(&counts[a]));
        out!("Partition   Matches");
        for part in order {
            out!("{:>9}   {:>7}", part, counts[&part]);
        }
        Ok(EXIT_SUCCESS)
    }

    /// Swift's `check_devs`: refuses an empty match and asks before
    /// changing several devices unless `--yes`.
    fn check_devs(devs: &[Device], question: &str, yes: bool, abort_msg: &str) -> Result<(), Exit> {
        if devs.is_empty() {
            return Err(error("Search value matched 0 devices.\nThe on-disk ring builder is unchanged."));
        }
        if devs.len() > 1 {
            out!("Matched more than one device:");
            for dev in devs {
                out!("    {}", dev.describe());
            }
            if !yes && !ask(question) {
                return Err(error(abort_msg));
            }
        }
        Ok(())
    }

    /// The searches of a `<search-value> <value>` pair command, or of the
    /// option form with one positional value.
    fn search_pairs(&self, opts: &DevOpts, usage: &str) -> Result<Vec<(Search, String)>, Exit> {
        if !opts.new_cmd_format() {
            if opts.args.is_empty() || opts.args.len() % 2 == 1 {
                return Err(usage_error(usage));
            }
            opts.args.chunks(2).map(|p| parse_search_value(&p[0]).map(|s| (s, p[1].clone())).map_err(error)).collect()
        } else {
            if opts.args.len() != 1 {
                return Err(usage_error(usage));
            }
            Ok(vec![(opts.search().map_err(error)?, opts.args[0].clone())])
        }
    }

    fn set_weight(&mut self) -> CmdResult {
        if self.argv.len() < 5 {
            return Err(usage_with_search_value(&usage_set_weight()));
        }
        let opts = parse_dev_opts(&self.rest())?;
        for (search, value) in self.search_pairs(&opts, &usage_set_weight())? {
            let devs = self.search_devs(&search);
            let weight = parse_float(&value).map_err(error)?;
            if !weight.is_finite() || weight < 0.0 {
                return Err(error(format!("Invalid weight value: {value}")));
            }
            let question = format!("Are you sure you want to update the weight for these {} devices? (y/N) ", devs.len());
            Self::check_devs(&devs, &question, opts.yes, "Aborting device modifications")?;
            for mut dev in devs {
                self.builder().set_dev_weight(dev.id, weight).map_err(error)?;
                dev.weight = weight;
                out!("{} weight set to {}", dev.describe(), py_float(weight));
            }
        }
        self.save_builder()?;
        Ok(EXIT_SUCCESS)
    }

    fn set_region_or_zone(&mut self, tier: Tier) -> CmdResult {
        let what = match tier {
            Tier::Region => "region",
            Tier::Zone => "zone",
        };
        let usage = usage_set_tier(what);
        if self.argv.len() < 5 {
            return Err(usage_with_search_value(&usage));
        }
        let opts = parse_dev_opts(&self.rest())?;
        for (search, value) in self.search_pairs(&opts, &usage)? {
            let devs = self.search_devs(&search);
            let n = parse_int(&value).map_err(error)?;
            let question = format!("Are you sure you want to update the {what} for these {} devices? (y/N) ", devs.len());
            Self::check_devs(&devs, &question, opts.yes, "Aborting device modifications")?;
            for mut dev in devs {
                match tier {
                    Tier::Region => {
                        self.builder().set_dev_region(dev.id, n).map_err(error)?;
                        dev.region = n;
                    }
                    Tier::Zone => {
                        self.builder().set_dev_zone(dev.id, n).map_err(error)?;
                        dev.zone = n;
                    }
                }
                out!("{} {what} set to {n}", dev.describe());
            }
        }
        self.save_builder()?;
        Ok(EXIT_SUCCESS)
    }

    fn set_info(&mut self) -> CmdResult {
        if self.argv.len() < 5 {
            return Err(usage_with_search_value(USAGE_SET_INFO));
        }
        let opts = parse_dev_opts(&self.rest())?;
        let mut jobs = Vec::new();
        if !opts.new_cmd_format() {
            if opts.args.is_empty() || opts.args.len() % 2 == 1 {
                return Err(usage_error(&usage_search()));
            }
            for pair in opts.args.chunks(2) {
                let search = parse_search_value(&pair[0]).map_err(error)?;
                let change = parse_change_value(&pair[1]).map_err(error)?;
                jobs.push((search, change));
            }
        } else {
            jobs.push((opts.search().map_err(error)?, opts.change().map_err(error)?));
        }
        for (search, change) in jobs {
            let devs = self.search_devs(&search);
            let question = format!("Are you sure you want to update the info for these {} devices? (y/N) ", devs.len());
            Self::check_devs(&devs, &question, opts.yes, "Aborting device modifications")?;
            for dev in devs {
                let mut updated = dev.clone();
                change.apply(&mut updated);
                let b = self.builder();
                if let Some(other) =
                    b.iter_devs().find(|d| d.id != updated.id && d.ip == updated.ip && d.port == updated.port && d.device == updated.device)
                {
                    return Err(error(format!("Device {} already uses {}:{}/{}.", other.id, other.ip, other.port, other.device)));
                }
                // Like Swift, this edits the device in place: no new build
                // version, and no rebalance is needed (write_ring publishes it).
                if let Some(Some(slot)) = b.devs.get_mut(dev.id as usize) {
                    *slot = updated.clone();
                }
                out!("Device {} is now {}", dev.describe(), updated.describe());
            }
        }
        self.save_builder()?;
        Ok(EXIT_SUCCESS)
    }

    fn remove(&mut self) -> CmdResult {
        if self.argv.len() < 4 {
            return Err(usage_with_search_value(&usage_remove()));
        }
        if self.builder().next_part_power.is_some() {
            out!("Partition power increase in progress. You need ");
            return Err(error("to finish the increase first before removing devices."));
        }
        let opts = parse_dev_opts(&self.rest())?;
        let mut devs: Vec<Device> = Vec::new();
        if !opts.args.is_empty() {
            if opts.new_cmd_format() {
                return Err(usage_error(&usage_remove()));
            }
            for arg in &opts.args {
                let search = parse_search_value(arg).map_err(error)?;
                for d in self.search_devs(&search) {
                    if !devs.iter().any(|x| x.id == d.id) {
                        devs.push(d);
                    }
                }
            }
        } else {
            devs = self.search_devs(&opts.search().map_err(error)?);
        }
        let question = format!("Are you sure you want to remove these {} devices? (y/N) ", devs.len());
        Self::check_devs(&devs, &question, opts.yes, "Aborting device removals")?;
        for dev in devs {
            if let Err(e) = self.builder().remove_dev(dev.id) {
                out!("{}", dashes());
                out!(
                    "An error occurred while removing device with id {}\nThis usually means that you attempted to remove\nthe last device in a ring. If this is the case,\nconsider creating a new ring instead.\nThe on-disk ring builder is unchanged.\nOriginal exception message: {e}",
                    dev.id
                );
                return Err(error(dashes()));
            }
            out!("{} marked for removal and will be removed next rebalance.", dev.describe());
        }
        self.save_builder()?;
        Ok(EXIT_SUCCESS)
    }

    fn validate(&mut self) -> CmdResult {
        match self.builder().validate() {
            Ok(()) => Ok(EXIT_SUCCESS),
            Err(e) => Err(error(e)),
        }
    }

    fn write_ring(&mut self) -> CmdResult {
        let (found, _args) = walk_options(&self.rest(), &OTHER_OPTIONS[3..5]).map_err(option_error)?;
        let mut format_version = None;
        let mut dev_id_bytes = None;
        for (name, value) in found {
            match name {
                "--format-version" => format_version = Some(parse_format_version(value.as_deref())?),
                "--dev-id-bytes" => {
                    dev_id_bytes = Some(match value.as_deref() {
                        Some("2") => 2u8,
                        Some("4") => 4u8,
                        other => {
                            return Err(option_error(format!(
                                "option --dev-id-bytes: invalid choice: {} (choose from '2', '4')",
                                py_repr(other.unwrap_or(""))
                            )))
                        }
                    })
                }
                _ => {}
            }
        }
        let format_version = format_version.unwrap_or_else(|| {
            out!("{FORMAT_VERSION_DEFAULT_NOTE}");
            DEFAULT_FORMAT_VERSION
        });
        let b = self.builder();
        if b.devs.is_empty() {
            return Err(error("Unable to write empty ring."));
        }
        let mut ring = b.get_ring();
        if let Some(n) = dev_id_bytes {
            if n < ring.dev_id_bytes {
                return Err(error(format!("Can not use {n}-byte dev ids: the ring needs {}", ring.dev_id_bytes)));
            }
            ring.dev_id_bytes = n;
        }
        if ring.replica2part2dev.is_empty() && ring.devs.iter().any(Option::is_some) {
            err!("WARNING: Writing a ring with no partition assignments but with devices; did you forget to run \"rebalance\"?");
        }
        // Encode once first so a refused combination (v1 with 4-byte ids)
        // writes nothing at all.
        ring.to_file_bytes(file_name(&self.ring_file).trim_end_matches(".gz"), format_version).map_err(error)?;
        let backup = self.backup_dir()?.join(format!("{}.{}", unix_time(), file_name(&self.ring_file)));
        ring.save(&backup, format_version).map_err(error)?;
        ring.save(&self.ring_file, format_version).map_err(error)?;
        Ok(EXIT_SUCCESS)
    }

    fn write_builder(&mut self) -> CmdResult {
        if self.builder_file.exists() {
            return Err(error(format!("Cowardly refusing to overwrite existing Ring Builder file: {}", self.builder_file.display())));
        }
        let min_part_hours = match self.argv.get(3) {
            Some(v) => {
                let n = parse_int(v).map_err(error)?;
                u32::try_from(n).map_err(|_| error(format!("min_part_hours must be non-negative (was {n})")))?
            }
            None => {
                err!("WARNING: default min_part_hours may not match the value in the lost builder.\n");
                24
            }
        };
        let ring = RingData::load(&self.ring_file).map_err(error)?;
        let mut builder = RingBuilder::from_ring(&ring, min_part_hours).map_err(|e| error(format!("{}: {e}", self.ring_file.display())))?;
        builder.save(&self.builder_file).map_err(|e| error(format!("Unable to write builder file: {e}")))?;
        Ok(EXIT_SUCCESS)
    }

    fn dispersion(&mut self) -> CmdResult {
        if !self.builder().ever_rebalanced() {
            return Err(error(format!(
                "Specified builder file \"{}\" is not rebalanced yet. Please rebalance first.",
                self.builder_file.display()
            )));
        }
        let (found, args) = walk_options(&self.rest(), &OTHER_OPTIONS[5..7]).map_err(option_error)?;
        let recalculate = found.iter().any(|(n, _)| *n == "--recalculate");
        let verbose = found.iter().any(|(n, _)| *n == "--verbose");
        let filter = match args.first() {
            Some(f) => Some(Pattern::compile(f).map_err(|e| error(format!("Invalid search filter {}: {e}", py_repr(f))))?),
            None => None,
        };
        let b = self.builder.as_ref().expect("builder loaded");
        let report = b.dispersion_report();
        let mut rows: Vec<(TierKey, String, &crate::builder::DispersionRow)> = report
            .rows
            .iter()
            .filter(|r| r.level > 0)
            .map(|r| {
                let key = TierKey::parse(&r.tier);
                let name = key.swift_name(b);
                (key, name, r)
            })
            .collect();
        // Swift sorts tier tuples, so each region is followed by its zones,
        // each zone by its servers, each server by its devices.
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut worst: Option<(f64, String)> = None;
        let mut graph = Vec::new();
        for (_, name, row) in &rows {
            if filter.as_ref().is_some_and(|f| !f.matches_start(name)) {
                continue;
            }
            let max = row.max_replicas as usize;
            let at_risk: u64 = row.replicas.iter().enumerate().skip(max + 1).map(|(i, &c)| c * (i - max) as u64).sum();
            let placed: u64 = row.replicas.iter().enumerate().skip(1).map(|(i, &c)| c * i as u64).sum();
            let tier_dispersion = if placed == 0 { 0.0 } else { 100.0 * at_risk as f64 / placed as f64 };
            if tier_dispersion > worst.as_ref().map_or(0.0, |w| w.0) {
                worst = Some((tier_dispersion, name.clone()));
            }
            if verbose {
                graph.push((name.clone(), placed, tier_dispersion, max, row.replicas.clone()));
            }
        }
        let dispersion = report.dispersion;
        let (parts, replicas, overload, balance) = (b.parts(), b.replicas, b.overload, b.get_balance());
        if recalculate && b.dispersion != dispersion {
            self.builder().dispersion = dispersion;
            self.save_builder()?;
        }
        out!("Dispersion is {dispersion:.6}, Balance is {balance:.6}, Overload is {:.2}%", overload * 100.0);
        if let Ok(required) = self.builder.as_ref().expect("builder loaded").required_overload() {
            out!("Required overload is {:.6}%", required * 100.0);
        }
        let mut status = EXIT_SUCCESS;
        if let Some((d, name)) = worst {
            status = EXIT_WARNING;
            out!("Worst tier is {d:.6} ({name})");
        }
        if !graph.is_empty() {
            let columns = (replicas + 1.0).ceil() as usize;
            let pw = parts.to_string().len().max(5);
            let tw = graph.iter().map(|g| g.0.len()).max().unwrap_or(0).max(30);
            let mut header = format!("{:<tw$} {:>pw$} {:>6} {:>6} ", "Tier", "Parts", "%", "Max");
            header.push_str(&(0..columns).map(|i| format!("{i:>pw$}")).collect::<Vec<_>>().join(" "));
            let underline = "-".repeat(header.len());
            out!("{underline}\n{header}\n{underline}");
            for (name, placed, d, max, counts) in graph {
                let counts = counts.iter().map(|c| format!("{c:>pw$}")).collect::<Vec<_>>().join(" ");
                out!("{name:<tw$} {placed:>pw$} {d:>6.2} {max:>6} {counts}");
            }
        }
        Ok(status)
    }

    fn pretend_min_part_hours_passed(&mut self) -> CmdResult {
        self.builder().pretend_min_part_hours_passed();
        self.save_builder()?;
        Ok(EXIT_SUCCESS)
    }

    fn set_min_part_hours(&mut self) -> CmdResult {
        let Some(value) = self.argv.get(3).cloned() else {
            return Err(usage_error(USAGE_SET_MIN_PART_HOURS));
        };
        let n = parse_int(&value).map_err(error)?;
        let hours = u32::try_from(n).map_err(|_| error(format!("min_part_hours must be non-negative (was {n})")))?;
        self.builder().min_part_hours = hours;
        out!("The minimum number of hours before a partition can be reassigned is now set to {value}");
        self.save_builder()?;
        Ok(EXIT_SUCCESS)
    }

    fn set_replicas(&mut self) -> CmdResult {
        let Some(value) = self.argv.get(3).cloned() else {
            return Err(usage_error(USAGE_SET_REPLICAS));
        };
        let replicas = match parse_float(&value) {
            Ok(r) if r.is_finite() => r,
            _ => {
                out!("{USAGE_SET_REPLICAS}");
                return Err(error(format!("\"{value}\" is not a valid number.")));
            }
        };
        if replicas < 1.0 {
            return Err(error("Replica count must be at least 1."));
        }
        self.builder().set_replicas(replicas).map_err(error)?;
        out!("The replica count is now {:.6}.", self.builder().replicas);
        out!("The change will take effect after the next rebalance.");
        self.save_builder()?;
        Ok(EXIT_SUCCESS)
    }

    fn set_overload(&mut self) -> CmdResult {
        let Some(value) = self.argv.get(3).cloned() else {
            return Err(usage_error(USAGE_SET_OVERLOAD));
        };
        let (number, percent) = match value.strip_suffix('%') {
            Some(n) => (n.trim_end_matches('%').to_string(), true),
            None => (value.clone(), false),
        };
        let mut overload = match parse_float(&number) {
            Ok(o) if o.is_finite() => o,
            _ => {
                out!("{USAGE_SET_OVERLOAD}");
                return Err(error(format!("{} is not a valid number.", py_repr(&number))));
            }
        };
        if percent {
            overload *= 0.01;
        }
        if overload < 0.0 {
            return Err(error("Overload must be non-negative."));
        }
        let status = if overload > 1.0 && !percent {
            out!("!?! Warning overload is greater than 100% !?!");
            EXIT_WARNING
        } else {
            EXIT_SUCCESS
        };
        let b = self.builder();
        b.overload = overload;
        out!("The overload factor is now {:.2}% ({:.6})", b.overload * 100.0, b.overload);
        out!("The change will take effect after the next rebalance.");
        self.save_builder()?;
        Ok(status)
    }

    fn version(&mut self) -> CmdResult {
        let ring = RingData::load(&self.ring_file).map_err(error)?;
        out!(
            "{}: Serialization version: {} ({}-byte IDs), build version: {}",
            self.ring_file.display(),
            ring.format_version.unwrap_or(1),
            ring.dev_id_bytes,
            ring.version.unwrap_or(0)
        );
        Ok(EXIT_SUCCESS)
    }
}

fn parse_format_version(value: Option<&str>) -> Result<u16, Exit> {
    match value {
        Some("1") => Ok(1),
        Some("2") => Ok(2),
        other => {
            Err(option_error(format!("option --format-version: invalid choice: {} (choose from '1', '2')", py_repr(other.unwrap_or("")))))
        }
    }
}

/// A rebalance seed: an integer as given, anything else hashed (Swift
/// seeds Python's `random` with whatever string it gets).
fn seed_from(s: &str) -> u64 {
    s.parse::<u64>().unwrap_or_else(|_| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        s.hash(&mut h);
        h.finish()
    })
}

fn validation_block(e: &BuilderError) -> Exit {
    out!("{}", dashes());
    out!(
        "An error has occurred during ring validation. Common\ncauses of failure are rings that are empty or do not\nhave enough devices to accommodate the replica count.\nOriginal exception message:\n {e}"
    );
    error(dashes())
}

/// Swift's device table of the default command.
fn print_device_table(b: &RingBuilder, balances: &[Option<f64>]) {
    let mut ip_w = 10;
    let mut port_w = 4;
    let mut rip_w = 14;
    let mut rport_w = 4;
    let mut weight_w = 6;
    let (mut ip6, mut rip6) = (false, false);
    for d in b.iter_devs() {
        ip6 |= is_ipv6(&d.ip);
        rip6 |= is_ipv6(&d.replication_ip);
        ip_w = ip_w.max(d.ip.len());
        rip_w = rip_w.max(d.replication_ip.len());
        port_w = port_w.max(d.port.to_string().len());
        rport_w = rport_w.max(d.replication_port.to_string().len());
        weight_w = weight_w.max(format!("{:6.2}", d.weight).len());
    }
    if ip6 {
        ip_w += 2;
    }
    if rip6 {
        rip_w += 2;
    }
    out!(
        "Devices:{:>5} {:>6} {:>4} {:>ip_w$}:{:<port_w$} {:>rip_w$}:{:<rport_w$} {:>5} {:>weight_w$} {:>10} {:>7} {:>5} {}",
        "id",
        "region",
        "zone",
        "ip address",
        "port",
        "replication ip",
        "port",
        "name",
        "weight",
        "partitions",
        "balance",
        "flags",
        "meta"
    );
    let parts = b.parts_per_dev();
    let mut devs: Vec<&Device> = b.iter_devs().collect();
    devs.sort_by(|x, y| (x.region, x.zone, &x.ip, &x.device).cmp(&(y.region, y.zone, &y.ip, &y.device)));
    for d in devs {
        let flags = if b.is_marked_for_removal(d.id) { "DEL" } else { "" };
        let balance = balances.get(d.id as usize).copied().flatten().unwrap_or(0.0);
        out!(
            "{:>13} {:>6} {:>4} {:>ip_w$}:{:<port_w$} {:>rip_w$}:{:<rport_w$} {:>5} {:>weight_w$.2} {:>10} {:>7.2} {:>5} {}",
            d.id,
            d.region,
            d.zone,
            crate::device::format_ip(&d.ip),
            d.port,
            crate::device::format_ip(&d.replication_ip),
            d.replication_port,
            d.device,
            d.weight,
            parts.get(d.id as usize).copied().unwrap_or(0),
            balance,
            flags,
            d.meta
        );
    }
}

// ---------------------------------------------------------------------------
// Dispersion tiers.

/// A tier as Swift's tuple `(region, zone, ip, dev_id)` truncated to its
/// depth; the derived order is Python's tuple order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct TierKey {
    region: i64,
    zone: Option<i64>,
    ip: Option<String>,
    id: Option<u32>,
}

impl TierKey {
    /// Reads the builder's tier names: `r1`, `r1z2`, `r1z2-10.0.0.1`,
    /// `r1z2-[::1]/5` (device tiers end in the device id).
    fn parse(tier: &str) -> TierKey {
        let mut key = TierKey { region: 0, zone: None, ip: None, id: None };
        let s = tier.strip_prefix('r').unwrap_or(tier);
        let (region, s) = s.split_at(s.find(|c: char| !(c.is_ascii_digit() || c == '-')).unwrap_or(s.len()));
        key.region = region.parse().unwrap_or(0);
        let Some(s) = s.strip_prefix('z') else { return key };
        let (zone, s) = match s.find('-') {
            Some(i) if i > 0 => (&s[..i], &s[i..]),
            _ => (s, ""),
        };
        key.zone = zone.parse().ok();
        let Some(s) = s.strip_prefix('-') else { return key };
        let (ip, id) = match s.rfind('/') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        key.ip = Some(ip.trim_start_matches('[').trim_end_matches(']').to_string());
        key.id = id.and_then(|id| id.parse().ok());
        key
    }

    /// Swift's `get_tier_name`: device tiers are named by device name.
    fn swift_name(&self, b: &RingBuilder) -> String {
        let mut name = format!("r{}", self.region);
        if let Some(z) = self.zone {
            name.push_str(&format!("z{z}"));
        }
        if let Some(ip) = &self.ip {
            name.push_str(&format!("-{ip}"));
        }
        if let Some(id) = self.id {
            match b.devs.get(id as usize).and_then(Option::as_ref) {
                Some(d) => name.push_str(&format!("/{}", d.device)),
                None => name.push_str(&format!("/IDd{id}")),
            }
        }
        name
    }
}

// ---------------------------------------------------------------------------
// The dispersion search filter: Swift keeps a tier when
// `re.match(search_filter, tier_name)` matches, i.e. the pattern anchored at
// the start of the name only.

/// A compiled search filter.
#[derive(Debug, Clone)]
struct Pattern {
    anchored: regex::Regex,
}

impl Pattern {
    fn compile(src: &str) -> Result<Pattern, String> {
        // Check the pattern on its own first, so that a filter such as
        // `a)|(b` is refused as Python refuses it, instead of being balanced
        // by the group we wrap it in.
        regex::Regex::new(src).map_err(|e| regex_error(&e))?;
        let anchored = regex::Regex::new(&format!(r"\A(?:{src})")).map_err(|e| regex_error(&e))?;
        Ok(Pattern { anchored })
    }

    /// `re.match`: does the pattern match a prefix of `text`?
    fn matches_start(&self, text: &str) -> bool {
        self.anchored.is_match(text)
    }
}

/// The first line of the regex crate's message (the rest draws the pattern).
fn regex_error(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => {
            s.lines().rev().find(|l| l.starts_with("error:")).unwrap_or("bad pattern").trim_start_matches("error: ").to_string()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_values_parse_like_swift() {
        let s = parse_search_value("d74r4z1-1.2.3.4:5678R5.6.7.8:9/sdb1_snet: 5.6.7.8").unwrap();
        assert_eq!(s.id, Some(74));
        assert_eq!(s.region, Some(4));
        assert_eq!(s.zone, Some(1));
        assert_eq!(s.ip.as_deref(), Some("1.2.3.4"));
        assert_eq!(s.port, Some(5678));
        assert_eq!(s.replication_ip.as_deref(), Some("5.6.7.8"));
        assert_eq!(s.replication_port, Some(9));
        assert_eq!(s.device.as_deref(), Some("sdb1"));
        assert_eq!(s.meta.as_deref(), Some("snet: 5.6.7.8"));
        assert_eq!(parse_search_value("z1-[::1]:5678").unwrap().ip.as_deref(), Some("::1"));
        assert_eq!(parse_search_value(":5678").unwrap().port, Some(5678));
        assert!(parse_search_value("sdb1").unwrap_err().starts_with("Invalid <search-value>"));
        assert!(parse_search_value("d").unwrap_err().contains("invalid literal for int()"));
        assert!(parse_search_value("999.1.1.1").is_err());
    }

    #[test]
    fn add_values_parse_like_swift() {
        let (region, d) = parse_add_value("r2z3-[FE80::1]:6200R[fe80::2]:6300/sdb1_fast").unwrap();
        assert_eq!(region, Some(2));
        assert_eq!((d.zone, d.ip.as_str(), d.port), (3, "fe80::1", 6200));
        assert_eq!((d.replication_ip.as_str(), d.replication_port), ("fe80::2", 6300));
        assert_eq!((d.device.as_str(), d.meta.as_str()), ("sdb1", "fast"));
        let (region, d) = parse_add_value("z1-127.0.0.1:6200/sdb1").unwrap();
        assert_eq!(region, None);
        assert_eq!(d.replication_ip, "127.0.0.1");
        assert!(parse_add_value("r1-127.0.0.1:6200/sdb1").unwrap_err().starts_with("Invalid add value"));
        assert!(parse_add_value("r1z1-127.0.0.1/sdb1").is_err());
        assert!(parse_add_value("r1z1-127.0.0.1:x/sdb1").unwrap_err().starts_with("Invalid port"));
        assert!(parse_add_value("r1z1-127.0.0.1:6200/").unwrap_err().contains("device name"));
        assert!(parse_add_value("r1z1-host:6200/sdb").unwrap_err().contains("Invalid ip"));
    }

    #[test]
    fn change_values_parse_like_swift() {
        let c = parse_change_value("10.0.0.9:7000R10.0.1.9:7001/sdc_new").unwrap();
        assert_eq!(c.ip.as_deref(), Some("10.0.0.9"));
        assert_eq!(c.port, Some(7000));
        assert_eq!(c.replication_port, Some(7001));
        assert_eq!(c.device.as_deref(), Some("sdc"));
        assert_eq!(c.meta.as_deref(), Some("new"));
        assert!(parse_change_value("").is_err());
        assert!(parse_change_value("bogus").is_err());
    }

    #[test]
    fn timedelta_prints_like_python() {
        assert_eq!(timedelta(3306), "0:55:06");
        assert_eq!(timedelta(86400), "1 day, 0:00:00");
        assert_eq!(timedelta(2 * 86400 + 3661), "2 days, 1:01:01");
    }

    #[test]
    fn filters_match_like_re_match() {
        let p = Pattern::compile(r"r\d+z\d+$").unwrap();
        assert!(p.matches_start("r1z2"));
        assert!(!p.matches_start("r1z2-10.0.0.1"));
        let p = Pattern::compile(r".*\-[^/]*$").unwrap();
        assert!(p.matches_start("r1z2-10.0.0.1"));
        assert!(!p.matches_start("r1z2-10.0.0.1/sdb"));
        assert!(Pattern::compile("r1").unwrap().matches_start("r1z1"));
        assert!(Pattern::compile("*").is_err());
    }

    #[test]
    fn tier_keys_sort_like_python_tuples() {
        let mut keys = [TierKey::parse("r1z1-10.0.0.1/3"), TierKey::parse("r1z2"), TierKey::parse("r1"), TierKey::parse("r1z1")];
        keys.sort();
        assert_eq!(keys[0], TierKey::parse("r1"));
        assert_eq!(keys[1], TierKey::parse("r1z1"));
        assert_eq!(keys[2].id, Some(3));
        assert_eq!(TierKey::parse("r1z1-[::1]/0").ip.as_deref(), Some("::1"));
    }
}
