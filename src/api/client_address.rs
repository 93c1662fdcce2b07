//! Who is sending: the socket's peer, or, when that peer is a trusted
//! proxy (`ingest.trusted_proxies`), the client its `Forwarded` or
//! `X-Forwarded-For` header names. Forwarding headers from any other peer
//! are ignored, so a client cannot choose its own address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;

use super::AppState;
use crate::app::Sender;

/// The request's sender, as an extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientAddress(pub Sender);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip());
        let ip = peer.map(|peer| client_ip(peer, &parts.headers, &state.web.trusted_proxies));
        Ok(ClientAddress(Sender { ip }))
    }
}

/// The client behind `peer`: the nearest address of the forwarding chain
/// that is not a trusted proxy, walking back from `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let chain = forwarded_for(headers).unwrap_or_default();
    let mut client = peer;
    for hop in chain.into_iter().rev() {
        client = hop;
        if !is_trusted(&hop) {
            break;
        }
    }
    client
}

/// The addresses a `Forwarded` header lists (its `for=` parameters), else
/// those of `X-Forwarded-For`, first hop first; `None` when neither parses.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|part| part.trim().to_owned())
            .collect()
    };
    let standard: Vec<IpAddr> = values("forwarded")
        .iter()
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.eq_ignore_ascii_case("for").then(|| parse_node(value))?
            })
        })
        .collect();
    if !standard.is_empty() {
        return Some(standard);
    }
    let legacy: Vec<IpAddr> = values("x-forwarded-for")
        .iter()
        .filter_map(|value| parse_node(value))
        .collect();
    (!legacy.is_empty()).then_some(legacy)
}

/// An address as forwarding headers write it: `1.2.3.4`, `1.2.3.4:5678`,
/// `"[2001:db8::1]:443"`, `2001:db8::1`.
fn parse_node(value: &str) -> Option<IpAddr> {
    let value = value.trim().trim_matches('"');
    if let Ok(ip) = value.parse() {
        return Some(ip);
    }
    if let Ok(socket) = value.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    let bracketed = value.strip_prefix('[')?;
    bracketed.split(']').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
        let sent = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            client_ip(ip("198.51.100.7"), &sent, &[]),
            ip("198.51.100.7")
        );
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_ip(ip("198.51.100.7"), &sent, &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_spoofed_hops_before_it_do_not_count() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let sent = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &sent, &trusted),
            ip("203.0.113.9")
        );
        let standard = headers(&[
            (
                "forwarded",
                "for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.3",
            ),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &standard, &trusted),
            ip("2001:db8::7")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers(&[]), &trusted),
            ip("10.0.0.1")
        );
    }
}
