//! The one `ProxyHttp` implementation: every request that reaches a listener passes through
//! [`Gateway`]. Its hooks are where the gateway's policy lives; each says what it enforces.
//! Paths the gateway serves itself (health, metrics, the IdP) are answered in
//! `request_filter` from the transport-free [`App`]; every other request is matched against
//! the `[[route]]` table and forwarded to its upstream. `local.rs` answers what the gateway
//! serves itself, `session.rs` reads pingora's session, `access.rs` (with `identity.rs`,
//! `login.rs`, `refusal.rs`) decides who may pass.

pub mod access;
pub mod cidr;
pub mod edge;
pub mod forward_auth;
pub mod headers;
pub mod health;
mod identity;
mod incoming;
mod local;
mod login;
mod refusal;
pub mod routes;
mod session;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use pingora::prelude::*;
use pingora_http::ResponseHeader;
use pingora_proxy::{ProxyHttp, Session};

use crate::http::IntoResponse;
use crate::http::{path, ApiError, Response};
use crate::idp::endpoints::Endpoint;
use crate::idp::App;

pub use local::write_response;
use session::{forwarded_for, incoming, origin_form, request_authority, request_host};

/// Per-request state carried between hooks.
pub struct RequestCtx {
    started: Instant,
    /// The `route` label under which the request is counted (built-in endpoints).
    route: &'static str,
    /// The route table this request was matched against (a reload swaps the table; a
    /// request in flight keeps its own) and the matched route's position in it.
    upstream: Option<(Arc<routes::RouteTable>, usize)>,
    client_ip: Option<IpAddr>,
    /// Who the user is, for the identity headers.
    identity: Option<Arc<access::Identity>>,
    /// The upstream `upstream_peer` picked (its position in the route's list).
    picked: Option<usize>,
    /// Request body bytes forwarded so far (the route's `max_body_size`).
    body_bytes: u64,
    /// Arrived over TLS (ours, or a trusted proxy's), as `request_filter` found.
    tls: bool,
}

impl RequestCtx {
    fn route(&self) -> Option<&routes::ActiveRoute> {
        self.upstream.as_ref().and_then(|(t, i)| t.get(*i))
    }
}

/// The gateway's proxy logic.
pub struct Gateway {
    app: App,
    routes: Arc<ArcSwap<routes::RouteTable>>,
    access: Arc<access::Access>,
}

impl Gateway {
    pub fn new(app: App) -> Gateway {
        let routes = Arc::new(ArcSwap::from_pointee(routes::RouteTable::counted(
            &app.config.proxy,
            &app.metrics,
        )));
        let access = Arc::new(access::Access::new(app.clone()));
        Gateway {
            app,
            routes,
            access,
        }
    }

    /// The route table as reloads swap it (trusted proxies for the connection limits).
    pub fn routes(&self) -> Arc<ArcSwap<routes::RouteTable>> {
        self.routes.clone()
    }

    /// The connection filter of the global IP rules (follows reloads).
    pub fn connection_filter(&self) -> routes::GlobalIpFilter {
        routes::GlobalIpFilter::new(self.routes.clone())
    }

    /// The active health checks of the routes' upstreams (follows reloads).
    pub fn health_checker(&self) -> health::HealthChecker {
        health::HealthChecker::new(self.routes.clone())
    }

    /// What a reload needs to swap the routes.
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            routes: self.routes.clone(),
            access: self.access.clone(),
            metrics: self.app.metrics.clone(),
        }
    }

    /// Our own TLS, or a trusted proxy's `X-Forwarded-Proto: https`.
    fn arrived_over_tls(&self, session: &Session) -> bool {
        let own_tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let peer = session.client_addr().and_then(|a| a.as_inet()).copied();
        let proto = session
            .req_header()
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok());
        self.routes.load().arrived_over_tls(own_tls, peer, proto)
    }
}

