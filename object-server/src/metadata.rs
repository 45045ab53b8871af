//! Object metadata on disk: the serialisation codec and where the bytes live.
//!
//! # Format
//!
//! Every `.data`, `.ts` and `.meta` file carries a map of string keys to
//! string values (`name`, `X-Timestamp`, `Content-Type`, `ETag`,
//! `X-Object-Meta-*`, ...). The map is serialised by a [`Codec`]; today the
//! only codec is [`Codec::Json`]: one JSON object whose values are all
//! strings, keys in sorted order, e.g.
//! `{"Content-Length":"5","ETag":"...","X-Timestamp":"1700000000.00000","name":"/a/c/o"}`.
//! Swift writes a Python pickle (protocol 2) instead; a `Codec::Pickle`
//! variant can be added beside `Json` without touching the callers, and
//! [`Codec::detect`] already tells the two apart by the first byte
//! (`{` for JSON, `0x80` for pickle).
//!
//! # Where the bytes live
//!
//! As in Swift, the blob is stored in extended attributes of the file:
//! `user.swift.metadata`, then `user.swift.metadata1`, `user.swift.metadata2`,
//! ... each holding at most 65536 bytes, plus `user.swift.metadata_checksum`,
//! the lowercase hex MD5 of the whole blob, which is verified on every read.
//!
//! ext4 keeps only about 4 KiB of xattrs per inode, so an object with the
//! metadata Swift's constraints allow (90 items, 4096 bytes) does not fit.
//! When setting the xattrs fails with `ENOSPC`, `E2BIG` or `ERANGE` the
//! partial xattrs are removed and the blob goes to a **sidecar file** instead:
//! `<file>.meta-blob` (e.g. `1700000000.00000.data.meta-blob`) next to the
//! temp file, holding one line with the hex MD5 of the blob, then the blob.
//! The sidecar is fsynced and renamed into the hash directory *before* the
//! file it describes, so whenever the `.data`/`.ts`/`.meta` is visible its
//! metadata is readable. Readers look at the xattrs first and at the sidecar
//! when there is no `user.swift.metadata` xattr. Sidecars are not object
//! state: the directory scan in `diskfile` ignores them for replication
//! hashes and deletes them together with (or after) their file.

use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use xattr::FileExt;

/// An object's metadata: header-like names to values.
pub type Metadata = BTreeMap<String, String>;

/// First xattr key; continuation pieces append 1, 2, ...
pub const XATTR_KEY: &str = "user.swift.metadata";
/// The xattr holding the hex MD5 of the whole blob.
pub const XATTR_CHECKSUM_KEY: &str = "user.swift.metadata_checksum";
/// Largest piece stored in one xattr, in bytes (Swift's `xattr_size`).
pub const XATTR_PIECE_SIZE: usize = 65536;
/// Suffix of the sidecar file used when the xattrs do not fit.
pub const SIDECAR_SUFFIX: &str = ".meta-blob";

/// Why metadata could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The file has no metadata at all.
    #[error("no metadata")]
    Missing,
    /// The stored checksum does not match, or the blob does not decode: the
    /// file must be quarantined.
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    /// The disk is full (507).
    #[error("no space left for metadata")]
    NoSpace,
    /// The filesystem does not support user xattrs (507 in Swift).
    #[error("extended attributes not supported")]
    XattrNotSupported,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// The serialisation of a [`Metadata`] map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// A JSON object of string values (see the module docs).
    Json,
}

impl Codec {
    /// The codec that wrote `blob`, judged by its first byte.
    pub fn detect(blob: &[u8]) -> Option<Codec> {
        match blob.first() {
            Some(b'{') => Some(Codec::Json),
            _ => None,
        }
    }

    /// Serialises `meta`.
    pub fn encode(self, meta: &Metadata) -> Vec<u8> {
        match self {
            Codec::Json => serde_json::to_vec(meta).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }

    /// Parses a blob this codec wrote.
    pub fn decode(self, blob: &[u8]) -> Result<Metadata, MetadataError> {
        match self {
            Codec::Json => serde_json::from_slice(blob).map_err(|e| MetadataError::Corrupt(e.to_string())),
        }
    }
}

/// Lowercase hex MD5 of `data`.
pub fn md5_hex(data: &[u8]) -> String {
    let digest = Md5::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sidecar path of `file`.
pub fn sidecar_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(SIDECAR_SUFFIX);
    PathBuf::from(s)
}

fn piece_key(i: usize) -> String {
    if i == 0 {
        XATTR_KEY.to_string()
    } else {
        format!("{XATTR_KEY}{i}")
    }
}

fn is_too_big(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::E2BIG) | Some(libc::ERANGE) | Some(libc::EDQUOT))
}

fn is_unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP))
}

