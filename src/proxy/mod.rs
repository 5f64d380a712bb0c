//! The one `ProxyHttp` implementation: every request that reaches a listener passes through
//! [`Gateway`]. Its hooks are where the gateway's policy lives; each says what it enforces.
//! Paths the gateway serves itself (health, metrics, the IdP) are answered in
//! `request_filter` from the transport-free [`App`]; every other request is matched against
//! the `[[route]]` table and forwarded to its upstream.

pub mod headers;
pub mod path;
pub mod routes;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::prelude::*;
use pingora_http::ResponseHeader;
use pingora_proxy::{ProxyHttp, Session};

use crate::http::{ApiError, App, Endpoint, Params, RequestInfo, Response};

/// Per-request state carried between hooks.
pub struct RequestCtx {
    started: Instant,
    /// The `route` label under which the request is counted (built-in endpoints).
    route: &'static str,
    /// The upstream route matched, by label (its metrics name) and position.
    upstream: Option<(Arc<str>, usize)>,
    client_ip: Option<IpAddr>,
}

/// The gateway's proxy logic.
pub struct Gateway {
    app: App,
    routes: Arc<routes::RouteTable>,
}

impl Gateway {
    pub fn new(app: App) -> Gateway {
        let routes = Arc::new(routes::RouteTable::new(&app.config.proxy));
        Gateway { app, routes }
    }

    /// The matched route of this request.
    fn route_of(&self, ctx: &RequestCtx) -> Option<&routes::ActiveRoute> {
        ctx.upstream.as_ref().and_then(|(_, i)| self.routes.get(*i))
    }

