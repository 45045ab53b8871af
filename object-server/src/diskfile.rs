//! Objects on disk (Swift's `diskfile`): where an object's files live, which
//! of them define its state, and how new ones are written durably.
//!
//! Layout, for policy index N (N = 0 has no `-N`):
//!
//! ```text
//! <devices>/<dev>/objects[-N]/<part>/<suffix>/<hash>/<timestamp>.data|.ts|.meta
//! <devices>/<dev>/tmp[-N]/                     temp files before their rename
//! <devices>/<dev>/async_pending[-N]/<suffix>/<hash>-<timestamp>
//! <devices>/<dev>/quarantined/objects[-N]/<hash>
//! ```
//!
//! `<hash>` is the MD5 hash path of `/a/c/o`, `<suffix>` its last three hex
//! digits. A new file is written in `tmp`, its metadata attached and synced,
//! then renamed into the hash directory, whose entry is synced in turn (the
//! syncs are its filesystem's group commit, `group_sync`): a crash at any point
//! leaves either the old state or the new one. Files that the new one makes
//! obsolete are deleted afterwards.
//!
//! Everything here blocks: callers run it through `Devices::run`. No HTTP
//! types appear in this module.

use crate::group_sync::{self, GroupSync, Ticket};
use crate::metadata::{self, Metadata, MetadataError};
use bytes::{Bytes, BytesMut};
use common::timestamp::{decode_timestamps_explicit, encode_timestamps_explicit, Timestamp};
use md5::{Digest, Md5};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why an object could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Nothing on disk.
    #[error("not found")]
    NotFound,
    /// The newest state is a tombstone written at this time.
    #[error("deleted at {0}")]
    Deleted(Timestamp),
    /// The object's `X-Delete-At` has passed; its data timestamp and metadata.
    #[error("expired")]
    Expired(Timestamp, Box<Metadata>),
    /// The files were corrupt and have been moved to `quarantined/`.
    #[error("quarantined: {0}")]
    Quarantined(String),
    /// The stored name does not match the requested one (hash collision).
    #[error("name collision")]
    Collision,
    /// The filesystem has no user xattrs.
    #[error("xattrs not supported")]
    XattrNotSupported,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The disk (or its reserve) is full: 507.
    #[error("no space left on device")]
    NoSpace,
    /// The filesystem has no user xattrs: 507.
    #[error("xattrs not supported")]
    XattrNotSupported,
    #[error("{0}")]
    Io(io::Error),
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => WriteError::NoSpace,
            _ => WriteError::Io(e),
        }
    }
}

impl From<MetadataError> for WriteError {
    fn from(e: MetadataError) -> Self {
        match e {
            MetadataError::NoSpace => WriteError::NoSpace,
            MetadataError::XattrNotSupported => WriteError::XattrNotSupported,
            MetadataError::Io(e) => e.into(),
            other => WriteError::Io(io::Error::other(other.to_string())),
        }
    }
}

/// A directory name with the policy suffix: `objects`, `objects-1`, ...
pub fn policy_dir(base: &str, policy: u32) -> String {
    if policy == 0 {
        base.to_string()
    } else {
        format!("{base}-{policy}")
    }
}

/// Where one object lives on one device.
#[derive(Debug, Clone)]
pub struct ObjectLocation {
    /// `<devices>/<dev>`.
    pub device_path: PathBuf,
    /// Storage policy index.
    pub policy: u32,
    pub partition: u32,
    /// The object's name hash (32 hex digits).
    pub hash: String,
}

impl ObjectLocation {
    /// The last three hex digits of the hash.
    pub fn suffix(&self) -> &str {
        &self.hash[self.hash.len() - 3..]
    }

    /// `<dev>/objects[-N]/<part>`.
    pub fn partition_dir(&self) -> PathBuf {
        self.device_path.join(policy_dir("objects", self.policy)).join(self.partition.to_string())
    }

    /// `<dev>/objects[-N]/<part>/<suffix>/<hash>`.
    pub fn hash_dir(&self) -> PathBuf {
        self.partition_dir().join(self.suffix()).join(&self.hash)
    }

    /// `<dev>/tmp[-N]`.
    pub fn tmp_dir(&self) -> PathBuf {
        self.device_path.join(policy_dir("tmp", self.policy))
    }
}

/// The kind of an object file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ext {
    Data,
    Meta,
    Ts,
}

impl Ext {
    /// The file name extension, with its dot.
    pub fn as_str(self) -> &'static str {
        match self {
            Ext::Data => ".data",
            Ext::Meta => ".meta",
            Ext::Ts => ".ts",
        }
    }
}

/// One object file in a hash directory.
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub filename: String,
    pub timestamp: Timestamp,
    pub ext: Ext,
    /// For `.meta` files named `<ts><+/-delta>.meta`: when the content type
    /// they carry was set.
    pub ctype_timestamp: Option<Timestamp>,
}

