//! Listings shared by container and account databases: the name-range walk
//! with `prefix`, `delimiter`, `marker`, `end_marker`, `reverse`, `limit`
//! and `path` (Swift's `list_objects_iter` / `list_containers_iter`), and
//! rendering as JSON, XML or plain text byte-for-byte as Swift does. The
//! choice of format and the XML and JSON writing are
//! [`crate::listing_format`]'s, shared with the proxy.
//!
//! Names compare as SQLite compares TEXT: by UTF-8 bytes, which is code
//! point order (Rust's `str` ordering too).

use crate::listing_format::{account_to_xml, container_to_xml, push_json_str, XmlEntry};
// The DB servers' request and response code reach these through here.
pub use crate::listing_format::{listing_content_type, NegotiationError, LISTING_CONTENT_TYPES};

/// What a listing request asks for, already validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListingParams {
    /// Most entries to return (subdirs count).
    pub limit: usize,
    /// Exclusive lower bound ("" = none).
    pub marker: String,
    /// Exclusive upper bound ("" = none).
    pub end_marker: String,
    pub prefix: Option<String>,
    /// Ignored when empty.
    pub delimiter: Option<String>,
    /// Legacy `path=`: prefix `path/` with delimiter `/`, the path itself
    /// excluded.
    pub path: Option<String>,
    /// Descending order; `marker` and `end_marker` swap roles.
    pub reverse: bool,
    /// Include reserved (`\0`-prefixed) names: only for requests with
    /// `X-Backend-Allow-Reserved-Names` (Swift's `allow_reserved`).
    pub allow_reserved: bool,
}

/// One page the walk asks the database for: names in the bounds, ordered
/// (descending when `reverse`), at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    /// Lower bound and whether it is inclusive.
    pub lower: Option<(String, bool)>,
    /// Exclusive upper bound.
    pub upper: Option<String>,
    pub limit: usize,
    pub reverse: bool,
}

impl PageQuery {
    /// The SQL conditions on `name` for this page and their arguments.
    pub fn conditions(&self) -> (Vec<&'static str>, Vec<String>) {
        let mut conds = Vec::new();
        let mut args = Vec::new();
        if let Some(upper) = &self.upper {
            conds.push("name < ?");
            args.push(upper.clone());
        }
        if let Some((lower, inclusive)) = &self.lower {
            conds.push(if *inclusive { "name >= ?" } else { "name > ?" });
            args.push(lower.clone());
        }
        (conds, args)
    }
}

/// A listing entry: a row, or a `subdir` that stands for every name sharing
/// that prefix up to and including the delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListingItem<R> {
    Row(String, R),
    Subdir(String),
}

/// The name after every name that starts with `s`'s last character
/// replaced: `s` minus its last char, plus that char + 1 (Swift's
/// `prefix[:-1] + chr(ord(prefix[-1]) + 1)`).
fn bump_last_char(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    if let Some(last) = chars.pop() {
        let next = match last as u32 + 1 {
            0xD800 => '\u{E000}',
            n => char::from_u32(n).unwrap_or(char::MAX),
        };
        chars.push(next);
    }
    chars.into_iter().collect()
}

