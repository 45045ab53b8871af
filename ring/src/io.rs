//! The compressed container of ring files (Swift's `swift/common/ring/io.py`).
//!
//! A ring file is one gzip member. The 6-byte magic is stored uncompressed
//! (so libmagic can recognise it) and every section ends on a zlib full
//! flush, so that a v2 reader may seek to any section and start a fresh raw
//! inflate there. We write the same bytes Swift writes: Python's gzip header
//! with the fixed mtime and the file name, the level-0 magic block, level 9
//! for the rest.

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use sha2::Digest;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;

/// The gzip MTIME Swift writes into every ring, so that the same ring data
/// always gives the same bytes.
pub const RING_GZIP_MTIME: u32 = 1_300_507_380;

/// Where one v2 section lives, as recorded in the index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    pub compressed_start: u64,
    pub uncompressed_start: u64,
    pub compressed_end: u64,
    pub uncompressed_end: u64,
    pub checksum_method: String,
    pub checksum: String,
}

/// Writes a ring file's compressed stream into memory; `finish` returns the
/// file's bytes.
pub struct RingWriter {
    out: Vec<u8>,
    compress: Compress,
    crc: Crc,
    uncompressed_len: u64,
    flushed: bool,
    section: Option<(String, u64, u64, sha2::Sha256)>,
    index: BTreeMap<String, IndexEntry>,
}

impl RingWriter {
    /// Starts a gzip member whose FNAME is `file_name` with `.gz` stripped.
    pub fn new(file_name: &str) -> RingWriter {
        let mut out = Vec::with_capacity(64 * 1024);
        // ID1 ID2 CM=deflate FLG=FNAME, MTIME (LE), XFL=2 (max compression), OS=255.
        out.extend_from_slice(&[0x1f, 0x8b, 0x08, 0x08]);
        out.extend_from_slice(&RING_GZIP_MTIME.to_le_bytes());
        out.extend_from_slice(&[0x02, 0xff]);
        let fname = file_name.strip_suffix(".gz").unwrap_or(file_name);
        // Python encodes FNAME as latin-1; anything else it cannot name is dropped.
        out.extend(fname.chars().filter_map(|c| u8::try_from(c as u32).ok()).filter(|b| *b != 0));
        out.push(0);
        RingWriter {
            out,
            compress: Compress::new(Compression::new(9), false),
            crc: Crc::new(),
            uncompressed_len: 0,
            flushed: true,
            section: None,
            index: BTreeMap::new(),
        }
    }

    fn deflate(&mut self, mut input: &[u8], flush: FlushCompress) {
        loop {
            if self.out.capacity() - self.out.len() < 16 * 1024 {
                self.out.reserve(64 * 1024);
            }
            let before_in = self.compress.total_in();
            let status = self.compress.compress_vec(input, &mut self.out, flush).expect("deflate on a well-formed stream cannot fail");
            let consumed = (self.compress.total_in() - before_in) as usize;
            input = &input[consumed..];
            let room_left = self.out.capacity() > self.out.len();
            match flush {
                FlushCompress::Finish if status == Status::StreamEnd => return,
                FlushCompress::Finish => continue,
                _ if input.is_empty() && room_left => return,
                _ => continue,
            }
        }
    }

    /// Appends uncompressed bytes.
    pub fn write(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.flushed = false;
        self.crc.update(data);
        self.uncompressed_len += data.len() as u64;
        if let Some((_, _, _, sum)) = &mut self.section {
            sum.update(data);
        }
        self.deflate(data, FlushCompress::None);
    }

    /// A zlib full flush, so a reader can start a fresh inflate here.
    pub fn flush(&mut self) {
        if !self.flushed {
            self.deflate(&[], FlushCompress::Full);
            self.flushed = true;
        }
    }

    /// Offset in the decompressed stream (flushes first).
    pub fn tell(&mut self) -> u64 {
        self.flush();
        self.uncompressed_len
    }

    /// Offset in the file (flushes first, so it is a valid seek target).
    pub fn compressed_tell(&mut self) -> u64 {
        self.flush();
        self.out.len() as u64
    }

    fn set_level(&mut self, level: u32) {
        // Two deflate streams that each end on a full flush concatenate into
        // one valid stream, so a new compressor can take over here.
        self.flush();
        self.compress = Compress::new(Compression::new(level), false);
    }

