//! The HTTP edge of DB replication, shared by the account and container
//! servers:
//!
//! * `REPLICATE /<dev>/<part>/<hash>` with Swift's JSON body (`sync`,
//!   `merge_items`, `merge_syncs`, `complete_rsync`, `rsync_then_merge`,
//!   ...): decoded by [`crate::db::replication::parse_rpc`], answered by
//!   [`ReplicatorRpc`] on the device's pool. 507 for a device that cannot
//!   take requests, 404 when the database is missing, 400 for a body that
//!   is not one of Swift's messages.
//! * `REPLICATE /<dev>/tmp/<name>` with the raw bytes of a whole database:
//!   our replacement for Swift's rsync of a database file to
//!   `<dev>/tmp/<id>` (see docs/REPLICATION.md). The path cannot be a Swift
//!   `REPLICATE` (a partition is a number), and the same verb keeps it
//!   behind `replication_server`. The file is streamed to a hidden
//!   temporary name, checked to be a sound SQLite database, fsynced and
//!   renamed to `<dev>/tmp/<name>`; the sender then calls
//!   `complete_rsync` or `rsync_then_merge` as with Swift.

use crate::db::broker::BrokerKind;
use crate::db::replication::{parse_rpc, tmp_dir, ReplicatorRpc, RpcReply, RpcTarget};
use crate::db::DatabaseStore;
use crate::dbserver::response::{device_failure, storage_failure};
use crate::http::{self as h, Body};
use crate::path::{split_path, unquote};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::BodyExt;

use std::path::Path;
use std::time::Duration;

/// The largest `REPLICATE` JSON body we read (a `merge_items` of 1000 rows
/// of the longest names fits many times over).
pub const MAX_RPC_BODY: usize = 64 * 1024 * 1024;

/// The path segment that makes a `REPLICATE` a whole-database upload.
pub const TMP_SEGMENT: &str = crate::db::replication::TMP_SEGMENT_NAME;

/// What a `REPLICATE` path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicatePath {
    /// `/<dev>/<part>/<hash>`: an RPC about one database.
    Rpc { device: String, partition: u32, hash: String },
    /// `/<dev>/tmp/<name>`: a whole database file arriving.
    Upload { device: String, name: String },
}

/// Parses a `REPLICATE` path; `Err` is the 400 reason.
pub fn parse_replicate_path(raw: &str) -> Result<ReplicatePath, String> {
    let unquoted = unquote(raw).map_err(|e| e.to_string())?;
    let parts = split_path(&unquoted, 3, 3, false).map_err(|e| e.to_string())?;
    let seg = |i: usize| parts.get(i).cloned().flatten().unwrap_or_default();
    let (device, second, third) = (seg(0), seg(1), seg(2));
    let plain = |s: &str| !s.is_empty() && !s.starts_with('.') && !s.contains('/') && !s.contains('\0');
    if !plain(&device) || !plain(&third) {
        return Err("Invalid path".into());
    }
    if second == TMP_SEGMENT {
        return Ok(ReplicatePath::Upload { device, name: third });
    }
    let partition = second.parse::<u32>().map_err(|_| format!("Invalid partition: {second}"))?;
    if !third.bytes().all(|b| b.is_ascii_hexdigit()) || third.len() < 3 {
        return Err(format!("Invalid hash: {third}"));
    }
    Ok(ReplicatePath::Rpc { device, partition, hash: third })
}

