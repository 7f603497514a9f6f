//! The HTTP gateway: the cosmos on the web (SPEC §12).
//!
//! Every request becomes an `Http<Method>` Ping to a Space: the one named by the request's
//! host (without its port), or the default Space when no such Space exists. The Space's bind
//! routes it — to artifacts, mechtrons, other particles — and the reflection becomes the
//! response: status, headers, body.
//!
//! - **Agent**: Anonymous, or the user an `Authorization: Bearer <token>` stands for (a token
//!   that is not known is 401). The token never travels further into the cosmos.
//! - **Path**: the request's path and query (`/app/world?x=1`), the request target as HTTP has
//!   it: binds and mechtron routes match the path without the query, and the query travels on
//!   with the wave to whoever answers it (a mechtron reads it with `ctx.query()`).
//! - **Statuses**: what the cosmos answers, except that a wave that timed out (408 from the
//!   Shell) is **504**, and any 5xx answers a generic body: internals (a trap, a guest's
//!   reason) stay in the server's log, never in the response. A refusal is a plain `403
//!   Forbidden` for the same reason: which agent lacked which permission on which point is
//!   the operator's to read in the log, not the web's.
//! - **Limits** ([`GatewayConfig`]): request bodies over `max_body` are 413 before anything
//!   enters the cosmos; a request's headers must arrive within `read_timeout`, and its body
//!   within `read_timeout` after them (slow clients are cut off: the connection is closed,
//!   or the request answered 408); a keep-alive connection idle for `read_timeout` is closed;
//!   each request waits at most `wait` for its answer; at most `max_connections` are served
//!   at once; a client that leaves what is written to it untaken for `read_timeout` is cut
//!   off. Malformed requests are hyper's to answer (400, 431) before they reach us.
//! - **Shutdown** ([`serve`]): new connections are refused at once, requests under way are
//!   answered and streams end within the grace period; then what is left is cut off.
//! - **Channels** ([`stream`]): a route that ends at a `Channel` answers with the
//!   [`STREAM`] header; the gateway then streams the channel to the request, as
//!   Server-Sent Events or over a WebSocket, as the request's agent.
//! - **Observed**: every request it answers is counted in the machine's metrics (status,
//!   duration) and told at `debug` under the target [`HTTP_TARGET`] (method, path, status,
//!   µs); the reasons of 5xx answers are logged at `warn`, of refusals at `info`.
//! - **Metrics** ([`serve_metrics`]): the machine's metrics, on an address of their own
//!   (`STARLANE_METRICS`), as `GET /metrics`.
//!
//! axum and hyper live only here.

mod scrape;
mod stream;

pub(crate) use scrape::serve_metrics;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method as HttpVerb, Uri, header};
use axum::response::{IntoResponse, Response};
use cosmic_space::{
    Agent, BaseKind, HttpMethod, Method, Ping, Point, ReflectedCore, StatusCode, Substance,
    WaitTime,
};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Sleep;

use crate::channel::Hub;
use crate::driver::STREAM;
use crate::metrics::Metrics;
use crate::registry::Registry;

/// The `tracing` target of the gateway's lines: each request at `debug`, the reasons of its
/// refusals (`info`) and failures (`warn`).
pub const HTTP_TARGET: &str = "starlane::http";

/// Settings of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// The Space for hosts that are not a Space (`STARLANE_DEFAULT_SPACE`, default `localhost`).
    pub default_space: Point,
    /// The largest request body, in bytes (bigger: 413).
    pub max_body: usize,
    /// The largest request head — request line and headers — in bytes (bigger: 431). At
    /// most 100 headers are read, whatever their size.
    pub max_head: usize,
    /// How long a request's headers may take to arrive, and then its body; also how long a
    /// keep-alive connection may sit idle.
    pub read_timeout: Duration,
    /// How long a request waits for the cosmos to answer (then 504).
    pub wait: Duration,
    /// How many connections are served at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            default_space: "localhost".parse().unwrap_or_else(|_| Point::root()),
            max_body: 16 * 1024 * 1024,
            max_head: 64 * 1024,
            read_timeout: Duration::from_secs(10),
            wait: Duration::from_secs(30),
            max_connections: 4096,
        }
    }
}