/// Parses `<timestamp>.data`, `<timestamp>.ts` or `<encoded>.meta`.
pub fn parse_filename(name: &str) -> Option<FileInfo> {
    let (stem, ext) = if let Some(s) = name.strip_suffix(".data") {
        (s, Ext::Data)
    } else if let Some(s) = name.strip_suffix(".ts") {
        (s, Ext::Ts)
    } else if let Some(s) = name.strip_suffix(".meta") {
        (s, Ext::Meta)
    } else {
        return None;
    };
    let (timestamp, ctype_timestamp) = if ext == Ext::Meta {
        let (t1, t2, _) = decode_timestamps_explicit(stem).ok()?;
        (t1, t2)
    } else {
        (Timestamp::parse(stem).ok()?, None)
    };
    Some(FileInfo { filename: name.to_string(), timestamp, ext, ctype_timestamp })
}

/// The files of a hash directory that define the object's state, and those
/// that a newer file has made obsolete (Swift's `get_ondisk_files` for
/// replication policies, rule for rule, so that our replication hashes and
/// cleanups agree with Swift's on the same directory).
#[derive(Debug, Default, Clone)]
pub struct OnDisk {
    pub data: Option<FileInfo>,
    /// The newest `.meta` newer than the `.data` (only with a `.data`).
    pub meta: Option<FileInfo>,
    /// The `.meta` that carries the newest content type, when that is newer
    /// than the `.data` (often the same file as `meta`; an older `.meta`
    /// when a later POST did not set the content type).
    pub ctype: Option<FileInfo>,
    pub ts: Option<FileInfo>,
    /// `.meta` files without a `.data`: kept until they are older than the
    /// reclaim age.
    pub possible_reclaim: Vec<FileInfo>,
    /// Obsolete object files, and sidecars whose file is gone.
    pub obsolete: Vec<String>,
}

impl OnDisk {
    /// The newest timestamp of any state-defining file.
    pub fn newest(&self) -> Option<Timestamp> {
        [&self.data, &self.meta, &self.ts].iter().filter_map(|f| f.as_ref().map(|f| f.timestamp)).max()
    }
}

/// Moves the items of `list` (newest first) that fail `keep` to `obsolete`.
fn split_off_obsolete(list: &mut Vec<FileInfo>, obsolete: &mut Vec<String>, keep: impl Fn(&FileInfo) -> bool) {
    let at = list.iter().position(|f| !keep(f)).unwrap_or(list.len());
    obsolete.extend(list.drain(at..).map(|f| f.filename));
}

/// Classifies the file names of one hash directory.
pub fn classify(names: &[String]) -> OnDisk {
    let mut files: Vec<FileInfo> = names.iter().filter_map(|n| parse_filename(n)).collect();
    // Swift lists names in reverse order, then sorts each kind newest first
    // (stable sorts, so ties keep the reverse name order).
    files.sort_by(|a, b| b.filename.cmp(&a.filename));
    files.sort_by_key(|f| std::cmp::Reverse(f.timestamp));
    let of_kind = |ext: Ext| files.iter().filter(|f| f.ext == ext).cloned().collect::<Vec<_>>();
    let (mut datas, mut metas, mut tss) = (of_kind(Ext::Data), of_kind(Ext::Meta), of_kind(Ext::Ts));
    let mut out = OnDisk::default();
    if let Some(newest_ts) = tss.first().map(|t| t.timestamp) {
        // Anything at or before the newest tombstone is obsolete, and so
        // are older tombstones.
        split_off_obsolete(&mut datas, &mut out.obsolete, |f| f.timestamp > newest_ts);
        split_off_obsolete(&mut metas, &mut out.obsolete, |f| f.timestamp > newest_ts);
        out.obsolete.extend(tss.drain(1..).map(|f| f.filename));
    }
    if metas.len() > 1 {
        // Keep the newest .meta, and also the one with the newest content
        // type if that is a different, older file.
        metas[1..].sort_by_key(|m| std::cmp::Reverse(m.ctype_timestamp));
        let mut retain = 1;
        if metas[1].ctype_timestamp > metas[0].ctype_timestamp {
            if metas[1].timestamp == metas[0].timestamp {
                metas.swap(0, 1);
            } else {
                retain = 2;
            }
        }
        out.obsolete.extend(metas.drain(retain..).map(|f| f.filename));
    }
    if let Some(newest_data) = datas.first().map(|d| d.timestamp) {
        split_off_obsolete(&mut datas, &mut out.obsolete, |f| f.timestamp >= newest_data);
        split_off_obsolete(&mut metas, &mut out.obsolete, |f| f.timestamp > newest_data);
        split_off_obsolete(&mut tss, &mut out.obsolete, |f| f.timestamp > newest_data);
        out.data = datas.first().cloned();
    } else {
        out.possible_reclaim = metas.clone();
    }
    if let Some(d) = &out.data {
        out.meta = metas.first().cloned();
        out.ctype = metas.last().filter(|c| c.ctype_timestamp > Some(d.timestamp)).cloned();
    } else {
        out.ts = tss.first().cloned();
    }
    // A sidecar goes with its file. One whose file is absent may belong to
    // a write committing right now (its sidecar is renamed in first): it is
    // obsolete only when its file could never define the state, being older
    // than what does. Removing it any earlier would strip a concurrent,
    // acknowledged write of its metadata.
    let newest = out.newest();
    for n in names {
        if let Some(parent) = n.strip_suffix(metadata::SIDECAR_SUFFIX) {
            let parent_obsolete = out.obsolete.iter().any(|o| o == parent);
            let superseded_orphan =
                !names.iter().any(|x| x == parent) && parse_filename(parent).zip(newest).is_some_and(|(f, newest)| f.timestamp < newest);
            if parent_obsolete || superseded_orphan {
                out.obsolete.push(n.clone());
            }
        }
    }
    out
}