/// Answers a `REPLICATE` request on `store`'s devices (`datadir` is
/// `containers` or `accounts`).
pub async fn replicate<K>(store: &DatabaseStore<K>, datadir: &'static str, raw_path: &str, body: Body, timeout: Duration) -> Response<Body>
where
    K: BrokerKind,
{
    match parse_replicate_path(raw_path) {
        Err(reason) => h::text(StatusCode::BAD_REQUEST, reason),
        Ok(ReplicatePath::Rpc { device, partition, hash }) => rpc(store, datadir, device, partition, hash, body, timeout).await,
        Ok(ReplicatePath::Upload { device, name }) => upload(store, device, name, body, timeout).await,
    }
}

async fn rpc<K>(
    store: &DatabaseStore<K>,
    datadir: &'static str,
    device: String,
    partition: u32,
    hash: String,
    body: Body,
    timeout: Duration,
) -> Response<Body>
where
    K: BrokerKind,
{
    let bytes = match tokio::time::timeout(timeout, collect_limited(body, MAX_RPC_BODY)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return h::text(StatusCode::BAD_REQUEST, format!("Bad body: {e}")),
        Err(_) => return h::text(StatusCode::REQUEST_TIMEOUT, "Request Timeout"),
    };
    let dev = device.clone();
    // Decoding a large body is CPU work: off the runtime, with the rest.
    let answer = store
        .run(&device, move |device_path| {
            let op = match parse_rpc(&bytes) {
                Ok(op) => op,
                Err(e) => return Ok(RpcReply::BadRequest(e.0)),
            };
            let db_file = crate::db::broker::db_path(&device_path, datadir, partition, &hash);
            let target = RpcTarget { device_path, device: dev, db_file };
            ReplicatorRpc::dispatch::<K>(&target, op)
        })
        .await;
    match answer {
        Err(e) => device_failure(&device, e),
        Ok(Err(e)) => storage_failure("REPLICATE", e),
        Ok(Ok(reply)) => rpc_response(reply),
    }
}

/// The response of an RPC answer.
pub fn rpc_response(reply: RpcReply) -> Response<Body> {
    match reply {
        RpcReply::Json(v) => {
            let mut resp = Response::new(h::full(serde_json::to_vec(&v).unwrap_or_default()));
            crate::dbserver::response::set_header(&mut resp, "content-type", "application/json");
            resp
        }
        RpcReply::Accepted => h::status(StatusCode::ACCEPTED),
        RpcReply::NoContent => h::status(StatusCode::NO_CONTENT),
        RpcReply::NotFound => h::status(StatusCode::NOT_FOUND),
        RpcReply::BadRequest(reason) => h::text(StatusCode::BAD_REQUEST, reason),
    }
}

/// Receives a whole database into `<dev>/tmp/<name>`.
/// The whole of a body of at most `limit` bytes. (`http_body_util::Limited`
/// over a boxed body defeats the compiler's proof that `handle` is Send.)
async fn collect_limited(mut body: Body, limit: usize) -> Result<Bytes, h::BoxError> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if out.len() + data.len() > limit {
                return Err("length limit exceeded".into());
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

async fn upload<K>(store: &DatabaseStore<K>, device: String, name: String, mut body: Body, timeout: Duration) -> Response<Body>
where
    K: BrokerKind,
{
    // The body is read here and written on the device's pool, one chunk
    // at a time through a small channel, so a big database is never held
    // in memory and a slow disk pushes back on the sender.
    // `None` marks the end of a complete body: without it the file is
    // dropped, however sound it looks.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<Bytes>>(4);
    let writer = store.run(&device, move |device_path| receive_file(&device_path, &name, &mut rx));
    let reader = async move {
        loop {
            match tokio::time::timeout(timeout, body.frame()).await {
                Err(_) => return Err("timed out reading the body".to_string()),
                Ok(None) => {
                    let _ = tx.send(None).await;
                    return Ok(());
                }
                Ok(Some(Err(e))) => return Err(format!("body: {e}")),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if tx.send(Some(data)).await.is_err() {
                            // The writer gave up; its error is the answer.
                            return Ok(());
                        }
                    }
                }
            }
        }
    };
    let (written, read) = tokio::join!(writer, reader);
    match (written, read) {
        (Err(e), _) => device_failure(&device, e),
        (Ok(_), Err(reason)) => h::text(StatusCode::BAD_REQUEST, reason),
        (Ok(Err(e)), Ok(())) => {
            crate::log::error(&format!("ERROR receiving a database on {device}: {e}"));
            h::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
        (Ok(Ok(false)), Ok(())) => h::text(StatusCode::UNPROCESSABLE_ENTITY, "Not a sound database"),
        (Ok(Ok(true)), Ok(())) => h::status(StatusCode::CREATED),
    }
}

/// Writes the chunks from `rx` to a hidden file in `<dev>/tmp`, checks it
/// is a sound SQLite database, and publishes it as `<dev>/tmp/<name>`
/// (fsync, rename, fsync of the directory). `Ok(false)`: the body ended
/// early (no end marker) or the file is not sound; it never gets the name.
fn receive_file(device_path: &Path, name: &str, rx: &mut tokio::sync::mpsc::Receiver<Option<Bytes>>) -> std::io::Result<bool> {
    use std::io::Write;
    let dir = tmp_dir(device_path);
    std::fs::create_dir_all(&dir)?;
    let part = dir.join(format!(".{name}.{}.part", rand::random::<u64>()));
    let result = (|| -> std::io::Result<bool> {
        let mut f = std::fs::File::create(&part)?;
        let mut complete = false;
        while let Some(chunk) = rx.blocking_recv() {
            match chunk {
                Some(data) => f.write_all(&data)?,
                None => {
                    complete = true;
                    break;
                }
            }
        }
        if !complete {
            return Ok(false);
        }
        f.sync_all()?;
        drop(f);
        if !sound_database(&part) {
            return Ok(false);
        }
        std::fs::rename(&part, dir.join(name))?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(true)
    })();
    if !matches!(result, Ok(true)) {
        let _ = std::fs::remove_file(&part);
    }
    result
}

/// Whether `path` opens as SQLite and passes `PRAGMA quick_check`.
fn sound_database(path: &Path) -> bool {
    let Ok(conn) = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else { return false };
    matches!(conn.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0)), Ok(s) if s == "ok")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` (and the end marker if `complete`) to `receive_file`.
    fn receive(dev: &Path, name: &str, chunks: Vec<Vec<u8>>, complete: bool) -> bool {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<Bytes>>(chunks.len() + 1);
        for c in chunks {
            tx.try_send(Some(Bytes::from(c))).unwrap();
        }
        if complete {
            tx.try_send(None).unwrap();
        }
        drop(tx);
        receive_file(dev, name, &mut rx).unwrap()
    }

    #[test]
    fn only_a_complete_sound_database_is_published() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.db");
        let conn = rusqlite::Connection::open(&src).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
        drop(conn);
        let bytes = std::fs::read(&src).unwrap();
        let (head, tail) = bytes.split_at(bytes.len() / 2);
        let dev = dir.path().join("sda");
        assert!(!receive(&dev, "cut", vec![head.to_vec()], false), "no end marker");
        assert!(!receive(&dev, "junk", vec![b"not a database at all".repeat(100)], true));
        assert!(receive(&dev, "whole", vec![head.to_vec(), tail.to_vec()], true));
        let mut names: Vec<String> =
            std::fs::read_dir(dev.join("tmp")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, vec!["whole"], "nothing else is left behind");
        assert_eq!(std::fs::read(dev.join("tmp/whole")).unwrap(), bytes);
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_replicate_path("/sda/12/abcdef0123"),
            Ok(ReplicatePath::Rpc { device: "sda".into(), partition: 12, hash: "abcdef0123".into() })
        );
        assert_eq!(parse_replicate_path("/sda/tmp/x-y"), Ok(ReplicatePath::Upload { device: "sda".into(), name: "x-y".into() }));
        assert!(parse_replicate_path("/sda/tmp/.hidden").is_err());
        assert!(parse_replicate_path("/sda/x/abc").is_err());
        assert!(parse_replicate_path("/sda/1/zzz").is_err());
        assert!(parse_replicate_path("/sda/1").is_err());
        assert!(parse_replicate_path("/sda/1/abc/d").is_err());
    }
}
