//! Where an account, container or object lives: the report of
//! `swift-get-nodes` (Swift's `swift/cli/info.py` `print_item_locations`).

use crate::ring::RingTable;
use common::hash::HashPathConf;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::json;
use std::fmt::Write;

/// Python's `urllib.parse.quote` safe set: letters, digits, `_.-~` and `/`.
const QUOTE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~').remove(b'/');

fn quote(s: &str) -> String {
    utf8_percent_encode(s, QUOTE).to_string()
}

/// What to look up.
pub struct Target<'a> {
    pub account: Option<&'a str>,
    pub container: Option<&'a str>,
    pub object: Option<&'a str>,
    /// Look up a partition directly instead of a name.
    pub partition: Option<u32>,
}

/// Why a lookup could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("No target specified")]
    NoTarget,
    #[error("No account specified")]
    NoAccount,
    #[error("No container specified")]
    NoContainer,
    #[error("Partition {0} is not in the ring (it has {1} partitions)")]
    BadPartition(u32, usize),
}

/// The partition, name hash, primaries and handoffs of a target.
pub struct Locations {
    pub partition: u32,
    pub hash: Option<String>,
    pub primaries: Vec<u32>,
    pub handoffs: Vec<u32>,
}

/// Looks a target up in a ring; `all_handoffs` lists every handoff rather
/// than as many as there are primaries.
pub fn locate(table: &RingTable, hash: &HashPathConf, t: &Target, all_handoffs: bool) -> Result<Locations, LocationError> {
    if (t.container.is_some() || t.object.is_some()) && t.account.is_none() {
        return Err(LocationError::NoAccount);
    }
    if t.object.is_some() && t.container.is_none() {
        return Err(LocationError::NoContainer);
    }
    let (partition, name_hash) = match (t.partition, t.account) {
        (Some(p), _) => {
            if p as usize >= table.partition_count() {
                return Err(LocationError::BadPartition(p, table.partition_count()));
            }
            (p, None)
        }
        (None, Some(a)) => {
            let digest = hash.digest(a, t.container, t.object).map_err(|_| LocationError::NoContainer)?;
            (table.part_for_digest(&digest), Some(crate::io::hex(&digest)))
        }
        (None, None) => return Err(LocationError::NoTarget),
    };
    let primaries: Vec<u32> = table.part_nodes(partition).iter().map(|d| d.id).collect();
    let handoffs = table.handoffs(partition).map(|d| d.id);
    let handoffs = if all_handoffs { handoffs.collect() } else { handoffs.take(primaries.len()).collect() };
    Ok(Locations { partition, hash: name_hash, primaries, handoffs })
}

/// The `--json` form: `{"partition", "hash", "primaries", "handoffs"}`.
pub fn to_json(loc: &Locations) -> String {
    json!({"partition": loc.partition, "hash": loc.hash, "primaries": loc.primaries, "handoffs": loc.handoffs}).to_string()
}

/// Swift's text report. `ring_name` is the ring file's name without
/// `.ring.gz` (`account`, `container`, `object`, `object-1`).
pub fn to_text(table: &RingTable, ring_name: &str, t: &Target, loc: &Locations) -> String {
    let mut out = String::new();
    let mut datadir = match ring_name.strip_prefix("object-") {
        Some(policy) => format!("objects-{policy}"),
        None => format!("{ring_name}s"),
    };
    if t.account.is_some() && t.partition.is_none() {
        datadir = match (t.container, t.object) {
            (Some(_), Some(_)) => {
                if ring_name.starts_with("object-") {
                    datadir
                } else {
                    "objects".into()
                }
            }
            (Some(_), None) => "containers".into(),
            _ => "accounts".into(),
        };
    }
    let ring_kind = match (t.account, t.container, t.object) {
        (Some(_), Some(_), None) if ring_name != "container" => Some("container"),
        (Some(_), None, None) if ring_name != "account" => Some("account"),
        _ => None,
    };
    if let Some(kind) = ring_kind {
        let what = if kind == "container" { "account/container" } else { "account" };
        let _ = writeln!(out, "WARNING: {what} specified but ring not named \"{kind}\"");
    }
    let policy_index = ring_name.strip_prefix("object-").filter(|_| t.object.is_some() || t.partition.is_some());
    if let Some(a) = t.account {
        let _ = writeln!(out, "\nAccount  \t{}", quote(a));
    }
    if let Some(c) = t.container {
        let _ = writeln!(out, "Container\t{}", quote(c));
    }
    if let Some(o) = t.object {
        let _ = writeln!(out, "Object   \t{}\n\n", quote(o));
    }
    let target = [t.account, t.container, t.object].into_iter().flatten().collect::<Vec<_>>().join("/");
    let _ = writeln!(out, "Partition\t{}", loc.partition);
    let _ = writeln!(out, "Hash     \t{}\n", loc.hash.as_deref().unwrap_or("None"));
    let dev = |id: u32| table.devs()[id as usize].as_ref().expect("placement only names existing devices");
    for &id in &loc.primaries {
        let d = dev(id);
        let _ = writeln!(out, "Server:Port Device\t{}:{} {}", d.ip, d.port, d.device);
    }
    for &id in &loc.handoffs {
        let d = dev(id);
        let _ = writeln!(out, "Server:Port Device\t{}:{} {}\t [Handoff]", d.ip, d.port, d.device);
    }
    out.push_str("\n\n");
    let curl = |id: u32| {
        let d = dev(id);
        let mut cmd = format!(
            "curl -g -I -XHEAD \"http://{}:{}/{}/{}/{}\"",
            crate::device::format_ip(&d.ip),
            d.port,
            d.device,
            loc.partition,
            quote(&target)
        );
        if let Some(p) = policy_index {
            let _ = write!(cmd, " -H \"X-Backend-Storage-Policy-Index: {p}\"");
        }
        cmd.push_str(" --path-as-is");
        cmd
    };
    for &id in &loc.primaries {
        let _ = writeln!(out, "{}", curl(id));
    }
    for &id in &loc.handoffs {
        let _ = writeln!(out, "{} # [Handoff]", curl(id));
    }
    out.push_str("\n\nUse your own device location of servers:\n");
    out.push_str("such as \"export DEVICE=/srv/node\"\n");
    let location = |id: u32| {
        let d = dev(id);
        match &loc.hash {
            Some(h) => format!(
                "ssh {} \"ls -lah ${{DEVICE:-/srv/node*}}/{}/{}/{}/{}/{}\"",
                d.ip,
                d.device,
                datadir,
                loc.partition,
                &h[h.len() - 3..],
                h
            ),
            None => format!("ssh {} \"ls -lah ${{DEVICE:-/srv/node*}}/{}/{}/{}\"", d.ip, d.device, datadir, loc.partition),
        }
    };
    for &id in &loc.primaries {
        let _ = writeln!(out, "{}", location(id));
    }
    for &id in &loc.handoffs {
        let _ = writeln!(out, "{} # [Handoff]", location(id));
    }
    out.push_str(
        "\nnote: `/srv/node*` is used as default value of `devices`, the real value is set in the config file on each storage node.\n",
    );
    out
}
