//! A config option nothing reads gets a warning at start-up that names the
//! file, the line, the section and the key (the program still runs).

use std::process::Command;

#[test]
fn an_unknown_option_is_named_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let devices = dir.path().join("node");
    std::fs::create_dir_all(devices.join("sda")).unwrap();
    std::fs::write(
        dir.path().join("swift.conf"),
        "[swift-hash]\nswift_hash_path_prefix = p\nswift_hash_path_suffix = s\n[storage-policy:0]\nname = gold\ndefault = yes\n",
    )
    .unwrap();
    let conf = dir.path().join("object-server.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\ndevices = {}\nmount_check = false\nswift_dir = {}\nrecon_cache_path = {}\n\
             [object-auditor]\nconcurrancy = 2\ninterval = 30\n[object-auditr]\nconcurrency = 1\n",
            devices.display(),
            dir.path().display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_swift-object-auditor")).arg(&conf).arg("once").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = conf.display().to_string();
    assert!(stderr.contains(&format!("{file}:7: [object-auditor] concurrancy: unknown option")), "{stderr}");
    assert!(stderr.contains("unknown section [object-auditr]"), "{stderr}");
    assert!(!stderr.contains("] interval: unknown"), "{stderr}");
}
