//! `analytics healthcheck`: asks a running instance's `/healthz`, for container
//! health checks in images that have no shell and no HTTP client.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// Why the probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No connection, or no complete answer in time.
    #[error("{address}: {source}")]
    Io {
        /// The address probed.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The service answered something else than 200.
    #[error("{address}: answered {status_line:?}")]
    Unhealthy {
        /// The address probed.
        address: SocketAddr,
        /// The first line of the answer.
        status_line: String,
    },
}

/// The address to probe for a listen address: a wildcard listener is reached
/// on the loopback interface of its family.
pub fn probe_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Sends `GET path` to `address` and succeeds on a 200 answer.
pub fn probe(address: SocketAddr, path: &str, timeout: Duration) -> Result<(), ProbeError> {
    let io = |source| ProbeError::Io { address, source };
    let mut stream = TcpStream::connect_timeout(&address, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut answer = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut answer)
        .map_err(io)?;
    let answer = String::from_utf8_lossy(&answer);
    let status_line = answer.lines().next().unwrap_or_default();
    match status_line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        _ => Err(ProbeError::Unhealthy {
            address,
            status_line: status_line.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listeners_are_probed_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(probe_address(v4).to_string(), "127.0.0.1:8080");
        let v6: SocketAddr = "[::]:9000".parse().unwrap();
        assert_eq!(probe_address(v6).to_string(), "[::1]:9000");
        let fixed: SocketAddr = "10.1.2.3:80".parse().unwrap();
        assert_eq!(probe_address(fixed), fixed);
    }

    #[test]
    fn a_closed_port_fails_the_probe() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let error = probe(address, "/healthz", Duration::from_secs(1)).unwrap_err();
        assert!(matches!(error, ProbeError::Io { .. }), "{error}");
    }
}