/// What the request handler needs.
struct Gateway {
    machine: Arc<dyn Entry>,
    config: GatewayConfig,
    /// The connections being served (the accept loop's bound); a WebSocket, which outlives
    /// the HTTP connection it came from, takes one of its own.
    connections: Arc<Semaphore>,
    /// One permit per open stream (event stream or WebSocket): the accept loop waits for all
    /// of them when the server stops.
    streams: Arc<Semaphore>,
    /// Turns `true` when the server stops: every stream ends.
    closing: tokio::sync::watch::Receiver<bool>,
    /// Where its requests are counted.
    metrics: Arc<Metrics>,
}

/// Where requests enter the cosmos: the machine (a trait so the gateway does not hold the
/// machine itself).
#[async_trait::async_trait]
pub(crate) trait Entry: Send + Sync + 'static {
    /// The registry.
    fn registry(&self) -> &Arc<dyn Registry>;
    /// The machine's channels, which web streams watch.
    fn hub(&self) -> &Arc<Hub>;
    /// Sends `ping` as `agent` and returns the answer.
    async fn ping(&self, agent: Agent, ping: Ping) -> ReflectedCore;
}

/// Serves HTTP on `listener`, counting requests in `metrics`, until `shutdown` completes, then
/// drains (SPEC §19): the listener
/// closes at once (new connections are refused), idle keep-alive connections close, requests
/// under way are answered (their connections close after the answer), event streams end and
/// WebSockets say goodbye (1001). Whatever is still open `grace` after the stop is cut off.
pub(crate) async fn serve(
    listener: TcpListener,
    machine: Arc<dyn Entry>,
    config: GatewayConfig,
    grace: Duration,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let capacity = config.max_connections.clamp(1, u32::MAX as usize);
    let permits = Arc::new(Semaphore::new(capacity));
    let streams = Arc::new(Semaphore::new(capacity));
    let (close, closing) = tokio::sync::watch::channel(false);
    let settings = ConnectionSettings {
        read_timeout: config.read_timeout,
        max_head: config.max_head,
        closing: closing.clone(),
    };
    let router = Router::new().fallback(handle).with_state(Arc::new(Gateway {
        machine,
        config,
        connections: permits.clone(),
        streams: streams.clone(),
        closing,
        metrics,
    }));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = accept(&listener, &permits) => {
                if let Some((stream, permit)) = accepted {
                    connections.spawn(serve_connection(stream, router.clone(), settings.clone(), permit));
                }
            }
        }
    }
    drop(listener);
    let _ = close.send(true);
    let all = u32::try_from(capacity).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
        // WebSockets outlive their HTTP connections: each holds a stream permit until it
        // has said goodbye.
        let _ = streams.acquire_many(all).await;
    })
    .await;
    if drained.is_err() {
        eprintln!(
            "http: {} connection(s) and {} stream(s) still open {} s after the stop: cut off",
            connections.len(),
            capacity - streams.available_permits(),
            grace.as_secs()
        );
    }
    connections.shutdown().await;
}

/// The next connection, with the permit it is served under (waiting for one while
/// `max_connections` are open); `None` when `accept` failed.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> Option<(TcpStream, OwnedSemaphorePermit)> {
    let permit = permits.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _peer)) => Some((stream, permit)),
        Err(_) => {
            // A failed accept (e.g. too many open files) is the listener's problem, not the
            // next client's: back off a little and carry on.
            tokio::time::sleep(Duration::from_millis(10)).await;
            None
        }
    }
}

/// What every connection is served with.
#[derive(Clone)]
struct ConnectionSettings {
    read_timeout: Duration,
    max_head: usize,
    /// Turns `true` when the server stops.
    closing: tokio::sync::watch::Receiver<bool>,
}