/// Walks the listing, asking `fetch` for pages of `(name, row)` until
/// `limit` entries are found or the range is exhausted. With a delimiter,
/// each run of names under one subdir costs one page query: the walk jumps
/// past it.
pub fn list<R, E>(
    params: &ListingParams,
    mut fetch: impl FnMut(&PageQuery) -> Result<Vec<(String, R)>, E>,
) -> Result<Vec<ListingItem<R>>, E> {
    let limit = params.limit;
    let reverse = params.reverse;
    let (mut marker, mut end_marker) =
        if reverse { (params.end_marker.clone(), params.marker.clone()) } else { (params.marker.clone(), params.end_marker.clone()) };
    let mut prefix = params.prefix.clone();
    let mut delimiter = params.delimiter.clone().filter(|d| !d.is_empty());
    let mut path = params.path.clone();
    if let Some(p) = &path {
        let p = if p.is_empty() { String::new() } else { format!("{}/", p.trim_end_matches('/')) };
        prefix = Some(p.clone());
        path = Some(p);
        delimiter = Some("/".to_string());
    } else if delimiter.is_some() && prefix.as_deref().unwrap_or("").is_empty() {
        prefix = Some(String::new());
    }
    let prefix_nonempty = prefix.as_deref().filter(|p| !p.is_empty());
    let end_prefix = prefix_nonempty.map(bump_last_char);
    let orig_marker = marker.clone();
    let mut delim_force_gte = false;
    let mut results: Vec<ListingItem<R>> = Vec::new();
    while results.len() < limit {
        let upper = match (&end_prefix, end_marker.is_empty()) {
            (None, false) => Some(end_marker.clone()),
            (Some(ep), false) if end_marker < *ep => Some(end_marker.clone()),
            (Some(ep), _) => Some(ep.clone()),
            (None, true) => None,
        };
        #[allow(clippy::unnecessary_map_or)] // Option::is_none_or is newer than our MSRV
        let lower = if delim_force_gte {
            delim_force_gte = false;
            Some((marker.clone(), true))
        } else if !marker.is_empty() && prefix_nonempty.map_or(true, |p| marker.as_str() >= p) {
            Some((marker.clone(), false))
        } else {
            prefix_nonempty.map(|p| (p.to_string(), true))
        };
        // Reserved names sort first; without leave they are out of range
        // (Swift's `name >= chr(1)`), so a limit is not spent on them.
        let lower = match lower {
            Some((l, _)) if !params.allow_reserved && l.as_str() < "\u{1}" => Some(("\u{1}".to_string(), true)),
            None if !params.allow_reserved => Some(("\u{1}".to_string(), true)),
            other => other,
        };
        let page = PageQuery { lower, upper, limit: limit - results.len(), reverse };
        let rows = fetch(&page)?;
        let (Some(prefix), Some(delim)) = (prefix.as_deref(), delimiter.as_deref()) else {
            // Without a delimiter the bounds did all the work.
            return Ok(rows.into_iter().map(|(n, r)| ListingItem::Row(n, r)).collect());
        };
        let mut rowcount = 0;
        for (name, row) in rows {
            rowcount += 1;
            if reverse {
                end_marker = name.clone();
            } else {
                marker = name.clone();
            }
            if results.len() >= limit {
                return Ok(results);
            }
            // Every name in range starts with the prefix, so the byte
            // offset is a character boundary.
            let end = name.get(prefix.len()..).and_then(|rest| rest.find(delim)).map(|i| i + prefix.len());
            if let Some(path) = &path {
                if name == *path {
                    continue;
                }
                if let Some(end) = end {
                    if name.len() > end + delim.len() {
                        if reverse {
                            end_marker = name[..end + delim.len()].to_string();
                        } else {
                            marker = format!("{}{}", &name[..end], bump_last_char(delim));
                        }
                        break;
                    }
                }
            } else if let Some(end) = end {
                if reverse {
                    end_marker = name[..end + delim.len()].to_string();
                } else {
                    marker = format!("{}{}", &name[..end], bump_last_char(delim));
                    // The bumped marker may itself be a name; include it.
                    delim_force_gte = true;
                }
                let dir_name = &name[..end + delim.len()];
                if dir_name != orig_marker {
                    results.push(ListingItem::Subdir(dir_name.to_string()));
                }
                break;
            }
            results.push(ListingItem::Row(name, row));
        }
        if rowcount == 0 {
            break;
        }
    }
    Ok(results)
}

/// One object of a container listing, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    pub name: String,
    /// Size in bytes (`swift_bytes` already applied).
    pub bytes: i64,
    /// The ETag.
    pub hash: String,
    /// Content type with any `swift_bytes` parameter removed.
    pub content_type: String,
    /// `YYYY-MM-DDTHH:MM:SS.ffffff`.
    pub last_modified: String,
}

/// One container of an account listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEntry {
    pub name: String,
    /// Objects in the container.
    pub count: i64,
    pub bytes: i64,
    /// `YYYY-MM-DDTHH:MM:SS.ffffff` of the container's put timestamp.
    pub last_modified: String,
    /// Policy name, when known.
    pub storage_policy: Option<String>,
}

