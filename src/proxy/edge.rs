//! The connection layer in front of pingora's HTTP/1 handling: what a client must do to
//! keep a connection at all. pingora times each `read()` on its own (a client sending a
//! header byte every two seconds is never cut), waits for the next request on a kept-alive
//! connection without a limit, answers header overflow with 400 at 1 MiB, and has no hook
//! when a connection closes. So [`Edge`] reads every request head itself, against
//! `server.header_read_timeout` (408) and `server.max_header_size` / `max_headers` (431),
//! closes a kept-alive connection idle for `server.keepalive_timeout`, and holds a slot of
//! `server.max_connections_per_ip` for the connection's whole life. The head, once
//! complete, is handed to pingora as already-read bytes; HTTP/2 goes to pingora's own path
//! (its limits are its h2 settings).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::BytesMut;
use pingora_core::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::{Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use pingora_proxy::HttpProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::routes::RouteTable;
use super::Gateway;

/// The limits of [`Edge`], from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub max_header_size: usize,
    pub max_headers: usize,
    /// 0: no limit.
    pub max_connections_per_ip: usize,
}

impl Limits {
    pub fn of(server: &crate::config::ServerConfig) -> Limits {
        Limits {
            header_read_timeout: server.header_read_timeout,
            keepalive_timeout: server.keepalive_timeout,
            max_header_size: server.max_header_size,
            max_headers: server.max_headers,
            max_connections_per_ip: server.max_connections_per_ip,
        }
    }
}

const TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\ncontent-length: 80\r\nconnection: close\r\n\r\n{\"error\":\"request_header_fields_too_large\",\"error_description\":\"headers too large\"}";
const TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: 75\r\nconnection: close\r\n\r\n{\"error\":\"request_timeout\",\"error_description\":\"request headers too slow\"}";

/// The pingora proxy behind connection limits.
pub struct Edge {
    proxy: Arc<HttpProxy<Gateway>>,
    limits: Limits,
    per_ip: Arc<PerAddress>,
    routes: Arc<ArcSwap<RouteTable>>,
}

impl Edge {
    pub fn new(
        proxy: HttpProxy<Gateway>,
        limits: Limits,
        routes: Arc<ArcSwap<RouteTable>>,
    ) -> Edge {
        Edge {
            proxy: Arc::new(proxy),
            limits,
            per_ip: Arc::new(PerAddress::default()),
            routes,
        }
    }
}

enum Head {
    /// A complete request head (and maybe the start of its body).
    Ready(BytesMut),
    /// Close without a word (idle, client gone, shutting down).
    Close,
    /// Answer this and close.
    Refuse(&'static [u8]),
}

#[async_trait]
impl ServerApp for Edge {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        // Held until this function returns, whatever the path: the connection's slot.
        let _slot = match peer {
            Some(ip)
                if self.limits.max_connections_per_ip > 0 && !self.routes.load().is_trusted(ip) =>
            {
                match self.per_ip.acquire(ip, self.limits.max_connections_per_ip) {
                    Some(slot) => Some(slot),
                    None => {
                        tracing::debug!(%ip, "connection refused: too many from one address");
                        return None;
                    }
                }
            }
            _ => None,
        };
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return ServerApp::process_new(&self.proxy, stream, shutdown).await;
        }
        let mut settings: Option<HttpPersistentSettings> = None;
        let mut first = true;
        loop {
            let head = match read_head(&mut stream, &self.limits, first, shutdown).await {
                Head::Ready(head) => head,
                Head::Close => return None,
                Head::Refuse(answer) => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        let _ = AsyncWriteExt::write_all(&mut stream, answer).await;
                        let _ = AsyncWriteExt::shutdown(&mut stream).await;
                    })
                    .await;
                    return None;
                }
            };
            let mut session = ServerSession::new_http1(stream);
            match settings.take() {
                Some(s) => s.apply_to_session(&mut session),
                None => {
                    let secs = self.limits.keepalive_timeout.as_secs().max(1);
                    session.set_keepalive(Some(secs));
                    session.set_keepalive_reuses_remaining(
                        self.proxy
                            .server_options()
                            .and_then(|o| o.keepalive_request_limit),
                    );
                }
            }
            if *shutdown.borrow() {
                session.set_keepalive(None);
            }
            session.set_pipelined_prefix(head);
            let reused = HttpServerApp::process_new_http(&self.proxy, session, shutdown).await?;
            let (next, persistent) = reused.consume();
            stream = next;
            settings = persistent;
            first = false;
        }
    }

    async fn cleanup(&self) {
        ServerApp::cleanup(&*self.proxy).await
    }
}

