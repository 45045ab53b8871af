//! `egg:swift#memcache` (usually `[filter:cache]`). In Swift it hands the
//! memcache client to the middlewares and controllers to its right, which
//! keep tokens and account/container info there so every proxy shares
//! them. This proxy needs no shared cache for either: tokens validate
//! themselves (an HMAC under a key every proxy derives from `swift.conf`,
//! see `crate::auth`), and account/container info is cached in each
//! proxy's memory for `recheck_account_existence` /
//! `recheck_container_existence` seconds, exactly as long as Swift trusts
//! memcache for it. So the filter passes requests on untouched, and its
//! `memcache_servers` options are accepted and not used; a pipeline that
//! names it keeps working, and `listing_formats` still finds its place
//! after it.

use super::{BoxFuture, Build, Handler, Next};
use crate::proxy::Proxy;
use common::config::Section;
use common::http::Body;
use http::{Request, Response};
use std::sync::Arc;

pub struct Cache {
    next: Next,
}

pub fn factory(section: &Section, _proxy: &Proxy, next: Next, _build: &mut Build) -> Result<Next, String> {
    // memcache_servers and friends are accepted, on purpose unused.
    for key in section.keys() {
        section.mark_used(key);
    }
    Ok(Arc::new(Cache { next }))
}

impl Handler for Cache {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        self.next.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{request, Recorder};
    use super::*;
    use http::StatusCode;

    #[tokio::test]
    async fn requests_pass_through_untouched() {
        let next = Recorder::new(|_| common::http::status(StatusCode::NO_CONTENT));
        let m = Cache { next: next.clone() };
        let resp = m.call(request("PUT", "/v1/a/c/o?x=1", &[("x-object-meta-a", "b")], "body")).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let seen = next.seen();
        assert_eq!((seen[0].uri.as_str(), &seen[0].body[..]), ("/v1/a/c/o?x=1", &b"body"[..]));
        assert_eq!(seen[0].headers["x-object-meta-a"], "b");
    }
}
