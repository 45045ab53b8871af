//! The on-disk side of SSYNC: what a partition offers (Swift's
//! `yield_hashes`), what a receiver already has (`_check_local`), the
//! writes a subrequest makes, the replication locks, and the removal of a
//! handoff partition's objects once every primary has them.
//!
//! Writes follow the object server's own rules (swift/obj/server.py PUT,
//! POST and DELETE with `X-Backend-Replication`): a write older than what is
//! on disk is refused, and since a hash directory's state is decided by the
//! newest file names, an older file that slips in beside a newer one (a
//! race) is obsolete the moment it lands. Newer state is never replaced by
//! older. Every write invalidates its suffix's hash.
//!
//! Everything here blocks: callers run it through `Devices::run`. No HTTP
//! types appear in this module.

use crate::diskfile::{self, DataWriter, ObjectLocation, OnDisk, OpenError, OpenObject, WriteError};
use crate::hashes;
use crate::metadata::{self, Metadata};
use crate::ssync::wire::{LocalTimestamps, ObjectTimestamps};
use common::timestamp::Timestamp;
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Files a partition directory holds besides its suffix directories:
/// the hashes cache and the lock files.
const PARTITION_FILES: [&str; 2] = ["hashes.pkl", "hashes.invalid"];

/// Whether `hash` names an object hash directory (32 hex digits), so that
/// a hash from the network can never lead out of the partition.
pub fn is_object_hash(hash: &str) -> bool {
    hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The location of object `hash` in `partition` of a device.
pub fn location(device_path: &Path, policy: u32, partition: u32, hash: &str) -> ObjectLocation {
    ObjectLocation { device_path: device_path.to_path_buf(), policy, partition, hash: hash.to_string() }
}

/// The state-defining timestamps of a hash directory, `None` when it has
/// no `.data` or `.ts` (such a file set cannot be synced).
pub fn timestamps_of(state: &OnDisk) -> Option<ObjectTimestamps> {
    let data = state.data.as_ref().or(state.ts.as_ref())?.timestamp;
    let meta = state.meta.as_ref().map(|m| m.timestamp);
    // The `.meta` with the newest content type, which may be older than
    // the newest `.meta` (Swift's `ctype_info`).
    let ctype = state.ctype.as_ref().and_then(|m| m.ctype_timestamp);
    Some(ObjectTimestamps { data, meta, ctype, durable: true })
}

fn list_dir(dir: &Path) -> io::Result<Vec<String>> {
    match fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The suffix directories of a partition (three-character directory names,
/// as Swift's replicator lists them), sorted.
pub fn list_suffixes(partition_dir: &Path) -> io::Result<Vec<String>> {
    let mut out: Vec<String> = list_dir(partition_dir)?.into_iter().filter(|s| s.len() == 3 && partition_dir.join(s).is_dir()).collect();
    out.sort();
    Ok(out)
}

/// Every object in `suffixes` of a partition with its timestamps, in hash
/// order (Swift's `yield_hashes`). Obsolete files are cleaned up on the
/// way; a suffix left without object files has its hash invalidated so
/// the next rehash drops it.
pub fn yield_hashes(partition_dir: &Path, suffixes: &[String]) -> io::Result<Vec<(String, ObjectTimestamps)>> {
    let mut out = Vec::new();
    for suffix in suffixes {
        let suffix_dir = partition_dir.join(suffix);
        let mut hashes = list_dir(&suffix_dir)?;
        hashes.sort();
        let mut found_files = false;
        for hash in hashes.into_iter().filter(|h| is_object_hash(h)) {
            let state = diskfile::cleanup(&suffix_dir.join(&hash))?;
            if state.data.is_some() || state.ts.is_some() || state.meta.is_some() {
                found_files = true;
            }
            if let Some(t) = timestamps_of(&state) {
                out.push((hash, t));
            }
        }
        if !found_files && suffix_dir.is_dir() {
            hashes::invalidate_hash(&suffix_dir)?;
        }
    }
    Ok(out)
}

/// Opens the object in `loc`'s hash directory without knowing its name
/// (Swift's `get_diskfile_from_hash`), expired or not. A `.data` whose
/// metadata cannot be read is quarantined by the open.
pub fn open_by_hash(loc: &ObjectLocation) -> Result<OpenObject, OpenError> {
    let dir = loc.hash_dir();
    let state = diskfile::scan(&dir)?;
    if let Some(ts) = &state.ts {
        return Err(OpenError::Deleted(ts.timestamp));
    }
    let Some(data) = &state.data else { return Err(OpenError::NotFound) };
    // The name is in the .data's metadata. When it cannot be read, the
    // open below reads again, and quarantines what is corrupt.
    let name = metadata::read(&dir.join(&data.filename)).ok().and_then(|m| m.get("name").cloned()).unwrap_or_default();
    // Time 0: nothing has expired (Swift's `open_expired=True`).
    diskfile::open(loc, &name, 0.0)
}

/// What the receiver has of an offered object (Swift's `_check_local`):
/// `None` for nothing usable, the tombstone's time, or the object's data,
/// metadata and content-type times.
pub fn local_timestamps(loc: &ObjectLocation) -> io::Result<Option<LocalTimestamps>> {
    match open_by_hash(loc) {
        Ok(o) => Ok(Some(LocalTimestamps { data: o.data_timestamp, meta: Some(o.timestamp()), ctype: Some(o.content_type_timestamp) })),
        Err(OpenError::Deleted(t)) => Ok(Some(LocalTimestamps { data: t, meta: None, ctype: None })),
        // Expired objects are opened anyway (time 0), so Expired does not
        // happen; the rest leave nothing to compare: take what is offered.
        Err(
            OpenError::NotFound | OpenError::Quarantined(_) | OpenError::Collision | OpenError::XattrNotSupported | OpenError::Expired(..),
        ) => Ok(None),
        Err(OpenError::Io(e)) => Err(e),
    }
}

/// Why a subrequest's write was refused; the receiver turns each into the
/// object server's status.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// What is on disk is as new or newer (409).
    #[error("existing state is newer: {0}")]
    Conflict(Timestamp),
    /// Another object's name hashes to this directory (403).
    #[error("object name collision")]
    Collision,
    /// Nothing to apply a POST to (404).
    #[error("not found")]
    NotFound,
    /// Disk full or no xattrs (507).
    #[error("{0}")]
    Storage(String),
    /// Anything else (500).
    #[error("{0}")]
    Io(String),
}

impl From<WriteError> for Refusal {
    fn from(e: WriteError) -> Refusal {
        match e {
            WriteError::NoSpace | WriteError::XattrNotSupported => Refusal::Storage(e.to_string()),
            WriteError::Io(e) => Refusal::Io(e.to_string()),
        }
    }
}

impl From<io::Error> for Refusal {
    fn from(e: io::Error) -> Refusal {
        Refusal::Io(e.to_string())
    }
}

/// How an applied subrequest ended, as the object server would answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// PUT: 201.
    Created,
    /// POST: 202.
    Accepted,
    /// DELETE of a live object: 204.
    NoContent,
    /// DELETE of nothing or of a tombstone (written all the same when
    /// newer): 404, which SSYNC counts as success.
    NotFound,
}

/// The time of what defines `loc` now, for a write at `at` (seconds):
/// data or tombstone time, zero when nothing.
fn existing_data_time(loc: &ObjectLocation, name: &str, at: f64) -> Result<(Timestamp, Option<OpenObject>), Refusal> {
    match diskfile::open(loc, name, at) {
        Ok(o) => Ok((o.data_timestamp, Some(o))),
        Err(OpenError::Deleted(t)) | Err(OpenError::Expired(t, _)) => Ok((t, None)),
        Err(OpenError::NotFound) | Err(OpenError::Quarantined(_)) => Ok((Timestamp::ZERO, None)),
        Err(OpenError::Collision) => Err(Refusal::Collision),
        Err(OpenError::XattrNotSupported) => Err(Refusal::Storage("xattrs not supported".into())),
        Err(OpenError::Io(e)) => Err(e.into()),
    }
}

/// Starts a replicated PUT at `ts`: refused when what is on disk is as new
/// or newer, else a temp file with `length` bytes reserved.
pub fn begin_put(loc: &ObjectLocation, name: &str, ts: Timestamp, length: u64, reserve: u64) -> Result<DataWriter, Refusal> {
    let (orig, _) = existing_data_time(loc, name, ts.as_secs_f64())?;
    if orig >= ts {
        return Err(Refusal::Conflict(orig));
    }
    Ok(DataWriter::create(loc, Some(length), reserve)?)
}

/// Commits a replicated PUT and invalidates its suffix.
pub fn commit_put(writer: DataWriter, loc: &ObjectLocation, ts: Timestamp, meta: &Metadata) -> Result<Applied, Refusal> {
    writer.commit(loc, ts, meta)?;
    invalidate(loc)?;
    Ok(Applied::Created)
}

/// A replicated DELETE at `ts`: a tombstone is written when it is newer
/// than the object's data (or tombstone), as the object server does.
pub fn apply_delete(loc: &ObjectLocation, name: &str, ts: Timestamp) -> Result<Applied, Refusal> {
    let (orig, live) = existing_data_time(loc, name, ts.as_secs_f64())?;
    let outcome = match live {
        Some(_) if orig >= ts => return Err(Refusal::Conflict(orig)),
        Some(_) => Applied::NoContent,
        None => Applied::NotFound,
    };
    if orig < ts {
        let mut meta = Metadata::new();
        meta.insert("name".into(), name.to_string());
        meta.insert("X-Timestamp".into(), ts.internal());
        diskfile::write_tombstone(loc, ts, &meta)?;
        invalidate(loc)?;
    }
    Ok(outcome)
}

/// A replicated POST: its time, the metadata it carries (every header
/// sent, names title-cased) and the content type it sets, if any, with
/// that content type's time.
#[derive(Debug, Clone)]
pub struct PostUpdate {
    pub timestamp: Timestamp,
    pub metadata: Metadata,
    pub content_type: Option<(String, Timestamp)>,
}

/// Applies a replicated POST as the object server's POST does: a `.meta`
/// newer than the object's metadata replaces it; one that only brings a
/// newer content type keeps the existing metadata and takes the type.
pub fn apply_post(loc: &ObjectLocation, name: &str, post: &PostUpdate) -> Result<Applied, Refusal> {
    let obj = match diskfile::open(loc, name, post.timestamp.as_secs_f64()) {
        Ok(o) => o,
        Err(OpenError::Collision) => return Err(Refusal::Collision),
        Err(OpenError::XattrNotSupported) => return Err(Refusal::Storage("xattrs not supported".into())),
        Err(OpenError::Io(e)) => return Err(e.into()),
        Err(_) => return Err(Refusal::NotFound),
    };
    let orig_ts = obj.timestamp();
    let orig_ctype_ts = obj.content_type_timestamp;
    let req_ctype_ts = post.content_type.as_ref().map_or(Timestamp::ZERO, |(_, t)| *t);
    if orig_ts >= post.timestamp && orig_ctype_ts >= req_ctype_ts {
        return Err(Refusal::Conflict(orig_ts));
    }
    let mut meta = if post.timestamp > orig_ts {
        let mut m = post.metadata.clone();
        m.insert("X-Timestamp".into(), post.timestamp.internal());
        m
    } else {
        obj.meta_metadata.clone().unwrap_or_default()
    };
    meta.insert("name".into(), name.to_string());
    match &post.content_type {
        Some((ctype, t)) if *t > orig_ctype_ts => {
            meta.insert("Content-Type".into(), ctype.clone());
            meta.insert("Content-Type-Timestamp".into(), t.internal());
        }
        _ if orig_ctype_ts != obj.data_timestamp => {
            meta.insert("Content-Type".into(), obj.metadata.get("Content-Type").cloned().unwrap_or_default());
            meta.insert("Content-Type-Timestamp".into(), orig_ctype_ts.internal());
        }
        _ => {}
    }
    let meta_ts = meta.get("X-Timestamp").and_then(|t| Timestamp::parse(t).ok()).unwrap_or(post.timestamp);
    // The file name records the content type's time, as Swift names it from
    // the metadata written.
    let ctype_ts = meta.get("Content-Type-Timestamp").and_then(|t| Timestamp::parse(t).ok());
    drop(obj);
    diskfile::write_meta(loc, meta_ts, ctype_ts, &meta)?;
    invalidate(loc)?;
    Ok(Applied::Accepted)
}

fn invalidate(loc: &ObjectLocation) -> io::Result<()> {
    hashes::invalidate_hash(&loc.partition_dir().join(loc.suffix()))
}

/// Tries once to take an exclusive `flock` on the file `path` (created if
/// missing, with its directory): `None` when someone else holds it. The
/// lock lasts as long as the returned file is open.
pub fn try_lock(path: &Path) -> io::Result<Option<File>> {
    use std::os::fd::AsRawFd;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().write(true).create(true).truncate(false).open(path)?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(Some(file));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(None)
    } else {
        Err(e)
    }
}

