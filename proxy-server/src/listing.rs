//! Listing formats (Swift's `listing_formats` middleware): the proxy asks
//! storage servers for JSON and renders what the client asked for.

use common::http::html_escape;
use serde_json::Value;

/// A listing format a client may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml { text_xml: bool },
    Plain,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Xml { text_xml: false } => "application/xml; charset=utf-8",
            Format::Xml { text_xml: true } => "text/xml; charset=utf-8",
            Format::Plain => "text/plain; charset=utf-8",
        }
    }
}

/// The client's `Accept` header allows none of the listing formats (406).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAcceptable;

/// Chooses the format from `?format=` (json, xml, plain; anything else is
/// plain) or else the `Accept` header.
pub fn negotiate(format_param: Option<&str>, accept: Option<&str>) -> Result<Format, NotAcceptable> {
    if let Some(f) = format_param {
        return Ok(match f.to_ascii_lowercase().as_str() {
            "json" => Format::Json,
            "xml" => Format::Xml { text_xml: false },
            _ => Format::Plain,
        });
    }
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return Ok(Format::Plain) };
    // Offers in Swift's order of preference.
    let offers = [
        ("text/plain", Format::Plain),
        ("application/json", Format::Json),
        ("application/xml", Format::Xml { text_xml: false }),
        ("text/xml", Format::Xml { text_xml: true }),
    ];
    let mut best: Option<(f32, usize, Format)> = None;
    for part in accept.split(',') {
        let mut pieces = part.split(';');
        let mtype = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in pieces {
            if let Some(v) = p.trim().strip_prefix("q=") {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        if q <= 0.0 {
            continue;
        }
        for (i, (offer, fmt)) in offers.iter().enumerate() {
            let (ot, os) = offer.split_once('/').expect("offers are type/subtype");
            let matches = match mtype.split_once('/') {
                Some(("*", "*")) => true,
                Some((t, "*")) => t == ot,
                Some((t, s)) => t == ot && s == os,
                None => false,
            };
            // Specific matches beat wildcards at the same q.
            let specificity = if mtype == *offer { 0 } else { 1 };
            let rank = i + specificity * 10;
            if matches && best.is_none_or(|(bq, br, _)| q > bq || (q == bq && rank < br)) {
                best = Some((q, rank, *fmt));
            }
        }
    }
    best.map(|(_, _, f)| f).ok_or(NotAcceptable)
}

/// Swift's `constrain_req_limit`: a `limit` parameter that is not all
/// digits is dropped (the default applies); one above `max` is a 412.
pub fn constrain_limit(q: &mut Vec<(String, String)>, max: u64) -> Result<(), http::Response<common::http::Body>> {
    let Some(limit) = q.iter().find(|(k, _)| k == "limit").map(|(_, v)| v.clone()) else { return Ok(()) };
    if limit.is_empty() || !limit.bytes().all(|b| b.is_ascii_digit()) {
        q.retain(|(k, _)| k != "limit");
        return Ok(());
    }
    if limit.parse::<u64>().map_or(true, |l| l > max) {
        return Err(common::http::text(http::StatusCode::PRECONDITION_FAILED, format!("Maximum limit is {max}")));
    }
    Ok(())
}

/// Renders a container listing (JSON array from the container server).
pub fn render_container(format: Format, container: &str, items: &[Value]) -> String {
    match format {
        Format::Json => serde_json::to_string(items).unwrap_or_else(|_| "[]".into()),
        Format::Plain => plain(items),
        Format::Xml { .. } => {
            let mut out = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"{}\">", html_escape(container));
            for item in items {
                if let Some(sub) = item.get("subdir").and_then(Value::as_str) {
                    out.push_str(&format!("<subdir name=\"{0}\"><name>{0}</name></subdir>", html_escape(sub)));
                    continue;
                }
                out.push_str("<object>");
                for key in ["name", "hash", "bytes", "content_type", "last_modified"] {
                    if let Some(v) = item.get(key) {
                        out.push_str(&format!("<{key}>{}</{key}>", html_escape(&value_text(v))));
                    }
                }
                // Anything else the server reported (e.g. symlink_path).
                if let Some(obj) = item.as_object() {
                    for (k, v) in obj {
                        if !["name", "hash", "bytes", "content_type", "last_modified"].contains(&k.as_str()) {
                            out.push_str(&format!("<{k}>{}</{k}>", html_escape(&value_text(v))));
                        }
                    }
                }
                out.push_str("</object>");
            }
            out.push_str("</container>");
            out
        }
    }
}

/// Renders an account listing.
pub fn render_account(format: Format, account: &str, items: &[Value]) -> String {
    match format {
        Format::Json => serde_json::to_string(items).unwrap_or_else(|_| "[]".into()),
        Format::Plain => plain(items),
        Format::Xml { .. } => {
            let mut out = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<account name=\"{}\">", html_escape(account));
            for item in items {
                if let Some(sub) = item.get("subdir").and_then(Value::as_str) {
                    out.push_str(&format!("<subdir name=\"{0}\"><name>{0}</name></subdir>", html_escape(sub)));
                    continue;
                }
                out.push_str("<container>");
                const KNOWN: [&str; 4] = ["name", "count", "bytes", "last_modified"];
                for key in KNOWN {
                    if let Some(v) = item.get(key) {
                        out.push_str(&format!("<{key}>{}</{key}>", html_escape(&value_text(v))));
                    }
                }
                // e.g. storage_policy, which Swift's account listings carry.
                if let Some(obj) = item.as_object() {
                    for (k, v) in obj.iter().filter(|(k, _)| !KNOWN.contains(&k.as_str())) {
                        out.push_str(&format!("<{k}>{}</{k}>", html_escape(&value_text(v))));
                    }
                }
                out.push_str("</container>");
            }
            out.push_str("</account>");
            out
        }
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn plain(items: &[Value]) -> String {
    let mut out = String::new();
    for item in items {
        let name = item.get("name").or_else(|| item.get("subdir")).and_then(Value::as_str).unwrap_or_default();
        out.push_str(name);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn negotiation_follows_format_then_accept() {
        assert_eq!(negotiate(Some("json"), Some("text/plain")), Ok(Format::Json));
        assert_eq!(negotiate(Some("bogus"), None), Ok(Format::Plain));
        assert_eq!(negotiate(None, Some("application/json")), Ok(Format::Json));
        assert_eq!(negotiate(None, Some("text/xml")), Ok(Format::Xml { text_xml: true }));
        assert_eq!(negotiate(None, Some("*/*")), Ok(Format::Plain));
        assert_eq!(negotiate(None, Some("application/json;q=0.5, text/plain;q=0.1")), Ok(Format::Json));
        assert_eq!(negotiate(None, Some("image/png")), Err(NotAcceptable));
    }

    #[test]
    fn renderings() {
        let items =
            vec![json!({"name": "a&b", "hash": "h", "bytes": 1, "content_type": "t", "last_modified": "x"}), json!({"subdir": "d/"})];
        assert_eq!(render_container(Format::Plain, "c", &items), "a&b\nd/\n");
        let xml = render_container(Format::Xml { text_xml: false }, "c<", &items);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"c&lt;\"><object><name>a&amp;b</name>"));
        assert!(xml.ends_with("<subdir name=\"d/\"><name>d/</name></subdir></container>"));
    }
}
