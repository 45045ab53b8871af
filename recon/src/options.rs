//! The command line, parsed as Swift's `optparse` parser does: options and
//! server types in any order, `--opt=value` or `--opt value`, grouped short
//! flags (`-lT`, `-t5`), unambiguous prefixes of long options (`--verb`),
//! and optparse's `error:` messages with exit status 2.

use std::path::PathBuf;

/// The server types swift-recon can check, in Swift's order.
pub const SERVER_TYPES: [&str; 3] = ["account", "container", "object"];

/// Everything the command line asks for (Swift's option names).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Server types to check, in the order given, without repeats;
    /// `object` when none is given.
    pub server_types: Vec<String>,
    pub verbose: bool,
    pub suppress: bool,
    pub async_check: bool,
    pub replication: bool,
    pub reconstruction: bool,
    pub auditor: bool,
    pub updater: bool,
    pub expirer: bool,
    pub sharding: bool,
    pub unmounted: bool,
    pub diskusage: bool,
    pub human_readable: bool,
    pub loadstats: bool,
    pub quarantined: bool,
    pub validate_servers: bool,
    pub md5: bool,
    pub sockstat: bool,
    pub driveaudit: bool,
    pub time: bool,
    /// Largest allowed clock difference for `-T`, in seconds.
    pub jitter: f64,
    pub swift_versions: bool,
    /// `--top COUNT` of `-d`.
    pub top: i64,
    /// `--lowest COUNT` of `-d`.
    pub lowest: i64,
    pub all: bool,
    pub region: Option<i64>,
    pub zone: Option<i64>,
    /// Seconds to wait for each server (`-t`, default 5).
    pub timeout: i64,
    pub swiftdir: PathBuf,
    pub policy: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            server_types: Vec::new(),
            verbose: false,
            suppress: false,
            async_check: false,
            replication: false,
            reconstruction: false,
            auditor: false,
            updater: false,
            expirer: false,
            sharding: false,
            unmounted: false,
            diskusage: false,
            human_readable: false,
            loadstats: false,
            quarantined: false,
            validate_servers: false,
            md5: false,
            sockstat: false,
            driveaudit: false,
            time: false,
            jitter: 0.0,
            swift_versions: false,
            top: 0,
            lowest: 0,
            all: false,
            region: None,
            zone: None,
            timeout: 5,
            swiftdir: PathBuf::from("/etc/swift"),
            policy: None,
        }
    }
}

/// What the command line amounts to.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Run(Options),
    /// `-h`, no arguments at all, or more than three server types: print
    /// the help and exit 0 (as Swift does).
    Help,
    /// A server type that is not account, container or object (Swift
    /// prints `Invalid Server Type` and the help, exit 1).
    InvalidServerType,
    /// An optparse error: usage plus `swift-recon: error: <msg>` on
    /// stderr, exit 2.
    Error(String),
}

#[derive(Clone, Copy)]
enum Kind {
    Flag,
    Int,
    Float,
    Str,
}

/// (short, long, kind): the option table of Swift's recon.py.
const OPTIONS: &[(Option<char>, &str, Kind)] = &[
    (Some('h'), "help", Kind::Flag),
    (Some('v'), "verbose", Kind::Flag),
    (None, "suppress", Kind::Flag),
    (Some('a'), "async", Kind::Flag),
    (Some('r'), "replication", Kind::Flag),
    (Some('R'), "reconstruction", Kind::Flag),
    (None, "auditor", Kind::Flag),
    (None, "updater", Kind::Flag),
    (None, "expirer", Kind::Flag),
    (None, "sharding", Kind::Flag),
    (Some('u'), "unmounted", Kind::Flag),
    (Some('d'), "diskusage", Kind::Flag),
    (None, "human-readable", Kind::Flag),
    (Some('l'), "loadstats", Kind::Flag),
    (Some('q'), "quarantined", Kind::Flag),
    (None, "validate-servers", Kind::Flag),
    (None, "md5", Kind::Flag),
    (None, "sockstat", Kind::Flag),
    (None, "driveaudit", Kind::Flag),
    (Some('T'), "time", Kind::Flag),
    (None, "jitter", Kind::Float),
    (None, "swift-versions", Kind::Flag),
    (None, "top", Kind::Int),
    (None, "lowest", Kind::Int),
    (None, "all", Kind::Flag),
    (None, "region", Kind::Int),
    (Some('z'), "zone", Kind::Int),
    (Some('t'), "timeout", Kind::Int),
    (None, "swiftdir", Kind::Str),
    (Some('p'), "policy", Kind::Str),
];

/// The usage line optparse prints before an error.
pub const USAGE: &str = "Usage: \n        usage: swift-recon <server_type> [<server_type> [<server_type>]]\n        [-v] [--suppress] [-a] [-r] [-u] [-d] [-R]\n        [-l] [-T] [--md5] [--auditor] [--updater] [--expirer] [--sockstat]\n        [--human-readable]\n\n        <server_type>\taccount|container|object\n        Defaults to object server.\n\n        ex: swift-recon container -l --auditor\n        ";

