//! The SSYNC wire format, written once for both ends (Swift's
//! `swift/obj/ssync_sender.py` and `ssync_receiver.py`).
//!
//! An SSYNC request is `SSYNC /<dev>/<part>` with a chunked body; the
//! answer is `200` with a chunked body, and both bodies are streams of
//! `\r\n`-terminated lines:
//!
//! ```text
//! sender                                   receiver
//! :MISSING_CHECK: START                    (a blank line at once, so the
//! <hash> <ts_data>[ m:<hex>[,t:<hex>]]      response headers go out)
//! ...
//! :MISSING_CHECK: END
//!                                          :MISSING_CHECK: START
//!                                          <hash> <d|m|dm>   (what it wants)
//!                                          :MISSING_CHECK: END
//! :UPDATES: START
//! PUT /a/c/o            (quoted path)
//! Content-Length: 5     (headers, sorted)
//! X-Timestamp: ...
//!                       (blank line)
//! <5 body bytes>
//! DELETE /a/c/o
//! X-Timestamp: ...
//!
//! :UPDATES: END
//!                                          :UPDATES: START
//!                                          :UPDATES: END
//! ```
//!
//! A receiver that fails says `:ERROR: <status> '<reason>'` and hangs up.
//! This module holds the line encoders and decoders, a line reader over
//! either body, and the channel-fed body both ends write into.

use bytes::{Buf, Bytes, BytesMut};
use common::http::BoxError;
use common::timestamp::Timestamp;
use hyper::body::{Body as HttpBody, Frame};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub const MISSING_CHECK_START: &str = ":MISSING_CHECK: START";
pub const MISSING_CHECK_END: &str = ":MISSING_CHECK: END";
pub const UPDATES_START: &str = ":UPDATES: START";
pub const UPDATES_END: &str = ":UPDATES: END";
/// Prefix of a receiver's error line.
pub const ERROR_PREFIX: &str = ":ERROR:";

// The SSYNC headers (`X-Backend-Ssync-*`, `X-Backend-No-Commit`, ...)
// are in `common::backend_headers`.

/// Why reading or parsing an SSYNC stream failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The peer sent nothing for too long (Swift's `MessageTimeout`).
    #[error("{0} seconds: {1}")]
    Timeout(f64, String),
    /// The stream broke or ended early (Swift's `ChunkReadError`).
    #[error("{0}")]
    Disconnected(String),
    /// The peer spoke, but not SSYNC.
    #[error("{0}")]
    Protocol(String),
}

/// What a partition holds for one object, as offered in a missing check:
/// the time of its `.data` or `.ts`, of its `.meta` and of its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectTimestamps {
    pub data: Timestamp,
    pub meta: Option<Timestamp>,
    pub ctype: Option<Timestamp>,
    /// Always true for replication; EC senders may offer non-durable
    /// fragments.
    pub durable: bool,
}

impl ObjectTimestamps {
    /// The timestamps of an object with only a `.data` or `.ts` file.
    pub fn data_only(data: Timestamp) -> ObjectTimestamps {
        ObjectTimestamps { data, meta: None, ctype: None, durable: true }
    }
}

/// Python's `'%x' % n`: lowercase hex with a leading `-` when negative.
fn signed_hex(n: i128) -> String {
    if n < 0 {
        format!("-{:x}", n.unsigned_abs())
    } else {
        format!("{n:x}")
    }
}

/// Python's `int(s, 16)`: optional sign, optional `0x`, hex digits.
fn parse_signed_hex(s: &str) -> Option<i128> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let rest = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")).unwrap_or(rest);
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_hexdigit()) || rest.len() > 30 {
        return None;
    }
    let v = i128::from_str_radix(rest, 16).ok()?;
    Some(if neg { -v } else { v })
}

