//! PUT/GET/HEAD/POST/DELETE against the real binary.

mod support;

use support::*;

const P: &str = "/sda/1/a/c/o";

#[test]
fn options_lists_the_verbs() {
    let n = Node::start("");
    let r = n.req("OPTIONS", "/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("allow"), Some("DELETE, GET, HEAD, OPTIONS, POST, PUT, REPLICATE, SSYNC"));
    assert_eq!(r.header("server"), Some("object-server/0.1.0"));
    let ssync = n.req("SSYNC", "/sda/1", &[], b":MISSING_CHECK: START\r\n:MISSING_CHECK: END\r\n:UPDATES: START\r\n:UPDATES: END\r\n");
    assert_eq!(
        (ssync.status, String::from_utf8_lossy(&ssync.body).trim()),
        (200, ":MISSING_CHECK: START\r\n\r\n:MISSING_CHECK: END\r\n:UPDATES: START\r\n:UPDATES: END")
    );
    assert_eq!(n.req("COPY", P, &[], b"").status, 405);
}

#[test]
fn put_get_head_delete_cycle() {
    let n = Node::start("");
    let t1 = ts(-10.0);
    let body = b"hello world";
    let r = n.req(
        "PUT",
        P,
        &[
            ("X-Timestamp", &t1),
            ("Content-Type", "text/plain"),
            ("X-Object-Meta-Color", "blue"),
            ("X-Object-Sysmeta-Thing", "s"),
            ("Content-Disposition", "inline"),
            ("X-Unknown", "dropped"),
        ],
        body,
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("etag").unwrap(), format!("\"{}\"", md5_hex(body)));
    let hd = n.hash_dir("objects", 1, "a", "c", "o");
    assert_eq!(files_in(&hd), vec![format!("{t1}.data")]);
    assert!(files_in(&n.device().join("tmp")).is_empty());

    let r = n.req("GET", P, &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("content-length"), Some("11"));
    assert_eq!(r.header("x-object-meta-color"), Some("blue"));
    assert_eq!(r.header("x-object-sysmeta-thing"), Some("s"));
    assert_eq!(r.header("content-disposition"), Some("inline"));
    assert_eq!(r.header("x-unknown"), None);
    assert_eq!(r.header("x-timestamp"), Some(t1.as_str()));
    assert_eq!(r.header("x-backend-timestamp"), Some(t1.as_str()));
    assert_eq!(r.header("x-backend-data-timestamp"), Some(t1.as_str()));
    let secs: f64 = t1.parse().unwrap();
    assert_eq!(r.header("last-modified").unwrap(), common::timestamp::http_date(secs.ceil() as u64));

    let r = n.req("HEAD", P, &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("11"));
    assert!(r.body.is_empty());

    // Same or older timestamp: 409 naming what exists.
    let r = n.req("PUT", P, &[("X-Timestamp", &t1), ("Content-Type", "x/y")], b"other");
    assert_eq!(r.status, 409);
    assert_eq!(r.header("x-backend-timestamp"), Some(t1.as_str()));
    // If-None-Match: * on a live object.
    let r = n.req("PUT", P, &[("X-Timestamp", &ts(-5.0)), ("Content-Type", "x/y"), ("If-None-Match", "*")], b"other");
    assert_eq!(r.status, 412);
    // ETag mismatch: 422, nothing changes.
    let r = n.req("PUT", P, &[("X-Timestamp", &ts(-5.0)), ("Content-Type", "x/y"), ("ETag", "00000000000000000000000000000000")], b"other");
    assert_eq!(r.status, 422);
    assert_eq!(files_in(&hd), vec![format!("{t1}.data")]);

    // Overwrite: the old .data goes.
    let t2 = ts(-8.0);
    let r = n.req("PUT", P, &[("X-Timestamp", &t2), ("Content-Type", "x/y"), ("ETag", &md5_hex(b"v2"))], b"v2");
    assert_eq!(r.status, 201);
    assert_eq!(files_in(&hd), vec![format!("{t2}.data")]);
    assert_eq!(n.req("GET", P, &[], b"").body, b"v2");

    // DELETE older than the data: 409.
    assert_eq!(n.req("DELETE", P, &[("X-Timestamp", &t1)], b"").status, 409);
    let t3 = ts(-6.0);
    let r = n.req("DELETE", P, &[("X-Timestamp", &t3)], b"");
    assert_eq!(r.status, 204);
    assert_eq!(files_in(&hd), vec![format!("{t3}.ts")]);
    let r = n.req("GET", P, &[], b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-backend-timestamp"), Some(t3.as_str()));
    assert_eq!(n.req("HEAD", P, &[], b"").status, 404);
    // Deleting again: 404, but the newer tombstone is written.
    let t4 = ts(-5.0);
    assert_eq!(n.req("DELETE", P, &[("X-Timestamp", &t4)], b"").status, 404);
    assert_eq!(files_in(&hd), vec![format!("{t4}.ts")]);
    // Never-existing object: 404 and a tombstone.
    assert_eq!(n.req("DELETE", "/sda/1/a/c/never", &[("X-Timestamp", &t4)], b"").status, 404);
    assert_eq!(files_in(&n.hash_dir("objects", 1, "a", "c", "never")), vec![format!("{t4}.ts")]);
}

#[test]
fn post_replaces_user_metadata_and_keeps_sysmeta() {
    let n = Node::start("");
    assert_eq!(n.req("POST", P, &[("X-Timestamp", &ts(-1.0))], b"").status, 404);
    let t1 = ts(-10.0);
    let r = n.req(
        "PUT",
        P,
        &[("X-Timestamp", &t1), ("Content-Type", "text/plain"), ("X-Object-Meta-A", "1"), ("X-Object-Sysmeta-S", "keep")],
        b"data",
    );
    assert_eq!(r.status, 201);
    assert_eq!(n.req("POST", P, &[], b"").status, 400);
    let t2 = ts(-9.0);
    let r = n.req("POST", P, &[("X-Timestamp", &t2), ("X-Object-Meta-B", "2")], b"");
    assert_eq!(r.status, 202);
    assert_eq!(r.header("x-object-sysmeta-s"), Some("keep"));
    let hd = n.hash_dir("objects", 1, "a", "c", "o");
    assert_eq!(files_in(&hd), vec![format!("{t1}.data"), format!("{t2}.meta")]);
    let r = n.req("GET", P, &[], b"");
    assert_eq!(r.body, b"data");
    assert_eq!(r.header("x-object-meta-a"), None);
    assert_eq!(r.header("x-object-meta-b"), Some("2"));
    assert_eq!(r.header("x-object-sysmeta-s"), Some("keep"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("x-timestamp"), Some(t2.as_str()));
    assert_eq!(r.header("x-backend-data-timestamp"), Some(t1.as_str()));
    // Older POST: 409.
    let r = n.req("POST", P, &[("X-Timestamp", &t1), ("X-Object-Meta-C", "3")], b"");
    assert_eq!(r.status, 409);
    // Meta limits apply to POST too.
    let long = "v".repeat(257);
    let r = n.req("POST", P, &[("X-Timestamp", &ts(-8.0)), ("X-Object-Meta-C", &long)], b"");
    assert_eq!(r.status, 400);
    assert_eq!(String::from_utf8_lossy(&r.body), "Metadata value longer than 256: x-object-meta-c");
}

#[test]
fn ranges_and_conditionals() {
    let n = Node::start("");
    let body: Vec<u8> = (0..200u32).map(|i| (i % 251) as u8).collect();
    let t1 = ts(-100.0);
    assert_eq!(n.req("PUT", P, &[("X-Timestamp", &t1), ("Content-Type", "application/x-test")], &body).status, 201);
    let etag = md5_hex(&body);

    let r = n.req("GET", P, &[("Range", "bytes=10-19")], b"");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/200"));
    assert_eq!(r.body, &body[10..20]);
    let r = n.req("GET", P, &[("Range", "bytes=-5")], b"");
    assert_eq!(r.body, &body[195..]);

    let r = n.req("GET", P, &[("Range", "bytes=0-1,198-")], b"");
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").unwrap().to_string();
    let boundary = ct.strip_prefix("multipart/byteranges;boundary=").expect(&ct).to_string();
    assert_eq!(boundary.len(), 32);
    let mut expect = Vec::new();
    expect
        .extend_from_slice(format!("--{boundary}\r\nContent-Type: application/x-test\r\nContent-Range: bytes 0-1/200\r\n\r\n").as_bytes());
    expect.extend_from_slice(&body[0..2]);
    expect.extend_from_slice(
        format!("\r\n--{boundary}\r\nContent-Type: application/x-test\r\nContent-Range: bytes 198-199/200\r\n\r\n").as_bytes(),
    );
    expect.extend_from_slice(&body[198..]);
    expect.extend_from_slice(format!("\r\n--{boundary}--").as_bytes());
    assert_eq!(r.body, expect);
    assert_eq!(r.header("content-length").unwrap(), expect.len().to_string());

    let r = n.req("GET", P, &[("Range", "bytes=500-")], b"");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */200"));
    // Malformed ranges are ignored.
    assert_eq!(n.req("GET", P, &[("Range", "bytes=9-3")], b"").status, 200);

    let quoted = format!("\"{etag}\"");
    let r = n.req("GET", P, &[("If-None-Match", &quoted)], b"");
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(quoted.as_str()));
    assert!(r.header("last-modified").is_some());
    assert!(r.body.is_empty());
    assert_eq!(n.req("GET", P, &[("If-None-Match", "\"nope\", *")], b"").status, 304);
    assert_eq!(n.req("GET", P, &[("If-Match", "\"nope\"")], b"").status, 412);
    assert_eq!(n.req("GET", P, &[("If-Match", &format!("\"x\", {quoted}"))], b"").status, 200);
    assert_eq!(n.req("HEAD", P, &[("If-Match", "*")], b"").status, 200);
    assert_eq!(n.req("GET", "/sda/1/a/c/missing", &[("If-Match", "*")], b"").status, 412);
    let future = common::timestamp::http_date(4_000_000_000);
    let past = common::timestamp::http_date(1_000_000_000);
    assert_eq!(n.req("GET", P, &[("If-Modified-Since", &future)], b"").status, 304);
    assert_eq!(n.req("GET", P, &[("If-Modified-Since", &past)], b"").status, 200);
    assert_eq!(n.req("GET", P, &[("If-Unmodified-Since", &past)], b"").status, 412);
    assert_eq!(n.req("GET", P, &[("If-Unmodified-Since", &future)], b"").status, 200);
}

#[test]
fn expired_objects_are_gone_and_policies_have_their_own_dirs() {
    let n = Node::start("");
    let t = ts(-100.0);
    let delete_at = format!("{}", t.parse::<f64>().unwrap() as u64 + 50);
    let r = n.req("PUT", P, &[("X-Timestamp", &t), ("Content-Type", "a/b"), ("X-Delete-At", &delete_at)], b"x");
    assert_eq!(r.status, 201);
    let r = n.req("GET", P, &[], b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-backend-timestamp"), Some(t.as_str()));
    // X-Delete-At before the request's timestamp: 400.
    let r = n.req("PUT", P, &[("X-Timestamp", &ts(0.0)), ("Content-Type", "a/b"), ("X-Delete-At", "1000")], b"x");
    assert_eq!(r.status, 400);
    assert_eq!(String::from_utf8_lossy(&r.body), "X-Delete-At in past");
    // X-If-Delete-At must match.
    let t2 = ts(-20.0);
    let keep_until = format!("{}", t2.parse::<f64>().unwrap() as u64 + 100000);
    assert_eq!(
        n.req("PUT", "/sda/1/a/c/e", &[("X-Timestamp", &t2), ("Content-Type", "a/b"), ("X-Delete-At", &keep_until)], b"x").status,
        201
    );
    assert_eq!(n.req("DELETE", "/sda/1/a/c/e", &[("X-Timestamp", &ts(-10.0)), ("X-If-Delete-At", "12345")], b"").status, 412);
    assert_eq!(n.req("DELETE", "/sda/1/a/c/e", &[("X-Timestamp", &ts(-10.0)), ("X-If-Delete-At", &keep_until)], b"").status, 204);

    let r = n.req("PUT", P, &[("X-Timestamp", &ts(-1.0)), ("Content-Type", "a/b"), ("X-Backend-Storage-Policy-Index", "1")], b"p1");
    assert_eq!(r.status, 201);
    let hd = n.hash_dir("objects-1", 1, "a", "c", "o");
    assert_eq!(files_in(&hd).len(), 1);
    let r = n.req("GET", P, &[("X-Backend-Storage-Policy-Index", "1")], b"");
    assert_eq!(r.body, b"p1");
    assert_eq!(n.req("GET", P, &[("X-Backend-Storage-Policy-Index", "7")], b"").status, 503);
}

#[test]
fn big_metadata_is_stored_even_on_ext4() {
    let n = Node::start("");
    // Swift's limits: 90 items, 4096 bytes of names and values.
    let mut hdrs: Vec<(String, String)> = Vec::new();
    for i in 0..90 {
        let name = format!("X-Object-Meta-K{i:02}");
        // "K00" = 3 bytes of name after the prefix; 42 value bytes.
        hdrs.push((name, "v".repeat(42)));
    }
    let total: usize = hdrs.iter().map(|(k, v)| k.len() - "X-Object-Meta-".len() + v.len()).sum();
    assert!(total <= 4096, "{total}");
    let t = ts(-1.0);
    let mut h: Vec<(&str, &str)> = hdrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    h.push(("X-Timestamp", &t));
    h.push(("Content-Type", "text/plain"));
    let r = n.req("PUT", P, &h, b"big metadata");
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = n.req("GET", P, &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"big metadata");
    for (k, v) in &hdrs {
        assert_eq!(r.header(k), Some(v.as_str()), "{k}");
    }
    // And via POST (.meta files).
    let t2 = ts(0.0);
    h.retain(|(k, _)| *k != "X-Timestamp" && *k != "Content-Type");
    h.push(("X-Timestamp", &t2));
    assert_eq!(n.req("POST", P, &h, b"").status, 202);
    let r = n.req("HEAD", P, &[], b"");
    assert_eq!(r.header("x-object-meta-k89"), Some("v".repeat(42).as_str()));
    // One item over the count limit is refused.
    let mut h91 = h.clone();
    h91.push(("X-Object-Meta-K90", "x"));
    let r = n.req("POST", P, &h91, b"");
    assert_eq!(r.status, 400);
    assert_eq!(String::from_utf8_lossy(&r.body), "Too many metadata items; max 90");
}

#[test]
fn corrupt_metadata_is_quarantined() {
    use xattr::FileExt;
    let n = Node::start("");
    let t = ts(-1.0);
    assert_eq!(n.req("PUT", P, &[("X-Timestamp", &t), ("Content-Type", "a/b")], b"abc").status, 201);
    let hd = n.hash_dir("objects", 1, "a", "c", "o");
    let f = std::fs::File::open(hd.join(format!("{t}.data"))).unwrap();
    f.set_xattr("user.swift.metadata_checksum", b"0123456789abcdef0123456789abcdef").unwrap();
    assert_eq!(n.req("GET", P, &[], b"").status, 404);
    assert!(!hd.exists());
    let hash = hd.file_name().unwrap().to_string_lossy().into_owned();
    assert!(n.device().join("quarantined/objects").join(hash).is_dir());
}
