//! Ring data and its file formats: reading `.ring.gz` v1 and v2, writing
//! either (reference §1.5, Swift's `RingData`).

use crate::device::{Device, DeviceError};
use crate::io::{gunzip, write_atomic, RingWriter};
use crate::pyjson;
use serde_json::{json, Value};
use std::path::Path;

/// The dev id the builder uses for "not assigned"; it never appears in a
/// valid ring.
pub const NONE_DEV: u32 = u32::MAX;

/// Why a ring file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: not a valid gzip file ({source})")]
    Gzip { path: String, source: std::io::Error },
    #[error("{path}: bad ring magic {magic:?} (not a Swift ring file)")]
    BadMagic { path: String, magic: String },
    #[error("{path}: unsupported ring format version {version}")]
    UnsupportedVersion { path: String, version: u16 },
    #[error("{path}: ring file is truncated ({what})")]
    Truncated { path: String, what: &'static str },
    #[error("{path}: {what}")]
    Invalid { path: String, what: String },
}

/// What a ring file holds: the devices and the replica-to-partition-to-device
/// table.
#[derive(Debug, Clone, PartialEq)]
pub struct RingData {
    /// Devices by id; removed devices leave `None` holes.
    pub devs: Vec<Option<Device>>,
    /// `replica2part2dev[r][p]`: the device of replica `r` of partition `p`.
    /// Every row has `2**part_power` entries except possibly the last
    /// (fractional replica counts).
    pub replica2part2dev: Vec<Vec<u32>>,
    pub part_shift: u32,
    pub next_part_power: Option<u32>,
    /// The builder's build-version counter.
    pub version: Option<u64>,
    /// 2 or 4: the width of dev ids in the table.
    pub dev_id_bytes: u8,
    /// The format version the data was read from (1 or 2), if it was read.
    pub format_version: Option<u16>,
}

impl RingData {
    pub fn part_power(&self) -> u32 {
        32 - self.part_shift
    }

    pub fn partition_count(&self) -> usize {
        1usize << self.part_power()
    }

    /// Full and fractional replicas: `(rows - 1) + len(last) / len(first)`.
    pub fn replica_count(&self) -> f64 {
        match (self.replica2part2dev.first(), self.replica2part2dev.last()) {
            (Some(first), Some(last)) if !first.is_empty() => {
                (self.replica2part2dev.len() - 1) as f64 + last.len() as f64 / first.len() as f64
            }
            _ => 0.0,
        }
    }

    /// Reads a ring file of format v1 or v2.
    pub fn load(path: &Path) -> Result<RingData, RingError> {
        let p = path.display().to_string();
        let compressed = std::fs::read(path).map_err(|source| RingError::Io { path: p.clone(), source })?;
        Self::from_file_bytes(&compressed, &p)
    }

    /// Parses the bytes of a ring file; `path` only names it in errors.
    pub fn from_file_bytes(compressed: &[u8], path: &str) -> Result<RingData, RingError> {
        let data = gunzip(compressed).map_err(|source| RingError::Gzip { path: path.to_string(), source })?;
        let mut r = Cursor { data: &data, pos: 0, path };
        let magic = r.take(6, "magic")?;
        if &magic[..4] != b"R1NG" {
            return Err(RingError::BadMagic { path: path.to_string(), magic: String::from_utf8_lossy(&magic[..4]).into_owned() });
        }
        let version = u16::from_be_bytes([magic[4], magic[5]]);
        let mut ring = match version {
            1 => Self::parse_v1(&mut r)?,
            2 => Self::parse_v2(&data, path)?,
            v => return Err(RingError::UnsupportedVersion { path: path.to_string(), version: v }),
        };
        ring.format_version = Some(version);
        ring.check(path)?;
        Ok(ring)
    }