/// A missing-check line for one object (Swift's `encode_missing`):
/// `<hash> <ts_data>[ m:<hex delta to ts_meta>[__<hex offset>][,t:<hex delta to
/// ts_ctype>[__<hex offset>]][,durable:False]]`, without the line end.
pub fn encode_missing(hash: &str, t: &ObjectTimestamps) -> String {
    let mut msg = format!("{} {}", common::http::quote_path(hash), common::http::quote_path(&t.data.internal()));
    let mut extra = Vec::new();
    if let Some(meta) = t.meta.filter(|m| *m != t.data) {
        let mut part = format!("m:{}", signed_hex(meta.raw() as i128 - t.data.raw() as i128));
        if meta.offset() != 0 {
            part.push_str(&format!("__{:x}", meta.offset()));
        }
        extra.push(part);
        if let Some(ctype) = t.ctype.filter(|c| *c != t.data) {
            let mut part = format!("t:{}", signed_hex(ctype.raw() as i128 - t.data.raw() as i128));
            if ctype.offset() != 0 {
                part.push_str(&format!("__{:x}", ctype.offset()));
            }
            extra.push(part);
        }
    }
    if !t.durable {
        extra.push("durable:False".to_string());
    }
    if !extra.is_empty() {
        msg.push(' ');
        msg.push_str(&extra.join(","));
    }
    msg
}

/// What a sender offers for one object, decoded (Swift's `decode_missing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub hash: String,
    /// `ts_data`; `ts_meta` and `ts_ctype` default to it.
    pub data: Timestamp,
    pub meta: Timestamp,
    pub ctype: Timestamp,
    pub durable: bool,
}

/// Swift's `Timestamp(ts_data.normal, delta=d, offset=o)`: the data time
/// without its offset, moved by `d` ticks, with offset `o`.
fn delta_timestamp(data: Timestamp, value: &str) -> Result<Timestamp, WireError> {
    let bad = || WireError::Protocol(format!("bad timestamp delta {value:?}"));
    let (delta, offset) = value.split_once("__").unwrap_or((value, "0"));
    let delta = parse_signed_hex(delta).ok_or_else(bad)?;
    let offset = parse_signed_hex(if offset.is_empty() { "0" } else { offset }).and_then(|o| u64::try_from(o).ok()).ok_or_else(bad)?;
    let raw = u64::try_from(data.raw() as i128 + delta).map_err(|_| bad())?;
    Timestamp::from_raw(raw, offset).map_err(|_| bad())
}

/// Parses a missing-check line (line end optional).
pub fn decode_missing(line: &[u8]) -> Result<Offer, WireError> {
    let text = std::str::from_utf8(line)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| WireError::Protocol(format!("non-ASCII missing check line {:?}", cap(line))))?;
    let parts: Vec<&str> = text.split_whitespace().collect();
    if parts.len() < 2 {
        return Err(WireError::Protocol(format!("bad missing check line {:?}", cap(line))));
    }
    let unquote = |s: &str| common::path::unquote(s).map_err(|_| WireError::Protocol(format!("bad quoting in {s:?}")));
    let hash = unquote(parts[0])?;
    let ts = unquote(parts[1])?;
    let data = Timestamp::parse(&ts).map_err(|e| WireError::Protocol(format!("bad timestamp {ts:?}: {e}")))?;
    let mut offer = Offer { hash, data, meta: data, ctype: data, durable: true };
    if let Some(extra) = parts.get(2) {
        for item in unquote(extra)?.split(',').filter(|i| i.contains(':')) {
            let Some((k, v)) = item.split_once(':').filter(|(_, v)| !v.contains(':')) else {
                return Err(WireError::Protocol(format!("bad missing check item {item:?}")));
            };
            match k {
                "m" => offer.meta = delta_timestamp(data, v)?,
                "t" => offer.ctype = delta_timestamp(data, v)?,
                "durable" => offer.durable = common::config::parse_bool(v).unwrap_or(false),
                // Unknown keys are for future senders.
                _ => {}
            }
        }
    }
    Ok(offer)
}

/// What the receiver has of an offered object (Swift's `_check_local`):
/// nothing (`None`), a tombstone (`meta` and `ctype` unset) or an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTimestamps {
    pub data: Timestamp,
    pub meta: Option<Timestamp>,
    pub ctype: Option<Timestamp>,
}

