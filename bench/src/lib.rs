//! `swift-bench`: a load generator for any Swift endpoint with tempauth v1.
//!
//! A run logs in, then goes through six phases in order: create the
//! containers, PUT objects, GET random stored objects, HEAD them, DELETE
//! them, remove the containers. Each phase reports requests/s, MB/s,
//! latency percentiles of its successes, and every failure by status or
//! kind; successes + failures always equal attempts.
//!
//! The tool is built not to be the bottleneck: one pooled keep-alive hyper
//! client, one shared payload (`Bytes`), latencies recorded per worker into
//! reserved vectors, response bodies drained without copying.

pub mod args;
pub mod client;
pub mod fake_endpoint;
pub mod phase;
pub mod report;
pub mod size;
pub mod stats;

use crate::args::Args;
use crate::client::{Op, SwiftClient};
use crate::phase::{Limit, Phase, Target};
use crate::report::Report;
use crate::stats::PhaseReport;
use bytes::Bytes;
use http::Uri;
use rand::Rng;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long to wait for a connection before counting `connect_error`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the whole benchmark. In table mode each phase's line is printed
/// as the phase ends; the returned report holds every figure. Fails only
/// when it cannot start (login); request failures are counted, not fatal.
pub async fn run(args: &Args) -> anyhow::Result<Report> {
    let concurrency = args.concurrency as usize;
    let http = client::http_client(concurrency, CONNECT_TIMEOUT);
    let (storage_url, token) = client::authenticate(&http, &args.auth_url, &args.user, &args.key, args.timeout).await?;
    let client = SwiftClient::new(http, token, make_payload(args.object_size));
    let show_table = !args.json;
    let progress = show_table && std::io::stdout().is_terminal();
    if show_table {
        report::print_line(&format!(
            "swift-bench: {storage_url}, concurrency {}, {} containers, objects of {}",
            args.concurrency,
            args.containers,
            size::format_size(args.object_size)
        ));
        report::print_line(&report::table_header());
    }

    // A fresh name per run, so runs never collide with each other or with
    // what a user keeps in the account.
    let run_id = format!("{:016x}", rand::thread_rng().gen::<u64>());
    let containers: Arc<Vec<String>> = Arc::new((0..args.containers).map(|k| format!("{storage_url}/swift-bench_{run_id}_{k}")).collect());
    let object_uri = {
        let containers = containers.clone();
        // Object i lives in container i mod C, which spreads the container
        // updates evenly.
        move |i: u64| -> Uri {
            let c = &containers[(i % containers.len() as u64) as usize];
            // Cannot fail: `c` parsed as a URL above, and this adds plain ASCII.
            format!("{c}/o{i:010}").parse().expect("a container URL plus an ASCII object name is a URL")
        }
    };
    let container_uris: Vec<Uri> = containers
        .iter()
        .map(|c| c.parse().map_err(|_| anyhow::anyhow!("X-Storage-Url {storage_url:?} does not make valid container URLs")))
        .collect::<anyhow::Result<_>>()?;
    let container_uris = Arc::new(container_uris);

    // The first Ctrl-C ends the current phase early and goes on to clean
    // up (objects and containers would otherwise be left in the account);
    // a second one quits at once.
    let interrupted = Arc::new(AtomicBool::new(false));
    let signal_task = {
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::Relaxed);
                eprintln!("\nswift-bench: interrupted; deleting what was stored (Ctrl-C again to quit now)");
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        })
    };
    let timed = |count: u64| args.duration.map_or(Limit::Count(count), Limit::Duration);
    let phase = |name, label, op, target: Target, limit, keep_indices, interruptible: bool| Phase {
        name,
        label,
        op,
        target,
        limit,
        concurrency,
        timeout: args.timeout,
        keep_indices,
        progress,
        interrupted: interruptible.then(|| interrupted.clone()),
    };
    let each = |uris: &Arc<Vec<Uri>>| -> Target {
        let uris = uris.clone();
        Arc::new(move |i, _| uris[i as usize].clone())
    };
    let mut phases = Vec::new();
    let mut record = |label: &str, report: PhaseReport| {
        if show_table {
            report::print_line(&report::table_row(label, &report));
        }
        phases.push(report);
    };

    let (r, _) = phase::run(
        &client,
        phase("container_put", "container PUT", Op::CreateContainer, each(&container_uris), Limit::Count(args.containers), false, false),
    )
    .await;
    record("container PUT", r);

    let put_target: Target = {
        let object_uri = object_uri.clone();
        Arc::new(move |i, _| object_uri(i))
    };
    let (r, stored) = phase::run(&client, phase("put", "object PUT", Op::Put, put_target, timed(args.puts), true, true)).await;
    record("object PUT", r);
    let stored: Arc<Vec<Uri>> = Arc::new(stored.into_iter().map(object_uri).collect());

    if interrupted.load(Ordering::Relaxed) {
        record("object GET", PhaseReport::skipped("get", "interrupted"));
        record("object HEAD", PhaseReport::skipped("head", "interrupted"));
    } else if stored.is_empty() {
        record("object GET", PhaseReport::skipped("get", "no object was stored"));
        record("object HEAD", PhaseReport::skipped("head", "no object was stored"));
    } else {
        let random: Target = {
            let stored = stored.clone();
            Arc::new(move |_, rng| stored[rng.gen_range(0..stored.len())].clone())
        };
        let (r, _) = phase::run(&client, phase("get", "object GET", Op::Get, random.clone(), timed(args.gets), false, true)).await;
        record("object GET", r);
        // HEAD each stored object once, or random ones for a timed run.
        let (target, limit) = match args.duration {
            Some(d) => (random, Limit::Duration(d)),
            None => (each(&stored), Limit::Count(stored.len() as u64)),
        };
        let (r, _) = phase::run(&client, phase("head", "object HEAD", Op::Head, target, limit, false, true)).await;
        record("object HEAD", r);
    }

    // Cleaning up is never cut short by --duration: everything stored goes
    // (unless --no-delete keeps it for later use).
    if !args.no_delete {
        let (r, _) = phase::run(
            &client,
            phase("delete", "object DELETE", Op::Delete, each(&stored), Limit::Count(stored.len() as u64), false, false),
        )
        .await;
        record("object DELETE", r);
        let (r, _) = phase::run(
            &client,
            phase("container_delete", "container DELETE", Op::Delete, each(&container_uris), Limit::Count(args.containers), false, false),
        )
        .await;
        record("container DELETE", r);
    }

    signal_task.abort();
    Ok(Report {
        auth_url: args.auth_url.to_string(),
        storage_url,
        concurrency: args.concurrency,
        object_size: args.object_size,
        containers: args.containers,
        duration_secs: args.duration.map(|d| d.as_secs_f64()),
        interrupted: interrupted.load(Ordering::Relaxed),
        phases,
    })
}

/// The one payload every PUT sends: pseudo-random bytes (so nothing along
/// the way can win by compressing or deduplicating zeros), made by
/// repeating one 64 KiB random block, which is fast even for 1 GiB.
pub fn make_payload(size: u64) -> Bytes {
    let mut block = vec![0u8; 64 * 1024];
    rand::thread_rng().fill(&mut block[..]);
    let size = size as usize;
    let mut payload = Vec::with_capacity(size);
    while payload.len() < size {
        let n = (size - payload.len()).min(block.len());
        payload.extend_from_slice(&block[..n]);
    }
    Bytes::from(payload)
}
