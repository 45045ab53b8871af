//! Object metadata on disk: the serialisation codec and where the bytes live.
//!
//! # Format
//!
//! Every `.data`, `.ts` and `.meta` file carries a map of string keys to
//! string values (`name`, `X-Timestamp`, `Content-Type`, `ETag`,
//! `X-Object-Meta-*`, ...). We write it as Swift does (swift/obj/diskfile.py
//! `write_metadata`): a Python pickle, protocol 2, of a dict of `bytes` to
//! `bytes` ([`Codec::Pickle`]), byte for byte what Python 3 Swift writes for
//! the same dict in the same (sorted) key order. Swift's `read_metadata`
//! reads it, and we read what Swift wrote:
//!
//! * **Python 3 Swift** (the blob's first 32 bytes contain `_codecs\nencode`,
//!   Swift's own test): keys and values are `bytes`. `name` is the UTF-8 of
//!   the object's path. Every other key and value holds a *WSGI string*,
//!   Swift's in-memory form of a header (one character per byte of the
//!   header as it came off the wire), encoded as UTF-8; so a header value
//!   `café` (bytes `63 61 66 c3 a9`) is stored as `63 61 66 c3 83 c2 a9`.
//! * **Python 2 Swift**: keys and values are `str` (raw bytes, usually
//!   UTF-8) or, from old versions, `unicode`. Swift decodes non-`name` bytes
//!   as Latin-1, which gives the same WSGI string.
//!
//! Our [`Metadata`] holds the text the client sent: the header bytes
//! decoded as UTF-8 (what `constraints::request_metadata` does). So a WSGI
//! string read from disk becomes its bytes decoded as UTF-8, exactly what
//! `swift-object-info` prints; that is lossless for every header that is
//! UTF-8. Bytes that are not UTF-8 keep the Latin-1 reading (one
//! character per byte), as `request_metadata` does for such headers. Where
//! Swift expects UTF-8 itself (`name`, and the UTF-8 layer of Python 3
//! blobs) but finds other bytes, which only a broken writer produces, they
//! become U+FFFD. Integers (older Swift tests wrote `Content-Length` as an
//! int) read as their decimal text, `None` as the empty string.
//!
//! We keep reading the JSON objects that we wrote before we wrote pickles
//! ([`Codec::Json`], e.g. `{"Content-Length":"5","name":"/a/c/o"}`);
//! [`Codec::detect`] tells them apart by the first byte (`{` JSON, `0x80`
//! pickle). A blob of neither kind is [`MetadataError::UnknownFormat`]: the
//! object cannot be served, but the file is not quarantined, because an
//! unknown format is not proof of corruption. A checksum mismatch, or a
//! blob of a known format that does not decode, is [`MetadataError::Corrupt`].
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
//! Swift answers 507 there (`DiskFileNoSpace`). We do not: when setting the
//! xattrs fails with `ENOSPC`, `E2BIG` or `ERANGE` the partial xattrs are
//! removed and the same blob goes to a **sidecar file** instead:
//! `<file>.meta-blob` (e.g. `1700000000.00000.data.meta-blob`) next to the
//! temp file, holding one line with the hex MD5 of the blob, then the blob.
//! Swift does not know sidecars: a Swift object server on the same disk
//! would not find such an object's metadata. The sidecar is fsynced and
//! renamed into the hash directory *before* the file it describes, so
//! whenever the `.data`/`.ts`/`.meta` is visible its metadata is readable.
//! Readers look at the xattrs first and at the sidecar when there is no
//! `user.swift.metadata` xattr. Sidecars are not object state: the
//! directory scan in `diskfile` ignores them for replication hashes and
//! deletes them together with (or after) their file.

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
    /// The stored checksum does not match, or a blob of a known format does
    /// not decode: the file must be quarantined.
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    /// The blob is in no format we know. Not proof of corruption (another
    /// writer, a newer format): the object is unreadable, the file stays.
    #[error("unknown metadata format: {0}")]
    UnknownFormat(String),
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
    /// A JSON object of string values: what we wrote before pickles. Read,
    /// never written.
    Json,
    /// Swift's protocol-2 pickle (see the module docs).
    Pickle,
}

impl Codec {
    /// The codec that wrote `blob`, judged by its first byte.
    pub fn detect(blob: &[u8]) -> Option<Codec> {
        match blob.first() {
            Some(b'{') => Some(Codec::Json),
            Some(0x80) => Some(Codec::Pickle),
            _ => None,
        }
    }

    /// Serialises `meta`.
    pub fn encode(self, meta: &Metadata) -> Vec<u8> {
        match self {
            Codec::Json => serde_json::to_vec(meta).unwrap_or_else(|_| b"{}".to_vec()),
            Codec::Pickle => encode_pickle(meta),
        }
    }

