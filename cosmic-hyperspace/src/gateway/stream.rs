//! Channels on the web (SPEC §18, "The web"): a route that ends at a `Channel` streams it.
//!
//! The request has gone through the Space's bind like any other, as the request's agent, and
//! the channel has answered `Http<Get>` (which needed `r`) with the [`STREAM`](super::STREAM)
//! header naming itself. The gateway then watches the channel through the machine's [`Hub`]
//! as the same agent (every delivery is checked again: `r` on the channel), and:
//!
//! - **`Accept: text/event-stream`** → `200 text/event-stream`, one Server-Sent Event per
//!   delivery: `id:` the delivery's wave id, `event:` `message` for a channel's message (what
//!   `EventSource.onmessage` receives), `binary` for a message whose body is not UTF-8 (its
//!   bytes in standard base64), or the lifecycle event's name (`properties`, `status`,
//!   `deleted` …, data: the particle as JSON); `data:` the body as text (JSON as its text), one
//!   `data:` line per line. A comment every 15 s keeps proxies from cutting the stream.
//! - **a WebSocket upgrade** → each message of the channel is a frame (text for text and JSON
//!   bodies, binary for bytes); each frame the client sends is published on the channel as an
//!   `Http<Post>` Ping (text frames as `Text`, binary frames as `Bin`) sent straight to the
//!   channel as the request's agent, so the Field asks `w` of every one. A refused publish
//!   closes the socket (1008, policy violation, `Forbidden`): the socket carries only the
//!   channel's messages, so an error frame could not be told from a message. Lifecycle
//!   events are not sent, except that a deleted channel closes the socket (1001).
//! - anything else (a browser that navigates to the route) → **406**, naming both ways to ask.
//!
//! Both are bounded: a client that falls [`WATCHER_QUEUE`](crate::channel::WATCHER_QUEUE)
//! deliveries behind is closed by the hub (the event stream ends, the WebSocket closes with
//! 1013, try again later); the gateway holds at most one delivery per connection, and a client
//! that takes nothing of what is written for `read_timeout` is cut off (the connection's write
//! deadline). Messages are at most `max_body` bytes either way: a bigger frame closes the
//! socket (1009), a bigger delivery is skipped. When the server stops, every stream ends (the
//! WebSocket with 1001).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, HeaderValue, Method as HttpVerb, header};
use axum::response::Response;
use cosmic_space::{
    Agent, BaseKind, CmdMethod, Event, HttpMethod, Method, Ping, Point, ReflectedCore, Selector,
    Signal, StatusCode, Substance, WaitTime, event_of,
};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::{Entry, Gateway, HTTP_TARGET, STREAM, bytes_of, plain, response};
use crate::channel::Watch;
use std::sync::Arc;

/// How often an idle stream says it is alive (an event-stream comment, a WebSocket ping):
/// often enough for proxies that cut connections silent for 30–60 s.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How long a closing WebSocket waits for the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The longest reason a close frame carries (its payload is at most 125 bytes).
const CLOSE_REASON: usize = 123;

/// Whether the request asks to become a WebSocket (`GET` with `Upgrade: websocket`).
pub(super) fn asks_websocket(verb: &HttpVerb, headers: &HeaderMap) -> bool {
    *verb == HttpVerb::GET
        && headers
            .get_all(header::UPGRADE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("websocket"))
}

/// Whether the request accepts Server-Sent Events (`text/event-stream` among its `Accept`
/// media ranges; `*/*` does not count: a browser navigating to a channel gets the 406).
fn asks_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|range| range.split(';').next())
        .any(|media| media.trim().eq_ignore_ascii_case("text/event-stream"))
}

/// The channel an answer to `method` asks the gateway to stream: a `200` to `GET` or `HEAD`
/// with the [`STREAM`] header.
pub(super) fn channel_of(core: &ReflectedCore, method: &HttpMethod) -> Option<String> {
    if core.status != StatusCode::OK || !matches!(method, HttpMethod::Get | HttpMethod::Head) {
        return None;
    }
    core.headers.get(STREAM).map(str::to_string)
}

