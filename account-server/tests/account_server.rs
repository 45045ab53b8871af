//! Integration tests: start the real `swift-account-server` binary with a
//! generated config and drive it over HTTP.

use common::dbserver::testing::{config_path, files_under, request, start_server, timestamp as ts, Reply};
use common::testing::ServerProcess;
use std::path::{Path, PathBuf};

struct Server {
    dir: tempfile::TempDir,
    devices: PathBuf,
    proc: ServerProcess,
}

fn start(extra: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let proc = start_server(Path::new(env!("CARGO_BIN_EXE_swift-account-server")), "account", dir.path(), extra);
    Server { devices: dir.path().join("node"), dir, proc }
}

impl Server {
    fn req(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        request(self.proc.port, method, path, headers)
    }
    fn put_account(&self, path: &str, t: u32) -> Reply {
        self.req("PUT", path, &[("X-Timestamp", &ts(t))])
    }
    /// A container server's report of a container.
    fn report(&self, path: &str, put: u32, delete: Option<u32>, objects: u64, bytes: u64, policy: u32) -> Reply {
        let (put, delete) = (ts(put), delete.map_or("0".to_string(), ts));
        let (objects, bytes, policy) = (objects.to_string(), bytes.to_string(), policy.to_string());
        self.req(
            "PUT",
            path,
            &[
                ("X-Put-Timestamp", &put),
                ("X-Delete-Timestamp", &delete),
                ("X-Object-Count", &objects),
                ("X-Bytes-Used", &bytes),
                ("X-Backend-Storage-Policy-Index", &policy),
            ],
        )
    }
    fn counts(&self, path: &str) -> (String, String, String) {
        let h = self.req("HEAD", path, &[]);
        assert_eq!(h.status, 204, "HEAD {path}");
        let g = |n: &str| h.h(n).unwrap_or("-").to_string();
        (g("x-account-container-count"), g("x-account-object-count"), g("x-account-bytes-used"))
    }
}

fn db_files(devices: &Path) -> Vec<PathBuf> {
    files_under(devices).into_iter().filter(|p| p.extension().is_some_and(|e| e == "db")).collect()
}

fn c3(a: &str, b: &str, c: &str) -> (String, String, String) {
    (a.to_string(), b.to_string(), c.to_string())
}

#[test]
fn options_reports_verbs_and_server() {
    let s = start("");
    let r = s.req("OPTIONS", "/", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.h("allow"), Some("DELETE, GET, HEAD, OPTIONS, POST, PUT, REPLICATE"));
    assert_eq!(r.h("server"), Some("account-server/0.1.0"));
    // REPLICATE wants Swift's JSON body (none here), on a device we have.
    assert_eq!(s.req("REPLICATE", "/sda/1/abc", &[]).status, 400);
    assert_eq!(s.req("REPLICATE", "/nodev/1/abc", &[]).status, 507);
    assert_eq!(s.req("UPDATE", "/sda/1/a", &[("X-Timestamp", &ts(1))]).status, 405);
    assert_eq!(s.req("COPY", "/sda/1/a", &[]).status, 405);
}

#[test]
fn replication_server_false_drops_replicate() {
    let s = start("replication_server = false");
    assert_eq!(s.req("OPTIONS", "/", &[]).h("allow"), Some("DELETE, GET, HEAD, OPTIONS, POST, PUT"));
    assert_eq!(s.req("REPLICATE", "/sda/1/abc", &[]).status, 405);
    assert_eq!(s.put_account("/sda/1/a", 1).status, 201);
}

