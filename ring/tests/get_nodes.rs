//! `swift-get-nodes` against the rings made by Swift's own builder.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rings")
}

fn get_nodes(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_swift-get-nodes")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn json_output_agrees_with_swift_for_fixture_probes() {
    let dir = fixtures();
    let dir_s = dir.to_str().unwrap();
    for name in ["small", "zones", "regions"] {
        let expected: Value = serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.expected.json"))).unwrap()).unwrap();
        let ring = dir.join(format!("{name}.v2.ring.gz"));
        // Every tenth probe keeps the test quick; the library test covers all.
        for probe in expected["probes"].as_array().unwrap().iter().step_by(10) {
            let path = probe["path"].as_str().unwrap();
            let parts: Vec<&str> = path[1..].splitn(3, '/').collect();
            let mut args = vec!["--swift-dir", dir_s, "--json", ring.to_str().unwrap()];
            args.extend(parts.iter().copied());
            let (code, out, err) = get_nodes(&args);
            assert_eq!(code, 0, "{err}");
            let got: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(got["partition"], probe["partition"], "{path}");
            assert_eq!(got["hash"], probe["hash"], "{path}");
            assert_eq!(got["primaries"], probe["primaries"], "{path}");
            let handoffs = got["handoffs"].as_array().unwrap();
            let want = probe["handoffs"].as_array().unwrap();
            assert_eq!(&handoffs[..want.len()], &want[..], "{path}");
            let devices = expected["devices"].as_u64().unwrap() as usize;
            assert_eq!(handoffs.len() + got["primaries"].as_array().unwrap().len(), devices, "all handoffs are listed");
        }
    }
}

#[test]
fn text_output_is_swifts_layout() {
    let dir = fixtures();
    let ring = dir.join("small.ring.gz");
    let (code, out, _) = get_nodes(&["-d", dir.to_str().unwrap(), ring.to_str().unwrap(), "AUTH_acct1/cont1/obj/1/with spaces/é.bin"]);
    assert_eq!(code, 0);
    assert!(out.contains("\nAccount  \tAUTH_acct1\nContainer\tcont1\nObject   \tobj/1/with%20spaces/%C3%A9.bin\n\n\n"), "{out}");
    assert!(out.contains("Partition\t2\nHash     \t2301c6b20a6f6ea2bd55671099ec8040\n\n"), "{out}");
    assert!(out.contains("Server:Port Device\t127.0.0.1:6200 sdb3\n"), "{out}");
    assert!(out.contains("\t [Handoff]\n"), "{out}");
    assert!(
        out.contains("curl -g -I -XHEAD \"http://127.0.0.1:6200/sdb3/2/AUTH_acct1/cont1/obj/1/with%20spaces/%C3%A9.bin\" --path-as-is\n"),
        "{out}"
    );
    assert!(out.contains("/sdb3/objects/2/040/2301c6b20a6f6ea2bd55671099ec8040\""), "{out}");
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let dir = fixtures();
    let d = dir.to_str().unwrap();
    let ring = dir.join("small.ring.gz");
    let ring = ring.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let bad_ring = tmp.path().join("object.ring.gz");
    std::fs::write(&bad_ring, b"\x1f\x8b\x08\x00garbage").unwrap();
    for (args, msg) in [
        (vec!["-d", d, "/nonexistent/object.ring.gz", "a"], "Ring file does not exist"),
        (vec!["-d", d, ring], "No target specified"),
        (vec!["-d", d, "-p", "99", ring], "not in the ring"),
        (vec!["-d", d, bad_ring.to_str().unwrap(), "a"], "gzip"),
        (vec!["-d", tmp.path().to_str().unwrap(), ring, "a"], "swift.conf"),
        (vec!["-d", d, ring, "a", "c", "o", "x"], "Invalid arguments"),
    ] {
        let (code, _, err) = get_nodes(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
}

#[test]
fn partition_lookup_lists_the_partition_nodes() {
    let dir = fixtures();
    let ring = dir.join("small.ring.gz");
    let (code, out, _) = get_nodes(&["-d", dir.to_str().unwrap(), "--json", "-p", "13", ring.to_str().unwrap()]);
    assert_eq!(code, 0);
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["partition"], 13);
    assert_eq!(got["hash"], Value::Null);
}
