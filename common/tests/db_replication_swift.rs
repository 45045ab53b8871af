//! DB replication against bytes made by Swift's own code: the `REPLICATE`
//! bodies its replicator sends and the `sync` answers of its
//! `ReplicatorRpc`, written by `fixtures/db_replication/make_fixtures.py`
//! from Swift's brokers. Swift's rows merged into our databases must give
//! Swift's hash (chexor of every row), and our `sync` answer must carry the
//! keys Swift's does.
#![cfg(feature = "db")]

use common::db::broker::db_path;
use common::db::replication::{parse_rpc, ReplicatorRpc, RpcOp, RpcReply, RpcTarget};
use common::db::{AccountBroker, BrokerKind, ContainerBroker, DatabaseBroker, InitParams};
use common::timestamp::Timestamp;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const HASH: &str = "0123456789abcdef0123456789abcabc";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/db_replication").join(name)).unwrap()
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

fn new_db<K: BrokerKind>(dev: &Path, datadir: &str, container: Option<&str>) -> RpcTarget {
    let db_file = db_path(dev, datadir, 1, HASH);
    let init = InitParams {
        account: "a".into(),
        container: container.map(String::from),
        put_timestamp: Timestamp::parse("1700000001.00000").unwrap(),
        storage_policy_index: 0,
        device: "sda".into(),
    };
    DatabaseBroker::<K>::new(db_file.clone()).initialize(&init).unwrap();
    RpcTarget { device_path: dev.to_path_buf(), device: "sda".into(), db_file }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// Our `sync` answer for the database of `t`.
fn our_sync_reply<K: BrokerKind>(t: &RpcTarget) -> Value {
    let body = br#"["sync", 0, "x", "peer-sdb1", "1700000001.00000", "1700000001.00000", "0", ""]"#;
    match ReplicatorRpc::dispatch::<K>(t, parse_rpc(body).unwrap()).unwrap() {
        RpcReply::Json(v) => v,
        other => panic!("{other:?}"),
    }
}

#[test]
fn swifts_container_rows_merge_to_swifts_hash() {
    let dir = tempfile::tempdir().unwrap();
    let t = new_db::<common::db::container::ContainerKind>(dir.path(), "containers", Some("c"));
    let op = parse_rpc(&fixture("container_merge_items.json")).unwrap();
    let RpcOp::MergeItems(rows, Some(source)) = op.clone() else { panic!("{op:?}") };
    assert_eq!(rows.len(), 3);
    assert_eq!(ReplicatorRpc::dispatch::<common::db::container::ContainerKind>(&t, op).unwrap(), RpcReply::Accepted);
    let swift = json("container_info.json");
    let mut b = ContainerBroker::new(t.db_file.clone());
    let ours = b.get_replication_info().unwrap();
    assert_eq!(ours["hash"], swift["hash"], "the rows hash as in Swift");
    assert_eq!((&ours["count"], &ours["bytes_used"]), (&swift["count"], &swift["bytes_used"]));
    assert_eq!(b.get_sync(&source, true).unwrap(), 3, "the sender's last ROWID is its sync point");
}

#[test]
fn swifts_account_rows_merge_to_swifts_hash() {
    let dir = tempfile::tempdir().unwrap();
    let t = new_db::<common::db::account::AccountKind>(dir.path(), "accounts", None);
    let op = parse_rpc(&fixture("account_merge_items.json")).unwrap();
    assert_eq!(ReplicatorRpc::dispatch::<common::db::account::AccountKind>(&t, op).unwrap(), RpcReply::Accepted);
    let swift = json("account_info.json");
    let ours = AccountBroker::new(t.db_file.clone()).get_replication_info().unwrap();
    assert_eq!(ours["hash"], swift["hash"]);
    assert_eq!(ours["count"], swift["count"]);
}

#[test]
fn swifts_sync_and_merge_syncs_bodies_are_understood() {
    let RpcOp::Sync(r) = parse_rpc(&fixture("container_sync.json")).unwrap() else { panic!() };
    assert_eq!(
        (r.point, r.hash.as_str(), r.put_timestamp.as_str(), r.delete_timestamp.as_str()),
        (3, "9bb20e5d0147d3d6a73d8d295d589a0e", "1700000001.00000", "0")
    );
    assert_eq!(r.metadata["X-Container-Meta-Color"].0, "blue");
    let RpcOp::MergeSyncs(points) = parse_rpc(&fixture("container_merge_syncs.json")).unwrap() else { panic!() };
    assert_eq!((points[0].remote_id.as_str(), points[0].sync_point), ("peer-sdb1", 3));
}

#[test]
fn our_sync_answers_carry_swifts_keys() {
    let dir = tempfile::tempdir().unwrap();
    let t = new_db::<common::db::container::ContainerKind>(dir.path(), "containers", Some("c"));
    assert_eq!(keys(&our_sync_reply::<common::db::container::ContainerKind>(&t)), keys(&json("container_sync_reply.json")));
    let dir = tempfile::tempdir().unwrap();
    let t = new_db::<common::db::account::AccountKind>(dir.path(), "accounts", None);
    let ours = our_sync_reply::<common::db::account::AccountKind>(&t);
    let swift = json("account_sync_reply.json");
    assert_eq!(keys(&ours), keys(&swift));
    // Same types too: what Swift's sender reads with json.loads.
    for k in ["max_row", "point", "count"] {
        assert!(ours[k].is_i64() && swift[k].is_i64(), "{k}");
    }
    for k in ["hash", "id", "metadata", "put_timestamp"] {
        assert!(ours[k].is_string() && swift[k].is_string(), "{k}");
    }
}

/// A copy of a database file Swift's broker wrote, where our broker finds
/// it.
fn swift_db(dev: &Path, datadir: &str, name: &str) -> std::path::PathBuf {
    let db_file = db_path(dev, datadir, 1, HASH);
    std::fs::create_dir_all(db_file.parent().unwrap()).unwrap();
    std::fs::write(&db_file, fixture(name)).unwrap();
    db_file
}

/// The arguments of a `REPLICATE` body after the op.
fn args(name: &str) -> Vec<Value> {
    json(name).as_array().unwrap()[1..].to_vec()
}

#[test]
fn what_we_send_from_swifts_container_db_is_what_swift_sends() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = ContainerBroker::new(swift_db(dir.path(), "containers", "container.db"));
    let info = b.get_replication_info().unwrap();
    // Swift sends the first 7 (more only with several policies).
    let ours = common::db::replication::sync_args(&info, "container");
    assert_eq!(ours[..7].to_vec(), args("container_sync_from_db.json"));
    let rows: Vec<Value> = b.get_items_since(-1, 1000).unwrap().into_iter().map(Value::Object).collect();
    assert_eq!(Value::Array(rows), args("container_merge_items.json")[0]);
}

#[test]
fn what_we_send_from_swifts_account_db_is_what_swift_sends() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = AccountBroker::new(swift_db(dir.path(), "accounts", "account.db"));
    let info = b.get_replication_info().unwrap();
    assert_eq!(common::db::replication::sync_args(&info, "account"), args("account_sync_from_db.json"));
    let rows: Vec<Value> = b.get_items_since(-1, 1000).unwrap().into_iter().map(Value::Object).collect();
    assert_eq!(Value::Array(rows), args("account_merge_items_from_db.json")[0]);
}
