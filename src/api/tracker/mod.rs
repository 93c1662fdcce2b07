//! `GET /js/script.js`: the service's own tracker, a few KB of JavaScript
//! written for this project with no dependency, embedded in the binary. It
//! sends page views, outbound-link and file-download clicks, custom events
//! and engagement in Plausible's event format to `/api/event`.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The tracker's source.
pub const SCRIPT: &str = include_str!("script.js");

/// Its entity tag: a hash of the text, so that caches revalidate cheaply
/// and a new release is fetched anew.
fn entity_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        use std::hash::Hasher;
        let mut hasher = siphasher::sip::SipHasher13::new();
        hasher.write(SCRIPT.as_bytes());
        format!("\"{:016x}\"", hasher.finish())
    })
}

/// Serve the tracker.
#[utoipa::path(
    get,
    path = "/js/script.js",
    tag = "browsers",
    summary = "The tracker to paste into a site's pages.",
    description = "`<script defer data-domain=\"shop.example\" src=\"https://analytics.example/js/script.js\"></script>`: page views (single-page apps included), outbound-link and file-download clicks, custom events through `plausible(name, {props, revenue})`, engagement time and scroll depth, sent to `/api/event`. Cached for an hour, revalidated by `ETag`.",
    responses(
        (status = 200, description = "The script", content_type = "text/javascript", body = String),
        (status = 304, description = "Not modified since the ETag sent in If-None-Match"),
    )
)]
pub async fn script(headers: HeaderMap) -> Response {
    let tag = entity_tag();
    let cache = [
        (header::ETAG, HeaderValue::from_static(tag)),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ),
    ];
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|sent| sent.split(',').any(|one| one.trim() == tag));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        StatusCode::OK,
        cache,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        SCRIPT,
    )
        .into_response()
}