/// Writes `meta` for the open file `file` whose path is `path`: into its
/// xattrs, or, when they do not fit, into the sidecar `<path>.meta-blob`
/// (written and fsynced here; the caller renames it along with the file).
/// Returns the sidecar's path when one was written.
pub fn write(file: &File, path: &Path, meta: &Metadata) -> Result<Option<PathBuf>, MetadataError> {
    let blob = Codec::Json.encode(meta);
    let checksum = md5_hex(&blob);
    let mut written = 0;
    let mut failure = None;
    for (i, piece) in blob.chunks(XATTR_PIECE_SIZE).enumerate() {
        if let Err(e) = file.set_xattr(piece_key(i), piece) {
            failure = Some(e);
            break;
        }
        written = i + 1;
    }
    if failure.is_none() {
        if let Err(e) = file.set_xattr(XATTR_CHECKSUM_KEY, checksum.as_bytes()) {
            failure = Some(e);
        }
    }
    let Some(err) = failure else { return Ok(None) };
    if is_unsupported(&err) {
        return Err(MetadataError::XattrNotSupported);
    }
    if !is_too_big(&err) {
        return Err(err.into());
    }
    // The inode's xattr space is too small (ext4: ~4 KiB). Drop what was
    // written so a reader cannot mistake a partial blob for the metadata.
    for i in 0..written {
        let _ = file.remove_xattr(piece_key(i));
    }
    let _ = file.remove_xattr(XATTR_CHECKSUM_KEY);
    let side = sidecar_path(path);
    let result = (|| -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&side)?;
        f.write_all(checksum.as_bytes())?;
        f.write_all(b"\n")?;
        f.write_all(&blob)?;
        // Durable before the data file can become visible with a rename.
        f.sync_all()
    })();
    match result {
        Ok(()) => Ok(Some(side)),
        Err(e) => {
            let _ = std::fs::remove_file(&side);
            if is_too_big(&e) {
                Err(MetadataError::NoSpace)
            } else {
                Err(e.into())
            }
        }
    }
}

/// Reads and verifies the metadata of `path` (xattrs, else sidecar).
pub fn read(path: &Path) -> Result<Metadata, MetadataError> {
    let file = File::open(path)?;
    read_file(&file, path)
}

/// Like [`read`] for an already open file.
pub fn read_file(file: &File, path: &Path) -> Result<Metadata, MetadataError> {
    let mut blob = Vec::new();
    let mut i = 0;
    loop {
        match file.get_xattr(piece_key(i)) {
            Ok(Some(piece)) => blob.extend_from_slice(&piece),
            Ok(None) => break,
            Err(e) if is_unsupported(&e) => return Err(MetadataError::XattrNotSupported),
            Err(e) => return Err(e.into()),
        }
        i += 1;
    }
    let checksum = if i == 0 {
        match read_sidecar(path)? {
            Some((sum, b)) => {
                blob = b;
                Some(sum)
            }
            None => return Err(MetadataError::Missing),
        }
    } else {
        file.get_xattr(XATTR_CHECKSUM_KEY)?.map(|v| String::from_utf8_lossy(&v).into_owned())
    };
    // Swift accepts blobs written before checksums existed.
    if let Some(sum) = checksum {
        if sum != md5_hex(&blob) {
            return Err(MetadataError::Corrupt("metadata checksum mismatch".into()));
        }
    }
    let codec = Codec::detect(&blob).ok_or_else(|| MetadataError::Corrupt("unknown metadata format".into()))?;
    codec.decode(&blob)
}

fn read_sidecar(path: &Path) -> Result<Option<(String, Vec<u8>)>, MetadataError> {
    let mut f = match File::open(sidecar_path(path)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut all = Vec::new();
    f.read_to_end(&mut all)?;
    let nl = all.iter().position(|&b| b == b'\n').ok_or_else(|| MetadataError::Corrupt("sidecar without checksum".into()))?;
    let sum = String::from_utf8_lossy(&all[..nl]).into_owned();
    Ok(Some((sum, all[nl + 1..].to_vec())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Metadata {
        let mut m = Metadata::new();
        m.insert("name".into(), "/a/c/o".into());
        for i in 0..n {
            m.insert(format!("X-Object-Meta-K{i:03}"), "v".repeat(40));
        }
        m
    }

    #[test]
    fn small_metadata_round_trips_through_xattrs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.data");
        let f = File::create(&p).unwrap();
        let m = sample(3);
        assert!(write(&f, &p, &m).unwrap().is_none());
        assert_eq!(read(&p).unwrap(), m);
        assert!(f.get_xattr(XATTR_CHECKSUM_KEY).unwrap().is_some());
    }

    #[test]
    fn big_metadata_falls_back_to_a_sidecar_or_xattrs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.data");
        let f = File::create(&p).unwrap();
        let m = sample(90);
        let side = write(&f, &p, &m).unwrap();
        assert_eq!(read(&p).unwrap(), m);
        // ext4 cannot hold this much in xattrs: the sidecar must be used.
        let c = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: statfs fills the zeroed struct; the path is NUL-terminated.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statfs(c.as_ptr(), &mut st) }, 0);
        if st.f_type == 0xEF53 {
            assert_eq!(side, Some(sidecar_path(&p)));
        }
    }

    #[test]
    fn checksum_mismatch_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.data");
        let f = File::create(&p).unwrap();
        write(&f, &p, &sample(1)).unwrap();
        f.set_xattr(XATTR_CHECKSUM_KEY, b"00000000000000000000000000000000").unwrap();
        assert!(matches!(read(&p), Err(MetadataError::Corrupt(_))));
    }
}
