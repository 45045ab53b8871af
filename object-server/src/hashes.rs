//! Suffix hashes, as Swift keeps them (swift/obj/diskfile.py `get_hashes`,
//! `consolidate_hashes`, `invalidate_hash`, `read_hashes`/`write_hashes`,
//! `_hash_suffix_dir`): what REPLICATE answers and the replicator compares.
//!
//! Per partition directory `<dev>/objects[-N]/<part>/`:
//!
//! * `hashes.pkl`: a protocol-2 pickle of `{suffix: md5 hex or None,
//!   'valid': True, 'updated': <time.time()>}`; `None` marks a suffix to
//!   rehash. Swift and we read each other's.
//! * `hashes.invalid`: suffixes whose hash directories changed since, one
//!   per line, appended by [`invalidate_hash`] after every write and
//!   folded into `hashes.pkl` by the next [`get_hashes`].
//! * `.lock`: `flock`ed around reading-and-rewriting those two files, by
//!   Swift's processes and ours alike.
//!
//! The hash of a suffix is the MD5 of, for each hash directory in name
//! order, `<timestamp><ext>` of the `.meta` and `.ts` that define the
//! object's state, then of the `.data`, then `<ctype timestamp>_ctype`
//! when a `.meta` carries a newer content type (see
//! [`crate::diskfile::classify`]). Hashing also cleans up as Swift does:
//! obsolete files go, tombstones and orphan `.meta` files older than the
//! reclaim age go, and so do the hash and suffix directories this empties.

use crate::diskfile::{self, OnDisk};
use crate::pickle::{self, Globals, Obj, Pickler};
use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The suffix hashes cache of a partition.
pub const HASH_FILE: &str = "hashes.pkl";
/// Suffixes invalidated since the cache was last written.
pub const HASH_INVALIDATIONS_FILE: &str = "hashes.invalid";
/// The partition's lock file (Swift's `lock_path`).
pub const LOCK_FILE: &str = ".lock";
/// Swift's default `reclaim_age`: one week.
pub const DEFAULT_RECLAIM_AGE: Duration = Duration::from_secs(604_800);
/// How long to wait for the partition lock (Swift's `DEFAULT_LOCK_TIMEOUT`).
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// The body of a REPLICATE that names suffixes: Swift only invalidates
/// them and answers a pickled `None`.
pub const REPLICATE_INVALIDATED_BODY: &[u8] = b"\x80\x02N.";

/// Whether `s` names a suffix directory: three lowercase hex digits.
pub fn valid_suffix(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// An exclusive `flock` on `<partition>/.lock`, released when dropped.
struct PartitionLock {
    _file: File,
}

/// Locks a partition as Swift's `lock_path` does: creates the directory
/// if needed, then `flock`s `.lock`, polling up to [`LOCK_TIMEOUT`].
fn lock_partition(partition_dir: &Path) -> io::Result<PartitionLock> {
    fs::create_dir_all(partition_dir)?;
    let file = OpenOptions::new().write(true).create(true).truncate(false).open(partition_dir.join(LOCK_FILE))?;
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(PartitionLock { _file: file });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) && e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("timed out locking {}", partition_dir.display())));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Records that the hash of `suffix_dir` (`<partition>/<suffix>`) must be
/// recomputed: appends the suffix to `<partition>/hashes.invalid`, under the
/// partition lock (Swift's `invalidate_hash`).
pub fn invalidate_hash(suffix_dir: &Path) -> io::Result<()> {
    let (Some(suffix), Some(partition_dir)) = (suffix_dir.file_name(), suffix_dir.parent()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("not a suffix directory: {}", suffix_dir.display())));
    };
    let _lock = lock_partition(partition_dir)?;
    let mut f = OpenOptions::new().append(true).create(true).open(partition_dir.join(HASH_INVALIDATIONS_FILE))?;
    let mut line = suffix.as_encoded_bytes().to_vec();
    line.push(b'\n');
    f.write_all(&line)
}

/// The contents of `hashes.pkl`.
#[derive(Debug, Clone)]
struct HashesFile {
    valid: bool,
    /// `time.time()` of the last write; -1 when absent, as Swift.
    updated: f64,
    /// Suffix to hash; `None` to recompute.
    suffixes: BTreeMap<String, Option<String>>,
}