impl Gateway {
    /// Streams the channel `name` (from a channel's answer) to the request, as `agent`: over
    /// a WebSocket when `upgrade` is there, as Server-Sent Events when the request accepts
    /// them (only the response's head for `HEAD`), otherwise 406.
    pub(super) async fn stream(
        &self,
        headers: &HeaderMap,
        agent: Agent,
        name: String,
        upgrade: Option<WebSocketUpgrade>,
        head: bool,
    ) -> Result<Response, Response> {
        let channel = self.channel(&name).await?;
        if upgrade.is_none() && !asks_event_stream(headers) {
            return Err(plain(
                axum::http::StatusCode::NOT_ACCEPTABLE,
                "this is a channel: ask for its messages with 'Accept: text/event-stream' \
                 (Server-Sent Events) or open a WebSocket to it"
                    .to_string(),
            ));
        }
        if head {
            return Ok(event_stream(Body::empty()));
        }
        let busy = |why: &str| plain(axum::http::StatusCode::SERVICE_UNAVAILABLE, why.into());
        if *self.closing.borrow() {
            return Err(busy("the server is stopping"));
        }
        let permit = self
            .streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy("too many streams are open"))?;
        let selector: Selector = channel.to_string().parse().map_err(|_| {
            tracing::warn!(target: HTTP_TARGET, %channel, "a channel that does not parse as a selector");
            server_error()
        })?;
        let watch = self
            .machine
            .hub()
            .watch(agent.clone(), selector)
            .await
            .map_err(|err| response(ReflectedCore::from(err)))?;
        match upgrade {
            Some(upgrade) => Ok(self.websocket(upgrade, agent, channel, watch, permit)),
            None => Ok(self.events(watch, permit)),
        }
    }

    /// The channel a [`STREAM`] header names: it must be a registered `Channel` (anything
    /// else is the cosmos's mistake, a 500 for the web and a line in the log).
    async fn channel(&self, name: &str) -> Result<Point, Response> {
        let refuse = |why: String| {
            tracing::warn!(target: HTTP_TARGET, "the answer asked to stream {name}, which {why}");
            server_error()
        };
        let point: Point = name
            .parse()
            .map_err(|_| refuse("is not a point".to_string()))?;
        match self.machine.registry().record(&point).await {
            Ok(record) if record.kind.base() == BaseKind::Channel => Ok(point),
            Ok(record) => Err(refuse(format!("is a {}, not a Channel", record.kind))),
            Err(err) => Err(refuse(format!("could not be found: {err}"))),
        }
    }

    /// `watch` as a Server-Sent Events response.
    fn events(&self, watch: Watch, permit: OwnedSemaphorePermit) -> Response {
        let events = Events {
            watch,
            closing: self.closing.clone(),
            keep_alive: keep_alive(),
            max: self.config.max_body,
            opened: false,
            ended: false,
            _permit: permit,
        };
        let chunks = futures_util::stream::unfold(events, |mut events| async move {
            let chunk = events.next_chunk().await?;
            Some((Ok::<_, Infallible>(chunk), events))
        });
        event_stream(Body::from_stream(chunks))
    }

    /// Upgrades to a WebSocket that relays `watch` out and publishes what comes in (503
    /// when no connection is left for it).
    fn websocket(
        &self,
        upgrade: WebSocketUpgrade,
        agent: Agent,
        channel: Point,
        watch: Watch,
        permit: OwnedSemaphorePermit,
    ) -> Response {
        // The WebSocket outlives the HTTP connection it came from: it is a connection of its
        // own, within the same bound.
        let Ok(connection) = self.connections.clone().try_acquire_owned() else {
            return plain(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "too many connections are open".to_string(),
            );
        };
        let max = self.config.max_body;
        let relay = Relay {
            machine: self.machine.clone(),
            agent,
            channel,
            watch,
            closing: self.closing.clone(),
            wait: WaitTime::from_millis(
                u64::try_from(self.config.wait.as_millis()).unwrap_or(u64::MAX),
            ),
            max,
            _permits: (permit, connection),
        };
        upgrade
            .max_message_size(max)
            .max_frame_size(max)
            // One message at a time is written and flushed: the buffer never needs more
            // than its default size and one message.
            .max_write_buffer_size(128 * 1024 + max + 1024)
            .on_upgrade(move |socket| relay.run(socket))
    }
}