/// Serves one connection until it closes; when the server stops, it finishes the request
/// under way (if any) and closes.
async fn serve_connection(
    stream: TcpStream,
    router: Router,
    settings: ConnectionSettings,
    permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.read_timeout)
        .max_header_size(settings.max_head)
        .keep_alive(true);
    let io = TokioIo::new(Deadline::new(stream, settings.read_timeout));
    let connection = http
        .serve_connection(io, TowerToHyperService::new(router))
        .with_upgrades();
    tokio::pin!(connection);
    // A connection that breaks or sends garbage ends here; hyper has answered what it could
    // (400, 431, …).
    tokio::select! {
        _ = connection.as_mut() => {}
        () = closed(settings.closing) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
    drop(permit);
}

/// Completes when the server stops (or is gone).
async fn closed(mut closing: tokio::sync::watch::Receiver<bool>) {
    let _ = closing.wait_for(|closing| *closing).await;
}

/// A connection whose writes may not wait longer than a limit for the client to take them:
/// a client that stops reading (a stalled download, an event stream or WebSocket nobody
/// reads) gets a write error, which ends its connection, instead of holding it and its
/// buffers for ever.
struct Deadline {
    stream: TcpStream,
    limit: Duration,
    /// When the write that is waiting now must have gone through.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    fn new(stream: TcpStream, limit: Duration) -> Deadline {
        Deadline {
            stream,
            limit,
            stalled: None,
        }
    }

    /// `poll` (a write or flush) with the deadline: pending for longer than `limit` is an
    /// error; any progress starts the clock again.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll(Pin::new(&mut self.stream), cx) {
            Poll::Pending => {
                let limit = self.limit;
                let stalled = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match stalled.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client took nothing of what was written to it",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl AsyncRead for Deadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Deadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.guard(cx, |stream, cx| stream.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.guard(cx, |stream, cx| stream.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.guard(cx, |stream, cx| stream.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Answers one request, counted and (at `debug`) told when answered.
async fn handle(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let started = Instant::now();
    // What the line tells, kept only when it is to be written.
    let told = tracing::enabled!(target: HTTP_TARGET, tracing::Level::DEBUG)
        .then(|| (request.method().clone(), request.uri().clone()));
    let response = respond(&gateway, request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    gateway.metrics.http_request(status, elapsed);
    if let Some((method, uri)) = told {
        tracing::debug!(
            target: HTTP_TARGET,
            %method,
            path = %uri,
            status,
            us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            "request"
        );
    }
    response
}

/// The response to `request`.
async fn respond(gateway: &Gateway, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    // A WebSocket handshake is checked (and the connection's upgrade taken) before anything
    // enters the cosmos; whether it becomes a WebSocket is the route's answer to decide.
    let upgrade = if stream::asks_websocket(&parts.method, &parts.headers) {
        match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(upgrade) => Some(upgrade),
            Err(rejection) => return rejection.into_response(),
        }
    } else {
        None
    };
    let answer = async {
        let body = gateway.read_body(body).await?;
        gateway
            .answer(parts.method, parts.uri, parts.headers, body, upgrade)
            .await
    };
    match answer.await {
        Ok(response) | Err(response) => response,
    }
}

impl Gateway {
    /// The whole request body: at most `max_body` bytes (413), arriving within
    /// `read_timeout` (408). A declared length over the limit is refused before any of the
    /// body is read; a request without a body (most GETs) needs no reading at all.
    async fn read_body(&self, body: Body) -> Result<Bytes, Response> {
        let max = self.config.max_body;
        let too_large = || {
            plain(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {max} bytes"),
            )
        };
        if body.is_end_stream() {
            return Ok(Bytes::new());
        }
        // hyper has parsed and checked `Content-Length`: the hint's lower bound is it.
        if body.size_hint().lower() > u64::try_from(max).unwrap_or(u64::MAX) {
            return Err(too_large());
        }
        let read = tokio::time::timeout(
            self.config.read_timeout,
            http_body_util::Limited::new(body, max).collect(),
        );
        match read.await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Ok(Err(_)) => Err(plain(
                axum::http::StatusCode::BAD_REQUEST,
                "the request body could not be read".to_string(),
            )),
            Err(_) => Err(plain(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} ms",
                    self.config.read_timeout.as_millis()
                ),
            )),
        }
    }

    /// The request as a wave to its Space, and the answer as the response — or, when the
    /// answer is a channel's, the channel as a stream.
    async fn answer(
        &self,
        verb: HttpVerb,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
        upgrade: Option<WebSocketUpgrade>,
    ) -> Result<Response, Response> {
        let method = http_method(&verb).ok_or_else(|| {
            plain(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                format!("the method {verb} is not served"),
            )
        })?;
        let agent = self.agent(&headers).await?;
        let space = self.space(&headers, &uri).await;
        let path = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string());
        let mut ping = Ping::new(
            agent.to_point(),
            space,
            Method::Http(method),
            if body.is_empty() {
                Substance::Empty
            } else {
                Substance::Bin(body.to_vec())
            },
        )
        .with_path(path)
        .with_wait(WaitTime::from_millis(
            u64::try_from(self.config.wait.as_millis()).unwrap_or(u64::MAX),
        ));
        for (name, value) in &headers {
            if name == header::AUTHORIZATION || is_hop_by_hop(name) {
                continue;
            }
            let value = value.to_str().map_err(|_| {
                plain(
                    axum::http::StatusCode::BAD_REQUEST,
                    format!("the header {name} is not text"),
                )
            })?;
            ping.core.headers.append(name.as_str(), value);
        }
        let core = self.machine.ping(agent.clone(), ping).await;
        match stream::channel_of(&core, &method) {
            Some(channel) => {
                let head = verb == HttpVerb::HEAD;
                self.stream(&headers, agent, channel, upgrade, head).await
            }
            None => Ok(response(core)),
        }
    }

    /// Anonymous, or the user of a Bearer token.
    async fn agent(&self, headers: &HeaderMap) -> Result<Agent, Response> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(Agent::Anonymous);
        };
        let unauthorized = |why: &str| {
            let mut response = plain(axum::http::StatusCode::UNAUTHORIZED, why.to_string());
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("Authorization must be 'Bearer <token>'"))?;
        match self.machine.registry().token_agent(token).await {
            Ok(Some(point)) => Ok(Agent::from_point(point)),
            Ok(None) => Err(unauthorized("the token is not valid")),
            Err(_) => Err(plain(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the token could not be checked".to_string(),
            )),
        }
    }

    /// The Space named by the request's host, or the default Space.
    async fn space(&self, headers: &HeaderMap, uri: &Uri) -> Point {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.host())
            .unwrap_or_default();
        let name = strip_port(host).to_ascii_lowercase();
        if let Ok(point) = name.parse::<Point>()
            && point.segments().len() == 1
            && let Ok(record) = self.machine.registry().record(&point).await
            && record.kind.base() == BaseKind::Space
        {
            return point;
        }
        self.config.default_space.clone()
    }
}