    /// Parses a blob this codec wrote.
    pub fn decode(self, blob: &[u8]) -> Result<Metadata, MetadataError> {
        match self {
            Codec::Json => serde_json::from_slice(blob).map_err(|e| MetadataError::Corrupt(e.to_string())),
            Codec::Pickle => decode_pickle(blob),
        }
    }
}

/// The key whose value Swift keeps as a native string, not a WSGI string.
const NAME_KEY: &str = "name";

/// Swift's in-memory (WSGI) form of a header: one char per UTF-8 byte.
fn to_wsgi(text: &str) -> String {
    text.bytes().map(|b| b as char).collect()
}

/// The text a WSGI string stands for: its bytes decoded as UTF-8, else the
/// string as it is (Latin-1 reading, or already text).
fn from_wsgi(wsgi: String) -> String {
    if !wsgi.chars().all(|c| (c as u32) < 256) {
        return wsgi;
    }
    String::from_utf8(wsgi.chars().map(|c| c as u8).collect()).unwrap_or(wsgi)
}

fn encode_pickle(meta: &Metadata) -> Vec<u8> {
    use crate::pickle::{Obj, Pickler};
    let mut items: Vec<(Obj, Obj)> = meta
        .iter()
        .map(|(k, v)| {
            let value = if k == NAME_KEY { v.as_bytes().to_vec() } else { to_wsgi(v).into_bytes() };
            (Obj::Bytes(to_wsgi(k).into_bytes()), Obj::Bytes(value))
        })
        .collect();
    // Swift recognises Python 3 blobs by `_codecs\nencode` in their first
    // 32 bytes: the first key must be a non-empty bytes (an empty one is
    // written as `bytes()`), so an empty key, if any, goes last.
    items.sort_by_key(|(k, _)| matches!(k, Obj::Bytes(b) if b.is_empty()));
    Pickler::dumps(&Obj::Dict(items), 2)
}

