//! What the gateway answers itself, without an upstream: the IdP's endpoints (health,
//! metrics, OIDC, login pages, the admin API) with their address rules, the reserved paths
//! on routed hosts (login callback, login start, sign-out), and writing a complete response.

use std::net::IpAddr;

use bytes::{Bytes, BytesMut};
use pingora::prelude::*;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

use crate::http::{ApiError, IntoResponse, RequestInfo, Response};
use crate::idp::endpoints::{Endpoint, Params};

use super::{access, routes, Gateway};

impl Gateway {
    /// Read the whole request body, refusing more than the configured limit.
    pub(super) async fn read_body(&self, session: &mut Session) -> Result<Result<Bytes, ApiError>> {
        let limit = self.app.config.server.max_body_size;
        let mut body = BytesMut::new();
        while let Some(chunk) = session.read_request_body().await? {
            if body.len() + chunk.len() > limit {
                return Ok(Err(ApiError::PayloadTooLarge));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Ok(body.freeze()))
    }

    /// Serve a request addressed to the gateway itself.
    pub(super) async fn serve_local(
        &self,
        session: &mut Session,
        endpoint: Endpoint,
        params: &Params,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<()> {
        let response = match self.read_body(session).await? {
            Err(e) => e.into_response(),
            Ok(body) => {
                let parts = session.req_header().as_owned_parts();
                let request = http::Request::from_parts(parts, body);
                let peer = session.client_addr().and_then(|a| a.as_inet()).copied();
                let info = RequestInfo {
                    // The client as the trusted proxies report it, for events and lockouts.
                    peer: match (client_ip, peer) {
                        (Some(ip), Some(p)) => Some(std::net::SocketAddr::new(ip, p.port())),
                        _ => peer,
                    },
                    tls: self.arrived_over_tls(session),
                };
                self.app.handle(endpoint, params, request, info).await
            }
        };
        write_response(session, response).await
    }

    /// `/metrics` only for `server.metrics_allow` (loopback by default) and trusted
    /// proxies; the admin paths only for `server.admin_allow` when it is set.
    pub(super) fn endpoint_permitted(
        &self,
        endpoint: Endpoint,
        table: &routes::RouteTable,
        peer: Option<std::net::SocketAddr>,
        client_ip: Option<IpAddr>,
    ) -> bool {
        let server = &self.app.config.server;
        let listed = |nets: &[ipnet::IpNet]| {
            client_ip.is_some_and(|ip| nets.iter().any(|n| n.contains(&ip)))
        };
        match endpoint {
            Endpoint::Metrics => {
                peer.is_some_and(|p| table.is_trusted(p.ip())) || listed(&server.metrics_allow)
            }
            // Everything under `/admin/`: the API, the console's server info and whoami,
            // and the API's document.
            Endpoint::Admin
            | Endpoint::ServerInfo
            | Endpoint::WhoAmI
            | Endpoint::OpenApi
            | Endpoint::Console
            | Endpoint::AdminRoot => server.admin_allow.is_empty() || listed(&server.admin_allow),
            _ => true,
        }
    }

    /// The gateway's own paths on routed hosts: login callback, login start, sign-out.
    pub(super) fn reserved(
        &self,
        table: &routes::RouteTable,
        incoming: &access::Incoming,
    ) -> Option<Response> {
        match incoming.path {
            access::CALLBACK_PATH => Some(self.access.callback(incoming)),
            access::START_PATH | access::SIGN_OUT_PATH => {
                let target = access::safe_return_path(
                    &incoming.return_target().unwrap_or_else(|| "/".into()),
                );
                let target_path = target.split('?').next().unwrap_or("/");
                let route = table.access_route(incoming.host, target_path)?;
                let access = route.config.access.as_ref()?;
                Some(if incoming.path == access::START_PATH {
                    self.access.login_redirect(access, incoming, target)
                } else {
                    self.access.sign_out(access, incoming)
                })
            }
            _ => None,
        }
    }
}

/// Send a complete response from the gateway itself.
pub async fn write_response(session: &mut Session, response: Response) -> Result<()> {
    let (parts, body) = response.into_parts();
    let mut header = ResponseHeader::build(parts.status, Some(parts.headers.len() + 1))?;
    for (name, value) in parts.headers.iter() {
        header.append_header(name.clone(), value.clone())?;
    }
    header.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    let head_only = session.req_header().method == http::Method::HEAD;
    let empty = body.is_empty() || head_only;
    session
        .write_response_header(Box::new(header), empty)
        .await?;
    if !empty {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}
