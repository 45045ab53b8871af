//! Object PUT: validate, stream the body to a temp file while hashing it,
//! attach the metadata, make it visible with an atomic rename, then update
//! the containers (swift/obj/server.py `PUT`).

use crate::constraints::{self, is_object_meta};
use crate::diskfile::{self, DataWriter, OpenError, WriteError};
use crate::metadata::Metadata;
use crate::{ObjectServer, Target};
use bytes::{Bytes, BytesMut};
use common::backend_headers as bh;
use common::http::{self as h, Body};
use common::server::RequestInfo;
use common::timestamp::Timestamp;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Swift's 499 "Client Disconnect".
pub fn client_disconnect() -> Response<Body> {
    h::text(StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST), "Client Disconnect")
}

/// The body length a request announces (Swift's `message_length`): `None`
/// for chunked transfer encoding.
fn message_length(headers: &HeaderMap) -> Result<Option<u64>, Response<Body>> {
    let chunked = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .next_back();
    match chunked.as_deref() {
        Some("chunked") => return Ok(None),
        Some(other) => return Err(h::text(StatusCode::NOT_IMPLEMENTED, format!("Invalid Transfer-Encoding header value: {other}"))),
        None => {}
    }
    match headers.get(http::header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| h::text(StatusCode::BAD_REQUEST, "Invalid Content-Length header value")),
    }
}

/// Swift's `check_object_creation`; returns the announced length and the
/// normalised `X-Delete-At`.
fn check_object_creation(
    server: &ObjectServer,
    headers: &HeaderMap,
    target: &Target,
    ts: Timestamp,
) -> Result<(Option<u64>, Option<u64>), Response<Body>> {
    let c = &server.swift.constraints;
    let length = message_length(headers)?;
    if length.is_some_and(|l| l > c.max_file_size) {
        return Err(h::text(StatusCode::PAYLOAD_TOO_LARGE, "Your request is too large."));
    }
    if length.is_none() && !headers.contains_key(http::header::TRANSFER_ENCODING) {
        return Err(h::text(StatusCode::LENGTH_REQUIRED, "Missing Content-Length header."));
    }
    if target.object.len() as u64 > c.max_object_name_length {
        return Err(h::text(
            StatusCode::BAD_REQUEST,
            format!("Object name length of {} longer than {}", target.object.len(), c.max_object_name_length),
        ));
    }
    let Some(ctype) = headers.get(http::header::CONTENT_TYPE) else {
        return Err(h::text(StatusCode::BAD_REQUEST, "No content type"));
    };
    let delete_at = constraints::check_delete_headers(headers, ts)?;
    if std::str::from_utf8(ctype.as_bytes()).is_err() {
        return Err(h::text(StatusCode::BAD_REQUEST, "Invalid Content-Type"));
    }
    constraints::check_metadata(headers, c)?;
    Ok((length, delete_at))
}

/// Entity tags of an `If-None-Match`/`If-Match` header, quotes removed.
pub fn etag_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| if t.len() > 1 && t.starts_with('"') && t.ends_with('"') { t[1..t.len() - 1].to_string() } else { t.to_string() })
        .collect()
}

fn device_error(device: &str, e: WriteError) -> Response<Body> {
    match e {
        WriteError::NoSpace | WriteError::XattrNotSupported => h::insufficient_storage(device),
        WriteError::Io(e) => {
            common::log::error(&format!("ERROR writing object on {device}: {e}"));
            h::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error writing object")
        }
    }
}