/// A `200 text/event-stream` response with `body`.
fn event_stream(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx would otherwise buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

fn server_error() -> Response {
    plain(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "Internal Server Error".to_string(),
    )
}

fn keep_alive() -> Interval {
    let mut interval = tokio::time::interval_at(Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// An event stream's state: the watch, and what ends it.
struct Events {
    watch: Watch,
    closing: tokio::sync::watch::Receiver<bool>,
    keep_alive: Interval,
    max: usize,
    opened: bool,
    ended: bool,
    _permit: OwnedSemaphorePermit,
}

impl Events {
    /// The next bytes of the stream; `None` when it ends.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.opened {
            // The subscription is live before the first byte: a client that has read this
            // receives everything published from now on.
            self.opened = true;
            return Some(Bytes::from_static(b": subscribed\n\n"));
        }
        if self.ended {
            return None;
        }
        loop {
            tokio::select! {
                delivery = self.watch.next() => match delivery {
                    Some(signal) => {
                        let Some((event, last)) = sse_event(&signal, self.max) else {
                            continue;
                        };
                        self.ended = last;
                        return Some(event);
                    }
                    None => {
                        self.ended = true;
                        return Some(Bytes::from_static(b": closed: this client fell behind\n\n"));
                    }
                },
                _ = self.keep_alive.tick() => return Some(Bytes::from_static(b":\n\n")),
                _ = self.closing.changed() => return None,
            }
        }
    }
}

/// One delivery as a Server-Sent Event, and whether it is the stream's last (the channel was
/// deleted); `None` when its data is larger than `max` bytes.
fn sse_event(signal: &Signal, max: usize) -> Option<(Bytes, bool)> {
    let (name, data, last) = match event_of(signal) {
        Some((_, event)) => {
            let (bytes, _) = bytes_of(signal.core.body.clone());
            let data = String::from_utf8_lossy(&bytes).into_owned();
            (event.name(), data, event == Event::Deleted)
        }
        None if signal.core.method == Method::Cmd(CmdMethod::Event) => return None,
        None => match message_body(&signal.core.body) {
            Outgoing::Text(text) => ("message", text, false),
            Outgoing::Bytes(bytes) => match String::from_utf8(bytes) {
                Ok(text) => ("message", text, false),
                Err(not_text) => (
                    "binary",
                    cosmic_space::wire::base64(not_text.as_bytes()),
                    false,
                ),
            },
        },
    };
    if data.len() > max {
        return None;
    }
    let mut event = format!("id: {}\nevent: {name}\n", signal.id);
    for line in data.replace("\r\n", "\n").split(['\n', '\r']) {
        event.push_str("data: ");
        event.push_str(line);
        event.push('\n');
    }
    event.push('\n');
    Some((Bytes::from(event), last))
}

/// A message's body on the web: text, or bytes.
enum Outgoing {
    Text(String),
    Bytes(Vec<u8>),
}

/// The body of a channel's message as text (text, JSON, anything structured as its JSON) or
/// as bytes.
fn message_body(body: &Substance) -> Outgoing {
    match body {
        Substance::Bin(bytes) => Outgoing::Bytes(bytes.clone()),
        Substance::HttpResponse(inner) => Outgoing::Bytes(inner.body.clone()),
        other => {
            let (bytes, _) = bytes_of(other.clone());
            match String::from_utf8(bytes) {
                Ok(text) => Outgoing::Text(text),
                Err(not_text) => Outgoing::Bytes(not_text.into_bytes()),
            }
        }
    }
}

/// A WebSocket's side of a channel: its watch, and who publishes what the client sends.
struct Relay {
    machine: Arc<dyn Entry>,
    agent: Agent,
    channel: Point,
    watch: Watch,
    closing: tokio::sync::watch::Receiver<bool>,
    wait: WaitTime,
    max: usize,
    /// A stream's permit and a connection's, held until the socket ends.
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

/// A close frame's code and reason.
type Goodbye = (u16, String);

impl Relay {
    /// Relays until the client, the channel, the hub or the server ends it.
    async fn run(mut self, mut socket: WebSocket) {
        let mut keep_alive = keep_alive();
        let goodbye: Option<Goodbye> = loop {
            tokio::select! {
                delivery = self.watch.next() => match delivery {
                    Some(signal) => match self.frame(&signal) {
                        Frame::Send(message) => {
                            if socket.send(message).await.is_err() {
                                break None;
                            }
                        }
                        Frame::Skip => {}
                        Frame::Close(code, reason) => break Some((code, reason)),
                    },
                    None => break Some((
                        close_code::AGAIN,
                        "this client fell behind the channel".to_string(),
                    )),
                },
                incoming = socket.recv() => match incoming {
                    None => break None,
                    Some(Err(error)) => break Some(self.unreadable(&error)),
                    Some(Ok(Message::Text(text))) => {
                        let body = Substance::Text(text.as_str().to_string());
                        if let Some(refusal) = self.publish(body).await {
                            break Some(refusal);
                        }
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        if let Some(refusal) = self.publish(Substance::Bin(bytes.to_vec())).await {
                            break Some(refusal);
                        }
                    }
                    // The client said goodbye; tungstenite answers it as the socket is drained.
                    Some(Ok(Message::Close(_))) => break None,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                },
                _ = keep_alive.tick() => {
                    if socket.send(Message::Ping(Bytes::new())).await.is_err() {
                        break None;
                    }
                }
                _ = self.closing.changed() => break Some((
                    close_code::AWAY,
                    "the server is stopping".to_string(),
                )),
            }
        };
        if let Some((code, reason)) = goodbye {
            let reason: String = truncate(&reason, CLOSE_REASON).to_string();
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = socket.send(Message::Close(Some(frame))).await;
        }
        // Until the client's close frame (or its answer to ours) has been read and answered,
        // briefly: a client that does not close is simply dropped.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(_)) = socket.recv().await {}
        })
        .await;
    }

    /// What the socket does with a delivery.
    fn frame(&self, signal: &Signal) -> Frame {
        if let Some((_, event)) = event_of(signal) {
            return match event {
                Event::Deleted => {
                    Frame::Close(close_code::AWAY, "the channel was deleted".to_string())
                }
                _ => Frame::Skip,
            };
        }
        if signal.core.method == Method::Cmd(CmdMethod::Event) {
            return Frame::Skip;
        }
        match message_body(&signal.core.body) {
            Outgoing::Text(text) if text.len() <= self.max => Frame::Send(Message::text(text)),
            Outgoing::Bytes(bytes) if bytes.len() <= self.max => {
                Frame::Send(Message::binary(bytes))
            }
            _ => Frame::Skip,
        }
    }

    /// Publishes `body` on the channel as the client's agent; `None` when it was published,
    /// otherwise how the socket closes.
    async fn publish(&self, body: Substance) -> Option<Goodbye> {
        let ping = Ping::new(
            self.agent.to_point(),
            self.channel.clone(),
            Method::Http(HttpMethod::Post),
            body,
        )
        .with_wait(self.wait);
        let core = self.machine.ping(self.agent.clone(), ping).await;
        if core.status.is_ok() {
            return None;
        }
        let reason = core.error_message().unwrap_or_default();
        Some(match core.status {
            // As for a 403 answer: who was refused what is for the operator's log.
            StatusCode::FORBIDDEN => {
                tracing::info!(target: HTTP_TARGET, status = 403, "refused: {reason}");
                (close_code::POLICY, "Forbidden".to_string())
            }
            StatusCode::UNAVAILABLE | StatusCode::TIMEOUT | StatusCode::GATEWAY_TIMEOUT => (
                close_code::AGAIN,
                "the channel is busy: try again later".to_string(),
            ),
            status if status.is_server_error() => {
                tracing::warn!(target: HTTP_TARGET, status = status.as_u16(), "{reason}");
                (close_code::ERROR, "Internal Server Error".to_string())
            }
            status => (close_code::POLICY, format!("{status}: {reason}")),
        })
    }

    /// How the socket closes when what the client sent cannot be read: too large (1009,
    /// tungstenite's "Space limit exceeded"), or not WebSocket (1002).
    fn unreadable(&self, error: &axum::Error) -> Goodbye {
        if error.to_string().contains("Space limit exceeded") {
            (
                close_code::SIZE,
                format!("a message is larger than {} bytes", self.max),
            )
        } else {
            (
                close_code::PROTOCOL,
                "the WebSocket could not be read".to_string(),
            )
        }
    }
}