/// Which parts of an offered object the receiver wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wanted {
    /// The `.data` (a PUT) or the `.ts` (a DELETE).
    pub data: bool,
    /// The `.meta` (a POST).
    pub meta: bool,
}

/// The receiver's answer line for an offer, `None` when it has all of it
/// (Swift's `encode_wanted`): `<hash> d`, `<hash> m` or `<hash> dm`.
pub fn encode_wanted(remote: &Offer, local: Option<&LocalTimestamps>) -> Option<String> {
    let mut want = Wanted::default();
    match local {
        Some(l) => {
            want.data = remote.data > l.data;
            if l.meta.is_some_and(|m| remote.meta > m) {
                want.meta = true;
            }
            if l.ctype.is_some_and(|c| remote.ctype > c) && remote.ctype > remote.data {
                want.meta = true;
            }
        }
        None => want = Wanted { data: true, meta: true },
    }
    if !want.data && !want.meta {
        return None;
    }
    let parts = format!("{}{}", if want.data { "d" } else { "" }, if want.meta { "m" } else { "" });
    Some(format!("{} {parts}", common::http::quote_path(&remote.hash)))
}

/// Parses a wanted line (`<hash>[ <parts>]`, line end optional) into the
/// hash and its parts (Swift's `decode_wanted`); a line with no parts is
/// from an old receiver that takes only data.
pub fn decode_wanted(line: &str) -> Option<(String, Wanted)> {
    let mut parts = line.split_whitespace();
    let hash = common::path::unquote(parts.next()?).ok()?;
    let mut want = Wanted::default();
    if let Some(p) = parts.next() {
        want.data = p.contains('d');
        want.meta = p.contains('m');
    }
    if !want.data && !want.meta {
        want.data = true;
    }
    Some((hash, want))
}

/// One subrequest's head: `<METHOD> <quoted path>`, the headers in the
/// order given (Swift sorts them), then a blank line.
pub fn encode_subrequest(method: &str, path: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut out = format!("{method} {}\r\n", common::http::quote_path(path)).into_bytes();
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A subrequest's first line, stripped: the method and the quoted path.
pub fn decode_request_line(line: &[u8]) -> Result<(String, String), WireError> {
    let text = latin1_or_utf8(trim(line));
    match text.split_once(' ') {
        Some((m, p)) => Ok((m.to_string(), p.to_string())),
        None => Err(WireError::Protocol(format!("bad subrequest line {:?}", cap(line)))),
    }
}

/// A header line (stripped, non-empty): its lower-cased name and value.
pub fn decode_header_line(line: &[u8]) -> Result<(String, String), WireError> {
    let line = trim(line);
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(WireError::Protocol(format!("bad header line {:?}", cap(line))));
    };
    let name = latin1_or_utf8(trim(&line[..colon])).to_lowercase();
    let value = latin1_or_utf8(trim(&line[colon + 1..]));
    Ok((name, value))
}

/// A receiver's error line: `:ERROR: <status> '<reason>'` (Swift writes the
/// Python repr of the reason).
pub fn error_line(status: u16, reason: &str) -> String {
    format!("{ERROR_PREFIX} {status} '{}'\n", reason.replace('\\', "\\\\").replace('\'', "\\'").replace('\n', "\\n"))
}

/// Bytes as text: UTF-8 when valid, else each byte as a Latin-1 character,
/// as WSGI hands headers to Swift.
pub fn latin1_or_utf8(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.iter().map(|&c| c as char).collect(),
    }
}

/// Python's `bytes.strip()`: ASCII whitespace off both ends.
pub fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// Python's `bytes.title()` on a header name, which is how Swift stores
/// the names of replicated headers: ASCII letters after a non-letter are
/// upper-cased, other ASCII letters lower-cased; other bytes (UTF-8 of
/// non-ASCII names) are left alone and count as non-letters.
pub fn title_bytes(name: &str) -> String {
    let mut out = Vec::with_capacity(name.len());
    let mut prev_letter = false;
    for &b in name.as_bytes() {
        if b.is_ascii_alphabetic() {
            out.push(if prev_letter { b.to_ascii_lowercase() } else { b.to_ascii_uppercase() });
            prev_letter = true;
        } else {
            out.push(b);
            prev_letter = false;
        }
    }
    // Only ASCII bytes changed, so the UTF-8 stays valid.
    String::from_utf8(out).unwrap_or_else(|e| latin1_or_utf8(e.as_bytes()))
}