    fn parse_v1(r: &mut Cursor) -> Result<RingData, RingError> {
        let len = u32::from_be_bytes(r.take(4, "header length")?.try_into().unwrap()) as usize;
        let header: Value = r.json(len, "header")?;
        let part_shift = r.get_u32(&header, "part_shift")?;
        let replica_count = r.get_u32(&header, "replica_count")? as usize;
        let big_endian = match header.get("byteorder").and_then(Value::as_str) {
            Some("big") => true,
            Some("little") | None => false,
            Some(other) => return Err(r.invalid(format!("unknown byteorder {other:?}"))),
        };
        let parts = partitions(part_shift).ok_or_else(|| r.invalid(format!("bad part_shift {part_shift}")))?;
        let mut rows = Vec::with_capacity(replica_count);
        for _ in 0..replica_count {
            // The last row may be short (fractional replicas): it simply ends
            // at the end of the file.
            let n = (2 * parts).min(r.data.len() - r.pos);
            let bytes = r.take(n, "replica table")?;
            if bytes.len() % 2 != 0 {
                return Err(r.truncated("replica table"));
            }
            rows.push(
                bytes
                    .chunks_exact(2)
                    .map(|c| {
                        let v = if big_endian { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_le_bytes([c[0], c[1]]) };
                        v as u32
                    })
                    .collect(),
            );
        }
        Ok(RingData {
            devs: parse_devs(&header["devs"], r.path)?,
            replica2part2dev: rows,
            part_shift,
            next_part_power: header.get("next_part_power").and_then(Value::as_u64).map(|v| v as u32),
            version: header.get("version").and_then(Value::as_u64),
            dev_id_bytes: 2,
            format_version: None,
        })
    }

    fn parse_v2(data: &[u8], path: &str) -> Result<RingData, RingError> {
        // The last 16 decompressed bytes are the uncompressed and compressed
        // offsets of the index. We read the whole stream rather than seeking
        // in the compressed file, which also survives an operator re-gzipping
        // the file.
        let mut r = Cursor { data, pos: 0, path };
        if data.len() < 6 + 16 {
            return Err(r.truncated("v2 trailer"));
        }
        let index_at = u64::from_be_bytes(data[data.len() - 16..data.len() - 8].try_into().unwrap()) as usize;
        if index_at < 6 || index_at > data.len() - 16 {
            return Err(r.invalid(format!("index offset {index_at} is outside the file")));
        }
        r.pos = index_at;
        let len = r.u64("index length")? as usize;
        let index: Value = r.json(len, "index")?;
        let section = |name: &str| -> Result<&[u8], RingError> {
            let mut r = Cursor { data, pos: 0, path };
            let entry = index.get(name).and_then(Value::as_array).ok_or_else(|| r.invalid(format!("index has no section {name}")))?;
            let start = entry.get(1).and_then(Value::as_u64).ok_or_else(|| r.invalid(format!("bad index entry for {name}")))?;
            r.pos = usize::try_from(start).unwrap_or(usize::MAX);
            if r.pos > data.len() {
                return Err(r.truncated("section"));
            }
            let prefix = r.take(8, "section length")?;
            let blen = u64::from_be_bytes(prefix.try_into().unwrap()) as usize;
            let body = r.take(blen, "section body")?;
            if let Some(end) = entry.get(3).and_then(Value::as_u64) {
                if end != start + 8 + blen as u64 {
                    return Err(r.invalid(format!("inconsistent size of section {name}")));
                }
            }
            let method = entry.get(4).and_then(Value::as_str);
            let want = entry.get(5).and_then(Value::as_str);
            if let (Some(method), Some(want)) = (method, want) {
                let whole = &data[start as usize..start as usize + 8 + blen];
                let got = match method {
                    "md5" => crate::io::hex(&<md5::Md5 as md5::Digest>::digest(whole)),
                    "sha1" => crate::io::hex(&<sha1::Sha1 as sha1::Digest>::digest(whole)),
                    "sha256" => crate::io::hex(&<sha2::Sha256 as sha2::Digest>::digest(whole)),
                    "sha512" => crate::io::hex(&<sha2::Sha512 as sha2::Digest>::digest(whole)),
                    other => return Err(r.invalid(format!("unsupported checksum {other} for section {name}"))),
                };
                if got != want {
                    return Err(r.invalid(format!("checksum mismatch in section {name}: {got} found, {want} expected")));
                }
            }
            Ok(body)
        };
        let meta: Value =
            serde_json::from_slice(section("swift/ring/metadata")?).map_err(|e| r.invalid(format!("metadata is not JSON: {e}")))?;
        let devs: Value =
            serde_json::from_slice(section("swift/ring/devices")?).map_err(|e| r.invalid(format!("devices are not JSON: {e}")))?;
        let part_shift = r.get_u32(&meta, "part_shift")?;
        let dev_id_bytes = r.get_u32(&meta, "dev_id_bytes")?;
        if dev_id_bytes != 2 && dev_id_bytes != 4 {
            return Err(r.invalid(format!("unsupported dev_id_bytes {dev_id_bytes}")));
        }
        let parts = partitions(part_shift).ok_or_else(|| r.invalid(format!("bad part_shift {part_shift}")))?;
        let table = section("swift/ring/assignments")?;
        let width = dev_id_bytes as usize;
        if table.len() % width != 0 {
            return Err(r.invalid("assignment table length is not a whole number of ids".into()));
        }
        let rows = table
            .chunks(parts * width)
            .map(|row| {
                row.chunks_exact(width)
                    .map(|c| if width == 2 { u16::from_be_bytes([c[0], c[1]]) as u32 } else { u32::from_be_bytes(c.try_into().unwrap()) })
                    .collect()
            })
            .collect();
        Ok(RingData {
            devs: parse_devs(&devs, path)?,
            replica2part2dev: rows,
            part_shift,
            next_part_power: meta.get("next_part_power").and_then(Value::as_u64).map(|v| v as u32),
            version: meta.get("version").and_then(Value::as_u64),
            dev_id_bytes: dev_id_bytes as u8,
            format_version: None,
        })
    }

