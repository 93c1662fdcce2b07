//! Reading request bodies under a size cap, decompressing gzip as it streams.

use std::io::Read;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use bytes::{Bytes, BytesMut};
use flate2::read::MultiGzDecoder;
use futures::StreamExt;

use super::error::ApiError;

fn too_large(limit: usize, what: &str) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "{what} exceeds the limit of {} KB ({limit} bytes) per request",
        limit / 1024
    ))
}

/// Reads the body, refusing more than `limit` bytes before or after decompression.
///
/// A gzip body is inflated through a bounded reader, so a small body that
/// expands without end (a zip bomb) is refused with 413 after `limit` bytes.
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let gzip = match headers.get(header::CONTENT_ENCODING) {
        None => false,
        Some(value) => match value.to_str().map(|v| v.trim().to_ascii_lowercase()) {
            Ok(v) if v.is_empty() || v == "identity" => false,
            Ok(v) if v == "gzip" || v == "x-gzip" => true,
            _ => {
                return Err(ApiError::UnsupportedEncoding(format!(
                    "Content-Encoding {value:?} is not supported; use gzip or none"
                )))
            }
        },
    };
    let raw = read_raw(body, limit).await?;
    if !gzip {
        return Ok(raw);
    }
    let mut inflated = Vec::with_capacity((raw.len() * 4).min(limit));
    let mut decoder = MultiGzDecoder::new(&raw[..]).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut inflated)
        .map_err(|e| ApiError::InvalidParameter {
            field: "body",
            message: format!("invalid gzip data: {e}"),
        })?;
    if inflated.len() > limit {
        return Err(too_large(limit, "decompressed request body"));
    }
    Ok(Bytes::from(inflated))
}

async fn read_raw(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buffer = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidParameter {
            field: "body",
            message: format!("reading the request body failed: {e}"),
        })?;
        if buffer.len() + chunk.len() > limit {
            return Err(too_large(limit, "request body"));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn gzip_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        headers
    }

    #[tokio::test]
    async fn gzip_bodies_are_inflated() {
        let body = Body::from(gzip(b"{\"a\":1}"));
        let bytes = read_limited(&gzip_headers(), body, 100).await.unwrap();
        assert_eq!(&bytes[..], b"{\"a\":1}");
    }

    #[tokio::test]
    async fn a_zip_bomb_is_refused_after_the_limit() {
        let bomb = gzip(&vec![b' '; 10 * 1024 * 1024]);
        assert!(bomb.len() < 20 * 1024);
        let error = read_limited(&gzip_headers(), Body::from(bomb), 500 * 1024)
            .await
            .unwrap_err();
        assert!(
            matches!(error, ApiError::PayloadTooLarge(ref m) if m.contains("500 KB")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn plain_bodies_over_the_limit_are_refused() {
        let error = read_limited(&HeaderMap::new(), Body::from(vec![b'x'; 101]), 100)
            .await
            .unwrap_err();
        assert!(matches!(error, ApiError::PayloadTooLarge(_)));
    }

    #[tokio::test]
    async fn unknown_encodings_and_bad_gzip_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, "br".parse().unwrap());
        let error = read_limited(&headers, Body::from("x"), 100)
            .await
            .unwrap_err();
        assert!(matches!(error, ApiError::UnsupportedEncoding(_)));
        let error = read_limited(&gzip_headers(), Body::from("not gzip"), 100)
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            ApiError::InvalidParameter { field: "body", .. }
        ));
    }
}