/// A rendered listing body.
pub type Rendered = Vec<u8>;

/// Renders a container listing in `content_type` (one of
/// [`LISTING_CONTENT_TYPES`]).
pub fn render_container(entries: &[ListingItem<ObjectEntry>], container: &str, content_type: &str) -> Rendered {
    if content_type.ends_with("/json") {
        render_json(entries, |out, o| {
            // Swift's key order: bytes, hash, name, content_type,
            // last_modified.
            out.push_str(&format!("{{\"bytes\": {}, \"hash\": ", o.bytes));
            push_json_str(out, &o.hash);
            out.push_str(", \"name\": ");
            push_json_str(out, &o.name);
            out.push_str(", \"content_type\": ");
            push_json_str(out, &o.content_type);
            out.push_str(", \"last_modified\": ");
            push_json_str(out, &o.last_modified);
            out.push('}');
        })
    } else if content_type.ends_with("/xml") {
        let entries = entries.iter().map(|e| match e {
            ListingItem::Subdir(s) => XmlEntry::Subdir(s.into()),
            ListingItem::Row(_, o) => XmlEntry::Record(vec![
                ("name", o.name.as_str().into()),
                ("hash", o.hash.as_str().into()),
                ("bytes", o.bytes.to_string().into()),
                ("content_type", o.content_type.as_str().into()),
                ("last_modified", o.last_modified.as_str().into()),
            ]),
        });
        container_to_xml(container, entries).into_bytes()
    } else {
        render_plain(entries.iter().map(|e| match e {
            ListingItem::Subdir(s) => s.as_str(),
            ListingItem::Row(_, o) => o.name.as_str(),
        }))
    }
}

/// Renders an account listing in `content_type`.
pub fn render_account(entries: &[ListingItem<ContainerEntry>], account: &str, content_type: &str) -> Rendered {
    if content_type.ends_with("/json") {
        render_json(entries, |out, c| {
            out.push_str("{\"name\": ");
            push_json_str(out, &c.name);
            out.push_str(&format!(", \"count\": {}, \"bytes\": {}, \"last_modified\": ", c.count, c.bytes));
            push_json_str(out, &c.last_modified);
            if let Some(p) = &c.storage_policy {
                out.push_str(", \"storage_policy\": ");
                push_json_str(out, p);
            }
            out.push('}');
        })
    } else if content_type.ends_with("/xml") {
        let entries = entries.iter().map(|e| match e {
            ListingItem::Subdir(s) => XmlEntry::Subdir(s.into()),
            ListingItem::Row(_, c) => {
                let mut fields = vec![
                    ("name", c.name.as_str().into()),
                    ("count", c.count.to_string().into()),
                    ("bytes", c.bytes.to_string().into()),
                    ("last_modified", c.last_modified.as_str().into()),
                ];
                if let Some(p) = &c.storage_policy {
                    fields.push(("storage_policy", p.as_str().into()));
                }
                XmlEntry::Record(fields)
            }
        });
        account_to_xml(account, entries).into_bytes()
    } else {
        render_plain(entries.iter().map(|e| match e {
            ListingItem::Subdir(s) => s.as_str(),
            ListingItem::Row(_, c) => c.name.as_str(),
        }))
    }
}

/// A JSON array of the entries in Swift's spacing (`", "`, `": "`): a
/// subdir is `{"subdir": ...}`, a row is whatever `row` writes.
fn render_json<R>(entries: &[ListingItem<R>], row: impl Fn(&mut String, &R)) -> Rendered {
    let mut out = String::from("[");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match e {
            ListingItem::Subdir(s) => {
                out.push_str("{\"subdir\": ");
                push_json_str(&mut out, s);
                out.push('}');
            }
            ListingItem::Row(_, r) => row(&mut out, r),
        }
    }
    out.push(']');
    out.into_bytes()
}

