//! `swift-get-nodes`: which devices hold an account, container or object.

use clap::Parser;
use common::swift_conf::SwiftConf;
use ring::locations::{self, Target};
use ring::RingData;
use std::path::PathBuf;
use std::process::ExitCode;

/// Shows the nodes responsible for the item specified.
#[derive(Parser)]
#[command(
    name = "swift-get-nodes",
    version,
    override_usage = "swift-get-nodes [-a] [--json] [--swift-dir DIR] <ring.gz> <account> [<container> [<object>]]\n       swift-get-nodes [-a] [--json] <ring.gz> -p partition",
    after_help = "Note: account, container, object can also be a single arg separated by /"
)]
struct Args {
    /// Show all handoff nodes
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Show nodes for a given partition
    #[arg(short = 'p', long = "partition")]
    partition: Option<u32>,
    /// Path to the swift directory holding swift.conf
    #[arg(short = 'd', long = "swift-dir", default_value = "/etc/swift")]
    swift_dir: PathBuf,
    /// Assume swift paths are quoted
    #[arg(short = 'Q', long = "quoted")]
    quoted: bool,
    /// Print one JSON object: partition, hash, primaries and all handoffs (device ids)
    #[arg(long)]
    json: bool,
    /// The ring file, e.g. /etc/swift/object.ring.gz
    ring: PathBuf,
    /// account [container [object]], or a single a/c/o path
    names: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ERROR: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<String, String> {
    let ring_name = args.ring.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let Some(ring_name) = ring_name.strip_suffix(".ring.gz").map(str::to_string) else {
        return Err(format!("{} is not a .ring.gz file", args.ring.display()));
    };
    if !args.ring.exists() {
        return Err("Ring file does not exist".into());
    }
    let conf = SwiftConf::load_dir(&args.swift_dir).map_err(|e| e.to_string())?;
    let data = RingData::load(&args.ring).map_err(|e| e.to_string())?;
    let table = ring::RingTable::new(data);
    let mut names = args.names;
    if args.quoted {
        names = names.iter().map(|n| percent_encoding::percent_decode_str(n).decode_utf8_lossy().into_owned()).collect();
    }
    if names.len() == 1 {
        names = names[0].trim_matches('/').splitn(3, '/').map(str::to_string).collect();
    }
    if names.len() > 3 {
        return Err("Invalid arguments".into());
    }
    let target = Target {
        account: names.first().map(String::as_str),
        container: names.get(1).map(String::as_str),
        object: names.get(2).map(String::as_str),
        partition: args.partition,
    };
    // --json always lists every handoff, in order.
    let loc = locations::locate(&table, &conf.hash, &target, args.all || args.json).map_err(|e| e.to_string())?;
    if args.json {
        Ok(locations::to_json(&loc) + "\n")
    } else {
        Ok(locations::to_text(&table, &ring_name, &target, &loc))
    }
}