/// Handles `PUT /<dev>/<part>/<a>/<c>/<o>`.
pub async fn handle(server: Arc<ObjectServer>, req: Request<Body>, target: Target, _info: RequestInfo) -> Response<Body> {
    let (parts, mut body) = req.into_parts();
    let headers = parts.headers;
    let ts = match constraints::valid_timestamp(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (length, delete_at) = match check_object_creation(&server, &headers, &target, ts) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let dev = target.path.device.clone();

    // One trip to the device's blocking pool looks at what exists now (it
    // decides 409 and If-None-Match) and opens the temp file: each trip is
    // a thread hand-off, the largest cost of small PUTs.
    let loc = target.location.clone();
    let name = target.name.clone();
    let now = ts.as_secs_f64();
    let inm = h::header_str(&headers, "if-none-match").map(etag_list);
    let reserve = server.reserve_bytes(&loc.device_path);
    let drive = dev.clone();
    let opened = server
        .devices
        .run(&dev, move || -> Result<(DataWriter, u64), Response<Body>> {
            let existing = diskfile::open(&loc, &name, now).map(|o| (o.data_timestamp, o.metadata));
            let (orig_ts, orig_meta) = match existing {
                Ok((t, m)) => (t, Some(m)),
                Err(OpenError::Deleted(t)) | Err(OpenError::Expired(t, _)) => (t, None),
                Err(OpenError::NotFound) | Err(OpenError::Quarantined(_)) => (Timestamp::ZERO, None),
                Err(OpenError::Collision) => return Err(h::text(StatusCode::FORBIDDEN, "Object name collision")),
                Err(OpenError::XattrNotSupported) => return Err(h::insufficient_storage(&drive)),
                Err(OpenError::Io(e)) => {
                    common::log::error(&format!("ERROR reading {name}: {e}"));
                    return Err(h::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error reading object"));
                }
            };
            if let (Some(tags), Some(m)) = (&inm, &orig_meta) {
                if tags.iter().any(|t| t == "*") || m.get("ETag").is_some_and(|e| tags.contains(e)) {
                    return Err(h::status(StatusCode::PRECONDITION_FAILED));
                }
            }
            if orig_ts >= ts {
                let mut r = h::status(StatusCode::CONFLICT);
                r.headers_mut().insert(bh::BACKEND_TIMESTAMP, HeaderValue::from_str(&orig_ts.internal()).expect("timestamps are ASCII"));
                return Err(r);
            }
            // An expired or deleted object's task is not withdrawn (Swift
            // reads no metadata from it either).
            let orig_delete_at =
                orig_meta.as_ref().and_then(|m| m.get("X-Delete-At")).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
            DataWriter::create(&loc, length, reserve).map(|w| (w, orig_delete_at)).map_err(|e| device_error(&drive, e))
        })
        .await;
    let (mut writer, orig_delete_at) = match opened {
        Ok(w) => w,
        Err(r) => return r,
    };

    // Stream the body: at most one chunk in memory, each written (on the
    // device's blocking pool) before the next is read, so a slow disk
    // slows the client down instead of filling our memory. The last chunk
    // is written in the same trip as the commit.
    let st = &server.settings;
    let max = length.unwrap_or(server.swift.constraints.max_file_size);
    let upload_started = Instant::now();
    let deadline = upload_started + st.max_upload_time;
    let mut buf = BytesMut::with_capacity(st.network_chunk_size);
    let mut received: u64 = 0;
    let failure: Option<Response<Body>> = loop {
        if Instant::now() > deadline {
            if let Some(statsd) = &st.server.statsd {
                statsd.increment("PUT.timeouts");
            }
            break Some(h::status(StatusCode::REQUEST_TIMEOUT));
        }
        let frame = match tokio::time::timeout(st.server.connections.client_timeout, body.frame()).await {
            Err(_) => break Some(h::status(StatusCode::REQUEST_TIMEOUT)),
            Ok(None) => None,
            Ok(Some(Err(_))) => break Some(client_disconnect()),
            Ok(Some(Ok(f))) => Some(f),
        };
        let done = frame.is_none();
        if let Some(data) = frame.and_then(|f| f.into_data().ok()) {
            received += data.len() as u64;
            if received > max {
                break Some(if length.is_some() {
                    h::text(StatusCode::BAD_REQUEST, "Body longer than Content-Length")
                } else {
                    h::text(StatusCode::PAYLOAD_TOO_LARGE, "Your request is too large.")
                });
            }
            buf.extend_from_slice(&data);
        }
        if done {
            break None;
        }
        if buf.len() >= st.network_chunk_size {
            let chunk: Bytes = buf.split().freeze();
            let r = server
                .devices
                .run(&dev, move || {
                    let r = writer.write(&chunk);
                    (writer, r)
                })
                .await;
            writer = r.0;
            if let Err(e) = r.1 {
                break Some(device_error(&dev, e));
            }
        }
    };
    if let Some(resp) = failure {
        // Dropping the writer deletes the temp file: blocking work.
        server.devices.run(&dev, move || drop(writer)).await;
        return resp;
    }
    if let Some(statsd) = &st.server.statsd {
        // Swift's per-device upload speed: ms per thousand bytes.
        statsd.transfer_rate(&format!("PUT.{dev}.timing"), upload_started.elapsed().as_secs_f64(), received);
    }

    let mut metadata = constraints::request_metadata(&headers, &st.allowed_headers, is_object_meta);
    metadata.insert("name".into(), target.name.clone());
    metadata.insert("X-Timestamp".into(), ts.internal());
    metadata.insert(
        "Content-Type".into(),
        headers.get("content-type").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).unwrap_or_default(),
    );
    if let Some(at) = delete_at {
        metadata.insert("X-Delete-At".into(), at.to_string());
    }
    metadata.remove("X-Delete-After");
    let sent_etag = h::header_str(&headers, "etag").map(|v| etag_list(v).into_iter().next().unwrap_or_default()).filter(|e| !e.is_empty());
    let last: Bytes = buf.split().freeze();
    let loc = target.location.clone();
    let drive = dev.clone();
    let committed = server
        .devices
        .run(&dev, move || -> Result<(String, Metadata), Response<Body>> {
            // Dropping the writer on an early return deletes the temp file.
            writer.write(&last).map_err(|e| device_error(&drive, e))?;
            if length.is_some_and(|l| l != writer.written()) {
                return Err(client_disconnect());
            }
            let etag = writer.etag();
            // Swift lowercases the client's ETag before comparing: hex case
            // is no mismatch.
            if sent_etag.as_ref().is_some_and(|sent| !sent.eq_ignore_ascii_case(&etag)) {
                return Err(h::text(StatusCode::UNPROCESSABLE_ENTITY, "Etag of the body does not match the ETag header"));
            }
            metadata.insert("Content-Length".into(), writer.written().to_string());
            metadata.insert("ETag".into(), etag.clone());
            writer.commit(&loc, ts, &metadata).map_err(|e| device_error(&drive, e))?;
            Ok((etag, metadata))
        })
        .await;
    let (etag, metadata) = match committed {
        Ok(v) => v,
        Err(r) => return r,
    };

    let what = format!("PUT {}", parts.uri.path());
    let size = metadata.get("Content-Length").map(String::as_str);
    crate::container_update::update_delete_at(&server, &headers, &what, &target, ts, orig_delete_at, delete_at.unwrap_or(0), size).await;
    let mut update: BTreeMap<String, String> = BTreeMap::new();
    update.insert(bh::SIZE.into(), metadata["Content-Length"].clone());
    update.insert(bh::CONTENT_TYPE.into(), metadata["Content-Type"].clone());
    update.insert(bh::TIMESTAMP.into(), ts.internal());
    update.insert(bh::ETAG.into(), etag.clone());
    apply_container_overrides(&mut update, &headers);
    crate::container_update::update_containers(&server, &headers, &what, "PUT", &target, update).await;

    let mut resp = h::status(StatusCode::CREATED);
    resp.headers_mut().insert(http::header::ETAG, HeaderValue::from_str(&format!("\"{etag}\"")).expect("hex is ASCII"));
    resp
}

/// Swift's `_check_container_override`: `X-Backend-Container-Update-Override-*`
/// then `X-Object-Sysmeta-Container-Update-Override-*` replace the
/// matching `X-*` update headers.
pub fn apply_container_overrides(update: &mut BTreeMap<String, String>, headers: &HeaderMap) {
    for prefix in [bh::BACKEND_CONTAINER_UPDATE_OVERRIDE_PREFIX, bh::OBJECT_SYSMETA_CONTAINER_UPDATE_OVERRIDE_PREFIX] {
        for (k, v) in headers {
            if let (Some(rest), Ok(v)) = (k.as_str().strip_prefix(prefix), v.to_str()) {
                update.insert(format!("x-{rest}"), v.to_string());
            }
        }
    }
}