/// What a WebSocket does with one delivery.
enum Frame {
    Send(Message),
    Skip,
    Close(u16, String),
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_event_streams_and_websockets_are_streams() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html, */*;q=0.8"),
        );
        assert!(!asks_event_stream(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html, Text/Event-Stream;q=0.9"),
        );
        assert!(asks_event_stream(&headers));
        headers.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(asks_websocket(&HttpVerb::GET, &headers));
        assert!(!asks_websocket(&HttpVerb::POST, &headers));
    }

    #[test]
    fn only_a_channels_ok_to_a_read_streams() {
        let ok = ReflectedCore::ok(()).with_header(STREAM, "localhost:chat:room");
        assert_eq!(
            channel_of(&ok, &HttpMethod::Get).as_deref(),
            Some("localhost:chat:room")
        );
        assert_eq!(channel_of(&ok, &HttpMethod::Post), None);
        assert_eq!(channel_of(&ReflectedCore::ok(()), &HttpMethod::Get), None);
    }

    fn message(body: Substance) -> Signal {
        let mut signal = Signal::new(
            "localhost:chat:room".parse::<Point>().expect("a point"),
            "localhost:chat:room".parse::<Point>().expect("a point"),
            Method::Http(HttpMethod::Post),
            body,
        );
        signal.id = crate::ids::wave_id();
        signal
    }

    #[test]
    fn messages_are_events_line_by_line() {
        let signal = message(Substance::Text("one\ntwo\r\nthree".to_string()));
        let (event, last) = sse_event(&signal, 1024).expect("an event");
        assert!(!last);
        assert_eq!(
            String::from_utf8_lossy(&event),
            format!(
                "id: {}\nevent: message\ndata: one\ndata: two\ndata: three\n\n",
                signal.id
            )
        );
        let binary = message(Substance::Bin(vec![0xff, 0xfe, 0x00]));
        let (event, _) = sse_event(&binary, 1024).expect("an event");
        assert!(
            String::from_utf8_lossy(&event).ends_with("event: binary\ndata: //4A\n\n"),
            "{event:?}"
        );
        let text_bytes = message(Substance::Bin(b"hi".to_vec()));
        let (event, _) = sse_event(&text_bytes, 1024).expect("an event");
        assert!(String::from_utf8_lossy(&event).ends_with("event: message\ndata: hi\n\n"));
        assert!(sse_event(&message(Substance::Text("x".repeat(10))), 9).is_none());
    }

    #[test]
    fn close_reasons_fit_a_frame() {
        assert_eq!(truncate("short", CLOSE_REASON), "short");
        let long = "é".repeat(100);
        let cut = truncate(&long, CLOSE_REASON);
        assert!(cut.len() <= CLOSE_REASON && cut.chars().all(|c| c == 'é'));
    }
}