impl PartialEq for HashesFile {
    fn eq(&self, other: &Self) -> bool {
        self.valid == other.valid && self.updated.to_bits() == other.updated.to_bits() && self.suffixes == other.suffixes
    }
}

impl HashesFile {
    fn invalid() -> HashesFile {
        HashesFile { valid: false, updated: -1.0, suffixes: BTreeMap::new() }
    }

    /// Parses `hashes.pkl` as Swift's `read_hashes` does: anything but a
    /// dict of valid suffixes (plus `valid` and `updated`) is invalid.
    fn parse(bytes: &[u8]) -> HashesFile {
        let Ok(Obj::Dict(items)) = pickle::load(bytes, Globals::Plain) else { return HashesFile::invalid() };
        let mut out = HashesFile { valid: true, updated: -1.0, suffixes: BTreeMap::new() };
        for (k, v) in items {
            let key = match k {
                Obj::Str(s) => s,
                Obj::Bytes(b) => match String::from_utf8(b) {
                    Ok(s) => s,
                    Err(_) => return HashesFile::invalid(),
                },
                _ => return HashesFile::invalid(),
            };
            match key.as_str() {
                "valid" => out.valid = !matches!(v, Obj::Bool(false) | Obj::None | Obj::Int(0)),
                "updated" => {
                    out.updated = match v {
                        Obj::Float(f) => f,
                        Obj::Int(i) => i as f64,
                        _ => -1.0,
                    }
                }
                s if valid_suffix(s) => {
                    let hash = match v {
                        Obj::Str(h) if !h.is_empty() => Some(h),
                        Obj::Bytes(h) if !h.is_empty() => Some(String::from_utf8_lossy(&h).into_owned()),
                        _ => None,
                    };
                    out.suffixes.insert(key, hash);
                }
                _ => return HashesFile::invalid(),
            }
        }
        out
    }

    /// The suffixes that have a hash.
    fn known(&self) -> BTreeMap<String, String> {
        self.suffixes.iter().filter_map(|(s, h)| h.clone().map(|h| (s.clone(), h))).collect()
    }

    /// The pickle Swift's `write_hashes` writes (suffixes in sorted order).
    fn to_pickle(&self) -> Vec<u8> {
        let mut items: Vec<(Obj, Obj)> =
            self.suffixes.iter().map(|(s, h)| (Obj::Str(s.clone()), h.clone().map_or(Obj::None, Obj::Str))).collect();
        items.push((Obj::Str("valid".into()), Obj::Bool(self.valid)));
        items.push((Obj::Str("updated".into()), Obj::Float(self.updated)));
        Pickler::dumps(&Obj::Dict(items), 2)
    }
}

