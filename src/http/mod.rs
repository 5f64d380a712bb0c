//! The transport-free HTTP layer, a leaf that knows no IdP and no proxy: the request and
//! response types (`http::Request<Bytes>` plus what the transport knows about the
//! connection), path normalisation and percent-decoding, known hosts, JSON and method
//! helpers, and [`error::IntoResponse`], which every error type implements at its own
//! boundary. The IdP's endpoints are in `crate::idp::app`; pingora only carries bytes.

pub mod error;
pub mod hosts;
pub mod path;

use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};

pub use error::{ApiError, IntoResponse};

pub type Request = http::Request<Bytes>;
pub type Response = http::Response<Bytes>;

/// What the transport knows about a request that the request itself does not carry.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo {
    /// The TCP peer.
    pub peer: Option<SocketAddr>,
    /// Whether the request arrived over TLS.
    pub tls: bool,
}

/// Loopback and private addresses: what Keycloak's `sslRequired = external` lets through
/// without TLS.
pub fn is_local(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_local(std::net::IpAddr::V4(v4)),
            None => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (v6.segments()[0] & 0xfe00) == 0xfc00
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
            }
        },
    }
}

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Allow only the listed methods, answering 405 with `Allow` otherwise.
pub fn require_method(request: &Request, allowed: &[http::Method]) -> Result<(), ApiError> {
    if allowed.contains(request.method()) {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed(allowed.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_for_ssl_required_external() {
        for local in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_local(local.parse().unwrap()), "{local}");
        }
        for public in [
            "203.0.113.9",
            "172.32.0.1",
            "8.8.8.8",
            "2001:db8::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_local(public.parse().unwrap()), "{public}");
        }
    }
}