/// `--help` output, laid out as optparse lays out Swift's options.
pub fn help() -> String {
    format!(
        "{USAGE}\n\nOptions:\n\
  -h, --help            show this help message and exit\n\
  -v, --verbose         Print verbose info\n\
  --suppress            Suppress most connection related errors\n\
  -a, --async           Get async stats\n\
  -r, --replication     Get replication stats\n\
  -R, --reconstruction  Get reconstruction stats\n\
  --auditor             Get auditor stats\n\
  --updater             Get updater stats\n\
  --expirer             Get expirer stats\n\
  --sharding            Get sharding stats\n\
  -u, --unmounted       Check cluster for unmounted devices\n\
  -d, --diskusage       Get disk usage stats\n\
  --human-readable      Use human readable suffix for disk usage stats\n\
  -l, --loadstats       Get cluster load average stats\n\
  -q, --quarantined     Get cluster quarantine stats\n\
  --validate-servers    Validate servers on the ring\n\
  --md5                 Get md5sum of servers ring and compare to local copy\n\
  --sockstat            Get cluster socket usage stats\n\
  --driveaudit          Get drive audit error stats\n\
  -T, --time            Check time synchronization\n\
  --jitter=JITTER       Maximal allowed time jitter\n\
  --swift-versions      Check swift versions\n\
  --top=COUNT           Also show the top COUNT entries in rank order.\n\
  --lowest=COUNT        Also show the lowest COUNT entries in rank order.\n\
  --all                 Perform all checks. Equal to -arRudlqT --md5\n\
                        --sockstat --auditor --updater --expirer --driveaudit\n\
                        --validate-servers --swift-versions\n\
  --region=REGION       Only query servers in specified region\n\
  -z ZONE, --zone=ZONE  Only query servers in specified zone\n\
  -t SECONDS, --timeout=SECONDS\n\
                        Time to wait for a response from a server\n\
  --swiftdir=SWIFTDIR   Default = /etc/swift\n\
  -p POLICY, --policy=POLICY\n\
                        Only query object servers in specified storage policy\n\
                        (specified as name or index).\n"
    )
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Parsed {
    // Swift shows the help when run with no arguments at all.
    if args.is_empty() {
        return Parsed::Help;
    }
    let mut o = Options::default();
    let mut positional: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            positional.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = arg.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let (long, kind) = match match_long(name) {
                Ok(m) => m,
                Err(e) => return Parsed::Error(e),
            };
            let value = match kind {
                Kind::Flag => {
                    if inline.is_some() {
                        return Parsed::Error(format!("--{long} option does not take a value"));
                    }
                    None
                }
                _ => match inline.or_else(|| {
                    let v = args.get(i).cloned();
                    i += 1;
                    v
                }) {
                    Some(v) => Some(v),
                    None => return Parsed::Error(format!("--{long} option requires 1 argument")),
                },
            };
            if let Err(e) = apply(&mut o, long, kind, &format!("--{long}"), value) {
                return e.into();
            }
        } else if arg.len() > 1 && arg.starts_with('-') {
            let chars: Vec<char> = arg[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                let Some((_, long, kind)) = OPTIONS.iter().find(|(s, ..)| *s == Some(c)) else {
                    return Parsed::Error(format!("no such option: -{c}"));
                };
                let value = match kind {
                    Kind::Flag => None,
                    _ => {
                        // The rest of the group is the value (`-t5`), else
                        // the next argument.
                        let rest: String = chars[j..].iter().collect();
                        j = chars.len();
                        if !rest.is_empty() {
                            Some(rest)
                        } else {
                            let v = args.get(i).cloned();
                            i += 1;
                            match v {
                                Some(v) => Some(v),
                                None => return Parsed::Error(format!("-{c} option requires 1 argument")),
                            }
                        }
                    }
                };
                if let Err(e) = apply(&mut o, long, *kind, &format!("-{c}"), value) {
                    return e.into();
                }
            }
        } else {
            positional.push(arg.clone());
        }
    }
    if positional.len() > SERVER_TYPES.len() {
        return Parsed::Help;
    }
    for p in positional {
        if !SERVER_TYPES.contains(&p.as_str()) {
            return Parsed::InvalidServerType;
        }
        if !o.server_types.contains(&p) {
            o.server_types.push(p);
        }
    }
    if o.server_types.is_empty() {
        o.server_types.push("object".into());
    }
    Parsed::Run(o)
}

/// Resolves a long option name, allowing unambiguous prefixes as optparse
/// does.
fn match_long(name: &str) -> Result<(&'static str, Kind), String> {
    if let Some((_, long, kind)) = OPTIONS.iter().find(|(_, l, _)| *l == name) {
        return Ok((long, *kind));
    }
    let candidates: Vec<&(Option<char>, &str, Kind)> = OPTIONS.iter().filter(|(_, l, _)| l.starts_with(name)).collect();
    match candidates.as_slice() {
        [(_, long, kind)] => Ok((long, *kind)),
        [] => Err(format!("no such option: --{name}")),
        many => {
            let mut names: Vec<String> = many.iter().map(|(_, l, _)| format!("--{l}")).collect();
            names.sort();
            Err(format!("ambiguous option: --{name} ({}?)", names.join(", ")))
        }
    }
}

