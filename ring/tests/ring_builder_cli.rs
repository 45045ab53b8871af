//! Runs the real `swift-ring-builder` binary in a temp dir, the way an
//! operator would, and checks what it prints, its exit codes and the files
//! it leaves behind.

use ring::RingData;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_swift-ring-builder");

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A scratch directory holding one builder, `object.builder`.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn new() -> Cluster {
        Cluster { dir: tempfile::tempdir().expect("temp dir") }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn builder(&self) -> PathBuf {
        self.path("object.builder")
    }

    fn ring(&self) -> PathBuf {
        self.path("object.ring.gz")
    }

    /// `swift-ring-builder <first> <args...>` with `stdin` fed in (or
    /// closed when `None`).
    fn run_on_with_stdin(&self, first: &str, args: &[&str], stdin: Option<&str>) -> Out {
        let mut child = Command::new(BIN)
            .current_dir(self.dir.path())
            .arg(first)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start swift-ring-builder");
        {
            let mut pipe = child.stdin.take().expect("stdin");
            if let Some(text) = stdin {
                pipe.write_all(text.as_bytes()).expect("write stdin");
            }
        }
        let out = child.wait_with_output().expect("run swift-ring-builder");
        Out {
            code: out.status.code().expect("exit code"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn run_on(&self, first: &str, args: &[&str]) -> Out {
        self.run_on_with_stdin(first, args, None)
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_on("object.builder", args)
    }

    /// Runs and insists on `code`, showing the output when it differs.
    fn expect(&self, code: i32, args: &[&str]) -> Out {
        let out = self.run(args);
        assert_eq!(out.code, code, "swift-ring-builder object.builder {args:?}\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
        out
    }

    /// The small fixture ring: 16 partitions, 3 replicas, 4 devices in 4 zones.
    fn small(&self) {
        self.expect(0, &["create", "4", "3", "1"]);
        for z in 1..=4 {
            self.expect(0, &["add", &format!("r1z{z}-127.0.0.1:6200/sdb{z}"), "100"]);
        }
        self.expect(0, &["rebalance", "--seed", "1"]);
    }

    fn builder_bytes(&self) -> Vec<u8> {
        std::fs::read(self.builder()).expect("builder file")
    }
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rings")
}

fn load_ring(path: &Path) -> RingData {
    RingData::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn fixture_command_sequences_build_the_expected_rings() {
    for name in ["small", "zones", "regions"] {
        let commands = std::fs::read_to_string(fixtures().join(format!("{name}.builder-commands.txt"))).unwrap();
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures().join(format!("{name}.expected.json"))).unwrap()).unwrap();
        let c = Cluster::new();
        for line in commands.lines().filter(|l| !l.trim().is_empty()) {
            let line = line.replace("NAME", "object");
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words[0], "swift-ring-builder");
            let out = c.run_on(words[1], &words[2..]);
            // A rebalance may end with a balance/dispersion NOTE (exit 1).
            let ok = if words[2] == "rebalance" { out.code <= 1 } else { out.code == 0 };
            assert!(ok, "{name}: {line} exited {}\n{}{}", out.code, out.stdout, out.stderr);
        }
        let ring = load_ring(&c.ring());
        assert_eq!(ring.part_power() as u64, expected["part_power"].as_u64().unwrap(), "{name}");
        assert_eq!(ring.replica_count(), expected["replicas"].as_f64().unwrap(), "{name}");
        assert_eq!(ring.devs.iter().flatten().count() as u64, expected["devices"].as_u64().unwrap(), "{name}");
        assert_eq!(ring.format_version, Some(1));
        // Every partition replica sits on a distinct live device.
        for part in 0..ring.partition_count() {
            let mut devs: Vec<u32> = ring.replica2part2dev.iter().filter_map(|row| row.get(part).copied()).collect();
            assert!(devs.iter().all(|&d| ring.devs.get(d as usize).is_some_and(Option::is_some)));
            devs.sort_unstable();
            devs.dedup();
            assert_eq!(devs.len(), ring.replica2part2dev.len(), "{name}: partition {part}");
        }
        let listing = c.expect(0, &[]);
        assert!(listing.stdout.contains("Ring file object.ring.gz is up-to-date"), "{}", listing.stdout);
        c.expect(0, &["validate"]);
    }
}

#[test]
fn default_listing_has_swifts_layout() {
    let c = Cluster::new();
    c.small();
    let out = c.expect(0, &[]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("object.builder, build version 5, id "), "{}", out.stdout);
    assert_eq!(lines[1], "16 partitions, 3.000000 replicas, 1 regions, 4 zones, 4 devices, 2-byte IDs, 0.00 balance, 0.00 dispersion");
    assert!(lines[2].starts_with("The minimum number of hours before a partition can be reassigned is 1 ("), "{}", lines[2]);
    assert_eq!(lines[3], "The overload factor is 0.00% (0.000000)");
    assert_eq!(lines[4], "Ring file object.ring.gz is up-to-date");
    assert_eq!(lines[5], "Devices:   id region zone ip address:port replication ip:port  name weight partitions balance flags meta");
    assert_eq!(lines[6], "            0      1    1  127.0.0.1:6200      127.0.0.1:6200  sdb1 100.00         12    0.00       ");
    assert_eq!(lines.len(), 10);

    // A change makes the ring file obsolete; a missing one is reported.
    c.expect(0, &["set_weight", "d0", "50"]);
    assert!(c.expect(0, &[]).stdout.contains("Ring file object.ring.gz is obsolete"));
    std::fs::remove_file(c.ring()).unwrap();
    assert!(c.expect(0, &[]).stdout.contains("Ring file object.ring.gz not found, probably it hasn't been written yet"));
}

#[test]
fn create_add_and_rebalance_write_builder_ring_and_backups() {
    let c = Cluster::new();
    c.expect(0, &["create", "4", "3", "1"]);
    let out = c.expect(0, &["add", "r1z1-127.0.0.1:6200/sdb1", "100", "r1z2-127.0.0.1:6201R10.0.0.1:6301/sdb2_fast", "100"]);
    assert!(out.stdout.contains("Device d0r1z1-127.0.0.1:6200R127.0.0.1:6200/sdb1_\"\" with 100.0 weight got id 0"), "{}", out.stdout);
    assert!(out.stdout.contains("Device d1r1z2-127.0.0.1:6201R10.0.0.1:6301/sdb2_\"fast\" with 100.0 weight got id 1"));
    // No region: Swift's warning on stderr, region 1.
    let out = c.expect(0, &["add", "z3-[2001:DB8::1]:6200/sdb3", "100"]);
    assert!(out.stderr.contains("WARNING: No region specified for z3-[2001:DB8::1]:6200/sdb3. Defaulting to region 1."));
    assert!(
        out.stdout.contains("Device d2r1z3-[2001:db8::1]:6200R[2001:db8::1]:6200/sdb3_\"\" with 100.0 weight got id 2"),
        "{}",
        out.stdout
    );
    // Option form.
    let out = c.expect(
        0,
        &[
            "add",
            "--region",
            "1",
            "--zone",
            "4",
            "--ip",
            "127.0.0.1",
            "--port",
            "6200",
            "--device",
            "sdb4",
            "--weight",
            "100",
            "--meta",
            "m",
        ],
    );
    assert!(out.stdout.contains("Device d3r1z4-127.0.0.1:6200R127.0.0.1:6200/sdb4_\"m\" with 100.0 weight got id 3"), "{}", out.stdout);

    let out = c.expect(0, &["rebalance", "-s", "7"]);
    assert!(out.stdout.contains("Defaulting to --format-version=1."));
    assert!(out.stdout.contains("Reassigned 48 (300.00%) partitions. Balance is now 0.00.  Dispersion is now 0.00"), "{}", out.stdout);
    let ring = load_ring(&c.ring());
    assert_eq!(ring.part_power(), 4);
    assert_eq!(ring.replica_count(), 3.0);
    assert_eq!(ring.devs.iter().flatten().count(), 4);
    let backups: Vec<String> =
        std::fs::read_dir(c.path("backups")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(backups.iter().any(|n| n.ends_with(".object.ring.gz")), "{backups:?}");
    // create and rebalance each leave a builder copy (the same name when
    // they run within one second, as in Swift).
    assert!(backups.iter().any(|n| n.ends_with(".object.builder")), "{backups:?}");

    // Nothing changed and min_part_hours has not passed.
    let out = c.expect(1, &["rebalance"]);
    assert!(out.stdout.contains("No partitions could be reassigned."));
    assert!(out.stdout.contains("The time between rebalances must be at least min_part_hours: 1 hours ("));
}

#[test]
fn format_version_2_and_version_command() {
    let c = Cluster::new();
    c.expect(0, &["create", "4", "3", "1"]);
    for z in 1..=4 {
        c.expect(0, &["add", &format!("r1z{z}-127.0.0.1:6200/sdb{z}"), "100"]);
    }
    let out = c.expect(0, &["rebalance", "--format-version", "2", "--seed", "1"]);
    assert!(!out.stdout.contains("Defaulting to --format-version=1"));
    let ring = load_ring(&c.ring());
    assert_eq!(ring.format_version, Some(2));
    let out = c.run_on("object.ring.gz", &["version"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.stdout.trim(), "object.ring.gz: Serialization version: 2 (2-byte IDs), build version: 5");
    c.expect(0, &["write_ring"]);
    assert_eq!(load_ring(&c.ring()).format_version, Some(1));
    let out = c.run_on("object.ring.gz", &["version"]);
    assert_eq!(out.stdout.trim(), "object.ring.gz: Serialization version: 1 (2-byte IDs), build version: 5");
    c.expect(0, &["write_ring", "--format-version=2", "--dev-id-bytes", "4"]);
    let ring = load_ring(&c.ring());
    assert_eq!((ring.format_version, ring.dev_id_bytes), (Some(2), 4));
}

#[test]
fn search_and_list_parts() {
    let c = Cluster::new();
    c.small();
    let out = c.expect(0, &["search", "z2"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "Devices:    id  region  zone      ip address  port  replication ip  replication port      name weight partitions balance meta"
    );
    assert_eq!(
        lines[1],
        "             1       1     2       127.0.0.1  6200       127.0.0.1              6200      sdb2 100.00         12    0.00 "
    );
    assert_eq!(lines.len(), 2);
    assert_eq!(c.expect(0, &["search", "127.0.0.1:6200"]).stdout.lines().count(), 5);
    assert_eq!(c.expect(0, &["search", "--device", "sdb4"]).stdout.lines().count(), 2);
    let out = c.expect(2, &["search", "d99"]);
    assert_eq!(out.stdout.trim(), "No matching devices found");

    let out = c.expect(0, &["list_parts", "d0"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "Partition   Matches");
    assert_eq!(lines.len(), 13);
    assert!(lines[1..].iter().all(|l| l.ends_with("         1")), "{}", out.stdout);
    // Two devices: every partition has some replica on one of them, and
    // the most-matched come first.
    let out = c.expect(0, &["list_parts", "d0", "d1"]);
    let counts: Vec<u32> = out.stdout.lines().skip(1).map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap()).collect();
    assert_eq!(counts.iter().sum::<u32>(), 24);
    assert!(counts.windows(2).all(|w| w[0] >= w[1]));
    c.expect(2, &["list_parts", "d42"]);
}

#[test]
fn set_weight_region_zone_info_and_remove() {
    let c = Cluster::new();
    c.small();
    let out = c.expect(0, &["set_weight", "d1", "50"]);
    assert_eq!(out.stdout.trim(), "d1r1z2-127.0.0.1:6200R127.0.0.1:6200/sdb2_\"\" weight set to 50.0");

    // Several matches: asks, and no/EOF aborts without touching the file.
    let before = c.builder_bytes();
    let out = c.run_on_with_stdin("object.builder", &["set_weight", "127.0.0.1", "10"], Some("n\n"));
    assert_eq!(out.code, 2);
    assert!(out.stdout.contains("Matched more than one device:"));
    assert!(out.stdout.contains("Are you sure you want to update the weight for these 4 devices? (y/N) "));
    assert!(out.stdout.contains("Aborting device modifications"));
    assert_eq!(c.builder_bytes(), before);
    assert_eq!(c.run(&["set_weight", "127.0.0.1", "10"]).code, 2);
    assert_eq!(c.builder_bytes(), before);
    let out = c.run_on_with_stdin("object.builder", &["set_weight", "127.0.0.1", "10"], Some("y\n"));
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.stdout.matches("weight set to 10.0").count(), 4);
    let out = c.expect(0, &["set_weight", "--ip", "127.0.0.1", "20", "--yes"]);
    assert_eq!(out.stdout.matches("weight set to 20.0").count(), 4);

    let out = c.expect(0, &["set_zone", "d3", "7"]);
    assert!(out.stdout.contains("d3r1z7-127.0.0.1:6200R127.0.0.1:6200/sdb4_\"\" zone set to 7"), "{}", out.stdout);
    let out = c.expect(0, &["set_region", "d3", "2"]);
    assert!(out.stdout.contains("d3r2z7-127.0.0.1:6200R127.0.0.1:6200/sdb4_\"\" region set to 2"), "{}", out.stdout);

    let out = c.expect(0, &["set_info", "d2", "10.0.0.2:6300R10.0.1.2:6301/sdc_fast"]);
    assert_eq!(
        out.stdout.trim(),
        "Device d2r1z3-127.0.0.1:6200R127.0.0.1:6200/sdb3_\"\" is now d2r1z3-10.0.0.2:6300R10.0.1.2:6301/sdc_\"fast\""
    );
    let out = c.expect(0, &["set_info", "--device", "sdc", "--change-meta", "slow"]);
    assert!(out.stdout.contains("is now d2r1z3-10.0.0.2:6300R10.0.1.2:6301/sdc_\"slow\""), "{}", out.stdout);
    // Would collide with device 0.
    let before = c.builder_bytes();
    let out = c.expect(2, &["set_info", "d2", "127.0.0.1:6200/sdb1"]);
    assert_eq!(out.stdout.trim(), "Device 0 already uses 127.0.0.1:6200/sdb1.");
    assert_eq!(c.builder_bytes(), before);
    c.expect(0, &["write_ring"]);
    assert_eq!(load_ring(&c.ring()).devs[2].as_ref().unwrap().ip, "10.0.0.2");

    let out = c.expect(0, &["remove", "d3"]);
    assert_eq!(out.stdout.trim(), "d3r2z7-127.0.0.1:6200R127.0.0.1:6200/sdb4_\"\" marked for removal and will be removed next rebalance.");
    let listing = c.expect(0, &[]).stdout;
    let d3 = listing.lines().find(|l| l.trim_start().starts_with("3 ")).unwrap();
    assert!(d3.contains(" DEL "), "{listing}");
    // Removal bypasses min_part_hours.
    c.run(&["rebalance", "--seed", "3"]);
    let ring = load_ring(&c.ring());
    assert!(ring.devs.get(3).is_none_or(Option::is_none));
    assert!(ring.replica2part2dev.iter().flatten().all(|&d| d != 3));
    c.expect(0, &["validate"]);
}

#[test]
fn replicas_overload_min_part_hours_and_pretend() {
    let c = Cluster::new();
    c.small();
    let out = c.expect(0, &["set_overload", "10%"]);
    assert!(out.stdout.contains("The overload factor is now 10.00% (0.100000)"));
    let out = c.expect(1, &["set_overload", "2"]);
    assert!(out.stdout.contains("!?! Warning overload is greater than 100% !?!"));
    assert!(out.stdout.contains("The overload factor is now 200.00% (2.000000)"));
    c.expect(0, &["set_overload", "0.1"]);
    assert!(c.expect(0, &[]).stdout.contains("The overload factor is 10.00% (0.100000)"));

    let out = c.expect(0, &["set_min_part_hours", "0"]);
    assert_eq!(out.stdout.trim(), "The minimum number of hours before a partition can be reassigned is now set to 0");
    c.expect(0, &["set_min_part_hours", "1"]);
    c.expect(0, &["pretend_min_part_hours_passed"]);
    assert!(c.expect(0, &[]).stdout.contains("is 1 (0:00:00 remaining)"));

    let out = c.expect(0, &["set_replicas", "2"]);
    assert!(out.stdout.contains("The replica count is now 2.000000."));
    // Dropping a replica row moves nothing, so (as in Swift) it takes
    // --force to write the ring.
    let out = c.expect(1, &["rebalance", "--seed", "2"]);
    assert!(out.stdout.contains("No partitions could be reassigned."));
    c.expect(0, &["rebalance", "--seed", "2", "--force"]);
    let ring = load_ring(&c.ring());
    assert_eq!(ring.replica_count(), 2.0);
    c.expect(0, &["validate"]);
}

#[test]
fn dispersion_report() {
    let c = Cluster::new();
    c.small();
    let out = c.expect(0, &["dispersion"]);
    assert_eq!(out.stdout.trim(), "Dispersion is 0.000000, Balance is 0.000000, Overload is 0.00%\nRequired overload is 0.000000%");
    let out = c.expect(0, &["dispersion", "-v"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[3], "Tier                           Parts      %    Max     0     1     2     3");
    assert_eq!(lines[5], "r1                                48   0.00      3     0     0     0    16");
    assert_eq!(lines[6], "r1z1                              12   0.00      1     4    12     0     0");
    assert_eq!(lines[8], "r1z1-127.0.0.1/sdb1               12   0.00      1     4    12     0     0");
    let out = c.expect(0, &["dispersion", r"r\d+z\d+$", "--verbose"]);
    assert_eq!(out.stdout.lines().filter(|l| l.starts_with("r1z")).count(), 4);

    // Everything in one zone: the zone tier is over its share.
    let c = Cluster::new();
    c.expect(0, &["create", "4", "3", "1"]);
    c.expect(0, &["add", "r1z1-10.0.0.1:6200/a", "100", "r1z1-10.0.0.1:6200/b", "100", "r1z1-10.0.0.1:6200/c", "100"]);
    c.expect(0, &["add", "r1z2-10.0.0.2:6200/a", "1"]);
    c.run(&["rebalance", "--seed", "1"]);
    let out = c.run(&["dispersion", "-v"]);
    assert!(out.code <= 1);
    assert!(out.stdout.starts_with("Dispersion is "));
}

#[test]
fn write_builder_rebuilds_from_the_ring() {
    let c = Cluster::new();
    c.small();
    std::fs::rename(c.builder(), c.path("object.builder.lost")).unwrap();
    let out = c.run_on("object.ring.gz", &["write_builder", "2"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out = c.expect(0, &[]);
    assert!(out.stdout.contains("16 partitions, 3.000000 replicas, 1 regions, 4 zones, 4 devices"), "{}", out.stdout);
    assert!(out.stdout.contains("reassigned is 2 ("));
    assert!(out.stdout.contains("Ring file object.ring.gz is up-to-date"), "{}", out.stdout);
    // Never over an existing builder.
    let before = c.builder_bytes();
    let out = c.run_on("object.ring.gz", &["write_builder"]);
    assert_eq!(out.code, 2);
    assert!(out.stdout.contains("Cowardly refusing to overwrite existing Ring Builder file: object.builder"));
    assert_eq!(c.builder_bytes(), before);
}

#[test]
fn ring_file_names_map_to_builders() {
    let c = Cluster::new();
    c.small();
    let out = c.run_on("object.ring.gz", &[]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("Note: using object.builder instead of object.ring.gz as builder file\n"));
    let out = c.run_on("object", &["search", "d0"]);
    assert_eq!(out.code, 2, "plain `object` is a builder named `object`: {}", out.stdout);
    assert!(out.stdout.contains("Ring Builder file does not exist: object"));
}

#[test]
fn bad_input_is_refused_with_exit_2_and_changes_nothing() {
    let c = Cluster::new();
    c.small();
    let ring_before = std::fs::read(c.ring()).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["add", "r1z1-127.0.0.1/sdb9", "100"], "Invalid port in add value"),
        (&["add", "r1-127.0.0.1:6200/sdb9", "100"], "Invalid add value: r1-127.0.0.1:6200/sdb9"),
        (&["add", "r1z1-127.0.0.1:99999/sdb9", "100"], "Invalid port :99999 in add value"),
        (&["add", "r1z1-not_an_ip:6200/sdb9", "100"], "Invalid ip not_an_ip"),
        (&["add", "r1z1-127.0.0.1:6200/", "100"], "Invalid device name"),
        (&["add", "r1z1-127.0.0.1:6200/sdb9", "-5"], "Invalid weight value: r1z1-127.0.0.1:6200/sdb9"),
        (&["add", "r1z1-127.0.0.1:6200/sdb9", "heavy"], "could not convert string to float: 'heavy'"),
        (&["add", "r1z1-127.0.0.1:6200/sdb9"], "swift-ring-builder <builder_file> add"),
        (&["add", "r1z1-127.0.0.1:6200/sdb1", "100"], "Device 0 already uses 127.0.0.1:6200/sdb1."),
        (&["add", "r1z9-127.0.0.1:6200/sdb9", "100", "r1z9-127.0.0.1:6200/sdb9", "100"], "Device 4 already uses 127.0.0.1:6200/sdb9."),
        (
            &["add", "--region", "1", "--zone", "1", "--ip", "127.0.0.1", "--port", "6200", "--device", "sdb9"],
            "Required argument -w/--weight not specified.",
        ),
        (&["search", "bogus"], "Invalid <search-value>: 'bogus'"),
        (&["search", "d99"], "No matching devices found"),
        (&["list_parts", "d99"], "No matching devices found"),
        (&["set_weight", "d99", "10"], "Search value matched 0 devices."),
        (&["set_weight", "d0", "-1"], "Invalid weight value: -1"),
        (&["set_weight", "d0"], "swift-ring-builder <builder_file> set_weight"),
        (&["set_zone", "d0", "x"], "invalid literal for int() with base 10: 'x'"),
        (&["set_info", "d0", "nonsense"], "Invalid set info change value: 'nonsense'"),
        (&["set_info", "d99", "_meta"], "Search value matched 0 devices."),
        (&["remove", "d99"], "Search value matched 0 devices."),
        (&["remove", "z"], "invalid literal for int() with base 10: ''"),
        (&["set_replicas", "0.5"], "Replica count must be at least 1."),
        (&["set_replicas", "many"], "\"many\" is not a valid number."),
        (&["set_overload", "-1"], "Overload must be non-negative."),
        (&["set_overload", "lots%"], "'lots' is not a valid number."),
        (&["set_min_part_hours", "-3"], "min_part_hours must be non-negative (was -3)"),
        (&["create", "0", "3", "1"], "part_power must be at least 1 (was 0)"),
        (&["create", "33", "3", "1"], "part_power must be at most 32 (was 33)"),
        (&["create", "4", "0.5", "1"], "replicas must be at least 1"),
        (&["create", "4", "3", "-1"], "min_part_hours must be non-negative (was -1)"),
        (&["create", "x", "3", "1"], "invalid literal for int() with base 10: 'x'"),
        (&["create", "4", "3"], "swift-ring-builder <builder_file> create"),
        (&["frobnicate"], "Unknown command: frobnicate"),
        (&["dispersion", "("], "Invalid search filter"),
    ];
    for (args, message) in cases {
        let before = c.builder_bytes();
        let out = c.run(args);
        assert_eq!(out.code, 2, "{args:?}\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains(message) || out.stderr.contains(message),
            "{args:?}: expected {message:?}\nstdout:\n{}\nstderr:\n{}",
            out.stdout,
            out.stderr
        );
        assert_eq!(c.builder_bytes(), before, "{args:?} changed the builder");
        assert_eq!(std::fs::read(c.ring()).unwrap(), ring_before, "{args:?} changed the ring");
    }
    // Option errors are optparse-style, still exit 2.
    let out = c.run(&["rebalance", "--format-version", "3"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("option --format-version: invalid choice: '3' (choose from '1', '2')"));
    let out = c.run(&["set_weight", "--bogus", "1"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no such option: --bogus"));
}

#[test]
fn missing_corrupt_and_truncated_files_are_named() {
    let c = Cluster::new();
    let out = c.run(&[]);
    assert_eq!(out.code, 2);
    assert_eq!(out.stdout.trim(), "Ring Builder file does not exist: object.builder");
    let out = c.run(&["rebalance"]);
    assert_eq!(out.code, 2);
    assert!(!c.builder().exists());

    // Version and write_builder on a missing ring.
    let out = c.run_on("object.ring.gz", &["version"]);
    assert_eq!(out.code, 2);
    assert!(out.stdout.contains("object.ring.gz"), "{}", out.stdout);
    let out = c.run_on("object.ring.gz", &["write_builder", "1"]);
    assert_eq!(out.code, 2);
    assert!(out.stdout.contains("object.ring.gz"), "{}", out.stdout);
    assert!(!c.builder().exists());

    // A corrupt builder.
    std::fs::write(c.builder(), b"this is not a builder").unwrap();
    for args in [&[][..], &["add", "r1z1-127.0.0.1:6200/sdb1", "100"][..], &["rebalance"][..]] {
        let out = c.run(args);
        assert_eq!(out.code, 2);
        assert!(out.stdout.starts_with("Problem occurred while reading builder file: object.builder."), "{}", out.stdout);
        assert_eq!(std::fs::read(c.builder()).unwrap(), b"this is not a builder");
    }

    // A truncated builder and a truncated ring.
    let c = Cluster::new();
    c.small();
    let bytes = c.builder_bytes();
    std::fs::write(c.builder(), &bytes[..bytes.len() / 2]).unwrap();
    let out = c.run(&["search", "d0"]);
    assert_eq!(out.code, 2);
    assert!(out.stdout.starts_with("Problem occurred while reading builder file: object.builder."), "{}", out.stdout);
    std::fs::write(c.builder(), &bytes).unwrap();
    let ring = std::fs::read(c.ring()).unwrap();
    std::fs::write(c.ring(), &ring[..ring.len() / 2]).unwrap();
    let out = c.run_on("object.ring.gz", &["version"]);
    assert_eq!(out.code, 2);
    assert!(out.stdout.contains("object.ring.gz"), "{}", out.stdout);
    let out = c.expect(0, &[]);
    assert!(out.stdout.contains("Ring file object.ring.gz is invalid: "), "{}", out.stdout);

    // Validate before any rebalance.
    let c = Cluster::new();
    c.expect(0, &["create", "4", "3", "1"]);
    let out = c.expect(2, &["validate"]);
    assert!(out.stdout.contains("did you forget to rebalance?"));
    let out = c.expect(2, &["rebalance"]);
    assert!(out.stdout.contains("An error has occurred during ring validation."), "{}", out.stdout);
    let out = c.expect(2, &["list_parts", "d0"]);
    assert!(out.stdout.contains("is not rebalanced yet. Please rebalance first."));
}

#[test]
fn no_arguments_prints_usage() {
    let out = Command::new(BIN).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("swift-ring-builder 1.3\n"));
    assert!(text.contains("Exit codes: 0 = operation successful"));
}