fn list_dir(dir: &Path) -> io::Result<Vec<String>> {
    match fs::read_dir(dir) {
        Ok(rd) => {
            let mut names = Vec::new();
            for e in rd {
                names.push(e?.file_name().to_string_lossy().into_owned());
            }
            Ok(names)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Reads a hash directory's state.
pub fn scan(hash_dir: &Path) -> io::Result<OnDisk> {
    Ok(classify(&list_dir(hash_dir)?))
}

/// Deletes the obsolete files of a hash directory (and the directory when
/// it is left empty). Failures are harmless: the next write retries.
pub fn cleanup(hash_dir: &Path) -> io::Result<OnDisk> {
    let names = list_dir(hash_dir)?;
    let state = classify(&names);
    for f in &state.obsolete {
        let _ = fs::remove_file(hash_dir.join(f));
    }
    if names.len() == state.obsolete.len() {
        let _ = fs::remove_dir(hash_dir);
    }
    Ok(state)
}

/// Moves one corrupt file of a hash directory, with its metadata sidecar,
/// to `<dev>/quarantined/objects[-N]/<hash>/` (a random suffix on the
/// directory when that name is taken), where Swift keeps quarantined
/// objects, so that replication brings a good copy. Only the bad file goes:
/// a newer write that landed beside it meanwhile stays where it is.
/// Returns the new path, or `None` when the file is already gone (a newer
/// write replaced it: nothing is left to quarantine).
pub fn quarantine_file(loc: &ObjectLocation, filename: &str) -> io::Result<Option<PathBuf>> {
    let source = loc.hash_dir().join(filename);
    if !source.exists() {
        return Ok(None);
    }
    let qroot = loc.device_path.join("quarantined").join(policy_dir("objects", loc.policy));
    fs::create_dir_all(&qroot)?;
    let mut qdir = qroot.join(&loc.hash);
    loop {
        match fs::create_dir(&qdir) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                qdir = qroot.join(format!("{}-{:016x}", loc.hash, rand::random::<u64>()));
            }
            Err(e) => return Err(e),
        }
    }
    let target = qdir.join(filename);
    match fs::rename(&source, &target) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let _ = fs::remove_dir(&qdir);
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    let _ = fs::rename(metadata::sidecar_path(&source), metadata::sidecar_path(&target));
    // Fails, as it should, when other files remain.
    let _ = fs::remove_dir(loc.hash_dir());
    // The suffix changed: replication must rehash it to bring a good copy.
    let suffix_dir = loc.partition_dir().join(loc.suffix());
    if let Err(e) = crate::hashes::invalidate_hash(&suffix_dir) {
        common::log::error(&format!("ERROR invalidating suffix hash of {}: {e}", suffix_dir.display()));
    }
    Ok(Some(target))
}

/// Whether `path` still names the file `file` was opened from: a file that
/// a concurrent write renamed over or unlinked is not corrupt, only gone.
fn still_linked(path: &Path, file: Option<&File>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(now) = fs::symlink_metadata(path) else { return false };
    match file.and_then(|f| f.metadata().ok()) {
        Some(opened) => opened.dev() == now.dev() && opened.ino() == now.ino(),
        None => true,
    }
}

/// An object opened for reading: its merged metadata and its data file.
#[derive(Debug)]
pub struct OpenObject {
    /// The `.data` file, positioned at its start.
    pub file: File,
    /// Its name in the hash directory (`<timestamp>.data`).
    pub data_file: String,
    /// Metadata as a GET shows it: `.meta` over `.data` (Swift's merge).
    pub metadata: Metadata,
    /// The `.data` file's own metadata.
    pub data_metadata: Metadata,
    /// The `.meta` file's metadata, when there is one.
    pub meta_metadata: Option<Metadata>,
    pub data_timestamp: Timestamp,
    /// When the current content type was set.
    pub content_type_timestamp: Timestamp,
    /// Body length in bytes.
    pub size: u64,
}

impl OpenObject {
    /// `X-Timestamp` of the newest file (the `.meta` if newer than the data).
    pub fn timestamp(&self) -> Timestamp {
        self.metadata.get("X-Timestamp").and_then(|t| Timestamp::parse(t).ok()).unwrap_or(self.data_timestamp)
    }

    /// `X-Delete-At` as seconds, 0 when unset.
    pub fn delete_at(&self) -> u64 {
        parse_delete_at(&self.metadata)
    }
}

fn parse_delete_at(m: &Metadata) -> u64 {
    m.get("X-Delete-At").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0)
}

/// How one look at a hash directory ended.
enum Attempt {
    Done(OpenError),
    /// A file vanished under the reader (a concurrent write replaced it
    /// and cleaned up): look again.
    Replaced,
}

impl From<io::Error> for Attempt {
    fn from(e: io::Error) -> Self {
        Attempt::Done(OpenError::Io(e))
    }
}