/// `host`, `host:port`, `[v6]:port` → the host.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn http_method(verb: &HttpVerb) -> Option<HttpMethod> {
    Some(match *verb {
        HttpVerb::GET => HttpMethod::Get,
        HttpVerb::POST => HttpMethod::Post,
        HttpVerb::PUT => HttpMethod::Put,
        HttpVerb::DELETE => HttpMethod::Delete,
        HttpVerb::PATCH => HttpMethod::Patch,
        HttpVerb::HEAD => HttpMethod::Head,
        HttpVerb::OPTIONS => HttpMethod::Options,
        _ => return None,
    })
}

/// Headers that belong to one connection, not to the message.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "host"
    )
}

fn plain(status: axum::http::StatusCode, text: String) -> Response {
    let mut response = Response::new(Body::from(format!("{text}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The HTTP response for a reflection.
fn response(core: ReflectedCore) -> Response {
    let status = match core.status {
        StatusCode::TIMEOUT => StatusCode::GATEWAY_TIMEOUT,
        status => status,
    };
    let http_status = axum::http::StatusCode::from_u16(status.as_u16())
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        // The reason (a trap, a guest's message, a path inside the cosmos) is for the log.
        if let Some(reason) = core.error_message() {
            tracing::warn!(target: HTTP_TARGET, status = status.as_u16(), "{reason}");
        }
        let text = http_status
            .canonical_reason()
            .unwrap_or("Server Error")
            .to_string();
        return plain(http_status, text);
    }
    if status == StatusCode::FORBIDDEN {
        // Who was refused what, and where, is for the operator's log: the web learns only
        // that it was refused (no point, agent or permission of the cosmos in the body).
        if let Some(reason) = core.error_message() {
            tracing::info!(target: HTTP_TARGET, status = 403, "refused: {reason}");
        }
        return plain(http_status, "Forbidden".to_string());
    }
    if status.is_client_error()
        && let Some(message) = core.error_message()
    {
        return plain(http_status, message.to_string());
    }
    let (bytes, content_type) = bytes_of(core.body);
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = http_status;
    for (name, value) in core.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            continue;
        };
        // The channel to stream names a point of the cosmos: it is for the gateway only.
        if !is_hop_by_hop(&name) && name != STREAM {
            response.headers_mut().append(name, value);
        }
    }
    if let Some(content_type) = content_type
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response
}

/// A body's bytes on the web, and the content type they have unless the answer says
/// otherwise.
fn bytes_of(body: Substance) -> (Vec<u8>, Option<&'static str>) {
    match body {
        Substance::Empty => (Vec::new(), None),
        Substance::Bin(bytes) => (bytes, None),
        Substance::Text(text) => (text.into_bytes(), Some("text/plain; charset=utf-8")),
        Substance::Json(json) => (json.as_str().as_bytes().to_vec(), Some("application/json")),
        Substance::HttpResponse(inner) => (inner.body, None),
        // Numbers and truths are JSON as they are; anything else structured, as its JSON.
        Substance::Int(value) => (value.to_string().into_bytes(), Some("application/json")),
        Substance::Bool(value) => (value.to_string().into_bytes(), Some("application/json")),
        other => match cosmic_space::Json::from_value(&other) {
            Ok(json) => (json.as_str().as_bytes().to_vec(), Some("application/json")),
            Err(_) => (
                format!("{other:?}").into_bytes(),
                Some("text/plain; charset=utf-8"),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_space_is_localhost() {
        assert_eq!(
            GatewayConfig::default().default_space.to_string(),
            "localhost"
        );
    }

    #[test]
    fn hosts_lose_their_ports() {
        assert_eq!(strip_port("localhost:8080"), "localhost");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:8080"), "::1");
    }

    #[test]
    fn timeouts_are_504_and_server_errors_keep_their_reasons_to_themselves() {
        let timeout = response(ReflectedCore::error(StatusCode::TIMEOUT, "waited 30s"));
        assert_eq!(timeout.status().as_u16(), 504);
        let failed = response(ReflectedCore::error(
            StatusCode::ERROR,
            "the guest trapped in mechtron_handle: unreachable",
        ));
        assert_eq!(failed.status().as_u16(), 500);
        assert!(!format!("{:?}", failed.body()).contains("trapped"));
    }

    #[tokio::test]
    async fn refusals_name_nothing_of_the_cosmos() {
        let denied = response(ReflectedCore::error(
            StatusCode::FORBIDDEN,
            "hyperspace:users:anonymous may not r localhost:repo:app:1.0.0:/html/index.html \
             (missing permission 'r')",
        ));
        assert_eq!(denied.status().as_u16(), 403);
        let body = denied.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert_eq!(body, "Forbidden\n");
        for leak in ["anonymous", "localhost", "permission", "'r'"] {
            assert!(!body.contains(leak), "{leak} in {body}");
        }
    }

    #[test]
    fn bodies_get_content_types() {
        let text = response(ReflectedCore::ok("hi"));
        assert_eq!(
            text.headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("text/plain; charset=utf-8")
        );
        let html = response(
            ReflectedCore::ok(Substance::Bin(b"<p>".to_vec()))
                .with_header("content-type", "text/html; charset=utf-8"),
        );
        assert_eq!(
            html.headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("text/html; charset=utf-8")
        );
    }
}
