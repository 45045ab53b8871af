//! The `<hash>.db.pending` file and the directory lock that guards it.
//!
//! Object updates reach a container at the rate objects are written; paying
//! a SQLite transaction (and its journal fsyncs) for each would make a busy
//! container the bottleneck of the cluster. As Swift does, a record is
//! instead appended to the pending file beside the database, and the
//! records are merged into SQLite in one transaction later (before the next
//! read, or at once when the file passes [`PENDING_CAP`]).
//!
//! # Record format
//!
//! Swift writes `:` + base64(pickle) per record. We write each record as
//! `\n` followed by one line of JSON (the kind's record type serialised by
//! serde), in a single `write(2)` on a file opened with `O_APPEND`. Because
//! the separator comes *before* the record, a record torn by a crash in the
//! middle of a write cannot swallow the record appended after it: the torn
//! fragment fails to parse on its own and is skipped (and logged).
//!
//! # Durability
//!
//! Like Swift, the pending file is not fsynced: an update is acknowledged
//! once the record has been handed to the operating system. It survives the
//! server process dying at any moment; a crash of the whole machine may lose
//! the updates of the last few seconds (the page cache), exactly as in
//! Swift. Listings converge again through the object replicator/updater
//! once replication lands.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Above this many bytes of pending records, a new record is merged into
/// SQLite at once together with the file's records (Swift's `PENDING_CAP`).
pub const PENDING_CAP: u64 = 131_072;

/// An exclusive `flock` on `<dir>/.lock`, as Swift's `lock_parent_directory`
/// takes: it serialises appends to, and merges of, the pending file across
/// threads and processes. Released when dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Takes the exclusive lock on `dir` (creating `dir/.lock`), waiting at
/// most `timeout`. `Ok(None)` means the wait timed out.
pub fn lock_dir(dir: &Path, timeout: Duration) -> io::Result<Option<DirLock>> {
    let path = dir.join(".lock");
    let file = OpenOptions::new().write(true).create(true).truncate(false).open(&path)?;
    let deadline = Instant::now() + timeout;
    // Start with very short waits: the lock is held for one small append, and
    // a busy container has many of them queued behind each other.
    let mut wait = Duration::from_micros(50);
    loop {
        // SAFETY: flock(2) on a file descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Some(DirLock { _file: file }));
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) && err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(wait.min(deadline - now));
        wait = (wait * 2).min(Duration::from_millis(10));
    }
}

/// The pending file of a database file: `<db_file>.pending`.
pub fn pending_path(db_file: &Path) -> PathBuf {
    let mut s = db_file.as_os_str().to_owned();
    s.push(".pending");
    PathBuf::from(s)
}

/// Encodes one record as it is appended: `\n` + JSON.
pub fn encode_record<R: Serialize>(record: &R) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(b'\n');
    // Serialising plain structs of strings and numbers cannot fail.
    serde_json::to_writer(&mut out, record).expect("pending records serialise to JSON");
    out
}

/// Decodes the records of a pending file's contents, in order. Fragments
/// that do not parse (a torn write) are returned separately so the caller
/// can log them.
pub fn decode_records<R: DeserializeOwned>(data: &[u8]) -> (Vec<R>, Vec<String>) {
    let mut records = Vec::new();
    let mut bad = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<R>(line) {
            Ok(r) => records.push(r),
            Err(_) => bad.push(String::from_utf8_lossy(line).into_owned()),
        }
    }
    (records, bad)
}

/// Appends one encoded record to `path` in a single write. The caller holds
/// the directory lock.
pub fn append(path: &Path, encoded: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().append(true).create(true).open(path)?;
    // One write(2) of a small buffer to an O_APPEND file lands whole; this
    // loop only matters for exotic file systems that write short.
    f.write_all(encoded)
}

/// The size of the pending file in bytes (0 when it does not exist).
pub fn pending_size(path: &Path) -> io::Result<u64> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Rec {
        name: String,
        n: u32,
    }

    #[test]
    fn records_round_trip_and_torn_writes_are_skipped() {
        let a = Rec { name: "a\nb".into(), n: 1 };
        let b = Rec { name: "ü".into(), n: 2 };
        let mut data = encode_record(&a);
        // A torn record: the tail of a write that never finished.
        data.extend_from_slice(b"\n{\"name\":\"tor");
        data.extend_from_slice(&encode_record(&b));
        let (recs, bad): (Vec<Rec>, _) = decode_records(&data);
        assert_eq!(recs, vec![a, b]);
        assert_eq!(bad.len(), 1);
    }

    #[test]
    fn the_lock_excludes_a_second_holder_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_dir(dir.path(), Duration::from_secs(1)).unwrap().unwrap();
        assert!(lock_dir(dir.path(), Duration::from_millis(30)).unwrap().is_none());
        drop(held);
        assert!(lock_dir(dir.path(), Duration::from_millis(30)).unwrap().is_some());
    }

    #[test]
    fn appends_accumulate() {
        let dir = tempfile::tempdir().unwrap();
        let p = pending_path(&dir.path().join("x.db"));
        assert_eq!(pending_size(&p).unwrap(), 0);
        append(&p, &encode_record(&Rec { name: "x".into(), n: 1 })).unwrap();
        append(&p, &encode_record(&Rec { name: "y".into(), n: 2 })).unwrap();
        let (recs, bad): (Vec<Rec>, _) = decode_records(&std::fs::read(&p).unwrap());
        assert_eq!(recs.len(), 2);
        assert!(bad.is_empty());
    }
}
