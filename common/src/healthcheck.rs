//! `egg:swift#healthcheck`, for every server's pipeline: `GET /healthcheck`
//! answers `200 OK`, or `503 DISABLED BY FILE` while the file named by
//! `disable_path` exists, so an operator can take a server out of a load
//! balancer's rotation.

use crate::config::Section;
use crate::http::{self as h, Body};
use crate::pipeline::{BoxFuture, Handler, Next};
use http::{Method, Request, Response, StatusCode};
use std::path::PathBuf;

/// The filter's section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthcheckSettings {
    pub disable_path: Option<PathBuf>,
}

impl HealthcheckSettings {
    pub fn from_section(section: &Section) -> HealthcheckSettings {
        HealthcheckSettings { disable_path: section.get("disable_path").filter(|p| !p.trim().is_empty()).map(PathBuf::from) }
    }
}

pub struct Healthcheck {
    settings: HealthcheckSettings,
    next: Next,
}

impl Healthcheck {
    pub fn new(settings: HealthcheckSettings, next: Next) -> Healthcheck {
        Healthcheck { settings, next }
    }
}

impl Handler for Healthcheck {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            if req.uri().path() != "/healthcheck" {
                return self.next.call(req).await;
            }
            // A stat of a local file: cheap enough not to leave the thread.
            let disabled = self.settings.disable_path.as_ref().is_some_and(|p| p.exists());
            let mut r = if disabled { h::text(StatusCode::SERVICE_UNAVAILABLE, "DISABLED BY FILE") } else { h::text(StatusCode::OK, "OK") };
            if req.method() == Method::HEAD {
                *r.body_mut() = h::empty();
            }
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::FnHandler;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn answers_healthcheck_and_passes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("disabled");
        let passed = Arc::new(AtomicUsize::new(0));
        let counter = passed.clone();
        let next: Next = Arc::new(FnHandler(move |_req: Request<Body>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { h::status(StatusCode::NO_CONTENT) }
        }));
        let m = Healthcheck::new(HealthcheckSettings { disable_path: Some(flag.clone()) }, next);
        let get = |path: &str| Request::builder().uri(path).body(h::empty()).unwrap();
        let body = |r: Response<Body>| async { r.into_body().collect().await.unwrap().to_bytes() };
        let resp = m.call(get("/healthcheck")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(body(resp).await, "OK");
        std::fs::write(&flag, b"").unwrap();
        let resp = m.call(get("/healthcheck")).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body(resp).await, "DISABLED BY FILE");
        assert_eq!(passed.load(Ordering::SeqCst), 0);
        assert_eq!(m.call(get("/v1/a")).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(passed.load(Ordering::SeqCst), 1);
    }
}