    /// What every reader relies on: rows of the right length, every slot
    /// naming a device that exists.
    fn check(&self, path: &str) -> Result<(), RingError> {
        let invalid = |what: String| RingError::Invalid { path: path.to_string(), what };
        let parts = self.partition_count();
        for (i, row) in self.replica2part2dev.iter().enumerate() {
            let last = i + 1 == self.replica2part2dev.len();
            if row.len() > parts || (!last && row.len() != parts) || row.is_empty() {
                return Err(invalid(format!("replica {i} has {} partitions, expected {parts}", row.len())));
            }
            for (part, &dev) in row.iter().enumerate() {
                if self.devs.get(dev as usize).and_then(Option::as_ref).is_none() {
                    return Err(invalid(format!("partition {part} replica {i} names device {dev}, which is not in the ring")));
                }
            }
        }
        for (i, d) in self.devs.iter().enumerate() {
            if let Some(d) = d {
                if d.id as usize != i {
                    return Err(invalid(format!("device in slot {i} has id {}", d.id)));
                }
            }
        }
        Ok(())
    }

    /// The ring file's bytes in format `version` (1 or 2). v1 cannot hold
    /// 4-byte dev ids. The gzip FNAME is taken from `file_name`.
    pub fn to_file_bytes(&self, file_name: &str, version: u16) -> Result<Vec<u8>, RingError> {
        let invalid = |what: String| RingError::Invalid { path: file_name.to_string(), what };
        let devs = Value::Array(self.devs.iter().map(|d| d.as_ref().map_or(Value::Null, Device::to_json)).collect());
        let wide = self.replica2part2dev.iter().flatten().any(|&d| d > 0xfffe) || self.dev_id_bytes == 4;
        let mut w = RingWriter::new(file_name);
        match version {
            1 => {
                if wide {
                    return Err(invalid("Ring v1 only supports 2-byte dev IDs".into()));
                }
                w.write_magic(1);
                let mut header = json!({
                    "devs": devs,
                    "part_shift": self.part_shift,
                    "replica_count": self.replica2part2dev.len(),
                    "byteorder": "little",
                });
                if let Some(v) = self.version {
                    header["version"] = v.into();
                }
                if let Some(n) = self.next_part_power {
                    header["next_part_power"] = n.into();
                }
                let text = pyjson::to_string(&header);
                w.write(&(text.len() as u32).to_be_bytes());
                w.write(text.as_bytes());
                for row in &self.replica2part2dev {
                    let bytes: Vec<u8> = row.iter().flat_map(|&d| (d as u16).to_le_bytes()).collect();
                    w.write(&bytes);
                }
            }
            2 => {
                let width = if wide { 4 } else { 2 };
                w.write_magic(2);
                let mut meta = json!({
                    "part_shift": self.part_shift,
                    "dev_id_bytes": width,
                    "replica_count": self.replica_count(),
                    "version": self.version,
                });
                if let Some(n) = self.next_part_power {
                    meta["next_part_power"] = n.into();
                }
                w.begin_section("swift/ring/metadata");
                w.write_blob(pyjson::to_string(&meta).as_bytes());
                w.end_section();
                w.begin_section("swift/ring/devices");
                w.write_blob(pyjson::to_string(&devs).as_bytes());
                w.end_section();
                w.begin_section("swift/ring/assignments");
                let total: usize = self.replica2part2dev.iter().map(Vec::len).sum();
                w.write(&((total * width) as u64).to_be_bytes());
                for row in &self.replica2part2dev {
                    let bytes: Vec<u8> = if width == 2 {
                        row.iter().flat_map(|&d| (d as u16).to_be_bytes()).collect()
                    } else {
                        row.iter().flat_map(|&d| d.to_be_bytes()).collect()
                    };
                    w.write(&bytes);
                }
                w.end_section();
            }
            v => return Err(invalid(format!("format_version must be 1 or 2, not {v}"))),
        }
        Ok(w.finish())
    }

