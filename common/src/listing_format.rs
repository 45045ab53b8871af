//! The output formats of account and container listings, written once for
//! the proxy's `listing_formats` middleware and for the container and
//! account servers: the choice of format (`?format=`, then `Accept`, as
//! Swift's `listing_formats.get_listing_content_type` and swob's
//! `Accept.best_match`), XML as Swift's `container_to_xml` and
//! `account_to_xml` write it through ElementTree, and JSON strings as
//! Python's `json.dumps` writes them.

use std::borrow::Cow;

/// The output formats of a listing, by content type, in Swift's order of
/// preference.
pub const LISTING_CONTENT_TYPES: [&str; 4] = ["text/plain", "application/json", "application/xml", "text/xml"];

/// Why no output format could be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// The `Accept` header does not parse: 400 Bad Request.
    #[error("Invalid Accept header")]
    BadAccept,
    /// `Accept` allows none of the formats: 406 Not Acceptable.
    #[error("Not Acceptable")]
    NotAcceptable,
}

/// Swift's `get_listing_content_type`: a non-empty `?format=` (`json`,
/// `xml`, `plain`, any case; anything else means plain) stands in for
/// `Accept`; an absent or empty `Accept` means `text/plain`. Returns one of
/// [`LISTING_CONTENT_TYPES`].
pub fn listing_content_type(format: Option<&str>, accept: Option<&str>) -> Result<&'static str, NegotiationError> {
    let accept = match format.filter(|f| !f.is_empty()) {
        Some(f) => Some(match f.to_ascii_lowercase().as_str() {
            "json" => "application/json",
            "xml" => "application/xml",
            _ => "text/plain",
        }),
        None => accept,
    };
    best_match(accept.unwrap_or(""), &LISTING_CONTENT_TYPES)
}

/// swob's `Accept.best_match`: media ranges sorted by quality, exact types
/// before globs at equal quality, otherwise in the header's order; the
/// first range that matches one of `options` (tried in order) wins. An
/// empty header takes the first option. As in Swift, types compare
/// case-sensitively and `q=0` still matches.
pub fn best_match(header: &str, options: &[&'static str]) -> Result<&'static str, NegotiationError> {
    if header.is_empty() {
        return options.first().copied().ok_or(NegotiationError::NotAcceptable);
    }
    let mut ranges: Vec<(&str, &str, f64, bool)> = Vec::new();
    for item in header.split(',') {
        let (typ, sub, params) = parse_media_range(item).ok_or(NegotiationError::BadAccept)?;
        let mut quality = 1.0;
        let mut seen_q = false;
        // Split as Swift does, after the syntax check: a quoted value
        // holding ';' or '=' is refused here, as there.
        for param in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let mut kv = param.split('=');
            let (Some(name), Some(value), None) = (kv.next(), kv.next(), kv.next()) else {
                return Err(NegotiationError::BadAccept);
            };
            if name.trim() == "q" {
                if seen_q {
                    return Err(NegotiationError::BadAccept);
                }
                seen_q = true;
                quality = value.trim().parse::<f64>().map_err(|_| NegotiationError::BadAccept)?;
            }
        }
        ranges.push((typ, sub, quality, typ != "*" && sub != "*"));
    }
    // Stable, best first (Python's sort(reverse=True) is stable too).
    ranges.sort_by(|a, b| b.2.partial_cmp(&a.2).unwrap_or(std::cmp::Ordering::Equal).then(b.3.cmp(&a.3)));
    for (typ, sub, _, _) in ranges {
        for option in options {
            let (ot, os) = option.split_once('/').expect("options are type/subtype");
            if (typ == "*" || typ == ot) && (sub == "*" || sub == os) {
                return Ok(option);
            }
        }
    }
    Err(NegotiationError::NotAcceptable)
}

/// RFC 2616 `token` characters.
fn is_token_char(c: char) -> bool {
    !(c.is_ascii_control() || c == ' ' || "()<>@,;:\\\"/[]?={}".contains(c))
}

/// Splits off the leading token of `s` (possibly empty).
fn token(s: &str) -> (&str, &str) {
    let end = s.find(|c| !is_token_char(c)).unwrap_or(s.len());
    s.split_at(end)
}

/// One media range of `Accept` as swob's `Accept.acc_pattern` reads it:
/// `type/subtype` then `; name=value` parameters (token or quoted-string
/// values), with optional whitespace around. Returns the type, the subtype
/// and the parameter text.
fn parse_media_range(item: &str) -> Option<(&str, &str, &str)> {
    let item = item.trim_start();
    let (typ, rest) = token(item);
    let rest = rest.strip_prefix('/')?;
    let (sub, params) = token(rest);
    if typ.is_empty() || sub.is_empty() {
        return None;
    }
    let mut s = params;
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Some((typ, sub, params));
        }
        s = s.strip_prefix(';')?.trim_start();
        let (name, rest) = token(s);
        if name.is_empty() {
            return None;
        }
        s = rest.trim_start().strip_prefix('=')?.trim_start();
        if let Some(quoted) = s.strip_prefix('"') {
            // qdtext or backslash-escaped pairs, up to the closing quote.
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => {
                        chars.next()?;
                    }
                    (i, '"') => break i,
                    _ => {}
                }
            };
            s = &quoted[end + 1..];
        } else {
            let (value, rest) = token(s);
            if value.is_empty() {
                return None;
            }
            s = rest;
        }
    }
}

