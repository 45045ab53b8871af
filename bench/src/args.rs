//! The command line, with swift-bench's flag letters so operators'
//! habits carry over. Every bad value is refused here, with a one-line
//! reason and exit status 2 (clap's usage-error status).

use crate::size::parse_size;
use clap::Parser;
use std::time::Duration;

/// A load generator for any Swift endpoint with tempauth v1 (or any auth
/// that answers `GET AUTH_URL` with X-Storage-Url and X-Auth-Token).
///
/// Creates its containers, PUTs objects, GETs random objects among those
/// stored, HEADs them, then DELETEs them and removes its containers. For
/// each phase it prints requests/s, MB/s (10^6 bytes), latency percentiles
/// of the successful requests, and every failure by status.
#[derive(Parser, Debug, Clone)]
#[command(name = "swift-bench", version)]
pub struct Args {
    /// Auth URL, e.g. http://127.0.0.1:8080/auth/v1.0 (plain HTTP only).
    #[arg(short = 'A', long = "auth", value_name = "AUTH_URL", value_parser = parse_http_url)]
    pub auth_url: http::Uri,

    /// User, e.g. test:tester (sent as X-Auth-User).
    #[arg(short = 'U', long = "user", value_name = "USER")]
    pub user: String,

    /// Key (sent as X-Auth-Key).
    #[arg(short = 'K', long = "key", value_name = "KEY")]
    pub key: String,

    /// Requests in flight at once (one connection each).
    #[arg(short = 'c', long = "concurrency", value_name = "CONCURRENCY", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub concurrency: u32,

    /// Object size in bytes; K, M and G suffixes are binary (4K = 4096).
    #[arg(short = 's', long = "object-size", value_name = "OBJECT_SIZE", default_value = "1", value_parser = parse_size)]
    pub object_size: u64,

    /// Objects to PUT (each is then HEADed and DELETEd once).
    #[arg(short = 'n', long = "num-objects", value_name = "PUTS", default_value_t = 1000, conflicts_with = "duration")]
    pub puts: u64,

    /// GETs to make, of random objects among those stored.
    #[arg(short = 'g', long = "num-gets", value_name = "GETS", default_value_t = 10_000, conflicts_with = "duration")]
    pub gets: u64,

    /// Containers to spread the objects over.
    #[arg(short = 'C', long = "num-containers", value_name = "CONTAINERS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub containers: u64,

    /// Run the PUT, GET and HEAD phases each for this many seconds instead
    /// of a count (DELETE still removes everything that was stored).
    #[arg(long = "duration", value_name = "SECS", value_parser = parse_seconds)]
    pub duration: Option<Duration>,

    /// Give up on a request after this many seconds (counted as `timeout`).
    #[arg(long = "timeout", value_name = "SECS", default_value = "60", value_parser = parse_seconds)]
    pub timeout: Duration,

    /// Keep the objects and containers (skip both DELETE phases), e.g. to
    /// time listings of them afterwards.
    #[arg(long = "no-delete")]
    pub no_delete: bool,

    /// Print one JSON object with every figure instead of the table.
    #[arg(long = "json")]
    pub json: bool,
}

/// A positive number of seconds, fractions allowed (`0.5`, `30`).
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 1e9) {
        return Err(format!("{text:?}: seconds must be more than 0"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// An `http://host[:port]/path` URL. HTTPS is refused up front rather
/// than failing on the first request: this client speaks plain HTTP only.
pub fn parse_http_url(text: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = text.parse().map_err(|_| format!("{text:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some() => Ok(uri),
        Some("https") => Err(format!("{text:?}: https is not supported; use an http:// endpoint")),
        _ => Err(format!("{text:?} is not an http://host[:port]/path URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let mut argv = vec!["swift-bench", "-A", "http://127.0.0.1:8080/auth/v1.0", "-U", "test:tester", "-K", "testing"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv)
    }

    #[test]
    fn defaults_and_flags() {
        let a = parse(&[]).unwrap();
        assert_eq!((a.concurrency, a.object_size, a.puts, a.gets, a.containers), (10, 1, 1000, 10_000, 20));
        assert!(a.duration.is_none() && !a.json);
        let a = parse(&["-c", "32", "-s", "4K", "-n", "5", "-g", "7", "-C", "3", "--json"]).unwrap();
        assert_eq!((a.concurrency, a.object_size, a.puts, a.gets, a.containers, a.json), (32, 4096, 5, 7, 3, true));
        let a = parse(&["--duration", "1.5"]).unwrap();
        assert_eq!(a.duration, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for bad in [
            &["-c", "0"][..],
            &["-s", "4X"],
            &["-C", "0"],
            &["-n", "-1"],
            &["--duration", "0"],
            &["--duration", "5", "-n", "10"],
            &["--timeout", "soon"],
        ] {
            let err = parse(bad).expect_err(&format!("{bad:?} accepted"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        assert!(Args::try_parse_from(["swift-bench", "-A", "https://x/auth/v1.0", "-U", "u", "-K", "k"]).is_err());
        assert!(Args::try_parse_from(["swift-bench", "-U", "u", "-K", "k"]).is_err());
    }
}