/// One name per line, each ending in `\n`.
pub fn render_plain<'a>(names: impl Iterator<Item = &'a str>) -> Rendered {
    let mut out = Vec::new();
    for n in names {
        out.extend_from_slice(n.as_bytes());
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sorted in-memory "table" answering page queries.
    fn fetcher(names: &[&str]) -> impl FnMut(&PageQuery) -> Result<Vec<(String, ())>, ()> {
        let mut sorted: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        sorted.sort();
        move |q: &PageQuery| {
            let mut v: Vec<(String, ())> = sorted
                .iter()
                .filter(|n| q.upper.as_ref().is_none_or(|u| *n < u))
                .filter(|n| match &q.lower {
                    None => true,
                    Some((l, true)) => *n >= l,
                    Some((l, false)) => *n > l,
                })
                .map(|n| (n.clone(), ()))
                .collect();
            if q.reverse {
                v.reverse();
            }
            v.truncate(q.limit);
            Ok(v)
        }
    }

    fn names(items: Vec<ListingItem<()>>) -> Vec<String> {
        items
            .into_iter()
            .map(|i| match i {
                ListingItem::Row(n, _) => n,
                ListingItem::Subdir(s) => format!("{s}(dir)"),
            })
            .collect()
    }

    fn run(all: &[&str], p: ListingParams) -> Vec<String> {
        names(list(&p, fetcher(all)).unwrap())
    }

    #[test]
    fn reserved_names_are_listed_only_when_allowed() {
        let names = ["\0versions\0c", "\0versions\0d", "a", "b"];
        let fetch = |q: &PageQuery| -> Result<Vec<(String, ())>, ()> {
            let mut v: Vec<(String, ())> = names
                .iter()
                .filter(|n| q.lower.as_ref().is_none_or(|(l, inc)| if *inc { **n >= l.as_str() } else { **n > l.as_str() }))
                .filter(|n| q.upper.as_ref().is_none_or(|u| **n < u.as_str()))
                .map(|n| (n.to_string(), ()))
                .collect();
            if q.reverse {
                v.reverse();
            }
            v.truncate(q.limit);
            Ok(v)
        };
        let names_of = |items: Vec<ListingItem<()>>| -> Vec<String> {
            items
                .into_iter()
                .map(|i| match i {
                    ListingItem::Row(n, _) | ListingItem::Subdir(n) => n,
                })
                .collect()
        };
        let p = ListingParams { limit: 2, ..params() };
        assert_eq!(names_of(list(&p, fetch).unwrap()), ["a", "b"]);
        assert_eq!(names_of(list(&ListingParams { reverse: true, ..p.clone() }, fetch).unwrap()), ["b", "a"]);
        let allowed = ListingParams { allow_reserved: true, ..p };
        assert_eq!(names_of(list(&allowed, fetch).unwrap()), ["\0versions\0c", "\0versions\0d"]);
        let prefixed = ListingParams { prefix: Some("\0versions\0".into()), limit: 10, ..params() };
        assert!(list(&prefixed, fetch).unwrap().is_empty());
    }

    fn params() -> ListingParams {
        ListingParams { limit: 10_000, ..Default::default() }
    }

    const ALL: [&str; 8] = ["a", "a/1", "a/2", "a/b/c", "b", "b/x", "c-d", "c/e"];

    #[test]
    fn plain_range_walks() {
        assert_eq!(run(&ALL, params()), ALL);
        assert_eq!(run(&ALL, ListingParams { marker: "a/2".into(), end_marker: "b/x".into(), ..params() }), ["a/b/c", "b"]);
        assert_eq!(run(&ALL, ListingParams { limit: 2, ..params() }), ["a", "a/1"]);
        assert_eq!(run(&ALL, ListingParams { prefix: Some("a/".into()), ..params() }), ["a/1", "a/2", "a/b/c"]);
        assert_eq!(
            run(&ALL, ListingParams { reverse: true, marker: "c-d".into(), end_marker: "a/1".into(), ..params() }),
            ["b/x", "b", "a/b/c", "a/2"]
        );
    }

    #[test]
    fn delimiter_collapses_subdirs() {
        let d = |p: Option<&str>| ListingParams { delimiter: Some("/".into()), prefix: p.map(str::to_string), ..params() };
        assert_eq!(run(&ALL, d(None)), ["a", "a/(dir)", "b", "b/(dir)", "c-d", "c/(dir)"]);
        assert_eq!(run(&ALL, d(Some("a/"))), ["a/1", "a/2", "a/b/(dir)"]);
        assert_eq!(run(&ALL, ListingParams { reverse: true, ..d(None) }), ["c/(dir)", "c-d", "b/(dir)", "b", "a/(dir)", "a"]);
        assert_eq!(run(&ALL, ListingParams { limit: 3, ..d(None) }), ["a", "a/(dir)", "b"]);
        // A marker equal to a subdir does not repeat it.
        assert_eq!(run(&ALL, ListingParams { marker: "a/".into(), ..d(None) }), ["b", "b/(dir)", "c-d", "c/(dir)"]);
    }

    #[test]
    fn path_lists_one_level_without_the_path_itself() {
        let all = ["p", "p/", "p/a", "p/b/", "p/b/c", "p/d", "q"];
        assert_eq!(run(&all, ListingParams { path: Some("p".into()), ..params() }), ["p/a", "p/b/", "p/d"]);
        // As in Swift, a name ending in the delimiter is a row, not a subtree.
        assert_eq!(run(&all, ListingParams { path: Some("".into()), ..params() }), ["p", "p/", "q"]);
    }

    fn obj(name: &str) -> ListingItem<ObjectEntry> {
        ListingItem::Row(
            name.into(),
            ObjectEntry {
                name: name.into(),
                bytes: 3,
                hash: "h".into(),
                content_type: "text/plain".into(),
                last_modified: "2023-11-14T22:13:20.000000".into(),
            },
        )
    }

    #[test]
    fn container_renderings_match_swift_bytes() {
        let items = vec![obj("ü<&>\""), ListingItem::Subdir("d/".into())];
        assert_eq!(
            String::from_utf8(render_container(&items, "c", "application/json")).unwrap(),
            r#"[{"bytes": 3, "hash": "h", "name": "\u00fc<&>\"", "content_type": "text/plain", "last_modified": "2023-11-14T22:13:20.000000"}, {"subdir": "d/"}]"#
        );
        assert_eq!(
            String::from_utf8(render_container(&items, "c&", "application/xml")).unwrap(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"c&amp;\"><object><name>ü&lt;&amp;&gt;\"</name>\
             <hash>h</hash><bytes>3</bytes><content_type>text/plain</content_type>\
             <last_modified>2023-11-14T22:13:20.000000</last_modified></object>\
             <subdir name=\"d/\"><name>d/</name></subdir></container>"
        );
        assert_eq!(render_container(&items, "c", "text/plain"), "ü<&>\"\nd/\n".as_bytes());
        assert_eq!(render_container(&[], "c", "application/json"), b"[]");
        assert!(render_container(&[], "c", "text/plain").is_empty());
        assert!(String::from_utf8(render_container(&[], "c", "text/xml")).unwrap().ends_with("<container name=\"c\" />"));
        // ElementTree writes an empty field as a short tag.
        let ListingItem::Row(n, mut o) = obj("x") else { unreachable!() };
        o.content_type.clear();
        let xml = String::from_utf8(render_container(&[ListingItem::Row(n, o)], "c", "application/xml")).unwrap();
        assert!(xml.contains("<bytes>3</bytes><content_type /><last_modified>"), "{xml}");
        let mut s = String::new();
        push_json_str(&mut s, "\u{1F954}\u{7f}");
        assert_eq!(s, "\"\\ud83e\\udd54\\u007f\"");
    }

    #[test]
    fn account_renderings_match_swift_bytes() {
        let c = ListingItem::Row(
            "c".into(),
            ContainerEntry { name: "c".into(), count: 1, bytes: 2, last_modified: "t".into(), storage_policy: Some("gold".into()) },
        );
        assert_eq!(
            String::from_utf8(render_account(std::slice::from_ref(&c), "a", "application/json")).unwrap(),
            r#"[{"name": "c", "count": 1, "bytes": 2, "last_modified": "t", "storage_policy": "gold"}]"#
        );
        assert_eq!(
            String::from_utf8(render_account(&[c], "a", "application/xml")).unwrap(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<account name=\"a\">\n<container><name>c</name><count>1</count>\
             <bytes>2</bytes><last_modified>t</last_modified><storage_policy>gold</storage_policy></container>\n</account>"
        );
    }
}