/// Swift's replication lock file of a partition: `<part>/.lock-replication`
/// (the hashes cache uses `<part>/.lock`, a separate lock).
pub fn partition_lock_path(partition_dir: &Path) -> PathBuf {
    partition_dir.join(".lock-replication")
}

/// The `i`-th of a device's replication lock files (Swift's `lock_path`
/// with `limit`): `<dev>/.lock`, `<dev>/.lock1`, ...
pub fn device_lock_path(device_path: &Path, i: usize) -> PathBuf {
    device_path.join(if i == 0 { ".lock".to_string() } else { format!(".lock{i}") })
}

/// Tries each of `paths` once; the first lock taken.
pub fn try_lock_any(paths: &[PathBuf]) -> io::Result<Option<File>> {
    for p in paths {
        if let Some(f) = try_lock(p)? {
            return Ok(Some(f));
        }
    }
    Ok(None)
}

/// What [`remove_synced`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removal {
    /// Hash directories whose synced files were removed.
    pub removed: usize,
    /// Hash directories that changed since they were synced, left alone.
    pub kept: usize,
}

/// After every primary took a handoff partition's objects: removes the
/// files of each synced object whose state is still the one that was
/// synced. A file newer than that (a write that landed meanwhile, or a
/// sidecar of a commit in flight) stays, and so does its directory, for
/// the next pass to sync.
pub fn remove_synced(partition_dir: &Path, synced: &[(String, ObjectTimestamps)]) -> io::Result<Removal> {
    let mut out = Removal::default();
    let mut suffixes = BTreeSet::new();
    for (hash, t) in synced.iter().filter(|(h, _)| is_object_hash(h)) {
        let suffix = &hash[hash.len() - 3..];
        suffixes.insert(suffix.to_string());
        let dir = partition_dir.join(suffix).join(hash);
        let names = list_dir(&dir)?;
        if names.is_empty() {
            continue;
        }
        let state = diskfile::classify(&names);
        let now = timestamps_of(&state);
        if now.map(|n| (n.data, n.meta, n.ctype)) != Some((t.data, t.meta, t.ctype)) {
            out.kept += 1;
            continue;
        }
        let newest = t.meta.map_or(t.data, |m| m.max(t.data));
        for name in &names {
            let base = name.strip_suffix(metadata::SIDECAR_SUFFIX).unwrap_or(name);
            if diskfile::parse_filename(base).is_some_and(|f| f.timestamp <= newest) {
                match fs::remove_file(dir.join(name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        // Fails, as it should, when anything newer is left.
        let _ = fs::remove_dir(&dir);
        out.removed += 1;
    }
    for suffix in suffixes {
        let dir = partition_dir.join(&suffix);
        if fs::remove_dir(&dir).is_err() && dir.is_dir() {
            // Something stayed: its hash must be recomputed.
            hashes::invalidate_hash(&dir)?;
        }
    }
    Ok(out)
}

/// Removes a partition directory that holds no suffix directory any more
/// (only its hashes cache and lock files); true when it is gone. Empty
/// suffix directories are removed first.
pub fn remove_partition_if_empty(partition_dir: &Path) -> io::Result<bool> {
    for suffix in list_suffixes(partition_dir)? {
        let _ = fs::remove_dir(partition_dir.join(suffix));
    }
    let names = list_dir(partition_dir)?;
    let removable = |n: &String| PARTITION_FILES.contains(&n.as_str()) || n.starts_with(".lock");
    if names.iter().any(|n| !removable(n) || partition_dir.join(n).is_dir()) {
        return Ok(false);
    }
    for n in &names {
        let _ = fs::remove_file(partition_dir.join(n));
    }
    match fs::remove_dir(partition_dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        // A write created something meanwhile: it stays.
        Err(_) => Ok(false),
    }
}

/// Deletes the files in `tmp_dir` last modified before `cutoff` (Swift's
/// `unlink_older_than`): temp files of writes that died.
pub fn unlink_older_than(tmp_dir: &Path, cutoff: std::time::SystemTime) -> io::Result<usize> {
    let mut n = 0;
    for name in list_dir(tmp_dir)? {
        let path = tmp_dir.join(&name);
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if meta.is_file() && meta.modified().is_ok_and(|m| m < cutoff) && fs::remove_file(&path).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn loc(root: &Path, hash: &str) -> ObjectLocation {
        location(&root.join("sda"), 0, 7, hash)
    }

    const HASH: &str = "0123456789abcdef0123456789abcabc";

    fn put(l: &ObjectLocation, t: &str, body: &[u8]) {
        let mut w = DataWriter::create(l, Some(body.len() as u64), 0).unwrap();
        w.write(body).unwrap();
        let mut m = Metadata::new();
        m.insert("name".into(), "/a/c/o".into());
        m.insert("X-Timestamp".into(), ts(t).internal());
        m.insert("Content-Length".into(), body.len().to_string());
        m.insert("Content-Type".into(), "text/plain".into());
        w.commit(l, ts(t), &m).unwrap();
    }

    #[test]
    fn offers_and_local_state() {
        let dir = tempfile::tempdir().unwrap();
        let l = loc(dir.path(), HASH);
        assert_eq!(local_timestamps(&l).unwrap(), None);
        put(&l, "1", b"x");
        let post = PostUpdate { timestamp: ts("3"), metadata: Metadata::new(), content_type: Some(("text/x".into(), ts("2"))) };
        assert_eq!(apply_post(&l, "/a/c/o", &post).unwrap(), Applied::Accepted);
        let got = local_timestamps(&l).unwrap().unwrap();
        assert_eq!(got, LocalTimestamps { data: ts("1"), meta: Some(ts("3")), ctype: Some(ts("2")) });
        let offered = yield_hashes(&l.partition_dir(), &["abc".into(), "fff".into()]).unwrap();
        assert_eq!(
            offered,
            vec![(HASH.to_string(), ObjectTimestamps { data: ts("1"), meta: Some(ts("3")), ctype: Some(ts("2")), durable: true })]
        );
        // The same POST again: as new as what is there.
        assert!(matches!(apply_post(&l, "/a/c/o", &post), Err(Refusal::Conflict(_))));
        // A DELETE older than the data is refused; a newer one wins.
        assert!(matches!(apply_delete(&l, "/a/c/o", ts("1")), Err(Refusal::Conflict(_))));
        assert_eq!(apply_delete(&l, "/a/c/o", ts("4")).unwrap(), Applied::NoContent);
        assert_eq!(local_timestamps(&l).unwrap(), Some(LocalTimestamps { data: ts("4"), meta: None, ctype: None }));
        // Older data never replaces the newer tombstone.
        assert!(matches!(begin_put(&l, "/a/c/o", ts("2"), 1, 0), Err(Refusal::Conflict(t)) if t == ts("4")));
        assert_eq!(apply_delete(&l, "/a/c/o", ts("5")).unwrap(), Applied::NotFound);
        // A POST to a deleted object finds nothing.
        assert!(matches!(apply_post(&l, "/a/c/o", &PostUpdate { timestamp: ts("6"), ..post }), Err(Refusal::NotFound)));
    }

    #[test]
    fn a_handoff_removes_only_what_was_synced() {
        let dir = tempfile::tempdir().unwrap();
        let other = "0123456789abcdef0123456789abcdef";
        let (a, b) = (loc(dir.path(), HASH), loc(dir.path(), other));
        put(&a, "1", b"a");
        put(&b, "1", b"b");
        let part = a.partition_dir();
        let synced = yield_hashes(&part, &list_suffixes(&part).unwrap()).unwrap();
        assert_eq!(synced.len(), 2);
        // A newer write to b lands after the sync.
        put(&b, "2", b"newer");
        let r = remove_synced(&part, &synced).unwrap();
        assert_eq!(r, Removal { removed: 1, kept: 1 });
        assert!(!a.hash_dir().exists());
        assert!(b.hash_dir().join("0000000002.00000.data").exists());
        assert!(!remove_partition_if_empty(&part).unwrap(), "b is still there");
        let synced = yield_hashes(&part, &list_suffixes(&part).unwrap()).unwrap();
        assert_eq!(remove_synced(&part, &synced).unwrap(), Removal { removed: 1, kept: 0 });
        fs::write(part.join("hashes.pkl"), b"x").unwrap();
        drop(try_lock(&partition_lock_path(&part)).unwrap());
        assert!(remove_partition_if_empty(&part).unwrap());
        assert!(!part.exists());
    }

    #[test]
    fn locks_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let p = partition_lock_path(&dir.path().join("objects/3"));
        let held = try_lock(&p).unwrap().expect("free");
        assert!(try_lock(&p).unwrap().is_none(), "held by another open file");
        let paths = [device_lock_path(dir.path(), 0), device_lock_path(dir.path(), 1)];
        let one = try_lock_any(&paths).unwrap().unwrap();
        let two = try_lock_any(&paths).unwrap().unwrap();
        assert!(try_lock_any(&paths).unwrap().is_none());
        drop((one, two, held));
        assert!(try_lock(&p).unwrap().is_some());
        assert!(dir.path().join(".lock1").exists());
    }
}