/// A JSON value written as Python's `json.dumps` writes it (`", "` and
/// `": "` separators, ASCII only); object keys in `serde_json`'s order.
pub fn push_py_json(out: &mut String, v: &serde_json::Value) {
    match v {
        serde_json::Value::Null => out.push_str("null"),
        serde_json::Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        serde_json::Value::Number(n) => out.push_str(&n.to_string()),
        serde_json::Value::String(s) => push_json_str(out, s),
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_py_json(out, item);
            }
            out.push(']');
        }
        serde_json::Value::Object(map) => push_py_object(out, map.iter()),
    }
}

/// A JSON object of `pairs`, written as `push_py_json` writes one.
pub fn push_py_object<'a>(out: &mut String, pairs: impl Iterator<Item = (&'a String, &'a serde_json::Value)>) {
    out.push('{');
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_json_str(out, k);
        out.push_str(": ");
        push_py_json(out, v);
    }
    out.push('}');
}

/// Appends `s` as a JSON string the way Python's `json.dumps` writes it
/// (`ensure_ascii`: every character outside printable ASCII as `\uXXXX`,
/// surrogate pairs above the BMP).
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// The declaration Swift's `to_xml` puts before every XML listing.
pub const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Escapes XML character data as ElementTree does (`&`, `<`, `>`).
pub fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Escapes an XML attribute value as ElementTree does.
pub fn xml_attr(s: &str) -> String {
    xml_text(s).replace('"', "&quot;").replace('\r', "&#13;").replace('\n', "&#10;").replace('\t', "&#09;")
}

/// Appends `<tag>text</tag>`, or ElementTree's `<tag />` when the text is
/// empty.
pub fn push_xml_element(out: &mut String, tag: &str, text: &str) {
    if text.is_empty() {
        out.push_str(&format!("<{tag} />"));
    } else {
        out.push_str(&format!("<{tag}>{}</{tag}>", xml_text(text)));
    }
}

/// One entry of a listing to write as XML: a subdir, or a record's fields
/// (tag and text) in the order they are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlEntry<'a> {
    Subdir(Cow<'a, str>),
    Record(Vec<(&'static str, Cow<'a, str>)>),
}

/// Swift's `container_to_xml`: `<container name=...>` holding an `<object>`
/// per record and `<subdir name=...><name>...</name></subdir>` per subdir;
/// a short tag when empty.
pub fn container_to_xml<'a>(container: &str, entries: impl IntoIterator<Item = XmlEntry<'a>>) -> String {
    let mut out = format!("{XML_DECLARATION}<container name=\"{}\"", xml_attr(container));
    let mut empty = true;
    for entry in entries {
        if empty {
            out.push('>');
            empty = false;
        }
        match entry {
            XmlEntry::Subdir(sub) => {
                out.push_str(&format!("<subdir name=\"{}\">", xml_attr(&sub)));
                push_xml_element(&mut out, "name", &sub);
                out.push_str("</subdir>");
            }
            XmlEntry::Record(fields) => push_record(&mut out, "object", &fields),
        }
    }
    out.push_str(if empty { " />" } else { "</container>" });
    out
}

/// Swift's `account_to_xml`: the root's text and each child's tail are a
/// newline (so even an empty account is not a short tag), a `<container>`
/// per record, a subdir is a short tag.
pub fn account_to_xml<'a>(account: &str, entries: impl IntoIterator<Item = XmlEntry<'a>>) -> String {
    let mut out = format!("{XML_DECLARATION}<account name=\"{}\">\n", xml_attr(account));
    for entry in entries {
        match entry {
            XmlEntry::Subdir(sub) => out.push_str(&format!("<subdir name=\"{}\" />", xml_attr(&sub))),
            XmlEntry::Record(fields) => push_record(&mut out, "container", &fields),
        }
        out.push('\n');
    }
    out.push_str("</account>");
    out
}

