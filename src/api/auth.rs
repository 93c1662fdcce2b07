//! Keys from request headers: HTTP Basic (key as user name) or Bearer.

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use base64::Engine;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use crate::domain::{KeyKind, Project, ProjectRegistry};

/// A write key in the query string, for clients that can set no header
/// (`navigator.sendBeacon`) and SDKs that put it there.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct WriteKeyQuery {
    /// The write key, when not sent in the `Authorization` header.
    pub write_key: Option<String>,
}

/// The key carried by the `Authorization` header, if any.
pub fn header_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || ApiError::Unauthorized("malformed Authorization header".into());
    let value = value.to_str().map_err(|_| malformed())?.trim();
    let (scheme, credentials) = value.split_once(' ').ok_or_else(malformed)?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(credentials.to_owned()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
        let user = decoded
            .split_once(':')
            .map_or(decoded.as_str(), |(user, _)| user);
        return Ok(Some(user.to_owned()));
    }
    Err(ApiError::Unauthorized(format!(
        "unsupported Authorization scheme {scheme:?}; use Basic or Bearer"
    )))
}

/// The project a key of `kind` authorises, or 401.
pub fn authorize(
    registry: &ProjectRegistry,
    key: Option<&str>,
    kind: KeyKind,
) -> Result<Arc<Project>, ApiError> {
    let noun = match kind {
        KeyKind::Write => "write key",
        KeyKind::Read => "read key",
        KeyKind::Share => "share token",
    };
    let key = key.filter(|k| !k.is_empty()).ok_or_else(|| {
        ApiError::Unauthorized(format!(
            "missing {noun}: send it as HTTP Basic user name or as a Bearer token"
        ))
    })?;
    registry
        .authorize(key, kind)
        .ok_or_else(|| ApiError::Unauthorized(format!("unknown {noun}")))
}

/// The project a read key authorises: 401 for a missing or unknown key, 403 for
/// a write key (it sends events but cannot read them).
pub fn authorize_read(
    registry: &ProjectRegistry,
    headers: &HeaderMap,
) -> Result<Arc<Project>, ApiError> {
    let key = header_key(headers)?;
    if let Some(key) = key.as_deref() {
        if registry.authorize(key, KeyKind::Write).is_some() {
            return Err(ApiError::Forbidden(
                "a write key cannot read events; use a read key".into(),
            ));
        }
    }
    if let Some(key) = key.as_deref() {
        if registry.authorize(key, KeyKind::Share).is_some() {
            return Err(ApiError::Forbidden(
                "a share token opens the shared overview (queries) only; use a read key".into(),
            ));
        }
    }
    authorize(registry, key.as_deref(), KeyKind::Read)
}

/// The project a read key or its share token authorises, and whether it was
/// the share token: for what the shared overview reads (queries, the
/// project). 401 for a missing or unknown key, 403 for a write key.
pub fn authorize_view(
    registry: &ProjectRegistry,
    headers: &HeaderMap,
) -> Result<(Arc<Project>, bool), ApiError> {
    if let Some(key) = header_key(headers)? {
        if let Some(project) = registry.authorize(&key, KeyKind::Share) {
            return Ok((project, true));
        }
    }
    authorize_read(registry, headers).map(|project| (project, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn basic_user_name_and_bearer_token_are_keys() {
        // base64("wk_abc:") and base64("wk_abc")
        assert_eq!(
            header_key(&with_authorization("Basic d2tfYWJjOg=="))
                .unwrap()
                .as_deref(),
            Some("wk_abc")
        );
        assert_eq!(
            header_key(&with_authorization("basic d2tfYWJj"))
                .unwrap()
                .as_deref(),
            Some("wk_abc")
        );
        assert_eq!(
            header_key(&with_authorization("Bearer rk_1"))
                .unwrap()
                .as_deref(),
            Some("rk_1")
        );
        assert_eq!(header_key(&HeaderMap::new()).unwrap(), None);
        assert!(header_key(&with_authorization("Digest x")).is_err());
        assert!(header_key(&with_authorization("Basic !!!")).is_err());
    }
}