    /// Writes `R1NG` and the format version, stored uncompressed.
    pub fn write_magic(&mut self, version: u16) {
        self.set_level(0);
        let mut magic = *b"R1NG\0\0";
        magic[4..].copy_from_slice(&version.to_be_bytes());
        self.write(&magic);
        self.set_level(9);
    }

    /// A length-prefixed (u64 big-endian) blob.
    pub fn write_blob(&mut self, data: &[u8]) {
        self.write(&(data.len() as u64).to_be_bytes());
        self.write(data);
    }

    /// Opens a named section; `end_section` closes it and records it in the
    /// index written by `finish`.
    pub fn begin_section(&mut self, name: &str) {
        assert!(self.section.is_none(), "ring sections do not nest");
        let cs = self.compressed_tell();
        let us = self.tell();
        self.section = Some((name.to_string(), cs, us, sha2::Sha256::new()));
    }

    /// Closes the open section.
    pub fn end_section(&mut self) {
        self.flush();
        let (name, cs, us, sum) = self.section.take().expect("end_section without begin_section");
        let entry = IndexEntry {
            compressed_start: cs,
            uncompressed_start: us,
            compressed_end: self.out.len() as u64,
            uncompressed_end: self.uncompressed_len,
            checksum_method: "sha256".into(),
            checksum: hex(&sum.finalize()),
        };
        self.index.insert(name, entry);
    }

    /// Writes the index (when sections were used) and the gzip trailer.
    pub fn finish(mut self) -> Vec<u8> {
        if !self.index.is_empty() {
            let us = self.tell();
            let cs = self.compressed_tell();
            let mut map = serde_json::Map::new();
            for (name, e) in &self.index {
                map.insert(
                    name.clone(),
                    serde_json::json!([
                        e.compressed_start,
                        e.uncompressed_start,
                        e.compressed_end,
                        e.uncompressed_end,
                        e.checksum_method,
                        e.checksum
                    ]),
                );
            }
            let text = crate::pyjson::to_string(&serde_json::Value::Object(map));
            self.write_blob(text.as_bytes());
            // Stored blocks from here on, so each offset + flush is exactly 18
            // bytes and a reader finds the index offset at file_size - 31.
            self.set_level(0);
            self.write(&us.to_be_bytes());
            self.flush();
            self.write(&cs.to_be_bytes());
            self.flush();
        }
        self.deflate(&[], FlushCompress::Finish);
        let crc = self.crc.sum();
        self.out.extend_from_slice(&crc.to_le_bytes());
        self.out.extend_from_slice(&(self.uncompressed_len as u32).to_le_bytes());
        self.out
    }
}

/// Lowercase hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Gunzips a whole ring file. A gzip error (truncated, corrupt, not gzip)
/// is reported as an `io::Error` of kind `InvalidData`.
pub fn gunzip(compressed: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(compressed.len() * 4);
    flate2::read::GzDecoder::new(compressed).read_to_end(&mut out)?;
    Ok(out)
}

/// Writes `data` to `path` atomically: a temp file in the same directory,
/// fsync, mode 0644, rename, then fsync of the directory so the rename
/// itself survives a crash.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new().prefix(&prefix).tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_block_is_stored_and_stream_round_trips() {
        let mut w = RingWriter::new("object.ring.gz");
        w.write_magic(1);
        w.write(b"hello hello hello hello");
        let bytes = w.finish();
        assert_eq!(&bytes[..10], &[0x1f, 0x8b, 8, 8, 0xf4, 0x2a, 0x84, 0x4d, 2, 0xff]);
        assert_eq!(&bytes[10..22], b"object.ring\0");
        assert_eq!(&bytes[22..33], b"\x00\x06\x00\xf9\xffR1NG\x00\x01");
        assert_eq!(gunzip(&bytes).unwrap(), b"R1NG\x00\x01hello hello hello hello");
    }

    #[test]
    fn v2_tail_is_31_bytes_of_offsets() {
        let mut w = RingWriter::new("x.ring.gz");
        w.write_magic(2);
        w.begin_section("swift/ring/metadata");
        w.write_blob(b"{}");
        w.end_section();
        let bytes = w.finish();
        let tail = &bytes[bytes.len() - 31..];
        assert_eq!(&tail[..5], &[0, 8, 0, 0xf7, 0xff]);
        assert_eq!(&tail[13..23], &[0, 0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff]);
    }
}