fn push_record(out: &mut String, tag: &str, fields: &[(&'static str, Cow<'_, str>)]) {
    out.push_str(&format!("<{tag}>"));
    for (field, text) in fields {
        push_xml_element(out, field, text);
    }
    out.push_str(&format!("</{tag}>"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_follows_format_then_accept() {
        assert_eq!(listing_content_type(None, None), Ok("text/plain"));
        assert_eq!(listing_content_type(Some("json"), Some("text/xml")), Ok("application/json"));
        assert_eq!(listing_content_type(Some("XML"), None), Ok("application/xml"));
        assert_eq!(listing_content_type(Some("bogus"), Some("application/json")), Ok("text/plain"));
        // An empty ?format= leaves the choice to Accept.
        assert_eq!(listing_content_type(Some(""), Some("application/json")), Ok("application/json"));
        assert_eq!(listing_content_type(None, Some("")), Ok("text/plain"));
        assert_eq!(listing_content_type(None, Some("application/json")), Ok("application/json"));
        assert_eq!(listing_content_type(None, Some("text/xml")), Ok("text/xml"));
        assert_eq!(listing_content_type(None, Some("*/*")), Ok("text/plain"));
        assert_eq!(listing_content_type(None, Some("text/*")), Ok("text/plain"));
        assert_eq!(listing_content_type(None, Some("application/*")), Ok("application/json"));
        assert_eq!(listing_content_type(None, Some("text/*;q=0.5, application/xml")), Ok("application/xml"));
        assert_eq!(listing_content_type(None, Some("application/json;q=0.5, text/plain;q=0.1")), Ok("application/json"));
        assert_eq!(listing_content_type(None, Some("image/png")), Err(NegotiationError::NotAcceptable));
    }

    #[test]
    fn accept_ranks_like_swob() {
        let m = |h| best_match(h, &LISTING_CONTENT_TYPES);
        // At equal quality exact types beat globs, then the header's
        // order decides; q=0 still matches.
        assert_eq!(m("*/*, application/xml"), Ok("application/xml"));
        assert_eq!(m("application/xml, application/json"), Ok("application/xml"));
        assert_eq!(m("application/json;q=0"), Ok("application/json"));
        assert_eq!(m("application/json; charset=\"utf-8\"; q=0.9 , text/xml"), Ok("text/xml"));
        assert_eq!(m("a/b;c=\"x\\\"y;z\""), Err(NegotiationError::BadAccept), "split on ';' after the syntax check");
        assert_eq!(m("Application/JSON"), Err(NegotiationError::NotAcceptable));
    }

    #[test]
    fn malformed_accept_is_refused() {
        for bad in [
            "json",
            "garbage",
            "text/plain,",
            "text/plain;",
            "text/plain;;q=1",
            "text/plain;q",
            "text/plain;q=",
            "text/plain;q=x",
            "text/plain;q=\"1\"",
            "text/plain;q=1;q=1",
            "text/plain;c=x y",
            "a/b;c=\"x",
            "a/b;c=\"x=y\"",
            "text /plain",
            " ",
        ] {
            assert_eq!(listing_content_type(None, Some(bad)), Err(NegotiationError::BadAccept), "{bad:?}");
        }
    }

    #[test]
    fn json_strings_as_python_writes_them() {
        let mut s = String::new();
        push_json_str(&mut s, "\u{1F954}\u{7f}\u{e9}\"\\\n\t/");
        assert_eq!(s, "\"\\ud83e\\udd54\\u007f\\u00e9\\\"\\\\\\n\\t/\"");
    }

    #[test]
    fn xml_escapes_as_elementtree() {
        assert_eq!(xml_text("a&b<c>\"'\n"), "a&amp;b&lt;c&gt;\"'\n");
        assert_eq!(xml_attr("a&b<c>\"'\r\n\t"), "a&amp;b&lt;c&gt;&quot;'&#13;&#10;&#09;");
        let mut out = String::new();
        push_xml_element(&mut out, "hash", "");
        push_xml_element(&mut out, "name", "<");
        assert_eq!(out, "<hash /><name>&lt;</name>");
    }

    #[test]
    fn listing_documents() {
        let record = || XmlEntry::Record(vec![("name", "a&b".into()), ("hash", "".into())]);
        assert_eq!(
            container_to_xml("c\"", [record(), XmlEntry::Subdir("d/".into())]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"c&quot;\"><object><name>a&amp;b</name><hash /></object>\
             <subdir name=\"d/\"><name>d/</name></subdir></container>"
        );
        assert_eq!(container_to_xml("c", []), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"c\" />");
        assert_eq!(
            account_to_xml("a", [record(), XmlEntry::Subdir("d/".into())]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<account name=\"a\">\n<container><name>a&amp;b</name><hash /></container>\n\
             <subdir name=\"d/\" />\n</account>"
        );
        assert_eq!(account_to_xml("a", []), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<account name=\"a\">\n</account>");
    }
}
