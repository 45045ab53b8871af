//! Swift's on-disk formats against the real binary: objects Swift wrote are
//! served, what we write is what Swift writes. The Swift-made bytes are in
//! tests/fixtures/swift (see its README for how they were made).

mod support;

use std::path::{Path, PathBuf};
use support::*;
use xattr::FileExt;

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/swift").join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture_json<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// Puts a file with Swift's metadata blob in its xattrs, as Swift leaves it.
fn place_swift_file(path: &Path, body: &[u8], blob: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    let f = std::fs::File::open(path).unwrap();
    f.set_xattr("user.swift.metadata", blob).unwrap();
    f.set_xattr("user.swift.metadata_checksum", md5_hex(blob).as_bytes()).unwrap();
}

#[test]
fn serves_an_object_that_swift_wrote() {
    let n = Node::start("");
    let hd = n.hash_dir("objects", 1, "a", "c", "o");
    let data: String = fixture_json("data.filename.json");
    place_swift_file(&hd.join(&data), b"hello", &fixture("data.metadata.pickle"));
    let r = n.req("GET", "/sda/1/a/c/o", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello");
    assert_eq!(r.header("etag"), Some("\"5d41402abc4b2a76b9719d911017c592\""));
    assert_eq!(r.header("x-object-meta-color"), Some("na\u{ef}ve \u{2603} caf\u{e9}"));
    assert_eq!(r.header("content-disposition"), Some("attachment; filename=\"r\u{e9}sum\u{e9}.txt\""));
    assert_eq!(r.header("x-timestamp"), Some(data.trim_end_matches(".data")));

    // With the .meta Swift's POST wrote, GET shows the new content type.
    let meta: String = fixture_json("meta.filename.json");
    place_swift_file(&hd.join(&meta), b"", &fixture("meta.metadata.pickle"));
    let r = n.req("GET", "/sda/1/a/c/o", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-new"));
    assert_eq!(r.header("x-object-meta-color"), Some("r\u{f6}d"));

    // And with Swift's tombstone, the object is gone.
    let tomb: String = fixture_json("ts.filename.json");
    place_swift_file(&hd.join(&tomb), b"", &fixture("ts.metadata.pickle"));
    let r = n.req("GET", "/sda/1/a/c/o", &[], b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-backend-timestamp"), Some(tomb.trim_end_matches(".ts")));
}

#[test]
fn writes_metadata_as_swift_does() {
    let n = Node::start("");
    let t = ts(-1.0);
    let r = n.req(
        "PUT",
        "/sda/1/a/c/o",
        &[("X-Timestamp", &t), ("Content-Type", "text/plain"), ("X-Object-Meta-Color", "na\u{ef}ve \u{2603} caf\u{e9}")],
        b"hello",
    );
    assert_eq!(r.status, 201);
    let f = std::fs::File::open(n.hash_dir("objects", 1, "a", "c", "o").join(format!("{t}.data"))).unwrap();
    let blob = f.get_xattr("user.swift.metadata").unwrap().unwrap();
    // Python 3 Swift's pickle: protocol 2, bytes as _codecs.encode.
    assert!(blob.starts_with(b"\x80\x02}q\x00(c_codecs\nencode\n"), "{blob:?}");
    assert_eq!(f.get_xattr("user.swift.metadata_checksum").unwrap().unwrap(), md5_hex(&blob).into_bytes());
    let meta = object_server::metadata::Codec::Pickle.decode(&blob).unwrap();
    assert_eq!(meta["X-Object-Meta-Color"], "na\u{ef}ve \u{2603} caf\u{e9}");
    assert_eq!(meta["name"], "/a/c/o");
    assert_eq!(meta["ETag"], md5_hex(b"hello"));
}

#[test]
fn metadata_in_an_unknown_format_is_an_error_not_a_quarantine() {
    let n = Node::start("");
    let t = ts(-1.0);
    assert_eq!(n.req("PUT", "/sda/1/a/c/o", &[("X-Timestamp", &t), ("Content-Type", "a/b")], b"abc").status, 201);
    let path = n.hash_dir("objects", 1, "a", "c", "o").join(format!("{t}.data"));
    let f = std::fs::File::open(&path).unwrap();
    let blob = b"<metadata format=\"not ours\"/>";
    f.set_xattr("user.swift.metadata", blob).unwrap();
    f.set_xattr("user.swift.metadata_checksum", md5_hex(blob).as_bytes()).unwrap();
    assert_eq!(n.req("GET", "/sda/1/a/c/o", &[], b"").status, 500);
    assert_eq!(n.req("HEAD", "/sda/1/a/c/o", &[], b"").status, 500);
    assert!(path.is_file(), "the file stays where it is");
    assert!(!n.device().join("quarantined").exists());
}

#[test]
fn an_older_meta_keeps_the_content_type_it_set() {
    // Swift's POST writes Content-Type only when it changes it: after a
    // POST that set it and a later one that did not, both .meta files count
    // (Swift's get_ondisk_files keeps both).
    let n = Node::start("");
    let hd = n.hash_dir("objects", 1, "a", "c", "o");
    let data: String = fixture_json("data.filename.json");
    place_swift_file(&hd.join(&data), b"hello", &fixture("data.metadata.pickle"));
    let meta: String = fixture_json("meta.filename.json");
    place_swift_file(&hd.join(&meta), b"", &fixture("meta.metadata.pickle"));
    let later = common::timestamp::Timestamp::parse(data.trim_end_matches(".data")).unwrap().as_secs_f64() + 10.0;
    let later = format!("{later:016.5}");
    let mut newer = object_server::metadata::Metadata::new();
    newer.insert("name".into(), "/a/c/o".into());
    newer.insert("X-Timestamp".into(), later.clone());
    newer.insert("X-Object-Meta-Color".into(), "blue".into());
    place_swift_file(&hd.join(format!("{later}.meta")), b"", &object_server::metadata::Codec::Pickle.encode(&newer));
    let r = n.req("HEAD", "/sda/1/a/c/o", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-new"));
    assert_eq!(r.header("x-object-meta-color"), Some("blue"));
    assert_eq!(r.header("x-timestamp"), Some(later.as_str()));
}