/// Reads the metadata of `filename` in `loc`'s hash directory (through the
/// open `file` when given). Unreadable metadata of a file that is still in
/// place quarantines it; of a file that is gone means it was replaced.
fn read_checked(loc: &ObjectLocation, filename: &str, file: Option<&File>) -> Result<Metadata, Attempt> {
    let path = loc.hash_dir().join(filename);
    let r = match file {
        Some(f) => metadata::read_file(f, &path),
        None => metadata::read(&path),
    };
    match r {
        Ok(m) => Ok(m),
        Err(MetadataError::XattrNotSupported) => Err(Attempt::Done(OpenError::XattrNotSupported)),
        Err(MetadataError::Io(e)) if e.kind() == io::ErrorKind::NotFound => Err(Attempt::Replaced),
        Err(MetadataError::Io(e)) => Err(e.into()),
        // A reader holding the old .data finds its sidecar unlinked by the
        // cleanup of the write that replaced it: that is no corruption.
        Err(_) if !still_linked(&path, file) => Err(Attempt::Replaced),
        // A blob in no format we know is not proof of corruption (another
        // writer, a newer format): refuse to serve it, keep the file.
        Err(MetadataError::UnknownFormat(why)) => {
            common::log::error(&format!("ERROR reading metadata of {}: {why}", path.display()));
            Err(Attempt::Done(OpenError::Io(io::Error::other(format!("unknown metadata format in {}", path.display())))))
        }
        Err(e) => match quarantine_file(loc, filename)? {
            Some(to) => {
                common::log::error(&format!("Quarantined {} to {}: {e}", path.display(), to.display()));
                Err(Attempt::Done(OpenError::Quarantined(e.to_string())))
            }
            None => Err(Attempt::Replaced),
        },
    }
}

/// Looks this many times at a hash directory whose files keep being
/// replaced under the reader before answering "not found".
const OPEN_ATTEMPTS: usize = 10;

/// Opens object `name` (`/a/c/o`) at `loc`. `now` (seconds) decides
/// whether `X-Delete-At` has passed.
pub fn open(loc: &ObjectLocation, name: &str, now: f64) -> Result<OpenObject, OpenError> {
    for _ in 0..OPEN_ATTEMPTS {
        match open_once(loc, name, now) {
            Ok(o) => return Ok(o),
            Err(Attempt::Done(e)) => return Err(e),
            Err(Attempt::Replaced) => continue,
        }
    }
    Err(OpenError::NotFound)
}

fn open_once(loc: &ObjectLocation, name: &str, now: f64) -> Result<OpenObject, Attempt> {
    let dir = loc.hash_dir();
    let state = scan(&dir)?;
    if let Some(ts) = &state.ts {
        return Err(Attempt::Done(OpenError::Deleted(ts.timestamp)));
    }
    let Some(data) = &state.data else { return Err(Attempt::Done(OpenError::NotFound)) };
    let path = dir.join(&data.filename);
    let file = match File::open(&path) {
        Ok(f) => f,
        // A concurrent write replaced it since the scan.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Attempt::Replaced),
        Err(e) => return Err(e.into()),
    };
    let data_metadata = read_checked(loc, &data.filename, Some(&file))?;
    if data_metadata.get("name").is_some_and(|n| n != name) {
        return Err(Attempt::Done(OpenError::Collision));
    }
    let size = file.metadata()?.len();
    if data_metadata.get("Content-Length").and_then(|v| v.parse::<u64>().ok()) != Some(size) {
        // Checked on the open file: what it holds cannot change under us.
        if quarantine_file(loc, &data.filename)?.is_none() {
            return Err(Attempt::Replaced);
        }
        common::log::error(&format!("Quarantined {}: data file size {size} does not match Content-Length", path.display()));
        return Err(Attempt::Done(OpenError::Quarantined("data file size does not match Content-Length".into())));
    }
    let mut metadata = data_metadata.clone();
    let mut content_type_timestamp = data.timestamp;
    let mut meta_metadata = None;
    if let Some(meta) = &state.meta {
        let mut mm = read_checked(loc, &meta.filename, None)?;
        mm.remove("name");
        // An older .meta may hold a newer content type than the newest one
        // (Swift's POST writes the content type only when it changes it).
        if let Some(ctype) = state.ctype.as_ref().filter(|c| c.filename != meta.filename) {
            let cm = read_checked(loc, &ctype.filename, None)?;
            if let (Some(ct), Some(ct_ts)) = (cm.get("Content-Type"), cm.get("Content-Type-Timestamp")) {
                mm.insert("Content-Type".into(), ct.clone());
                mm.insert("Content-Type-Timestamp".into(), ct_ts.clone());
            }
        }
        metadata = mm.clone();
        // Data-file system keys survive a POST; user metadata does not.
        for (k, v) in &data_metadata {
            let lk = k.to_ascii_lowercase();
            if matches!(lk.as_str(), "content-length" | "deleted" | "etag" | "x-static-large-object" | "name")
                || lk.starts_with("x-object-sysmeta-")
            {
                metadata.insert(k.clone(), v.clone());
            }
        }
        let ctype_ts = mm.get("Content-Type-Timestamp").and_then(|t| Timestamp::parse(t).ok());
        match ctype_ts {
            Some(t) if t > data.timestamp => content_type_timestamp = t,
            _ => {
                if let Some(ct) = data_metadata.get("Content-Type") {
                    metadata.insert("Content-Type".into(), ct.clone());
                }
                metadata.remove("Content-Type-Timestamp");
            }
        }
        meta_metadata = Some(mm);
    }
    let delete_at = parse_delete_at(&metadata);
    if delete_at != 0 && (delete_at as f64) <= now {
        return Err(Attempt::Done(OpenError::Expired(data.timestamp, Box::new(metadata))));
    }
    Ok(OpenObject {
        file,
        data_file: data.filename.clone(),
        metadata,
        data_metadata,
        meta_metadata,
        data_timestamp: data.timestamp,
        content_type_timestamp,
        size,
    })
}