fn decode_pickle(blob: &[u8]) -> Result<Metadata, MetadataError> {
    use crate::pickle::{self, Globals, Obj};
    let written_by_py3 = blob[..blob.len().min(32)].windows(14).any(|w| w == b"_codecs\nencode");
    let items = match pickle::load(blob, Globals::Plain).map_err(MetadataError::Corrupt)? {
        Obj::Dict(items) => items,
        other => return Err(MetadataError::Corrupt(format!("metadata is not a dict: {other:?}"))),
    };
    // As Swift's `_decode_metadata`: Python 2's byte strings other than the
    // name are Latin-1, everything else UTF-8.
    let swift_str = |o: Obj, is_name: bool| -> Result<String, MetadataError> {
        Ok(match o {
            Obj::Bytes(b) if !written_by_py3 && !is_name => b.iter().map(|&c| c as char).collect(),
            Obj::Bytes(b) => String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            Obj::Str(s) => s,
            // Python 3 pickles b'' as `bytes()`, which decodes as None.
            Obj::None => String::new(),
            Obj::Int(i) => i.to_string(),
            Obj::Bool(b) => if b { "True" } else { "False" }.to_string(),
            Obj::Float(f) => format!("{f:?}"),
            other => return Err(MetadataError::Corrupt(format!("metadata item is not a string: {other:?}"))),
        })
    };
    let mut meta = Metadata::new();
    for (k, v) in items {
        let is_name = matches!(&k, Obj::Bytes(b) if b == NAME_KEY.as_bytes());
        let key = from_wsgi(swift_str(k, false)?);
        let value = swift_str(v, is_name)?;
        meta.insert(key, if is_name { value } else { from_wsgi(value) });
    }
    Ok(meta)
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
    let blob = Codec::Pickle.encode(meta);
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
    let codec = Codec::detect(&blob).ok_or_else(|| {
        let head: String = blob.iter().take(8).map(|b| format!("{b:02x}")).collect();
        MetadataError::UnknownFormat(format!("{} bytes starting {head}", blob.len()))
    })?;
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

    fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/swift").join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn fixture_json(name: &str) -> Metadata {
        serde_json::from_slice(&fixture(name)).unwrap()
    }

    /// Blobs written by Swift's own `write_metadata` (Python 3: through the
    /// object server's PUT, POST and DELETE, a dict in sorted order, one
    /// spanning two xattrs; Python 2: captured from Swift 2.13 and 2.23).
    const SWIFT_BLOBS: [&str; 7] = ["data", "meta", "ts", "sorted", "big", "py2_swift_2.13", "py2_swift_2.23"];

    #[test]
    fn reads_what_swift_wrote() {
        for name in SWIFT_BLOBS {
            let blob = fixture(&format!("{name}.metadata.pickle"));
            assert_eq!(Codec::detect(&blob), Some(Codec::Pickle), "{name}");
            let got = Codec::Pickle.decode(&blob).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, fixture_json(&format!("{name}.metadata.json")), "{name}");
        }
        // The non-ASCII values came through as the client's text.
        let data = fixture_json("data.metadata.json");
        assert_eq!(data["X-Object-Meta-Color"], "na\u{ef}ve \u{2603} caf\u{e9}");
        assert_eq!(fixture_json("py2_swift_2.13.metadata.json")["name"], "/AUTH_test/\u{2603}/\u{2603}");
    }

    #[test]
    fn writes_what_swift_writes() {
        // Byte for byte what Python 3 Swift writes for the same dict in the
        // same order (Swift keeps insertion order, we write sorted keys).
        for name in ["sorted", "big"] {
            let meta = fixture_json(&format!("{name}.metadata.json"));
            assert_eq!(Codec::Pickle.encode(&meta), fixture(&format!("{name}.metadata.pickle")), "{name}");
        }
        // Other dicts at least read back the same.
        for name in SWIFT_BLOBS {
            let meta = fixture_json(&format!("{name}.metadata.json"));
            assert_eq!(Codec::Pickle.decode(&Codec::Pickle.encode(&meta)).unwrap(), meta, "{name}");
        }
    }

    #[test]
    fn xattrs_hold_the_pickle_in_65536_byte_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.data");
        let f = File::create(&p).unwrap();
        let meta = fixture_json("big.metadata.json");
        let side = write(&f, &p, &meta).unwrap();
        let blob = fixture("big.metadata.pickle");
        if side.is_none() {
            // The filesystem took the xattrs: Swift's layout, Swift's bytes.
            let first = f.get_xattr(XATTR_KEY).unwrap().unwrap();
            let second = f.get_xattr(format!("{XATTR_KEY}1")).unwrap().unwrap();
            assert_eq!(first.len(), XATTR_PIECE_SIZE);
            assert_eq!([first, second].concat(), blob);
            assert_eq!(f.get_xattr(XATTR_CHECKSUM_KEY).unwrap().unwrap(), md5_hex(&blob).into_bytes());
        } else {
            // ext4: the sidecar holds the same pickle.
            let all = std::fs::read(sidecar_path(&p)).unwrap();
            assert_eq!(&all[33..], &blob[..]);
        }
        assert_eq!(read(&p).unwrap(), meta);
    }

    #[test]
    fn old_json_blobs_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.data");
        let f = File::create(&p).unwrap();
        let blob = br#"{"Content-Length":"5","name":"/a/c/o"}"#;
        f.set_xattr(XATTR_KEY, blob).unwrap();
        f.set_xattr(XATTR_CHECKSUM_KEY, md5_hex(blob).as_bytes()).unwrap();
        assert_eq!(read(&p).unwrap()["Content-Length"], "5");
    }

    #[test]
    fn unknown_formats_are_not_corruption_but_bad_pickles_are() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.data");
        let f = File::create(&p).unwrap();
        for blob in [&b"\x00\x01 something else"[..], b"<xml/>"] {
            f.set_xattr(XATTR_KEY, blob).unwrap();
            f.set_xattr(XATTR_CHECKSUM_KEY, md5_hex(blob).as_bytes()).unwrap();
            assert!(matches!(read(&p), Err(MetadataError::UnknownFormat(_))));
        }
        let mut broken = fixture("sorted.metadata.pickle");
        broken.truncate(broken.len() / 2);
        f.set_xattr(XATTR_KEY, &broken).unwrap();
        f.set_xattr(XATTR_CHECKSUM_KEY, md5_hex(&broken).as_bytes()).unwrap();
        assert!(matches!(read(&p), Err(MetadataError::Corrupt(_))));
        // A pickle of something other than a dict of strings.
        let list = crate::pickle::Pickler::dumps(&crate::pickle::Obj::List(vec![]), 2);
        assert!(matches!(Codec::Pickle.decode(&list), Err(MetadataError::Corrupt(_))));
    }

    #[test]
    fn latin1_headers_keep_their_reading() {
        // A value that is not UTF-8 on the wire (request_metadata keeps it
        // as Latin-1 text) survives a write and a read.
        let mut m = sample(0);
        m.insert("X-Object-Meta-L1".into(), "caf\u{e9}".into());
        assert_eq!(Codec::Pickle.decode(&Codec::Pickle.encode(&m)).unwrap(), m);
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