    /// Writes the ring to `path` atomically in format `version`.
    pub fn save(&self, path: &Path, version: u16) -> Result<(), RingError> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let bytes = self.to_file_bytes(&name, version)?;
        write_atomic(path, &bytes).map_err(|source| RingError::Io { path: path.display().to_string(), source })
    }
}

fn partitions(part_shift: u32) -> Option<usize> {
    (part_shift < 32).then(|| 1usize << (32 - part_shift))
}

fn parse_devs(value: &Value, path: &str) -> Result<Vec<Option<Device>>, RingError> {
    let list = value.as_array().ok_or_else(|| RingError::Invalid { path: path.to_string(), what: "devs is not a list".into() })?;
    list.iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Null => Ok(None),
            v => Device::from_json(i, v).map(Some),
        })
        .collect::<Result<_, DeviceError>>()
        .map_err(|e| RingError::Invalid { path: path.to_string(), what: e.to_string() })
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    path: &'a str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RingError> {
        if self.data.len() - self.pos < n {
            return Err(self.truncated(what));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, RingError> {
        Ok(u64::from_be_bytes(self.take(8, what)?.try_into().unwrap()))
    }

    fn json(&mut self, len: usize, what: &'static str) -> Result<Value, RingError> {
        let bytes = self.take(len, what)?;
        serde_json::from_slice(bytes).map_err(|e| self.invalid(format!("{what} is not valid JSON: {e}")))
    }

    fn get_u32(&self, obj: &Value, key: &str) -> Result<u32, RingError> {
        obj.get(key)
            .and_then(|v| v.as_u64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64)))
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| self.invalid(format!("missing or bad {key}")))
    }

    fn truncated(&self, what: &'static str) -> RingError {
        RingError::Truncated { path: self.path.to_string(), what }
    }

    fn invalid(&self, what: String) -> RingError {
        RingError::Invalid { path: self.path.to_string(), what }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rings").join(name)
    }

    #[test]
    fn v1_and_v2_fixtures_hold_the_same_ring() {
        for name in ["small", "zones", "regions"] {
            let v1 = RingData::load(&fixture(&format!("{name}.ring.gz"))).unwrap();
            let v2 = RingData::load(&fixture(&format!("{name}.v2.ring.gz"))).unwrap();
            assert_eq!(v1.format_version, Some(1));
            assert_eq!(v2.format_version, Some(2));
            assert_eq!(v1.devs, v2.devs);
            assert_eq!(v1.replica2part2dev, v2.replica2part2dev);
            assert_eq!(v1.part_shift, v2.part_shift);
            assert_eq!(v1.version, v2.version);
            assert_eq!(v1.replica_count(), 3.0);
        }
    }

    #[test]
    fn we_write_the_bytes_swift_writes() {
        for name in ["small", "zones", "regions"] {
            for (file, version) in [(format!("{name}.ring.gz"), 1), (format!("{name}.v2.ring.gz"), 2)] {
                let original = std::fs::read(fixture(&file)).unwrap();
                let ring = RingData::from_file_bytes(&original, &file).unwrap();
                // Swift names the gzip member after the file it writes; the
                // v2 fixtures were written as NAME.ring.gz and renamed.
                let fname = format!("{name}.ring.gz");
                let ours = ring.to_file_bytes(&fname, version).unwrap();
                let back = RingData::from_file_bytes(&ours, &fname).unwrap();
                assert_eq!(back.replica2part2dev, ring.replica2part2dev);
                assert_eq!(back.devs, ring.devs);
                assert!(ours == original, "{file}: bytes differ from Swift's ({} vs {})", ours.len(), original.len());
            }
        }
    }

    #[test]
    fn fractional_replicas_round_trip_in_both_formats() {
        let dev = Device::from_json(0, &json!({"id": 0, "ip": "1.2.3.4", "port": 6200, "device": "d", "weight": 1.0, "zone": 1})).unwrap();
        let mut dev1 = dev.clone();
        dev1.id = 1;
        let ring = RingData {
            devs: vec![Some(dev), None, Some(Device { id: 2, ..dev1 })],
            replica2part2dev: vec![vec![0; 16], vec![2; 16], vec![0, 2, 0, 2]],
            part_shift: 28,
            next_part_power: None,
            version: Some(7),
            dev_id_bytes: 2,
            format_version: None,
        };
        for v in [1, 2] {
            let bytes = ring.to_file_bytes("t.ring.gz", v).unwrap();
            let back = RingData::from_file_bytes(&bytes, "t").unwrap();
            assert_eq!(back.replica2part2dev, ring.replica2part2dev);
            assert_eq!(back.replica_count(), 2.25);
            assert_eq!(back.devs, ring.devs);
        }
    }

    #[test]
    fn corrupt_files_are_errors_not_panics() {
        let good = std::fs::read(fixture("small.ring.gz")).unwrap();
        let good2 = std::fs::read(fixture("small.v2.ring.gz")).unwrap();
        for bytes in [&good, &good2] {
            for cut in [0, 5, 20, bytes.len() / 2, bytes.len() - 9, bytes.len() - 1] {
                assert!(RingData::from_file_bytes(&bytes[..cut], "t").is_err(), "cut at {cut}");
            }
        }
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        assert!(RingData::from_file_bytes(&flipped, "t").is_err());
        assert!(RingData::from_file_bytes(b"not a ring", "t").is_err());
        let mut w = RingWriter::new("t");
        w.write_magic(3);
        assert!(matches!(RingData::from_file_bytes(&w.finish(), "t"), Err(RingError::UnsupportedVersion { version: 3, .. })));
        let mut w = RingWriter::new("t");
        w.write(b"R0NG\0\x01");
        assert!(matches!(RingData::from_file_bytes(&w.finish(), "t"), Err(RingError::BadMagic { .. })));
    }
}
