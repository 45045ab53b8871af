//! Object POST: replaces the object's user metadata by writing a `.meta`
//! file; system metadata stays with the `.data` (swift/obj/server.py `POST`).

use crate::constraints;
use crate::diskfile::{self, OpenError, WriteError};
use crate::metadata::Metadata;
use crate::{ObjectServer, Target};
use common::backend_headers as bh;
use common::http::{self as h, Body};
use common::timestamp::Timestamp;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};

use std::collections::BTreeMap;
use std::sync::Arc;

fn bad(reason: &str) -> Response<Body> {
    h::text(StatusCode::BAD_REQUEST, reason)
}

/// Handles `POST /<dev>/<part>/<a>/<c>/<o>`.
pub async fn handle(server: Arc<ObjectServer>, req: Request<Body>, target: Target) -> Response<Body> {
    let headers = req.headers().clone();
    drop(req);
    let ts = match constraints::valid_timestamp(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let new_delete_at: u64 = match h::header_str(&headers, bh::DELETE_AT).filter(|v| !v.is_empty()) {
        None => 0,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 0 => n as u64,
            Ok(_) => return bad("X-Delete-At in past"),
            Err(_) => return bad("Non-integer X-Delete-At"),
        },
    };
    if new_delete_at != 0 && (new_delete_at as f64) < ts.as_secs_f64() {
        return bad("X-Delete-At in past");
    }
    if let Err(r) = constraints::check_metadata(&headers, &server.swift.constraints) {
        return r;
    }
    let req_ctype = h::header_str(&headers, "content-type").map(str::to_string);
    let req_ctype_ts = match (&req_ctype, h::header_str(&headers, "content-type-timestamp")) {
        (None, _) => Timestamp::ZERO,
        (Some(_), None) => ts,
        (Some(_), Some(v)) => match Timestamp::parse(v) {
            Ok(t) => t,
            Err(e) => return bad(&e.to_string()),
        },
    };
    let dev = target.path.device.clone();
    let loc = target.location.clone();
    let name = target.name.clone();
    // An expired object can be given a new X-Delete-At when the proxy
    // passes X-Open-Expired on (Swift's allow_open_expired).
    let open_expired = h::header_str(&headers, bh::BACKEND_OPEN_EXPIRED).is_some_and(|v| common::config::parse_bool(v) == Some(true));
    let now = if open_expired { 0.0 } else { ts.as_secs_f64() };
    let obj = match server.devices.run(&dev, move || diskfile::open(&loc, &name, now)).await {
        Ok(o) => o,
        Err(OpenError::XattrNotSupported) => return h::insufficient_storage(&dev),
        Err(OpenError::Collision) => return h::text(StatusCode::FORBIDDEN, "Object name collision"),
        Err(OpenError::Io(e)) => {
            common::log::error(&format!("ERROR opening {}: {e}", target.name));
            return h::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error reading object");
        }
        Err(_) => return h::status(StatusCode::NOT_FOUND),
    };
    let orig_ts = obj.timestamp();
    let orig_ctype_ts = obj.content_type_timestamp;
    if orig_ts >= ts && orig_ctype_ts >= req_ctype_ts {
        let mut r = h::status(StatusCode::CONFLICT);
        r.headers_mut().insert(bh::BACKEND_TIMESTAMP, HeaderValue::from_str(&orig_ts.internal()).expect("ASCII"));
        return r;
    }
    let mut metadata: Metadata = if ts > orig_ts {
        let mut m = constraints::request_metadata(&headers, &server.settings.allowed_headers, |n| {
            n.starts_with("x-object-meta-") || n.starts_with("x-object-transient-sysmeta-")
        });
        m.insert("X-Timestamp".into(), ts.internal());
        m
    } else {
        // An older POST that only brings a newer content type.
        obj.meta_metadata.clone().unwrap_or_default()
    };
    metadata.insert("name".into(), target.name.clone());
    let current_ctype = obj.metadata.get("Content-Type").cloned().unwrap_or_default();
    let ctype_ts = if req_ctype_ts > orig_ctype_ts {
        metadata.insert("Content-Type".into(), req_ctype.clone().unwrap_or_default());
        metadata.insert("Content-Type-Timestamp".into(), req_ctype_ts.internal());
        Some(req_ctype_ts)
    } else if orig_ctype_ts != obj.data_timestamp {
        metadata.insert("Content-Type".into(), current_ctype.clone());
        metadata.insert("Content-Type-Timestamp".into(), orig_ctype_ts.internal());
        Some(orig_ctype_ts)
    } else {
        None
    };
    let meta_ts = metadata.get("X-Timestamp").and_then(|t| Timestamp::parse(t).ok()).unwrap_or(ts);
    let loc = target.location.clone();
    let file = obj.file;
    let r = server
        .devices
        .run(&dev, move || {
            drop(file);
            diskfile::write_meta(&loc, meta_ts, ctype_ts, &metadata)
        })
        .await;
    match r {
        Ok(()) => {}
        Err(WriteError::NoSpace) | Err(WriteError::XattrNotSupported) => return h::insufficient_storage(&dev),
        Err(WriteError::Io(e)) => {
            common::log::error(&format!("ERROR writing metadata of {}: {e}", target.name));
            return h::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error writing metadata");
        }
    }
    let what = format!("POST {}", target.name);
    if ts > orig_ts {
        // The .meta replaces X-Delete-At: move the task when it changed.
        let orig_delete_at = obj.metadata.get("X-Delete-At").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        if orig_delete_at != new_delete_at {
            let size = obj.data_metadata.get("Content-Length").map(String::as_str);
            crate::container_update::update_delete_at(&server, &headers, &what, &target, ts, orig_delete_at, new_delete_at, size).await;
        }
    }
    let mut ctype = if req_ctype_ts > orig_ctype_ts { req_ctype.unwrap_or_default() } else { current_ctype };
    if ctype_ts.is_some_and(|t| t != obj.data_timestamp) {
        // The size an SLO manifest's PUT put in its content type
        // (`swift_bytes`) stays in the listing, as in Swift.
        let data_ctype = obj.data_metadata.get("Content-Type").map(String::as_str).unwrap_or("");
        if let Some(swift_bytes) = data_ctype.split(';').find_map(|p| p.trim().strip_prefix("swift_bytes=")) {
            ctype = format!("{ctype};swift_bytes={swift_bytes}");
        }
    }
    // As Swift does, a POST re-reports the object row so the container
    // listing shows the new content type and metadata time.
    let mut update: BTreeMap<String, String> = BTreeMap::new();
    let data = &obj.data_metadata;
    update.insert(bh::SIZE.into(), data.get("Content-Length").cloned().unwrap_or_else(|| "0".into()));
    update.insert(bh::CONTENT_TYPE.into(), ctype.clone());
    update.insert(bh::TIMESTAMP.into(), obj.data_timestamp.internal());
    update.insert(bh::CONTENT_TYPE_TIMESTAMP.into(), ctype_ts.unwrap_or(obj.data_timestamp).internal());
    update.insert(bh::META_TIMESTAMP.into(), meta_ts.internal());
    update.insert(bh::ETAG.into(), data.get("ETag").cloned().unwrap_or_default());
    // The overrides the object's PUT stored (an SLO's listing ETag) hold
    // for the row a POST re-reports, as Swift's `_check_container_override`
    // of the original metadata.
    let stored_overrides: HeaderMap = obj
        .data_metadata
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with(bh::OBJECT_SYSMETA_CONTAINER_UPDATE_OVERRIDE_PREFIX))
        .filter_map(|(k, v)| Some((http::HeaderName::from_bytes(k.as_bytes()).ok()?, HeaderValue::from_bytes(v.as_bytes()).ok()?)))
        .collect();
    crate::put::apply_container_overrides(&mut update, &stored_overrides);
    crate::put::apply_container_overrides(&mut update, &headers);
    crate::container_update::update_containers(&server, &headers, &what, "PUT", &target, update).await;
    let mut resp = h::status(StatusCode::ACCEPTED);
    let hm = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_bytes(ctype.as_bytes()) {
        hm.insert(bh::BACKEND_CONTENT_TYPE, v);
    }
    for (k, v) in &obj.data_metadata {
        if k.to_ascii_lowercase().starts_with("x-object-sysmeta-") {
            if let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_bytes(v.as_bytes())) {
                hm.insert(n, v);
            }
        }
    }
    resp
}