/// Why parsing stops at an option.
enum Stop {
    Help,
    Error(String),
}

impl From<Stop> for Parsed {
    fn from(s: Stop) -> Parsed {
        match s {
            Stop::Help => Parsed::Help,
            Stop::Error(e) => Parsed::Error(e),
        }
    }
}

/// Stores one option's value; errors are optparse's messages.
fn apply(o: &mut Options, long: &str, kind: Kind, shown: &str, value: Option<String>) -> Result<(), Stop> {
    let int = |v: &Option<String>| -> Result<i64, Stop> {
        let v = v.as_deref().unwrap_or_default();
        parse_py_int(v).ok_or_else(|| Stop::Error(format!("option {shown}: invalid integer value: '{v}'")))
    };
    match (long, kind) {
        // optparse prints the help as soon as it meets -h, before any
        // later bad option.
        ("help", _) => return Err(Stop::Help),
        ("verbose", _) => o.verbose = true,
        ("suppress", _) => o.suppress = true,
        ("async", _) => o.async_check = true,
        ("replication", _) => o.replication = true,
        ("reconstruction", _) => o.reconstruction = true,
        ("auditor", _) => o.auditor = true,
        ("updater", _) => o.updater = true,
        ("expirer", _) => o.expirer = true,
        ("sharding", _) => o.sharding = true,
        ("unmounted", _) => o.unmounted = true,
        ("diskusage", _) => o.diskusage = true,
        ("human-readable", _) => o.human_readable = true,
        ("loadstats", _) => o.loadstats = true,
        ("quarantined", _) => o.quarantined = true,
        ("validate-servers", _) => o.validate_servers = true,
        ("md5", _) => o.md5 = true,
        ("sockstat", _) => o.sockstat = true,
        ("driveaudit", _) => o.driveaudit = true,
        ("time", _) => o.time = true,
        ("swift-versions", _) => o.swift_versions = true,
        ("all", _) => o.all = true,
        ("jitter", _) => {
            let v = value.unwrap_or_default();
            o.jitter = v.trim().parse::<f64>().map_err(|_| Stop::Error(format!("option {shown}: invalid floating-point value: '{v}'")))?;
        }
        ("top", _) => o.top = int(&value)?,
        ("lowest", _) => o.lowest = int(&value)?,
        ("region", _) => o.region = Some(int(&value)?),
        ("zone", _) => o.zone = Some(int(&value)?),
        ("timeout", _) => o.timeout = int(&value)?,
        ("swiftdir", _) => o.swiftdir = PathBuf::from(value.unwrap_or_default()),
        ("policy", _) => o.policy = value,
        _ => unreachable!("every entry of OPTIONS is handled"),
    }
    Ok(())
}

/// optparse's `int` type: decimal, or `0x`/`0o`/`0b` prefixed.
fn parse_py_int(v: &str) -> Option<i64> {
    let t = v.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = t.to_ascii_lowercase();
    let n = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn run(s: &str) -> Options {
        match parse(&args(s)) {
            Parsed::Run(o) => o,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn options_anywhere_and_grouped() {
        let o = run("-lT container --swiftdir=/x -t3 account container --validate");
        assert_eq!(o.server_types, ["container", "account"]);
        assert!(o.loadstats && o.time && o.validate_servers);
        assert_eq!(o.timeout, 3);
        assert_eq!(o.swiftdir, PathBuf::from("/x"));
        let o = run("--md5 -z 2 --region 1 -p gold --top 3");
        assert_eq!(o.server_types, ["object"]);
        assert_eq!((o.zone, o.region, o.top), (Some(2), Some(1), 3));
        assert_eq!(o.policy.as_deref(), Some("gold"));
    }

    #[test]
    fn errors_like_optparse() {
        assert_eq!(parse(&args("--bogus")), Parsed::Error("no such option: --bogus".into()));
        assert_eq!(parse(&args("-t x")), Parsed::Error("option -t: invalid integer value: 'x'".into()));
        assert_eq!(parse(&args("--timeout")), Parsed::Error("--timeout option requires 1 argument".into()));
        assert_eq!(parse(&args("--md5=1")), Parsed::Error("--md5 option does not take a value".into()));
        assert!(matches!(parse(&args("--s")), Parsed::Error(e) if e.starts_with("ambiguous option: --s (")));
        assert_eq!(parse(&args("proxy")), Parsed::InvalidServerType);
        assert_eq!(parse(&[]), Parsed::Help);
        assert_eq!(parse(&args("-h --bogus")), Parsed::Help);
        assert_eq!(parse(&args("object object object object")), Parsed::Help);
    }
}
