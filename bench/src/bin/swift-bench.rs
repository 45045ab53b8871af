//! `swift-bench -A AUTH_URL -U USER -K KEY [-c N] [-s SIZE] [-n PUTS]
//! [-g GETS] [-C CONTAINERS] [--duration SECS] [--json]`.
//!
//! Exit status: 0 when the run completed (request failures are in the
//! figures), 1 when it could not run (login failed), 2 for bad arguments.

use bench::args::Args;
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("swift-bench: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(bench::run(&args)) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(json) => bench::report::print_line(&json),
                    Err(e) => {
                        eprintln!("swift-bench: cannot encode the report: {e}");
                        return ExitCode::from(1);
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("swift-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}