fn read_hashes(partition_dir: &Path) -> HashesFile {
    match fs::read(partition_dir.join(HASH_FILE)) {
        Ok(bytes) => HashesFile::parse(&bytes),
        Err(_) => HashesFile::invalid(),
    }
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Writes `hashes.pkl` with `updated` set to now: temp file, fsync, rename,
/// directory fsync, so readers see the old file or the new one.
fn write_hashes(partition_dir: &Path, hashes: &mut HashesFile) -> io::Result<()> {
    hashes.updated = now_secs();
    let tmp = partition_dir.join(format!("tmp{:016x}.tmp", rand::random::<u64>()));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(&hashes.to_pickle())?;
        f.sync_all()?;
        fs::rename(&tmp, partition_dir.join(HASH_FILE))?;
        File::open(partition_dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Folds `hashes.invalid` into `hashes.pkl` and empties it, under the lock
/// (Swift's `consolidate_hashes`).
fn consolidate_hashes(partition_dir: &Path) -> io::Result<HashesFile> {
    let _lock = lock_partition(partition_dir)?;
    let mut hashes = read_hashes(partition_dir);
    let invalid_path = partition_dir.join(HASH_INVALIDATIONS_FILE);
    let lines = match fs::read(&invalid_path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut found = false;
    let mut updated = false;
    for line in lines.split(|&b| b == b'\n') {
        let suffix = String::from_utf8_lossy(line);
        let suffix = suffix.trim();
        if !line.is_empty() {
            found = true;
        }
        if valid_suffix(suffix) {
            hashes.suffixes.insert(suffix.to_string(), None);
            updated = true;
        }
    }
    if updated {
        write_hashes(partition_dir, &mut hashes)?;
    }
    if found {
        File::create(&invalid_path)?;
    }
    Ok(hashes)
}

/// Tries to hash one suffix with Swift's retries exhausted this many times
/// before giving up on writing `hashes.pkl` (another process keeps
/// rewriting it); the hashes are still returned.
const MAX_RACES: usize = 10;

/// The suffix hashes of one partition (Swift's `get_hashes`): reads
/// `hashes.pkl`, folds in `hashes.invalid`, recomputes the suffixes that
/// are invalid, named in `recalculate` or not in the cache (all of them
/// when the cache is missing or unreadable), writes `hashes.pkl` back when
/// anything changed, and returns suffix to MD5 hex. Suffixes without a hash
/// (emptied by the cleanup, or failing to hash) are left out. A partition
/// that does not exist has no hashes and is not created.
pub fn get_hashes(partition_dir: &Path, recalculate: &[String], reclaim_age: Duration) -> io::Result<BTreeMap<String, String>> {
    if !partition_dir.exists() {
        return Ok(BTreeMap::new());
    }
    let recalculate: Vec<&String> = recalculate.iter().filter(|s| valid_suffix(s)).collect();
    let mut do_listdir = false;
    for _ in 0..MAX_RACES {
        let mut orig = match consolidate_hashes(partition_dir) {
            Ok(h) => h,
            Err(e) => {
                common::log::warning(&format!("Unable to read {}: {e}", partition_dir.join(HASH_FILE).display()));
                HashesFile::invalid()
            }
        };
        let mut modified = false;
        let mut hashes = if orig.valid {
            orig.clone()
        } else {
            // The only way from an unreadable cache to a valid one: list
            // the partition, and later find the same unreadable state.
            do_listdir = true;
            orig = read_hashes(partition_dir);
            HashesFile { valid: true, updated: -1.0, suffixes: BTreeMap::new() }
        };
        if do_listdir {
            for name in list_names(partition_dir)? {
                if name.len() == 3 {
                    hashes.suffixes.entry(name).or_insert(None);
                }
            }
            modified = true;
        }
        for s in &recalculate {
            hashes.suffixes.insert((*s).clone(), None);
        }
        let todo: Vec<String> = hashes.suffixes.iter().filter(|(_, h)| h.is_none()).map(|(s, _)| s.clone()).collect();
        for suffix in todo {
            modified = true;
            match hash_suffix(&partition_dir.join(&suffix), reclaim_age) {
                Ok(Some(h)) => {
                    hashes.suffixes.insert(suffix, Some(h));
                }
                Ok(None) => {
                    hashes.suffixes.remove(&suffix);
                }
                Err(e) => common::log::error(&format!("Error hashing suffix {}: {e}", partition_dir.join(&suffix).display())),
            }
        }
        if !modified {
            return Ok(hashes.known());
        }
        {
            let _lock = lock_partition(partition_dir)?;
            // Written only if nobody changed the cache meanwhile; otherwise
            // start over from what they wrote.
            if read_hashes(partition_dir) == orig {
                write_hashes(partition_dir, &mut hashes)?;
                return Ok(hashes.known());
            }
        }
    }
    common::log::warning(&format!("{} keeps changing; hashes not saved", partition_dir.join(HASH_FILE).display()));
    // One last computation without saving.
    let mut out = BTreeMap::new();
    for name in list_names(partition_dir)?.into_iter().filter(|n| valid_suffix(n)) {
        if let Some(h) = hash_suffix(&partition_dir.join(&name), reclaim_age)? {
            out.insert(name, h);
        }
    }
    Ok(out)
}

fn list_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir)? {
        names.push(e?.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// The hash of one suffix directory (Swift's `_hash_suffix`), after
/// cleaning up each of its hash directories; `None` when the suffix
/// directory does not exist or the cleanup emptied (and removed) it.
pub fn hash_suffix(suffix_dir: &Path, reclaim_age: Duration) -> io::Result<Option<String>> {
    let mut hashes = match list_names(suffix_dir) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(None),
        Err(e) => return Err(e),
    };
    hashes.sort();
    let mut md5 = Md5::new();
    for h in hashes {
        let hash_dir = suffix_dir.join(&h);
        let state = match cleanup_ondisk_files(&hash_dir, reclaim_age) {
            Ok(Some(state)) => state,
            Ok(None) => continue,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR) | Some(libc::ENODATA) | Some(libc::EUCLEAN)) => {
                // Not a directory, or unreadable sectors: move it aside so
                // that replication brings a good copy.
                let to = quarantine_hash_dir(suffix_dir, &hash_dir)?;
                common::log::error(&format!("Quarantined {} to {}: {e}", hash_dir.display(), to.display()));
                continue;
            }
            Err(e) => return Err(e),
        };
        for f in [&state.meta, &state.ts].into_iter().flatten() {
            md5.update(format!("{}{}", f.timestamp.internal(), f.ext.as_str()).as_bytes());
        }
        if let Some(d) = &state.data {
            md5.update(format!("{}{}", d.timestamp.internal(), d.ext.as_str()).as_bytes());
        }
        if let Some(c) = state.ctype.as_ref().and_then(|c| c.ctype_timestamp) {
            md5.update(format!("{}_ctype", c.internal()).as_bytes());
        }
    }
    // A suffix the cleanup emptied goes, and counts as absent.
    match fs::remove_dir(suffix_dir) {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(_) => Ok(Some(md5.finalize().iter().map(|b| format!("{b:02x}")).collect())),
    }
}

/// Swift's `cleanup_ondisk_files`: deletes the obsolete files of a hash
/// directory, the tombstone and orphan `.meta` files older than
/// `reclaim_age`, and the directory once empty. `None` when nothing is
/// left (or there was no directory).
fn cleanup_ondisk_files(hash_dir: &Path, reclaim_age: Duration) -> io::Result<Option<OnDisk>> {
    let mut names = match list_names(hash_dir) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut state = diskfile::classify(&names);
    let now = now_secs();
    let reclaimable = |f: &diskfile::FileInfo| now - f.timestamp.as_secs_f64() > reclaim_age.as_secs_f64();
    let mut remove: Vec<String> = state.obsolete.clone();
    if let Some(ts) = state.ts.take_if(|ts| reclaimable(ts)) {
        remove.push(ts.filename);
    }
    remove.extend(state.possible_reclaim.iter().filter(|m| reclaimable(m)).map(|m| m.filename.clone()));
    // A removed file's metadata sidecar goes with it.
    let sidecars: Vec<String> = remove
        .iter()
        .map(|f| format!("{f}{}", crate::metadata::SIDECAR_SUFFIX))
        .filter(|s| names.contains(s) && !remove.contains(s))
        .collect();
    remove.extend(sidecars);
    for f in &remove {
        match fs::remove_file(hash_dir.join(f)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    names.retain(|n| !remove.contains(n));
    if names.is_empty() {
        // Fails harmlessly when a write just added a file.
        let _ = fs::remove_dir(hash_dir);
        return Ok(None);
    }
    Ok(Some(state))
}

/// Moves `<suffix>/<hash>` to `<dev>/quarantined/objects[-N]/<hash>` (a
/// random suffix on the name when taken) and invalidates the suffix, as
/// Swift's `quarantine_dir_renamer`.
fn quarantine_hash_dir(suffix_dir: &Path, hash_dir: &Path) -> io::Result<PathBuf> {
    let objects_dir = suffix_dir.parent().and_then(Path::parent).ok_or_else(|| io::Error::other("suffix dir without device"))?;
    let device = objects_dir.parent().ok_or_else(|| io::Error::other("suffix dir without device"))?;
    let policy_dir = objects_dir.file_name().ok_or_else(|| io::Error::other("suffix dir without device"))?;
    let name = hash_dir.file_name().ok_or_else(|| io::Error::other("hash dir without a name"))?;
    let qroot = device.join("quarantined").join(policy_dir);
    fs::create_dir_all(&qroot)?;
    invalidate_hash(suffix_dir)?;
    let mut to = qroot.join(name);
    if to.exists() {
        to = qroot.join(format!("{}-{:032x}", name.to_string_lossy(), rand::random::<u128>()));
    }
    fs::rename(hash_dir, &to)?;
    Ok(to)
}

/// The body of Swift's REPLICATE answer: a protocol-2 pickle of the dict
/// `{suffix: md5 hex}` (in sorted order; Swift's order is its dict's).
pub fn encode_replicate_response(hashes: &BTreeMap<String, String>) -> Vec<u8> {
    let items = hashes.iter().map(|(s, h)| (Obj::Str(s.clone()), Obj::Str(h.clone()))).collect();
    Pickler::dumps(&Obj::Dict(items), 2)
}

/// Parses a REPLICATE answer from Swift or from us: a pickled dict of
/// suffix to hash (`None` hashes are left out), or a pickled `None` (the
/// answer to a REPLICATE that named suffixes), which gives an empty map.
pub fn decode_replicate_response(body: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let text = |o: Obj| -> Result<Option<String>, String> {
        match o {
            Obj::Str(s) => Ok(Some(s)),
            Obj::Bytes(b) => String::from_utf8(b).map(Some).map_err(|_| "REPLICATE answer holds bytes that are not UTF-8".to_string()),
            Obj::None => Ok(None),
            other => Err(format!("unexpected {other:?} in REPLICATE answer")),
        }
    };
    match pickle::load(body, Globals::Plain)? {
        Obj::None => Ok(BTreeMap::new()),
        Obj::Dict(items) => {
            let mut out = BTreeMap::new();
            for (k, v) in items {
                let key = text(k)?.ok_or("None suffix in REPLICATE answer")?;
                if let Some(h) = text(v)? {
                    out.insert(key, h);
                }
            }
            Ok(out)
        }
        other => Err(format!("REPLICATE answer is not a dict: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_path(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/swift").join(name)
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(fixture_path(name)).unwrap()
    }

    fn fixture_json<T: serde::de::DeserializeOwned>(name: &str) -> T {
        serde_json::from_slice(&fixture(name)).unwrap()
    }

    /// Builds a tree from a listing (`dir/` lines are empty directories).
    fn build_tree(root: &Path, listing: &str) {
        for line in listing.lines().filter(|l| !l.is_empty()) {
            if let Some(dir) = line.strip_suffix('/') {
                fs::create_dir_all(root.join(dir)).unwrap();
            } else {
                let p = root.join(line);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                File::create(p).unwrap();
            }
        }
    }

    fn listing(root: &Path) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
            entries.sort();
            if entries.is_empty() && dir != root {
                out.push(format!("{}/", dir.strip_prefix(root).unwrap().display()));
            }
            for p in entries {
                if p.is_dir() {
                    walk(root, &p, out);
                } else if dir != root {
                    out.push(p.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out.sort();
        out
    }

    fn swift_tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("sda1/objects/9");
        fs::create_dir_all(&part).unwrap();
        build_tree(&part, &String::from_utf8(fixture("hash_tree.before.txt")).unwrap());
        (dir, part)
    }

    #[test]
    fn hashes_and_cleans_up_as_swift_does() {
        let (_dir, part) = swift_tree();
        let got = get_hashes(&part, &[], DEFAULT_RECLAIM_AGE).unwrap();
        let want: BTreeMap<String, String> = fixture_json("hash_tree.hashes.json");
        assert_eq!(got, want);
        let after: Vec<String> = String::from_utf8(fixture("hash_tree.after.txt")).unwrap().lines().map(String::from).collect();
        assert_eq!(listing(&part), after);
        // Swift can read what we wrote: the same dict it wrote itself.
        let ours = HashesFile::parse(&fs::read(part.join(HASH_FILE)).unwrap());
        let swifts = HashesFile::parse(&fixture("hash_tree.hashes.pkl"));
        assert!(ours.valid && swifts.valid);
        assert_eq!(ours.suffixes, swifts.suffixes);
        // Each suffix alone, after Swift's cleanup.
        let per_suffix: BTreeMap<String, Option<String>> = fixture_json("hash_tree.hash_suffix.json");
        for (suffix, want) in per_suffix {
            assert_eq!(hash_suffix(&part.join(&suffix), DEFAULT_RECLAIM_AGE).unwrap(), want, "{suffix}");
        }
    }

    #[test]
    fn hashes_pkl_round_trips_with_swift() {
        let swifts = HashesFile::parse(&fixture("hashes.with_none.pkl"));
        assert!(swifts.valid);
        assert!(swifts.updated > 1.7e9);
        let want: BTreeMap<String, serde_json::Value> = fixture_json("hashes.with_none.json");
        assert_eq!(swifts.suffixes.get("aaa"), Some(&None));
        assert_eq!(swifts.suffixes.get("bbb").cloned().flatten().as_deref(), want["bbb"].as_str());
        // Our bytes are Swift's bytes for the same dict and time.
        assert_eq!(swifts.to_pickle(), fixture("hashes.with_none.pkl"));
        // Unreadable caches are invalid, as in Swift's read_hashes.
        assert!(!HashesFile::parse(b"garbage").valid);
        let bad_key = Pickler::dumps(&Obj::Dict(vec![(Obj::Str("../x".into()), Obj::None)]), 2);
        assert!(!HashesFile::parse(&bad_key).valid);
    }

    #[test]
    fn invalidations_are_folded_in_and_only_changed_suffixes_rehashed() {
        let (_dir, part) = swift_tree();
        let first = get_hashes(&part, &[], DEFAULT_RECLAIM_AGE).unwrap();
        // A new file nobody told us about is not seen: the cache is trusted.
        let hd = part.join("aaa/00000000000000000000000000000aaa");
        File::create(hd.join("9000000009.00000.ts")).unwrap();
        assert_eq!(get_hashes(&part, &[], DEFAULT_RECLAIM_AGE).unwrap(), first);
        // Once invalidated (as every write does), it is.
        invalidate_hash(&part.join("aaa")).unwrap();
        assert_eq!(fs::read(part.join(HASH_INVALIDATIONS_FILE)).unwrap(), b"aaa\n");
        let second = get_hashes(&part, &[], DEFAULT_RECLAIM_AGE).unwrap();
        assert_ne!(second["aaa"], first["aaa"]);
        assert_eq!(fs::read(part.join(HASH_INVALIDATIONS_FILE)).unwrap(), b"");
        let mut md5 = Md5::new();
        md5.update(b"9000000009.00000.ts");
        assert_eq!(second["aaa"], format!("{:x}", md5.finalize()));
        // Named suffixes are recomputed too; a vanished one drops out.
        fs::remove_dir_all(part.join("bbb")).unwrap();
        let third = get_hashes(&part, &["bbb".into(), "zzz".into()], DEFAULT_RECLAIM_AGE).unwrap();
        assert!(!third.contains_key("bbb"));
        // No partition, no hashes, nothing created.
        let missing = part.parent().unwrap().join("10");
        assert!(get_hashes(&missing, &[], DEFAULT_RECLAIM_AGE).unwrap().is_empty());
        assert!(!missing.exists());
    }

    #[test]
    fn a_non_directory_hash_is_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("sda/objects-1/3");
        fs::create_dir_all(part.join("abc")).unwrap();
        fs::write(part.join("abc/00000000000000000000000000000abc"), b"junk").unwrap();
        build_tree(&part, "abc/11111111111111111111111111111abc/9000000000.00000.data\n");
        let h = get_hashes(&part, &[], DEFAULT_RECLAIM_AGE).unwrap();
        assert!(h.contains_key("abc"));
        assert!(dir.path().join("sda/quarantined/objects-1/00000000000000000000000000000abc").is_file());
    }

    #[test]
    fn replicate_bodies_match_swift() {
        let want: BTreeMap<String, String> = fixture_json("replicate.response.json");
        assert_eq!(decode_replicate_response(&fixture("replicate.response.pickle")).unwrap(), want);
        assert_eq!(encode_replicate_response(&want), fixture("replicate.response.pickle"));
        assert_eq!(fixture("replicate.suffixes.response.pickle"), REPLICATE_INVALIDATED_BODY);
        assert!(decode_replicate_response(REPLICATE_INVALIDATED_BODY).unwrap().is_empty());
        assert_eq!(encode_replicate_response(&BTreeMap::new()), b"\x80\x02}q\x00.");
        // None hashes (an older Swift's invalid suffixes) are dropped.
        let with_none = Pickler::dumps(&Obj::Dict(vec![(Obj::Str("abc".into()), Obj::None)]), 2);
        assert!(decode_replicate_response(&with_none).unwrap().is_empty());
        assert!(decode_replicate_response(b"\x80\x02]q\x00.").is_err());
        assert!(decode_replicate_response(b"").is_err());
    }
}
