//! The web dashboard: our own ES modules, CSS and HTML, embedded at compile
//! time and served at `/` (the page) and `/dashboard/FILE` (what it loads).
//! Every URL in the files is relative, so the dashboard works under a
//! reverse proxy's sub-path; it calls the public API alone, with the read key
//! the user pastes. Answers carry an `ETag`, gzip when the client takes it,
//! and a `Content-Security-Policy` that allows nothing but this origin.

use std::io::Write;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// What the dashboard's pages may load and call: this origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
pub struct Asset {
    /// Its name under `/dashboard/` (`index.html` is also `/`).
    pub name: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

/// Every file of the dashboard.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("index.html"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("style.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("app.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("api.js"),
    },
    Asset {
        name: "state.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("state.js"),
    },
    Asset {
        name: "charts.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("charts.js"),
    },
    Asset {
        name: "analyses.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("analyses.js"),
    },
    Asset {
        name: "panels.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("panels.js"),
    },
    Asset {
        name: "sessions.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("sessions.js"),
    },
    Asset {
        name: "dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("dom.js"),
    },
];

/// An asset prepared for serving: its tag and its gzip form, computed once.
struct Prepared {
    asset: &'static Asset,
    tag: String,
    gzipped: Vec<u8>,
}

fn prepared() -> &'static [Prepared] {
    static PREPARED: OnceLock<Vec<Prepared>> = OnceLock::new();
    PREPARED.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                use std::hash::Hasher;
                let mut hasher = siphasher::sip::SipHasher13::new();
                hasher.write(asset.body);
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                let gzipped = encoder
                    .write_all(asset.body)
                    .and_then(|()| encoder.finish())
                    .unwrap_or_default();
                Prepared {
                    asset,
                    tag: format!("\"{:016x}\"", hasher.finish()),
                    gzipped,
                }
            })
            .collect()
    })
}

/// The dashboard's page.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// A file the page loads.
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(file) = prepared().iter().find(|p| p.asset.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let mut response_headers = HeaderMap::new();
    let static_header = |value: &'static str| HeaderValue::from_static(value);
    response_headers.insert(
        header::CONTENT_SECURITY_POLICY,
        static_header(CONTENT_SECURITY_POLICY),
    );
    response_headers.insert(header::X_CONTENT_TYPE_OPTIONS, static_header("nosniff"));
    response_headers.insert(header::REFERRER_POLICY, static_header("no-referrer"));
    response_headers.insert(header::X_FRAME_OPTIONS, static_header("DENY"));
    // Revalidated on each load: a new release shows at once.
    response_headers.insert(header::CACHE_CONTROL, static_header("no-cache"));
    response_headers.insert(header::VARY, static_header("Accept-Encoding"));
    if let Ok(tag) = HeaderValue::from_str(&file.tag) {
        response_headers.insert(header::ETAG, tag);
    }
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|sent| sent.split(',').any(|one| one.trim() == file.tag));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, response_headers).into_response();
    }
    response_headers.insert(header::CONTENT_TYPE, static_header(file.asset.content_type));
    let takes_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accepted| {
            accepted
                .split(',')
                .any(|coding| coding.trim().split(';').next() == Some("gzip"))
        });
    if takes_gzip && !file.gzipped.is_empty() {
        response_headers.insert(header::CONTENT_ENCODING, static_header("gzip"));
        return (StatusCode::OK, response_headers, file.gzipped.clone()).into_response();
    }
    (StatusCode::OK, response_headers, file.asset.body).into_response()
}