/// Reads up to `len` bytes at `offset` of `file` (fewer only at its end),
/// into a buffer that is not zeroed first.
pub fn read_bytes(file: &File, offset: u64, len: usize) -> io::Result<Bytes> {
    use std::os::fd::AsRawFd;
    let mut buf = BytesMut::with_capacity(len);
    while buf.len() < len {
        let at = buf.len();
        let spare = buf.spare_capacity_mut();
        // SAFETY: pread writes at most `len - at` bytes into the spare
        // capacity, which is at least that long; only what it reports
        // written is then counted as initialised.
        let n = unsafe { libc::pread(file.as_raw_fd(), spare.as_mut_ptr().cast(), len - at, (offset + at as u64) as libc::off_t) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        // SAFETY: pread initialised the next `n` bytes.
        unsafe { buf.set_len(at + n as usize) };
    }
    Ok(buf.freeze())
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing parents, fsyncing the parent of every
/// directory created so the new entries survive a crash. True when `dir`
/// itself was created here.
fn create_dir_durable(dir: &Path) -> io::Result<bool> {
    create_dirs(dir, true)
}

/// Creates `dir` and its missing parents; with `fsync`, fsyncs the parent
/// of each one made (without, a later sync of the filesystem must). True when
/// `dir` itself was created here.
fn create_dirs(dir: &Path, fsync: bool) -> io::Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    let Some(parent) = dir.parent() else { return Ok(false) };
    create_dirs(parent, fsync)?;
    match fs::create_dir(dir) {
        Ok(()) => {
            if fsync {
                fsync_dir(parent)?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Renames `from` to `to` in the hash directory `dir`. A replicator
/// rehashing the suffix removes empty hash directories, and the one just
/// made for this file is empty until the rename: on `ENOENT` the
/// directories are made again and the rename tried once more, as Swift's
/// `renamer` does.
fn rename_into(from: &Path, to: &Path, dir: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && from.exists() => {
            create_dir_durable(dir)?;
            fs::rename(from, to)
        }
        other => other,
    }
}

/// A temp file in `<dev>/tmp[-N]` that is deleted unless committed.
struct TempFile {
    path: PathBuf,
    file: File,
    sidecar: Option<PathBuf>,
    committed: bool,
}

impl TempFile {
    fn create(tmp_dir: &Path) -> Result<TempFile, WriteError> {
        create_dir_durable(tmp_dir)?;
        loop {
            let path = tmp_dir.join(format!("tmp{:016x}", rand::random::<u64>()));
            match OpenOptions::new().write(true).read(true).create_new(true).open(&path) {
                Ok(file) => return Ok(TempFile { path, file, sidecar: None, committed: false }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A temp file for an object's hash directory, made durable by its
/// filesystem's group commit ([`crate::group_sync`]).
struct ObjectFile {
    tmp: TempFile,
    group: Arc<GroupSync>,
    ticket: Ticket,
}

impl ObjectFile {
    fn create(loc: &ObjectLocation) -> Result<ObjectFile, WriteError> {
        let tmp = TempFile::create(&loc.tmp_dir())?;
        let group = group_sync::for_file(&tmp.file)?;
        // Before anything is written: a sync that fails from here on may
        // have lost this file's pages.
        let ticket = group.begin();
        Ok(ObjectFile { tmp, group, ticket })
    }

    /// Attaches metadata and renames into `loc`'s hash directory as
    /// `filename` (sidecar first), then deletes what the new file makes
    /// obsolete. Two syncs of its filesystem make it durable, as Swift's
    /// `fsync` before and directory `fsync`s after the rename do: the first
    /// puts the data, inode and metadata on stable storage before the
    /// rename can reach the disk, the second the rename and any directory
    /// made for it. Each is shared with the filesystem's other writers.
    fn commit(mut self, loc: &ObjectLocation, filename: &str, meta: &Metadata) -> Result<(), WriteError> {
        let tmp = &mut self.tmp;
        tmp.sidecar = metadata::write(&tmp.file, &tmp.path, meta)?;
        self.group.sync(&self.ticket, &tmp.file)?;
        group_sync::check_writeback(&tmp.file)?;
        let dir = loc.hash_dir();
        let new_dir = create_dirs(&dir, false)?;
        let target = dir.join(filename);
        // As Swift, the suffix is marked for rehashing before the new file
        // can appear, so a crash in between cannot leave a stale hash.
        let suffix_dir = loc.partition_dir().join(loc.suffix());
        crate::hashes::invalidate_hash(&suffix_dir)?;
        if let Some(side) = &tmp.sidecar {
            rename_into(side, &metadata::sidecar_path(&target), &dir)?;
        } else {
            // A stale sidecar from an earlier attempt at the same timestamp
            // would shadow nothing (xattrs win), but drop it anyway.
            let _ = fs::remove_file(metadata::sidecar_path(&target));
        }
        rename_into(&tmp.path, &target, &dir)?;
        tmp.committed = true;
        // The rename is durable only once the directory entries are.
        self.group.sync(&self.ticket, &tmp.file)?;
        // Once more after the rename: a REPLICATE that hashed the suffix
        // between the first invalidation and the rename cached the old
        // state. Failing here loses nothing the first one did not record.
        if let Err(e) = crate::hashes::invalidate_hash(&suffix_dir) {
            common::log::error(&format!("ERROR invalidating suffix hash of {}: {e}", suffix_dir.display()));
        }
        // A directory made for this file holds nothing it could obsolete.
        // Obsolete files go only now that the new one is durable.
        if !new_dir {
            cleanup(&dir)?;
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
            if let Some(s) = &self.sidecar {
                let _ = fs::remove_file(s);
            }
        }
    }
}

/// Writes an object body to a temp file, computing its MD5, and commits it
/// as `<timestamp>.data`.
pub struct DataWriter {
    file: ObjectFile,
    md5: Md5,
    written: u64,
    /// Bytes `fallocate` reserved.
    preallocated: u64,
}

/// Bodies larger than this are preallocated (Swift's default
/// `network_chunk_size`).
const PREALLOCATE_FROM: u64 = 65536;

impl DataWriter {
    /// Opens a temp file for `loc`; `size` (when known) is preallocated so a
    /// full disk fails now rather than half way (507). `reserve` is the
    /// number of bytes that must stay free on the device after the
    /// allocation (Swift's `fallocate_reserve`; 0 disables the check).
    pub fn create(loc: &ObjectLocation, size: Option<u64>, reserve: u64) -> Result<DataWriter, WriteError> {
        let file = ObjectFile::create(loc)?;
        let mut preallocated = 0;
        if let Some(size) = size.filter(|&s| s > 0) {
            if reserve > 0 && free_bytes(&loc.device_path)?.saturating_sub(size) < reserve {
                return Err(WriteError::NoSpace);
            }
            // A body of one network chunk or less is written in one go, so
            // it gains nothing from a reservation: a full disk fails its
            // write just as early, and small PUTs save two syscalls.
            if size <= PREALLOCATE_FROM {
                return Ok(DataWriter { file, md5: Md5::new(), written: 0, preallocated });
            }
            // SAFETY: fallocate on a file descriptor we own; sizes fit i64.
            let r = unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&file.tmp.file), 0, 0, size.min(i64::MAX as u64) as i64) };
            if r != 0 {
                let e = io::Error::last_os_error();
                // Filesystems without fallocate still work, just unreserved.
                if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
                    return Err(e.into());
                }
            } else {
                preallocated = size;
            }
        }
        Ok(DataWriter { file, md5: Md5::new(), written: 0, preallocated })
    }

    /// Appends a chunk of the body.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), WriteError> {
        self.file.tmp.file.write_all(chunk)?;
        self.md5.update(chunk);
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The body's MD5, lowercase hex.
    pub fn etag(&self) -> String {
        self.md5.clone().finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Makes the object visible as `<timestamp>.data` with `meta`.
    pub fn commit(self, loc: &ObjectLocation, timestamp: Timestamp, meta: &Metadata) -> Result<(), WriteError> {
        // Trim any preallocation beyond what was written.
        if self.preallocated > self.written {
            self.file.tmp.file.set_len(self.written)?;
        }
        self.file.commit(loc, &format!("{}.data", timestamp.internal()), meta)
    }
}

fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: statvfs fills the zeroed struct; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Writes a tombstone `<timestamp>.ts` carrying `meta`.
pub fn write_tombstone(loc: &ObjectLocation, timestamp: Timestamp, meta: &Metadata) -> Result<(), WriteError> {
    let tmp = ObjectFile::create(loc)?;
    tmp.commit(loc, &format!("{}.ts", timestamp.internal()), meta)
}

/// Writes a `.meta` file for a POST at `timestamp`; when the POST set the
/// content type at `ctype_timestamp`, the name records it as Swift does
/// (`<ts>+<delta>.meta`).
pub fn write_meta(
    loc: &ObjectLocation,
    timestamp: Timestamp,
    ctype_timestamp: Option<Timestamp>,
    meta: &Metadata,
) -> Result<(), WriteError> {
    let tmp = ObjectFile::create(loc)?;
    let stem = encode_timestamps_explicit(timestamp, ctype_timestamp, None);
    tmp.commit(loc, &format!("{stem}.meta"), meta)
}

/// Saves an async pending for the object updater at
/// `<dev>/async_pending[-N]/<suffix>/<hash>-<timestamp>`: written to a temp
/// file, fsynced, renamed, and the directory fsynced.
pub fn write_async_pending(device_path: &Path, policy: u32, hash: &str, timestamp: &str, body: &[u8]) -> Result<PathBuf, WriteError> {
    let dir = device_path.join(policy_dir("async_pending", policy)).join(&hash[hash.len() - 3..]);
    create_dir_durable(&dir)?;
    let mut tmp = TempFile::create(&device_path.join(policy_dir("tmp", policy)))?;
    tmp.file.write_all(body)?;
    tmp.file.sync_all()?;
    let target = dir.join(format!("{hash}-{timestamp}"));
    fs::rename(&tmp.path, &target)?;
    tmp.committed = true;
    fsync_dir(&dir)?;
    Ok(target)
}

/// Rewrites the async pending at `target` (below `device_path`) with `body`,
/// as [`write_async_pending`] does: temp file in `tmp[-N]`, fsync, rename
/// over the old file, fsync the directory. A crash leaves the old pending
/// or the new one, never half of either.
pub fn replace_async_pending(device_path: &Path, policy: u32, target: &Path, body: &[u8]) -> Result<(), WriteError> {
    let mut tmp = TempFile::create(&device_path.join(policy_dir("tmp", policy)))?;
    tmp.file.write_all(body)?;
    tmp.file.sync_all()?;
    fs::rename(&tmp.path, target)?;
    tmp.committed = true;
    if let Some(dir) = target.parent() {
        fsync_dir(dir)?;
    }
    Ok(())
}

/// Unlinks an async pending (already gone is fine) and then its suffix
/// directory if that is now empty, so swept devices do not keep thousands
/// of empty directories (Swift's updater rmdirs them too).
pub fn remove_async_pending(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        // Fails while other pendings remain: that is the expected case.
        let _ = fs::remove_dir(dir);
    }
    Ok(())
}

/// Moves an unreadable async pending to `<dev>/quarantined/objects/<name>`
/// (Swift's place for them), so it is kept for an operator but not retried.
pub fn quarantine_async_pending(device_path: &Path, path: &Path) -> io::Result<PathBuf> {
    let dir = device_path.join("quarantined").join("objects");
    create_dir_durable(&dir)?;
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "async pending path has no file name"))?;
    let target = dir.join(name);
    fs::rename(path, &target)?;
    fsync_dir(&dir)?;
    Ok(target)
}

/// One async pending found on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncPendingFile {
    pub path: PathBuf,
    /// From the directory name: `async_pending` is 0, `async_pending-N` is N.
    pub policy: u32,
}

/// What [`list_async_pendings`] found on one device.
#[derive(Debug, Default)]
pub struct AsyncPendingScan {
    /// The newest pending of each object, to be sent.
    pub newest: Vec<AsyncPendingFile>,
    /// Older pendings of an object that has a newer one: unlinked during the
    /// scan, since the newer update supersedes them at the container.
    pub unlinked: u64,
    /// Unlink failures and names that are not `<hash>-<timestamp>`.
    pub errors: u64,
}

/// Walks `<dev>/async_pending*/<suffix>/` and keeps only the newest pending
/// per object hash (names sort by timestamp: the internal form is fixed
/// width), unlinking the older ones, as Swift's `object_sweep` does.
pub fn list_async_pendings(device_path: &Path) -> io::Result<AsyncPendingScan> {
    let mut scan = AsyncPendingScan::default();
    let mut dirs: Vec<String> = fs::read_dir(device_path)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("async_pending"))
        .collect();
    dirs.sort();
    for dir_name in dirs {
        let policy = match dir_name.strip_prefix("async_pending") {
            Some("") => 0,
            Some(rest) => match rest.strip_prefix('-').and_then(|n| n.parse::<u32>().ok()) {
                Some(p) => p,
                None => {
                    common::log::warning(&format!("Directory {dir_name:?} does not map to a valid policy"));
                    continue;
                }
            },
            None => continue,
        };
        let dir = device_path.join(&dir_name);
        let Ok(suffixes) = fs::read_dir(&dir) else { continue };
        for suffix in suffixes.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()) {
            let Ok(entries) = fs::read_dir(&suffix) else { continue };
            let mut names: Vec<String> = entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect();
            // Newest first, so the first name of each hash is the one to send.
            names.sort_unstable_by(|a, b| b.cmp(a));
            let mut last_hash: Option<String> = None;
            for name in names {
                let Some((hash, timestamp)) = name.split_once('-') else {
                    common::log::error(&format!("ERROR async pending file with unexpected name {}", suffix.join(&name).display()));
                    scan.errors += 1;
                    continue;
                };
                if hash.len() != 32 || timestamp.is_empty() || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    common::log::error(&format!("ERROR async pending file with unexpected name {}", suffix.join(&name).display()));
                    scan.errors += 1;
                    continue;
                }
                let path = suffix.join(&name);
                if last_hash.as_deref() == Some(hash) {
                    match fs::remove_file(&path) {
                        Ok(()) => scan.unlinked += 1,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => {
                            common::log::error(&format!("ERROR unlinking obsolete async pending {}: {e}", path.display()));
                            scan.errors += 1;
                        }
                    }
                    continue;
                }
                last_hash = Some(hash.to_string());
                scan.newest.push(AsyncPendingFile { path, policy });
            }
        }
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn newer_data_obsoletes_older_files() {
        let s = classify(&names(&[
            "0000000001.00000.data",
            "0000000002.00000.ts",
            "0000000003.00000.data",
            "0000000003.00000.data.meta-blob",
            "0000000001.00000.data.meta-blob",
        ]));
        assert_eq!(s.data.unwrap().filename, "0000000003.00000.data");
        assert!(s.ts.is_none());
        let mut o = s.obsolete.clone();
        o.sort();
        assert_eq!(o, names(&["0000000001.00000.data", "0000000001.00000.data.meta-blob", "0000000002.00000.ts"]));
    }

    #[test]
    fn tombstone_wins_over_older_data_and_meta_needs_newer_time() {
        let s = classify(&names(&["0000000001.00000.data", "0000000002.00000.ts"]));
        assert!(s.data.is_none());
        assert_eq!(s.ts.unwrap().filename, "0000000002.00000.ts");
        let s = classify(&names(&["0000000002.00000.data", "0000000001.00000.meta", "0000000003.00000+0.meta"]));
        let m = s.meta.unwrap();
        assert_eq!(m.filename, "0000000003.00000+0.meta");
        assert_eq!(m.ctype_timestamp, Some(Timestamp::parse("3").unwrap()));
        assert_eq!(s.obsolete, names(&["0000000001.00000.meta"]));
    }

    #[test]
    fn a_sidecar_waiting_for_its_file_is_kept() {
        // A commit in flight renames its sidecar in before its file: a
        // cleanup that sees only the sidecar must leave it.
        let s = classify(&names(&["0000000001.00000.data", "0000000001.00000.data.meta-blob", "0000000002.00000.data.meta-blob"]));
        assert!(s.obsolete.is_empty(), "{:?}", s.obsolete);
        let s = classify(&names(&["0000000002.00000.ts.meta-blob"]));
        assert!(s.obsolete.is_empty());
        // One older than the current state can never define it.
        let s = classify(&names(&["0000000003.00000.data", "0000000002.00000.data.meta-blob"]));
        assert_eq!(s.obsolete, names(&["0000000002.00000.data.meta-blob"]));
    }

    #[test]
    fn metadata_that_left_with_a_replaced_file_is_not_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let loc = ObjectLocation {
            device_path: dir.path().join("sda"),
            policy: 0,
            partition: 1,
            hash: "0123456789abcdef0123456789abcdef".into(),
        };
        fs::create_dir_all(loc.hash_dir()).unwrap();
        let name = "0000000001.00000.data";
        let path = loc.hash_dir().join(name);
        // A file without metadata, as a reader finds an old .data whose
        // sidecar the cleanup of a newer write has unlinked.
        fs::write(&path, b"x").unwrap();
        let held = File::open(&path).unwrap();
        fs::remove_file(&path).unwrap();
        assert!(matches!(read_checked(&loc, name, Some(&held)), Err(Attempt::Replaced)));
        assert!(!loc.device_path.join("quarantined").exists());
        // A file in place without readable metadata is corrupt: it alone is
        // quarantined, a newer file beside it stays.
        fs::write(&path, b"x").unwrap();
        fs::write(loc.hash_dir().join("0000000002.00000.ts"), b"").unwrap();
        let held = File::open(&path).unwrap();
        assert!(matches!(read_checked(&loc, name, Some(&held)), Err(Attempt::Done(OpenError::Quarantined(_)))));
        assert!(loc.device_path.join("quarantined/objects").join(&loc.hash).join(name).is_file());
        assert_eq!(list_dir(&loc.hash_dir()).unwrap(), names(&["0000000002.00000.ts"]));
        // The newer tombstone now defines the object.
        assert!(matches!(open(&loc, "/a/c/o", 0.0), Err(OpenError::Deleted(_))));
    }

    #[test]
    fn commit_is_atomic_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let loc = ObjectLocation {
            device_path: dir.path().join("sda"),
            policy: 1,
            partition: 7,
            hash: "0123456789abcdef0123456789abcdef".into(),
        };
        let mut w = DataWriter::create(&loc, Some(5), 0).unwrap();
        w.write(b"hello").unwrap();
        assert_eq!(w.etag(), "5d41402abc4b2a76b9719d911017c592");
        let mut m = Metadata::new();
        m.insert("name".into(), "/a/c/o".into());
        m.insert("Content-Length".into(), "5".into());
        w.commit(&loc, Timestamp::parse("1").unwrap(), &m).unwrap();
        assert!(loc.hash_dir().ends_with("objects-1/7/def/0123456789abcdef0123456789abcdef"));
        let o = open(&loc, "/a/c/o", 0.0).unwrap();
        assert_eq!(o.size, 5);
        write_tombstone(&loc, Timestamp::parse("2").unwrap(), &m).unwrap();
        assert!(matches!(open(&loc, "/a/c/o", 0.0), Err(OpenError::Deleted(_))));
        assert_eq!(list_dir(&loc.hash_dir()).unwrap(), names(&["0000000002.00000.ts"]));
        assert!(list_dir(&loc.tmp_dir()).unwrap().is_empty());
        // A reclaim age longer than these 1970 timestamps are old.
        let h = crate::hashes::get_hashes(&loc.partition_dir(), &[], std::time::Duration::from_secs(100 * 365 * 86400)).unwrap();
        let mut md5 = Md5::new();
        md5.update(b"0000000002.00000.ts");
        let expect: String = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(h.get("def"), Some(&expect));
    }
}