/// At most 1024 bytes of `b`, for error messages (Swift's `cap_length`).
pub fn cap(b: &[u8]) -> String {
    let s = latin1_or_utf8(&b[..b.len().min(1024)]);
    if b.len() > 1024 {
        format!("{s}...")
    } else {
        s
    }
}

/// Reads lines and counted bytes from a streamed body (the request body at
/// the receiver, the response body at the sender), each read bounded by a
/// timeout.
pub struct LineReader<B> {
    body: B,
    buf: BytesMut,
    eof: bool,
    timeout: Duration,
}

impl<B> LineReader<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    /// `timeout` bounds each wait for more bytes.
    pub fn new(body: B, timeout: Duration) -> LineReader<B> {
        LineReader { body, buf: BytesMut::new(), eof: false, timeout }
    }

    /// Changes the wait bound (the sender waits longer for answers than
    /// for its own sends).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Reads one more data frame into the buffer; false at the end.
    async fn fill(&mut self, context: &str) -> Result<bool, WireError> {
        use http_body_util::BodyExt;
        if self.eof {
            return Ok(false);
        }
        loop {
            let frame = match tokio::time::timeout(self.timeout, self.body.frame()).await {
                Err(_) => return Err(WireError::Timeout(self.timeout.as_secs_f64(), context.to_string())),
                Ok(None) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(Some(Err(e))) => return Err(WireError::Disconnected(format!("{context}: {e}"))),
                Ok(Some(Ok(f))) => f,
            };
            // Trailers carry nothing for SSYNC.
            if let Ok(data) = frame.into_data() {
                if !data.is_empty() {
                    self.buf.extend_from_slice(&data);
                    return Ok(true);
                }
            }
        }
    }

    /// The next line, with its `\n`; `None` at a clean end of the body. A
    /// line longer than `max` bytes, or cut off by the end of the body, is
    /// an error, as Swift's `read_line` says "missing newline".
    pub async fn read_line(&mut self, max: usize, context: &str) -> Result<Option<Bytes>, WireError> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i + 1;
                if end > max {
                    return Err(WireError::Protocol(format!("{context}: line longer than {max} bytes")));
                }
                return Ok(Some(self.buf.split_to(end).freeze()));
            }
            scanned = self.buf.len();
            if scanned >= max {
                return Err(WireError::Protocol(format!("{context}: line longer than {max} bytes")));
            }
            if !self.fill(context).await? {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(WireError::Disconnected(format!("{context}: missing newline")));
            }
        }
    }

    /// Up to `max` bytes of what follows (at least one); the end of the
    /// body here is an error ("Early termination").
    pub async fn read_chunk(&mut self, max: usize, context: &str) -> Result<Bytes, WireError> {
        if self.buf.is_empty() && !self.fill(context).await? {
            return Err(WireError::Disconnected(format!("Early termination for {context}")));
        }
        let n = self.buf.len().min(max);
        Ok(self.buf.split_to(n).freeze())
    }

    /// Reads and drops `len` bytes.
    pub async fn skip(&mut self, mut len: u64, context: &str) -> Result<(), WireError> {
        while len > 0 {
            let chunk = self.read_chunk(usize::try_from(len).unwrap_or(usize::MAX).min(1 << 20), context).await?;
            len -= chunk.len() as u64;
        }
        Ok(())
    }

    /// Reads to the end of the body, dropping what comes.
    pub async fn drain(&mut self, context: &str) -> Result<(), WireError> {
        self.buf.clear();
        while self.fill(context).await? {
            self.buf.clear();
        }
        Ok(())
    }
}