    /// Read the whole request body, refusing more than the configured limit.
    async fn read_body(&self, session: &mut Session) -> Result<Result<Bytes, ApiError>> {
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
    async fn serve_local(
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
                let own_tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
                let proto = session
                    .req_header()
                    .headers
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok());
                let info = RequestInfo {
                    // The client as the trusted proxies report it, for events and lockouts.
                    peer: match (client_ip, peer) {
                        (Some(ip), Some(p)) => Some(std::net::SocketAddr::new(ip, p.port())),
                        _ => peer,
                    },
                    tls: self.routes.arrived_over_tls(own_tls, peer, proto),
                };
                self.app.handle(endpoint, params, request, info).await
            }
        };
        write_response(session, response).await
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

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            route: "unmatched",
            upstream: None,
            client_ip: None,
        }
    }

    /// Enforces, in order, for every request: identity headers sent by the client are
    /// removed (all spellings); the path is normalised (bad paths get 400); the global IP
    /// rules apply (403); the gateway's own endpoints are answered; a route must match
    /// (404) and its IP rules pass (403). Only then does the request go upstream.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        for name in headers::spoofed(&session.req_header().headers) {
            session.req_header_mut().remove_header(&name);
        }
        let raw = session.req_header().uri.path().to_string();
        let normalised = match path::normalise(&raw) {
            Ok(p) => p.into_owned(),
            Err(e) => {
                ctx.route = "invalid";
                write_response(
                    session,
                    ApiError::BadRequest(format!("invalid path: {e}")).into_response(),
                )
                .await?;
                return Ok(true);
            }
        };
        if normalised != raw {
            let uri = match session.req_header().uri.query() {
                Some(q) => format!("{normalised}?{q}"),
                None => normalised.clone(),
            };
            if let Ok(uri) = uri.parse::<http::Uri>() {
                session.req_header_mut().set_uri(uri);
            }
        }
        let peer = session.client_addr().and_then(|a| a.as_inet()).copied();
        let forwarded_for = session
            .req_header()
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let ip = self.routes.client_ip(peer, forwarded_for.as_deref());
        ctx.client_ip = ip;
        if let Some(ip) = ip {
            if !self.routes.globally_permitted(ip) {
                ctx.route = "denied";
                write_response(session, ApiError::Forbidden.into_response()).await?;
                return Ok(true);
            }
        }
        if let Some((endpoint, params)) = self.app.route(&normalised) {
            ctx.route = endpoint.metric_label();
            self.serve_local(session, endpoint, &params, ip).await?;
            return Ok(true);
        }
        let host = request_host(session);
        let Some((index, route)) = self.routes.find_indexed(&host, &normalised) else {
            write_response(session, ApiError::NotFound.into_response()).await?;
            return Ok(true);
        };
        ctx.upstream = Some((route.label.clone(), index));
        let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        if route.config.https_redirect && !tls {
            if let Some(https) = self.app.config.server.https {
                let port = if https.port() == 443 {
                    String::new()
                } else {
                    format!(":{}", https.port())
                };
                let target = session
                    .req_header()
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "/".into());
                let mut response = Response::new(Bytes::new());
                *response.status_mut() = http::StatusCode::PERMANENT_REDIRECT;
                if let Ok(v) = http::HeaderValue::from_str(&format!("https://{host}{port}{target}"))
                {
                    response.headers_mut().insert(http::header::LOCATION, v);
                }
                write_response(session, response).await?;
                return Ok(true);
            }
        }
        if let Some(ip) = ip {
            if !routes::permitted(ip, &route.config.allow, &route.config.deny) {
                write_response(session, ApiError::Forbidden.into_response()).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The matched route's next upstream (round robin); TLS with SNI for https upstreams.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let route = self.route_of(ctx).ok_or_else(|| {
            Error::explain(ErrorType::HTTPStatus(502), "no upstream route matches")
        })?;
        let upstream = route.pick();
        let mut peer = HttpPeer::new(upstream.addr, upstream.tls, upstream.host.clone());
        peer.options.connection_timeout = Some(route.config.connect_timeout);
        peer.options.read_timeout = Some(route.config.timeout);
        peer.options.write_timeout = Some(route.config.timeout);
        Ok(Box::new(peer))
    }

    /// Tells the upstream who the client is (`X-Forwarded-For/Proto/Host`) and, unless the
    /// route preserves it, sets `Host` to the upstream's.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut pingora_http::RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let host = session
            .req_header()
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        if let Some(ip) = ctx.client_ip {
            // Replace, not append: only trusted proxies' entries were believed.
            upstream_request.insert_header("x-forwarded-for", ip.to_string())?;
        }
        upstream_request.insert_header("x-forwarded-proto", if tls { "https" } else { "http" })?;
        if let Some(h) = &host {
            upstream_request.insert_header("x-forwarded-host", h.as_str())?;
        }
        if let Some(route) = self.route_of(ctx) {
            for name in &route.config.remove_request_headers {
                upstream_request.remove_header(name);
            }
            for (name, value) in &route.config.set_request_headers {
                upstream_request.insert_header(name.clone(), value.clone())?;
            }
            if !route.config.preserve_host {
                let upstream = &route.config.upstreams[0];
                upstream_request.insert_header(
                    http::header::HOST,
                    format!("{}:{}", upstream.host, upstream.addr.port()),
                )?;
            }
        }
        Ok(())
    }

    /// The route's response header changes, and HSTS on TLS for routes that want it.
    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(route) = self.route_of(ctx) else {
            return Ok(());
        };
        for name in &route.config.remove_response_headers {
            upstream_response.remove_header(name);
        }
        for (name, value) in &route.config.set_response_headers {
            upstream_response.insert_header(name.clone(), value.clone())?;
        }
        if route.config.hsts && session.digest().is_some_and(|d| d.ssl_digest.is_some()) {
            upstream_response.insert_header(
                http::header::STRICT_TRANSPORT_SECURITY,
                "max-age=31536000; includeSubDomains",
            )?;
        }
        Ok(())
    }

    /// Counts the request in the metrics; no per-request log line (it would flood the log).
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(0);
        let label = ctx
            .upstream
            .as_ref()
            .map(|(l, _)| l.as_ref())
            .unwrap_or(ctx.route);
        self.app
            .metrics
            .observe(label, status, ctx.started.elapsed());
    }
}

/// The request's host, lower case, without a port.
fn request_host(session: &Session) -> String {
    let header = session.req_header();
    let raw = header
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| header.uri.host())
        .unwrap_or("");
    let host = if raw.starts_with('[') {
        raw.split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        raw.split(':').next().unwrap_or("").to_string()
    };
    host.to_ascii_lowercase()
}
