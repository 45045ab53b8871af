//! Start-up of the real `swift-proxy-server` binary: a bad or incomplete
//! configuration stops it with a message that says what is wrong.

use std::process::Command;

fn run(conf: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy-server.conf");
    std::fs::write(&path, conf.replace("$DIR", dir.path().to_str().unwrap())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_swift-proxy-server")).arg(&path).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_configs_stop_start_up_with_a_clear_message() {
    let (code, err) = run("[DEFAULT]\nbind_port = 70000\n[app:proxy-server]\nuse = egg:swift#proxy\n");
    assert_ne!(code, 0);
    assert!(err.contains("bind_port"), "{err}");

    let (code, err) = run("[DEFAULT]\nbind_port = 0\nswift_dir = $DIR/nowhere\n[app:proxy-server]\nuse = egg:swift#proxy\n");
    assert_ne!(code, 0);
    assert!(err.contains("swift.conf"), "{err}");

    let (code, err) = run("[DEFAULT]\nthis is not ini\n");
    assert_ne!(code, 0);
    assert!(err.contains("proxy-server.conf:2"), "{err}");

    let (code, err) = run("[DEFAULT]\nnode_timeout = soon\n[app:proxy-server]\nuse = egg:swift#proxy\n");
    assert_ne!(code, 0);
    assert!(err.contains("node_timeout"), "{err}");
}

#[test]
fn missing_rings_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("swift.conf"), "[swift-hash]\nswift_hash_path_suffix = x\n").unwrap();
    let conf = dir.path().join("proxy-server.conf");
    std::fs::write(
        &conf,
        format!("[DEFAULT]\nbind_port = 0\nswift_dir = {}\n[app:proxy-server]\nuse = egg:swift#proxy\n", dir.path().display()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_swift-proxy-server")).arg(&conf).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("account.ring.gz"), "{err}");
}

#[test]
fn a_pipeline_filter_this_proxy_cannot_run_stops_start_up() {
    // Start-up stops before it needs rings: the pipeline is checked first.
    let (code, err) = run("[DEFAULT]\nbind_port = 0\n[pipeline:main]\npipeline = catch_errors keystone proxy-server\n\
         [filter:catch_errors]\nuse = egg:swift#catch_errors\n[filter:keystone]\nuse = egg:swift#keystoneauth\n\
         [app:proxy-server]\nuse = egg:swift#proxy\n");
    assert_ne!(code, 0);
    assert!(err.contains("[filter:keystone]") && err.contains("keystoneauth"), "{err}");
    let (code, err) =
        run("[DEFAULT]\nbind_port = 0\n[pipeline:main]\npipeline = nosuch proxy-server\n[app:proxy-server]\nuse = egg:swift#proxy\n");
    assert_ne!(code, 0);
    assert!(err.contains("[filter:nosuch]"), "{err}");
}