#[test]
fn account_lifecycle_metadata_and_deletion() {
    let s = start("");
    for method in ["HEAD", "GET", "DELETE", "POST"] {
        let r = s.req(method, "/sda/1/a", &[("X-Timestamp", &ts(1))]);
        assert_eq!(r.status, 404, "{method} of a missing account");
        assert_eq!(r.h("x-account-status"), None, "missing is not deleted");
    }
    assert!(db_files(&s.devices).is_empty());
    let r = s.req(
        "PUT",
        "/sda/1/a",
        &[("X-Timestamp", &ts(1)), ("X-Account-Meta-Color", "blue"), ("X-Account-Sysmeta-Quota", "7"), ("X-Object-Meta-No", "x")],
    );
    assert_eq!(r.status, 201);
    // <dev>/accounts/<part>/<suffix>/<hash>/<hash>.db
    let dbs = db_files(&s.devices.join("sda/accounts/1"));
    assert_eq!(dbs.len(), 1);
    let hash = dbs[0].file_stem().unwrap().to_str().unwrap().to_string();
    assert_eq!(hash.len(), 32);
    assert!(dbs[0].ends_with(format!("{}/{hash}/{hash}.db", &hash[29..])));
    assert_eq!(s.put_account("/sda/1/a", 2).status, 202);
    assert_eq!(s.put_account("/sda/1/a", 1).status, 202, "an older PUT is accepted and changes nothing");
    let h = s.req("HEAD", "/sda/1/a", &[]);
    assert_eq!(h.status, 204);
    assert_eq!(h.h("x-account-container-count"), Some("0"));
    assert_eq!(h.h("x-account-object-count"), Some("0"));
    assert_eq!(h.h("x-account-bytes-used"), Some("0"));
    assert_eq!(h.h("x-put-timestamp"), Some(ts(2).as_str()));
    assert!(h.h("x-timestamp").is_some_and(|t| t.len() == 16));
    assert_eq!(h.h("x-account-meta-color"), Some("blue"));
    assert_eq!(h.h("x-account-sysmeta-quota"), Some("7"));
    assert_eq!(h.h("x-object-meta-no"), None);
    assert_eq!(h.h("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(h.h("content-length"), Some("0"));
    assert!(!h.headers.keys().any(|k| k.starts_with("x-account-storage-policy-")), "no containers, no policy rows");
    assert_eq!(s.req("HEAD", "/sda/1/a?format=json", &[]).h("content-type"), Some("application/json; charset=utf-8"));
    // Metadata: newer wins per key, empty deletes.
    assert_eq!(s.req("POST", "/sda/1/a", &[("X-Timestamp", &ts(5)), ("X-Account-Meta-Color", "")]).status, 204);
    assert_eq!(s.req("POST", "/sda/1/a", &[("X-Timestamp", &ts(4)), ("X-Account-Meta-Color", "red")]).status, 204);
    assert_eq!(s.req("POST", "/sda/1/a", &[("X-Timestamp", &ts(4)), ("X-Account-Meta-Shape", "round")]).status, 204);
    let h = s.req("HEAD", "/sda/1/a", &[]);
    assert_eq!((h.h("x-account-meta-color"), h.h("x-account-meta-shape")), (None, Some("round")));
    assert_eq!(h.h("x-put-timestamp"), Some(ts(2).as_str()), "POST leaves the put timestamp");
    // DELETE marks the account deleted, as Swift's account server does.
    assert_eq!(s.report("/sda/1/a/c", 3, None, 1, 1, 0).status, 201);
    let d = s.req("DELETE", "/sda/1/a", &[("X-Timestamp", &ts(6))]);
    assert_eq!((d.status, d.h("x-account-status")), (204, Some("Deleted")));
    for method in ["HEAD", "GET", "POST", "DELETE"] {
        let r = s.req(method, "/sda/1/a", &[("X-Timestamp", &ts(7))]);
        assert_eq!((r.status, r.h("x-account-status")), (404, Some("Deleted")), "{method} of a deleted account");
    }
    let r = s.put_account("/sda/1/a", 8);
    assert_eq!((r.status, r.text().as_str(), r.h("x-account-status")), (403, "Recently deleted", Some("Deleted")));
    // Container reports for a deleted account are refused unless overridden.
    assert_eq!(s.report("/sda/1/a/c2", 9, None, 0, 0, 0).status, 404);
    let r = s.req(
        "PUT",
        "/sda/1/a/c2",
        &[
            ("X-Put-Timestamp", &ts(9)),
            ("X-Delete-Timestamp", "0"),
            ("X-Object-Count", "0"),
            ("X-Bytes-Used", "0"),
            ("X-Account-Override-Deleted", "yes"),
        ],
    );
    assert_eq!(r.status, 201);
    assert_eq!(s.req("HEAD", "/sdx/1/a", &[]).status, 507);
    assert_eq!(s.put_account("/sdx/1/a", 1).status, 507);
}

#[test]
fn container_reports_keep_counts_and_policy_totals() {
    let s = start("");
    assert_eq!(s.report("/sda/1/a/c1", 2, None, 3, 30, 0).status, 404, "no account, no auto-create");
    assert!(db_files(&s.devices).is_empty());
    assert_eq!(s.put_account("/sda/1/a", 1).status, 201);
    assert_eq!(s.report("/sda/1/a/c1", 2, None, 3, 30, 0).status, 201);
    assert_eq!(s.report("/sda/1/a/c2", 2, None, 2, 7, 1).status, 201);
    assert_eq!(s.counts("/sda/1/a"), c3("2", "5", "37"));
    let h = s.req("HEAD", "/sda/1/a", &[]);
    let p = |name: &str| h.h(&format!("x-account-storage-policy-{name}")).map(str::to_string);
    assert_eq!(p("gold-container-count").as_deref(), Some("1"));
    assert_eq!(p("gold-object-count").as_deref(), Some("3"));
    assert_eq!(p("gold-bytes-used").as_deref(), Some("30"));
    assert_eq!(p("silver-container-count").as_deref(), Some("1"));
    assert_eq!(p("silver-object-count").as_deref(), Some("2"));
    assert_eq!(p("silver-bytes-used").as_deref(), Some("7"));
    // The container updater's later report replaces the totals.
    assert_eq!(s.report("/sda/1/a/c1", 2, None, 4, 40, 0).status, 201);
    assert_eq!(s.counts("/sda/1/a"), c3("2", "6", "47"));
    // A container DELETE report: 204, and the container stops counting.
    assert_eq!(s.report("/sda/1/a/c1", 2, Some(3), 0, 0, 0).status, 204);
    assert_eq!(s.counts("/sda/1/a"), c3("1", "2", "7"));
    assert_eq!(s.req("HEAD", "/sda/1/a", &[]).h("x-account-storage-policy-gold-container-count"), Some("0"));
    // A stale PUT report (older than the delete) does not revive it.
    assert_eq!(s.report("/sda/1/a/c1", 1, None, 0, 0, 0).status, 201);
    assert_eq!(s.counts("/sda/1/a"), c3("1", "2", "7"));
    assert_eq!(s.req("GET", "/sda/1/a", &[]).text(), "c2\n");
    // A newer PUT does.
    assert_eq!(s.report("/sda/1/a/c1", 4, None, 0, 0, 0).status, 201);
    assert_eq!(s.counts("/sda/1/a"), c3("2", "2", "7"));
    assert_eq!(s.req("GET", "/sda/1/a", &[]).text(), "c1\nc2\n");
    // A policy swift.conf does not know is counted but not named.
    assert_eq!(s.report("/sda/1/a/c7", 5, None, 1, 1, 7).status, 201);
    let h = s.req("HEAD", "/sda/1/a", &[]);
    assert_eq!(h.h("x-account-container-count"), Some("3"));
    assert_eq!(h.headers.keys().filter(|k| k.starts_with("x-account-storage-policy-")).count(), 6);
    let j: serde_json::Value = serde_json::from_slice(&s.req("GET", "/sda/1/a?format=json", &[]).body).unwrap();
    assert_eq!(j[0]["storage_policy"], "gold");
    assert_eq!(j[1]["storage_policy"], "silver");
    assert!(j[2].get("storage_policy").is_none());
    // Auto-create accounts are created by their first container report.
    assert_eq!(s.report("/sda/1/.expiring_objects/1700000000", 2, None, 1, 0, 0).status, 201);
    assert_eq!(s.counts("/sda/1/.expiring_objects"), c3("1", "1", "0"));
    // X-Timestamp is optional here, but must be valid when given.
    let r = s.req(
        "PUT",
        "/sda/1/a/c9",
        &[
            ("X-Timestamp", "soon"),
            ("X-Put-Timestamp", &ts(9)),
            ("X-Delete-Timestamp", "0"),
            ("X-Object-Count", "0"),
            ("X-Bytes-Used", "0"),
        ],
    );
    assert_eq!(r.status, 400);
}

fn listing(s: &Server, query: &str) -> Reply {
    s.req("GET", &format!("/sda/1/a?{query}"), &[])
}

#[test]
fn listings_follow_swift_rules() {
    let s = start("");
    assert_eq!(s.put_account("/sda/1/a", 1).status, 201);
    // Empty account: plain 204, JSON [] 200, XML root 200; headers as HEAD.
    let r = listing(&s, "");
    assert_eq!((r.status, r.h("x-account-container-count")), (204, Some("0")));
    let j = listing(&s, "format=json");
    assert_eq!((j.status, j.text().as_str()), (200, "[]"));
    let x = listing(&s, "format=xml");
    assert_eq!(x.status, 200);
    assert_eq!(x.text(), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<account name=\"a\">\n</account>");
    for name in ["b", "a", "a-x", "a-y-z", "c", "\u{e9}", "Z", "\u{1F954}", "p-q"] {
        let path = format!("/sda/1/a/{}", common::http::quote_path(name));
        assert_eq!(s.report(&path, 2, None, 1, 3, 0).status, 201);
    }
    let plain = listing(&s, "");
    assert_eq!(plain.status, 200);
    assert_eq!(plain.text(), "Z\na\na-x\na-y-z\nb\nc\np-q\n\u{e9}\n\u{1F954}\n");
    assert_eq!(plain.h("x-account-container-count"), Some("9"));
    assert_eq!(plain.h("x-account-object-count"), Some("9"));
    assert_eq!(plain.h("x-account-bytes-used"), Some("27"));
    assert_eq!(plain.h("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(listing(&s, "delimiter=-").text(), "Z\na\na-\nb\nc\np-\n\u{e9}\n\u{1F954}\n");
    assert_eq!(listing(&s, "prefix=a-&delimiter=-").text(), "a-x\na-y-\n");
    assert_eq!(listing(&s, "marker=b&end_marker=%C3%A9").text(), "c\np-q\n");
    assert_eq!(listing(&s, "limit=2&reverse=true").text(), "\u{1F954}\n\u{e9}\n");
    assert_eq!(listing(&s, "reverse=on&marker=c&end_marker=a").text(), "b\na-y-z\na-x\n");
    assert_eq!(listing(&s, "path=a").text(), plain.text(), "path is not an account listing parameter");
    assert_eq!(listing(&s, "limit=abc").text(), plain.text());
    let r = listing(&s, "prefix=zz");
    assert_eq!((r.status, r.body.len()), (204, 0));
    assert_eq!(listing(&s, "prefix=zz&format=json").text(), "[]");
    let r = listing(&s, "limit=10001");
    assert_eq!((r.status, r.text().as_str()), (412, "Maximum limit is 10000"));
    assert_eq!(listing(&s, "limit=10000").status, 200);
    let j = listing(&s, "prefix=a-&delimiter=-&format=json");
    assert_eq!(j.h("content-type"), Some("application/json; charset=utf-8"));
    assert_eq!(
        j.text(),
        r#"[{"name": "a-x", "count": 1, "bytes": 3, "last_modified": "2023-11-14T22:13:22.000000", "storage_policy": "gold"}, {"subdir": "a-y-"}]"#
    );
    let x = s.req("GET", "/sda/1/a?prefix=a-&delimiter=-", &[("Accept", "application/xml")]);
    assert_eq!(x.h("content-type"), Some("application/xml; charset=utf-8"));
    assert_eq!(
        x.text(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<account name=\"a\">\n<container><name>a-x</name><count>1</count>\
         <bytes>3</bytes><last_modified>2023-11-14T22:13:22.000000</last_modified><storage_policy>gold</storage_policy>\
         </container>\n<subdir name=\"a-y-\" />\n</account>"
    );
    assert_eq!(s.req("GET", "/sda/1/a", &[("Accept", "text/xml")]).h("content-type"), Some("text/xml; charset=utf-8"));
    assert_eq!(s.req("GET", "/sda/1/a?format=json", &[("Accept", "text/xml")]).h("content-type"), Some("application/json; charset=utf-8"));
    assert_eq!(s.req("GET", "/sda/1/a", &[("Accept", "image/png")]).status, 406);
    assert_eq!(s.req("GET", "/sda/1/a", &[("Accept", "garbage")]).status, 400);
    assert_eq!(s.req("HEAD", "/sda/1/a", &[("Accept", "image/png")]).status, 406);
    assert_eq!(listing(&s, "marker=%FF").status, 400);
    assert_eq!(s.req("GET", "/sda/1/a/c", &[]).status, 400);
    assert_eq!(s.req("GET", "/sda/1/missing", &[]).status, 404);
}

#[test]
fn bad_input_is_refused_and_writes_nothing() {
    let s = start("");
    let r = s.req("PUT", "/sda/1/a", &[]);
    assert_eq!((r.status, r.text().as_str()), (400, "Missing X-Timestamp header"));
    let r = s.req("PUT", "/sda/1/a", &[("X-Timestamp", "yesterday")]);
    assert_eq!((r.status, r.text().as_str()), (400, "Invalid X-Timestamp header"));
    assert_eq!(s.put_account("/sda/1/a%FF", 1).status, 412);
    assert_eq!(s.put_account("/sda/x/a", 1).status, 400);
    assert_eq!(s.put_account("/sda/1", 1).status, 400);
    assert_eq!(s.put_account("/sda/1/a/c/o", 1).status, 400);
    let r = s.put_account(&format!("/sda/1/{}", "a".repeat(257)), 1);
    assert_eq!((r.status, r.text().as_str()), (400, "Account name length of 257 longer than 256"));
    let big = "v".repeat(250);
    let mut hs: Vec<(String, String)> = (0..20).map(|i| (format!("X-Account-Meta-K{i}"), big.clone())).collect();
    hs.push(("X-Timestamp".into(), ts(1)));
    let refs: Vec<(&str, &str)> = hs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let r = s.req("PUT", "/sda/1/a", &refs);
    assert_eq!((r.status, r.text().as_str()), (400, "Total metadata too large; max 4096"));
    let many: Vec<(String, String)> = (0..91).map(|i| (format!("X-Account-Meta-M{i}"), "v".to_string())).collect();
    let mut refs: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let t1 = ts(1);
    refs.push(("X-Timestamp", &t1));
    let r = s.req("PUT", "/sda/1/a", &refs);
    assert_eq!((r.status, r.text().as_str()), (400, "Too many metadata items; max 90"));
    assert!(db_files(&s.devices).is_empty(), "nothing was created");
    assert_eq!(s.put_account("/sda/1/a", 1).status, 201);
    assert_eq!(s.req("POST", "/sda/1/a", &[("X-Account-Meta-A", "1")]).status, 400);
    assert_eq!(s.req("DELETE", "/sda/1/a", &[]).status, 400);
    assert_eq!(s.req("DELETE", "/sda/1/a/c", &[("X-Timestamp", &ts(2))]).status, 400);
    let r = s.req("POST", "/sda/1/a", &refs);
    assert_eq!(r.status, 400);
    assert_eq!(s.req("HEAD", "/sda/1/a", &[]).h("x-account-meta-m0"), None);
    // Container reports need every field, well formed.
    let good = [
        ("X-Put-Timestamp", ts(2)),
        ("X-Delete-Timestamp", "0".to_string()),
        ("X-Object-Count", "1".to_string()),
        ("X-Bytes-Used", "2".to_string()),
        ("X-Backend-Storage-Policy-Index", "0".to_string()),
    ];
    for (i, (name, _)) in good.iter().enumerate().take(4) {
        let missing: Vec<(&str, &str)> = good.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, (k, v))| (*k, v.as_str())).collect();
        let r = s.req("PUT", "/sda/1/a/c", &missing);
        assert_eq!((r.status, r.text()), (400, format!("Missing {name} header")));
    }
    for (name, bad) in [
        ("X-Put-Timestamp", "later"),
        ("X-Delete-Timestamp", "x"),
        ("X-Object-Count", "many"),
        ("X-Bytes-Used", "-1"),
        ("X-Backend-Storage-Policy-Index", "gold"),
    ] {
        let hs: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, if *k == name { bad } else { v.as_str() })).collect();
        assert_eq!(s.req("PUT", "/sda/1/a/c", &hs).status, 400, "{name}: {bad}");
    }
    let long = format!("/sda/1/a/{}", "c".repeat(257));
    let hs: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(s.req("PUT", &long, &hs).status, 400);
    assert_eq!(s.counts("/sda/1/a"), c3("0", "0", "0"));
    assert_eq!(s.req("PUT", "/sda/1/a/c", &hs).status, 201);
    assert_eq!(s.counts("/sda/1/a"), c3("1", "1", "2"));
}

#[test]
fn pending_reports_survive_a_killed_server() {
    let mut s = start("");
    assert_eq!(s.put_account("/sda/1/a", 1).status, 201);
    for i in 0..20 {
        assert_eq!(s.report(&format!("/sda/1/a/c{i}"), 2, None, 1, 1, 0).status, 201);
    }
    // Acknowledged reports are in the pending file, not yet in SQLite.
    assert!(files_under(&s.devices)
        .iter()
        .any(|p| p.to_string_lossy().ends_with(".db.pending") && std::fs::metadata(p).unwrap().len() > 0));
    s.proc.kill();
    let port = s.proc.port;
    let conf = config_path(s.dir.path(), "account");
    s.proc = ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_swift-account-server")), &conf, port);
    assert_eq!(s.counts("/sda/1/a"), c3("20", "20", "20"));
}