/// Swaps the route table on reload.
#[derive(Clone)]
pub struct ReloadHandle {
    routes: Arc<ArcSwap<routes::RouteTable>>,
    access: Arc<access::Access>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl ReloadHandle {
    /// Serve `proxy` from now on; requests in flight finish with the old routes.
    pub fn swap(&self, proxy: &crate::config::ProxyConfig) {
        self.routes
            .store(Arc::new(routes::RouteTable::counted(proxy, &self.metrics)));
        self.access.clear();
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    /// No downstream modules: pingora's default adds a disabled response-compression
    /// module, which costs every request an allocation and three boxed futures; the gateway
    /// does not compress (upstreams do, and their encoding passes through).
    fn init_downstream_modules(&self, _modules: &mut pingora_core::modules::http::HttpModules) {}

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            route: "unmatched",
            upstream: None,
            client_ip: None,
            identity: None,
            picked: None,
            body_bytes: 0,
            tls: false,
        }
    }

    /// Enforces, in order, for every request: identity headers sent by the client are
    /// removed (all spellings); the path is normalised (bad paths get 400); the global IP
    /// rules apply (403); the gateway's own endpoints are answered; a route must match
    /// (404) and its IP rules pass (403); then the route's access check (methods, session
    /// or bearer, policy) decides. Only then does the request go upstream.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        for name in headers::spoofed(&session.req_header().headers) {
            session.req_header_mut().remove_header(&name);
        }
        if let Err(e) = origin_form(session) {
            ctx.route = "invalid";
            write_response(session, e.into_response()).await?;
            return Ok(true);
        }
        let normalised = match path::normalise(session.req_header().uri.path()) {
            Ok(std::borrow::Cow::Borrowed(p)) => p.to_string(),
            Ok(std::borrow::Cow::Owned(p)) => {
                let uri = match session.req_header().uri.query() {
                    Some(q) => format!("{p}?{q}"),
                    None => p.clone(),
                };
                if let Ok(uri) = uri.parse::<http::Uri>() {
                    session.req_header_mut().set_uri(uri);
                }
                p
            }
            Err(e) => {
                ctx.route = "invalid";
                let refusal = ApiError::BadRequest(format!("invalid path: {e}"));
                let response = self
                    .app
                    .edge_refusal(session.req_header().uri.path(), refusal);
                write_response(session, response).await?;
                return Ok(true);
            }
        };
        let table = self.routes.load_full();
        let peer = session.client_addr().and_then(|a| a.as_inet()).copied();
        let ip = table.client_ip(
            peer,
            forwarded_for(&session.req_header().headers).as_deref(),
        );
        ctx.client_ip = ip;
        if let Some(ip) = ip {
            if !table.globally_permitted(ip) {
                ctx.route = "denied";
                write_response(session, ApiError::Forbidden.into_response()).await?;
                return Ok(true);
            }
        }
        if normalised == access::FORWARD_AUTH_PATH {
            ctx.route = "forward_auth";
            let response = forward_auth::answer(
                &self.access,
                self.app.config.proxy.forward_auth_headers,
                &table,
                &session.req_header().headers,
                peer,
                ip,
            );
            write_response(session, response).await?;
            return Ok(true);
        }
        if let Some((endpoint, params)) = self.app.route(&normalised) {
            ctx.route = endpoint.metric_label();
            if !self.endpoint_permitted(endpoint, &table, peer, ip) {
                write_response(session, ApiError::Forbidden.into_response()).await?;
                return Ok(true);
            }
            self.serve_local(session, endpoint, &params, ip).await?;
            return Ok(true);
        }
        let host = request_host(session);
        let tls = self.arrived_over_tls(session);
        ctx.tls = tls;
        if normalised.starts_with(access::RESERVED_PREFIX) {
            let authority = request_authority(session, &host);
            let incoming = incoming(session, &host, &authority, &normalised, tls, ip);
            if let Some(response) = self.reserved(&table, &incoming) {
                ctx.route = "gateway";
                write_response(session, response).await?;
                return Ok(true);
            }
        }
        let Some((index, route)) = table.find_indexed(&host, &normalised) else {
            if normalised == "/" {
                // No app serves this host's root: Keycloak's welcome page.
                ctx.route = Endpoint::Welcome.metric_label();
                let params = crate::idp::endpoints::Params::default();
                self.serve_local(session, Endpoint::Welcome, &params, ip)
                    .await?;
                return Ok(true);
            }
            write_response(session, ApiError::NotFound.into_response()).await?;
            return Ok(true);
        };
        let own_tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        if route.config.https_redirect && !own_tls && !tls {
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
            if !routes::permitted(ip, &route.allow, &route.deny) {
                write_response(session, ApiError::Forbidden.into_response()).await?;
                return Ok(true);
            }
        }
        let declared = session
            .req_header()
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let (Some(limit), Some(length)) = (route.config.max_body_size, declared) {
            if length > limit {
                session.set_keepalive(None);
                write_response(session, ApiError::PayloadTooLarge.into_response()).await?;
                return Ok(true);
            }
        }
        if route.config.upstreams.is_empty() {
            // A forward-auth-only route: nothing to forward to.
            write_response(session, ApiError::NotFound.into_response()).await?;
            return Ok(true);
        }
        let authority = if route.config.access.is_some() {
            request_authority(session, &host)
        } else {
            String::new()
        };
        let incoming = incoming(session, &host, &authority, &normalised, tls, ip);
        let outcome = match &route.config.access {
            Some(a) if a.signout_path.as_deref() == Some(normalised.as_str()) => {
                access::Outcome::Respond(self.access.sign_out(a, &incoming))
            }
            _ => self.access.check(&route.config, index, &incoming),
        };
        ctx.upstream = Some((table.clone(), index));
        match outcome {
            access::Outcome::Respond(response) => {
                write_response(session, response).await?;
                Ok(true)
            }
            access::Outcome::Pass(identity) => {
                if let Some(access) = &route.config.access {
                    // Renamed identity headers are stripped in all their spellings too.
                    for name in
                        headers::spoofed_as(&session.req_header().headers, access.headers.all())
                    {
                        session.req_header_mut().remove_header(&name);
                    }
                }
                ctx.identity = identity;
                Ok(false)
            }
        }
    }

    /// Counts the request body against the route's `max_body_size` (for bodies without a
    /// `Content-Length`, which `request_filter` already checked): 413 once it is passed.
    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if session.was_upgraded() {
            return Ok(()); // websocket frames, not a request body
        }
        ctx.body_bytes += body.as_ref().map_or(0, |b| b.len() as u64);
        let limit = ctx.route().and_then(|r| r.config.max_body_size);
        if limit.is_some_and(|l| ctx.body_bytes > l) {
            session.set_keepalive(None);
            return Error::e_explain(ErrorType::HTTPStatus(413), "request body too large");
        }
        Ok(())
    }

    /// The matched route's next upstream (round robin); TLS with SNI for https upstreams.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let route = ctx.route().ok_or_else(|| {
            Error::explain(ErrorType::HTTPStatus(502), "no upstream route matches")
        })?;
        let (index, upstream) = route.pick().ok_or_else(|| {
            Error::explain(ErrorType::HTTPStatus(502), "the route has no upstream")
        })?;
        let tls = &route.config.upstream_tls;
        let sni = tls.sni.clone().unwrap_or_else(|| upstream.host.clone());
        let mut peer = HttpPeer::new(upstream.addr, upstream.tls, sni);
        if upstream.tls {
            peer.options.verify_cert = tls.verify;
            peer.options.verify_hostname = tls.verify;
            peer.options.ca = route.ca.clone();
        }
        peer.options.connection_timeout = Some(route.config.connect_timeout);
        peer.options.read_timeout = Some(route.config.timeout);
        peer.options.write_timeout = Some(route.config.timeout);
        ctx.picked = Some(index);
        Ok(Box::new(peer))
    }

    /// Tells the upstream who the client is (`X-Forwarded-For/Proto/Host`) and who the
    /// user is (the identity headers), removes the gateway's own cookies, and, unless the
    /// route preserves it, sets `Host` to the upstream's.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut pingora_http::RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        for name in headers::forwarding(&upstream_request.headers) {
            upstream_request.remove_header(&name);
        }
        if let Some(ip) = ctx.client_ip {
            // Replace, not append: only trusted proxies' entries were believed.
            let ip = ip.to_string();
            upstream_request.insert_header("x-real-ip", ip.clone())?;
            upstream_request.insert_header("x-forwarded-for", ip)?;
        }
        let proto = if ctx.tls { HTTPS } else { HTTP };
        upstream_request.insert_header("x-forwarded-proto", proto)?;
        if let Some(h) = session.req_header().headers.get(http::header::HOST) {
            upstream_request.insert_header("x-forwarded-host", h.clone())?;
        }
        if let Some(cookies) = headers::without_gateway_cookies(&upstream_request.headers) {
            match cookies {
                Some(v) => upstream_request.insert_header(http::header::COOKIE, v)?,
                None => {
                    upstream_request.remove_header(&http::header::COOKIE);
                }
            }
        }
        if let Some(route) = ctx.route() {
            if let (Some(_), Some(identity)) = (&route.config.access, &ctx.identity) {
                for h in identity.headers() {
                    upstream_request.insert_header(h.name_bytes.clone(), h.value.clone())?;
                }
            }
            for name in &route.config.remove_request_headers {
                upstream_request.remove_header(name);
            }
            for (name, value) in &route.config.set_request_headers {
                upstream_request.insert_header(name.clone(), value.clone())?;
            }
            if !route.config.preserve_host {
                // The upstream this request goes to (round robin), as its URL names it.
                if let Some(Some(host)) = route.upstream_hosts.get(ctx.picked.unwrap_or(0)) {
                    upstream_request.insert_header(http::header::HOST, host.clone())?;
                }
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
        let Some(route) = ctx.route() else {
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

    /// The upstream failed: nginx's answers, 504 when it timed out (connecting, in the TLS
    /// handshake, reading or writing) and 502 for any other upstream failure.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        _ctx: &mut RequestCtx,
    ) -> pingora_proxy::FailToProxy {
        let code = gateway_status(e);
        if code > 0 {
            if let Err(e) = session.respond_error(code).await {
                tracing::debug!(error = %e, "could not answer the client after an upstream failure");
            }
        }
        pingora_proxy::FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// Counts the request in the metrics; no per-request log line (it would flood the log).
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(0);
        let elapsed = ctx.started.elapsed();
        match ctx.route() {
            Some(route) => route.stats.record(status, elapsed),
            None => self.app.metrics.observe(ctx.route, status, elapsed),
        }
    }
}

// Names are given to pingora as `&'static str`: its case map keeps them without a copy
// (a `HeaderName` would be copied into its title-cased form). Values as static
// `HeaderValue`s are not copied either.
const HTTPS: http::HeaderValue = http::HeaderValue::from_static("https");
const HTTP: http::HeaderValue = http::HeaderValue::from_static("http");

/// The status for a request the proxy could not complete: pingora's mapping, but a timeout
/// on the upstream side is 504 (pingora says 502), and one of unknown side (reading a
/// client's body for a local endpoint) 408, not 500; 0 when the client is already gone.
fn gateway_status(e: &Error) -> u16 {
    use pingora::ErrorSource as Source;
    match (e.etype(), e.esource()) {
        (ErrorType::HTTPStatus(code), _) => *code,
        (_, Source::Downstream) => match e.etype() {
            ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
            _ => 400,
        },
        (
            ErrorType::ConnectTimedout
            | ErrorType::TLSHandshakeTimedout
            | ErrorType::ReadTimedout
            | ErrorType::WriteTimedout,
            Source::Upstream,
        ) => 504,
        (ErrorType::ReadTimedout | ErrorType::WriteTimedout, Source::Unset) => 408,
        (_, Source::Upstream) => 502,
        (_, Source::Internal | Source::Unset) => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_timeouts_are_504_other_upstream_failures_502() {
        let status = |etype, source| {
            let mut e = Error::new(etype);
            e.esource = source;
            gateway_status(&e)
        };
        use pingora::ErrorSource as S;
        assert_eq!(status(ErrorType::ReadTimedout, S::Upstream), 504);
        assert_eq!(status(ErrorType::ConnectTimedout, S::Upstream), 504);
        assert_eq!(status(ErrorType::WriteTimedout, S::Upstream), 504);
        assert_eq!(status(ErrorType::ReadTimedout, S::Unset), 408);
        assert_eq!(status(ErrorType::ConnectRefused, S::Upstream), 502);
        assert_eq!(status(ErrorType::InvalidHTTPHeader, S::Upstream), 502);
        assert_eq!(status(ErrorType::ReadError, S::Downstream), 0);
        assert_eq!(status(ErrorType::ReadTimedout, S::Downstream), 400);
        assert_eq!(status(ErrorType::HTTPStatus(429), S::Internal), 429);
    }
}
