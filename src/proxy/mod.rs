//! The one `ProxyHttp` implementation: every request that reaches a listener passes through
//! [`Gateway`]. Its hooks are where the gateway's policy lives; each says what it enforces.
//! Paths the gateway serves itself (health, metrics, and later the IdP) are answered in
//! `request_filter` from the transport-free [`App`]; upstream routes come with the proxy
//! configuration.

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
    /// The `route` label under which the request is counted.
    route: &'static str,
}

/// The gateway's proxy logic.
pub struct Gateway {
    app: App,
}

impl Gateway {
    pub fn new(app: App) -> Gateway {
        Gateway { app }
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
    ) -> Result<()> {
        let response = match self.read_body(session).await? {
            Err(e) => e.into_response(),
            Ok(body) => {
                let parts = session.req_header().as_owned_parts();
                let request = http::Request::from_parts(parts, body);
                let info = RequestInfo {
                    peer: session.client_addr().and_then(|a| a.as_inet()).copied(),
                    tls: session.digest().is_some_and(|d| d.ssl_digest.is_some()),
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
        }
    }

    /// Answers every path the gateway serves itself; nothing else is routed yet, so any
    /// other path gets a 404 JSON body and never reaches an upstream.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let endpoint = self.app.route(session.req_header().uri.path());
        match endpoint {
            Some((endpoint, params)) => {
                ctx.route = endpoint.metric_label();
                self.serve_local(session, endpoint, &params).await?;
            }
            None => write_response(session, ApiError::NotFound.into_response()).await?,
        }
        Ok(true)
    }

    /// Unreachable while `request_filter` answers every request; refuses rather than
    /// guessing an upstream.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        Err(Error::explain(
            ErrorType::HTTPStatus(502),
            "no upstream route matches",
        ))
    }

    /// Counts the request in the metrics; no per-request log line (it would flood the log).
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(0);
        self.app
            .metrics
            .observe(ctx.route, status, ctx.started.elapsed());
    }
}