/// Read one request head within the limits.
async fn read_head(
    stream: &mut Stream,
    limits: &Limits,
    first: bool,
    shutdown: &ShutdownWatch,
) -> Head {
    if !first && *shutdown.borrow() {
        return Head::Close;
    }
    let mut buf = BytesMut::with_capacity(4096);
    // The first byte: the header deadline on a new connection, the idle limit on a kept one.
    let wait = if first {
        limits.header_read_timeout
    } else {
        limits.keepalive_timeout
    };
    let mut stopping = shutdown.clone();
    tokio::select! {
        read = stream.read_buf(&mut buf) => match read {
            Ok(n) if n > 0 => {}
            _ => return Head::Close,
        },
        _ = tokio::time::sleep(wait) => return Head::Close,
        _ = stopping.changed() => return Head::Close,
    }
    let deadline = tokio::time::Instant::now() + limits.header_read_timeout;
    loop {
        match judge(&buf, limits) {
            Judged::Complete => return Head::Ready(buf),
            Judged::TooLarge => return Head::Refuse(TOO_LARGE),
            Judged::Partial => {}
        }
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => return Head::Close,
            Err(_) => return Head::Refuse(TIMEOUT),
        }
    }
}

/// What the bytes read so far make of a request head.
enum Judged {
    Complete,
    TooLarge,
    Partial,
}

/// Parse what has arrived against the limits. Synchronous, with the header slots on the
/// stack and left uninitialised (httparse writes the ones it uses): nothing allocated or
/// filled per request, and nothing of it held in the connection's task while it waits for
/// more bytes.
fn judge(buf: &[u8], limits: &Limits) -> Judged {
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let headers = &mut slots[..limits.max_headers.min(MAX_HEADERS)];
    match httparse::Request::new(&mut []).parse_with_uninit_headers(buf, headers) {
        Ok(httparse::Status::Complete(n)) if n > limits.max_header_size => Judged::TooLarge,
        Ok(httparse::Status::Complete(_)) => Judged::Complete,
        Err(httparse::Error::TooManyHeaders) => Judged::TooLarge,
        // Malformed: pingora answers it (400) once the head is complete.
        Err(_) if buf.windows(4).any(|w| w == b"\r\n\r\n") => Judged::Complete,
        _ if buf.len() > limits.max_header_size => Judged::TooLarge,
        _ => Judged::Partial,
    }
}

/// The most header slots `server.max_headers` may ask for (its validated maximum).
const MAX_HEADERS: usize = 256;

/// Open connections per client address.
#[derive(Debug, Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place; given back when dropped.
struct Slot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn acquire(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Slot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_judged_against_the_limits() {
        let limits = Limits {
            header_read_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
            max_header_size: 200,
            max_headers: 8,
            max_connections_per_ip: 0,
        };
        let head = |extra: &str| format!("GET / HTTP/1.1\r\nHost: a.test\r\n{extra}\r\n");
        assert!(matches!(
            judge(head("").as_bytes(), &limits),
            Judged::Complete
        ));
        assert!(matches!(
            judge(b"GET / HTTP/1.1\r\nHost: a", &limits),
            Judged::Partial
        ));
        let many: String = (0..8).map(|i| format!("X-{i}: v\r\n")).collect();
        assert!(matches!(
            judge(head(&many).as_bytes(), &limits),
            Judged::TooLarge
        ));
        let seven: String = (0..7).map(|i| format!("X-{i}: v\r\n")).collect();
        assert!(matches!(
            judge(head(&seven).as_bytes(), &limits),
            Judged::Complete
        ));
        let long = format!("X-Long: {}\r\n", "v".repeat(300));
        assert!(matches!(
            judge(head(&long).as_bytes(), &limits),
            Judged::TooLarge
        ));
        assert!(matches!(
            judge("x".repeat(300).as_bytes(), &limits),
            Judged::TooLarge
        ));
        // Malformed but complete: pingora answers it.
        assert!(matches!(
            judge(b"NOT HTTP\r\n\r\n", &limits),
            Judged::Complete
        ));
    }

    #[test]
    fn slots_are_counted_per_address_and_given_back() {
        let table = Arc::new(PerAddress::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let one = table.acquire(a, 2).unwrap();
        let two = table.acquire(a, 2).unwrap();
        assert!(
            table.acquire(a, 2).is_none(),
            "a third from the same address"
        );
        let other = table.acquire(b, 2);
        assert!(other.is_some(), "another address has its own count");
        drop(one);
        assert!(
            table.acquire(a, 2).is_some(),
            "a closed connection frees its slot"
        );
        drop((two, other));
        assert!(table.open.lock().unwrap().get(&b).is_none());
    }
}