/// A body fed through a channel by an [`Outbox`]. It ends cleanly only
/// when the outbox says it is finished; an outbox dropped or aborted
/// before that ends the body with an error, which makes hyper drop the
/// connection (Swift's hang-up), so the peer never takes a cut-off stream
/// for a complete one.
pub struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, BoxError>>,
    finished: oneshot::Receiver<()>,
    done: bool,
}

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.done = true;
                // The outbox signals "finished" before it lets go of the
                // channel, so the signal is there by now if it was sent.
                match self.finished.try_recv() {
                    Ok(()) => Poll::Ready(None),
                    Err(_) => Poll::Ready(Some(Err("the stream was abandoned".into()))),
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The writing end of a [`ChannelBody`].
pub struct Outbox {
    tx: mpsc::Sender<Result<Bytes, BoxError>>,
    finished: oneshot::Sender<()>,
    timeout: Duration,
}

/// A channel body and its writing end; each send waits at most `timeout`
/// for the peer to take what was sent before (back-pressure).
pub fn channel(timeout: Duration) -> (Outbox, ChannelBody) {
    // A few chunks in flight: enough to keep the socket busy, little
    // enough that a stalled peer stops us quickly.
    let (tx, rx) = mpsc::channel(4);
    let (finished_tx, finished_rx) = oneshot::channel();
    (Outbox { tx, finished: finished_tx, timeout }, ChannelBody { rx, finished: finished_rx, done: false })
}

impl Outbox {
    /// Sends `data` as the next chunk of the body.
    pub async fn send(&self, data: impl Into<Bytes>, context: &str) -> Result<(), WireError> {
        let data = data.into();
        if data.is_empty() {
            return Ok(());
        }
        match tokio::time::timeout(self.timeout, self.tx.send(Ok(data))).await {
            Err(_) => Err(WireError::Timeout(self.timeout.as_secs_f64(), context.to_string())),
            Ok(Err(_)) => Err(WireError::Disconnected(format!("{context}: connection closed"))),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Ends the body cleanly.
    pub fn finish(self) {
        let _ = self.finished.send(());
    }

    /// Ends the body with an error at once (dropping the outbox does the
    /// same once the chunks already sent are taken).
    pub fn abort(self, why: &str) {
        let _ = self.tx.try_send(Err(why.to_string().into()));
    }
}

/// A buffer of lines sent as one chunk once it holds `limit` bytes.
pub struct Batch {
    buf: BytesMut,
    limit: usize,
}

impl Batch {
    pub fn new(limit: usize) -> Batch {
        Batch { buf: BytesMut::new(), limit }
    }

    /// Adds a line (the `\r\n` is appended); sends the batch when full.
    pub async fn line(&mut self, out: &Outbox, line: &str, context: &str) -> Result<(), WireError> {
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
        if self.buf.len() >= self.limit {
            self.flush(out, context).await?;
        }
        Ok(())
    }

    /// Sends what is buffered.
    pub async fn flush(&mut self, out: &Outbox, context: &str) -> Result<(), WireError> {
        if self.buf.has_remaining() {
            out.send(self.buf.split().freeze(), context).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    const HASH: &str = "9d41d8cd98f00b204e9800998ecf0abc";

    #[test]
    fn missing_lines_as_swift_writes_them() {
        // Cases from Swift's test_ssync_sender.py test_encode_missing.
        let data = ts("1380144470.00000");
        let ctype = ts("1380144471.00000");
        let meta = ts("1380144472.00000");
        let t = |m: Option<Timestamp>, c: Option<Timestamp>| ObjectTimestamps { data, meta: m, ctype: c, durable: true };
        assert_eq!(encode_missing(HASH, &t(None, None)), format!("{HASH} 1380144470.00000"));
        assert_eq!(encode_missing(HASH, &t(Some(data), None)), format!("{HASH} 1380144470.00000"));
        // Deltas in 10 µs ticks, hex.
        assert_eq!(encode_missing(HASH, &t(Some(meta), None)), format!("{HASH} 1380144470.00000 m:30d40"));
        assert_eq!(encode_missing(HASH, &t(Some(meta), Some(data))), format!("{HASH} 1380144470.00000 m:30d40"));
        assert_eq!(encode_missing(HASH, &t(Some(meta), Some(ctype))), format!("{HASH} 1380144470.00000 m:30d40,t:186a0"));
        // Offsets travel after a double underscore; the data's own offset
        // is in its internal form.
        let odata = data.with_offset(1);
        let ometa = meta.with_offset(2);
        let line = encode_missing(HASH, &ObjectTimestamps { data: odata, meta: Some(ometa), ctype: None, durable: true });
        assert_eq!(line, format!("{HASH} 1380144470.00000_0000000000000001 m:30d40__2"));
        let line = encode_missing(HASH, &ObjectTimestamps { data, meta: None, ctype: None, durable: false });
        assert_eq!(line, format!("{HASH} 1380144470.00000 durable:False"));
    }

    #[test]
    fn missing_lines_round_trip() {
        let data = ts("1380144470.00000_0000000000000007");
        let meta = ts("1380144472.00000_0000000000000002");
        let ctype = ts("1380144471.00000");
        let line = encode_missing(HASH, &ObjectTimestamps { data, meta: Some(meta), ctype: Some(ctype), durable: true });
        let o = decode_missing(format!("{line}\r\n").as_bytes()).unwrap();
        assert_eq!(o, Offer { hash: HASH.into(), data, meta, ctype, durable: true });
        // Bare lines default meta and ctype to the data time.
        let o = decode_missing(b"9d41d8cd98f00b204e9800998ecf0abc 1380144470.00000\r\n").unwrap();
        assert_eq!((o.meta, o.ctype, o.durable), (o.data, o.data, true));
        // From Swift's test_decode_missing: unknown keys ignored, durable parsed.
        let o = decode_missing(b"9d41d8cd98f00b204e9800998ecf0abc 1380144470.00000 m:186a0,t:4,future:x,durable:no").unwrap();
        assert_eq!(o.meta, ts("1380144471.00000"));
        assert_eq!(o.ctype, ts("1380144470.00004"));
        assert!(!o.durable);
        // Negative deltas are Python's "-<hex>".
        let o = decode_missing(b"9d41d8cd98f00b204e9800998ecf0abc 1380144470.00000 m:-1").unwrap();
        assert_eq!(o.meta, ts("1380144469.99999"));
        for bad in [&b"onlyhash"[..], b"h notatime", b"h 1380144470.00000 m:zz", b"h 1380144470.00000 m:1:2", "h\u{e9} 1".as_bytes()] {
            assert!(decode_missing(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wanted_lines_as_swift_answers() {
        // Cases from Swift's test_ssync_receiver.py test_encode_wanted.
        let (old_data, data, old_meta, meta) = (ts("1.00000"), ts("2.00000"), ts("3.00000"), ts("4.00000"));
        let remote = Offer { hash: "theremotehash".into(), data, meta, ctype: data, durable: true };
        let local = |d, m: Option<Timestamp>| LocalTimestamps { data: d, meta: m, ctype: m.map(|_| d) };
        assert_eq!(encode_wanted(&remote, None).as_deref(), Some("theremotehash dm"));
        assert_eq!(encode_wanted(&remote, Some(&local(data, Some(meta)))), None);
        assert_eq!(encode_wanted(&remote, Some(&local(old_data, Some(old_meta)))).as_deref(), Some("theremotehash dm"));
        assert_eq!(encode_wanted(&remote, Some(&local(old_data, Some(meta)))).as_deref(), Some("theremotehash d"));
        assert_eq!(encode_wanted(&remote, Some(&local(data, Some(old_meta)))).as_deref(), Some("theremotehash m"));
        // A tombstone as new as the offer: in sync; older: the data.
        assert_eq!(encode_wanted(&remote, Some(&local(data, None))), None);
        assert_eq!(encode_wanted(&remote, Some(&local(old_data, None))).as_deref(), Some("theremotehash d"));
        // A newer content type alone is wanted as meta.
        let remote = Offer { ctype: old_meta, ..remote };
        let l = LocalTimestamps { data, meta: Some(meta), ctype: Some(data) };
        assert_eq!(encode_wanted(&remote, Some(&l)).as_deref(), Some("theremotehash m"));
        assert_eq!(decode_wanted("abc dm\r\n"), Some(("abc".into(), Wanted { data: true, meta: true })));
        assert_eq!(decode_wanted("abc m"), Some(("abc".into(), Wanted { data: false, meta: true })));
        // An old receiver names only the hash: it takes the data.
        assert_eq!(decode_wanted("abc"), Some(("abc".into(), Wanted { data: true, meta: false })));
        assert_eq!(decode_wanted("   "), None);
    }

    #[test]
    fn subrequests_as_swift_sends_them() {
        let head = encode_subrequest(
            "PUT",
            "/a/c/o o",
            &[("Content-Length".into(), "1".into()), ("X-Timestamp".into(), "1364456113.12344".into())],
        );
        assert_eq!(head, b"PUT /a/c/o%20o\r\nContent-Length: 1\r\nX-Timestamp: 1364456113.12344\r\n\r\n");
        assert_eq!(decode_request_line(b"PUT /a/c/o%20o\r\n").unwrap(), ("PUT".into(), "/a/c/o%20o".into()));
        assert!(decode_request_line(b"PUT\r\n").is_err());
        // From Swift's test_UPDATES_PUT: names lower-cased, values trimmed,
        // UTF-8 kept.
        assert_eq!(
            decode_header_line(b"X-Object-Meta-T\xc3\xa8st2: m\xc3\xa8ta\r\n").unwrap(),
            ("x-object-meta-t\u{e8}st2".into(), "m\u{e8}ta".into())
        );
        assert_eq!(decode_header_line(b"Etag:  c4ca4238a0b923820dcc509a6f75849b \r\n").unwrap().1, "c4ca4238a0b923820dcc509a6f75849b");
        assert!(decode_header_line(b"no colon here\r\n").is_err());
        assert_eq!(title_bytes("x-object-meta-t\u{e8}st2"), "X-Object-Meta-T\u{e8}St2");
        assert_eq!(title_bytes("content-encoding"), "Content-Encoding");
        assert_eq!(error_line(408, "it's late"), ":ERROR: 408 'it\\'s late'\n");
    }

    /// A body that hands out fixed frames.
    struct Frames(std::collections::VecDeque<Bytes>);

    impl HttpBody for Frames {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn reader(frames: &[&'static [u8]]) -> LineReader<Frames> {
        LineReader::new(Frames(frames.iter().map(|f| Bytes::from_static(f)).collect()), Duration::from_secs(5))
    }

    #[tokio::test]
    async fn lines_and_bodies_across_chunk_boundaries() {
        let mut r = reader(&[b":MISSING_CHECK: ST", b"ART\r\nPUT /a/c/o\r\n\r\nhel", b"lo", b"tail\n"]);
        assert_eq!(r.read_line(1024, "t").await.unwrap().unwrap(), &b":MISSING_CHECK: START\r\n"[..]);
        assert_eq!(r.read_line(1024, "t").await.unwrap().unwrap(), &b"PUT /a/c/o\r\n"[..]);
        assert_eq!(r.read_line(1024, "t").await.unwrap().unwrap(), &b"\r\n"[..]);
        assert_eq!(r.read_chunk(4, "t").await.unwrap(), &b"hel"[..]);
        assert_eq!(r.read_chunk(1, "t").await.unwrap(), &b"l"[..]);
        r.skip(1, "t").await.unwrap();
        assert_eq!(r.read_line(1024, "t").await.unwrap().unwrap(), &b"tail\n"[..]);
        assert_eq!(r.read_line(1024, "t").await.unwrap(), None);
        assert!(r.read_chunk(1, "t").await.is_err(), "early termination");
        let mut r = reader(&[b"no newline"]);
        assert!(matches!(r.read_line(1024, "t").await, Err(WireError::Disconnected(_))));
        let mut r = reader(&[b"0123456789\n"]);
        assert!(matches!(r.read_line(4, "t").await, Err(WireError::Protocol(_))));
    }
}
