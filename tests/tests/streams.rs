//! Channels on the web (SPEC §18, "The web"), end to end: the real `starlane serve`, a Space
//! whose bind routes `/room` and `/private` to channels, `curl -N` reading Server-Sent Events,
//! and WebSocket clients (tokio-tungstenite) publishing and receiving. The first two tests run
//! on both registries (`embedded::…`, `postgres::…`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tests::{Registry, Server, http, stderr};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The Space's bind: two channels on the web.
const BIND: &str = "Bind(version=1.0.0) {
  Route<Http<Get>>/room -> localhost:chat:room => &;
  Route<Http<Head>>/room -> localhost:chat:room => &;
  Route<Http<Get>>/private -> localhost:chat:private => &;
  Route<Http<Get>>/page -> localhost:repo:streams:1.0.0:/html/page.txt => &;
}
";

/// The largest body the gateway takes in these tests (`STARLANE_HTTP_MAX_BODY`).
const MAX_BODY: usize = 16 * 1024;

/// How long a test waits for anything that should happen (it normally takes milliseconds).
const PATIENCE: Duration = Duration::from_secs(15);

/// A server whose Space routes `/room` to `localhost:chat:room` (Anonymous may reach and read
/// it, not write) and `/private` to `localhost:chat:private` (only the user scott may read and
/// write it).
fn setup(dir: &Path, registry: &Registry, envs: &[(&str, &str)]) -> Server {
    let mut all = vec![("STARLANE_HTTP_MAX_BODY", "16384")];
    all.extend_from_slice(envs);
    let server = registry.start_with(&dir.join("home"), &all);
    std::fs::write(
        dir.join("streams.zip"),
        tests::zip(&[
            ("bind/space.bind", BIND.as_bytes()),
            ("html/page.txt", b"a page"),
        ]),
    )
    .unwrap_or_else(|e| panic!("cannot write streams.zip: {e}"));
    server.exec(
        dir,
        "create localhost<Space>; create localhost:repo<Repo>; \
         publish ^[ streams.zip ]-> localhost:repo:streams:1.0.0; \
         set localhost{ +bind=localhost:repo:streams:1.0.0:/bind/space.bind }; \
         create localhost:chat<App>; create localhost:chat:room<Channel>; \
         create localhost:chat:private<Channel>; \
         create localhost:users<UserBase>; create localhost:users:scott<User>",
    );
    for grant in [
        "grant +csd-rwX on localhost to hyperspace:users:anonymous",
        "grant +csd-Rwx on localhost:repo:streams+:** to hyperspace:users:anonymous",
        "grant +csd-Rwx on localhost:chat:room to hyperspace:users:anonymous",
        "grant &csd-rwx on localhost:chat:private to hyperspace:users:anonymous",
        "grant +csd-RWX on localhost to localhost:users:scott",
    ] {
        server.exec(dir, grant);
    }
    server
}

/// `starlane send TO METHOD BODY` as HyperUser, which must succeed.
fn send(server: &Server, dir: &Path, to: &str, method: &str, body: &str) {
    let out = server.run(dir, &["send", to, method, body]);
    assert!(out.status.success(), "send {body}: {}", stderr(&out));
}

/// `curl -N` reading a URL's event stream, its lines handed over as they come; killed when
/// dropped.
struct Curl {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Curl {
    fn events(url: &str, headers: &[&str]) -> Curl {
        let mut command = Command::new("curl");
        command.args(["-N", "-s", "-S", "-H", "Accept: text/event-stream"]);
        for header in headers {
            command.args(["-H", header]);
        }
        let mut child = command
            .arg(url)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run curl (apt-get install curl): {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Curl { child, lines }
    }

    /// The lines up to and including the first one equal to `wanted` (which must come).
    fn until(&self, wanted: &str) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line == wanted;
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!("curl did not print {wanted:?}; it printed {seen:#?}"),
            }
        }
    }

    /// Waits for curl to exit on its own (the stream ended) and returns what it printed last.
    fn ends(&mut self) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "curl: {status}");
                return self.lines.try_iter().collect();
            }
            assert!(Instant::now() < deadline, "the stream did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Curl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `path`, as scott when `token` is given.
async fn ws(addr: &str, path: &str, token: Option<&str>) -> Result<Ws, WsError> {
    let mut request = format!("ws://{addr}{path}").into_client_request()?;
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        request.headers_mut().insert("authorization", value);
    }
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(socket)
}

/// The next message that is not a ping or pong (within [`PATIENCE`]).
async fn next(socket: &mut Ws) -> Message {
    loop {
        match tokio::time::timeout(PATIENCE, socket.next()).await {
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(message))) => return message,
            Ok(Some(Err(e))) => panic!("the WebSocket broke: {e}"),
            Ok(None) => panic!("the WebSocket ended"),
            Err(_) => panic!("nothing came on the WebSocket within {PATIENCE:?}"),
        }
    }
}

/// The close frame the server ends with: its code and reason.
async fn closed(socket: &mut Ws) -> (u16, String) {
    match next(socket).await {
        Message::Close(Some(CloseFrame { code, reason })) => (u16::from(code), reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

fn text(message: &Message) -> &str {
    match message {
        Message::Text(text) => text.as_str(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn server_sent_events_carry_what_is_published(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = setup(dir.path(), registry, &[]);
    let addr = server.http_addr();

    // A channel is not a page: without asking for a stream, 406 says how to ask (and names
    // nothing of the cosmos).
    let plain = http(&addr, "GET", "/room", &["Accept: text/html, */*"], b"");
    assert_eq!(plain.status, 406, "{}", plain.text());
    assert!(
        plain.text().contains("text/event-stream"),
        "{}",
        plain.text()
    );
    assert!(!plain.text().contains("localhost"), "{}", plain.text());
    assert_eq!(plain.header("x-starlane-stream"), None);
    // HEAD with the Accept header: the stream's head, no body.
    let head = http(&addr, "HEAD", "/room", &["Accept: text/event-stream"], b"");
    assert_eq!(head.status, 200, "{}", head.text());
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    // Anonymous may not read the private channel: 403 before any stream.
    let refused = http(
        &addr,
        "GET",
        "/private",
        &["Accept: text/event-stream"],
        b"",
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.text(), "Forbidden\n");

    let curl = Curl::events(&format!("http://{addr}/room"), &[]);
    curl.until(": subscribed");
    send(
        &server,
        dir.path(),
        "localhost:chat:room",
        "Ext<Say>",
        "hello, web",
    );
    let event = curl.until("data: hello, web");
    assert_eq!(event[event.len() - 2], "event: message", "{event:#?}");
    assert!(event[event.len() - 3].starts_with("id: "), "{event:#?}");
    // Lines of a message are lines of data.
    send(
        &server,
        dir.path(),
        "localhost:chat:room",
        "Http<Post>",
        "one\ntwo",
    );
    curl.until("data: one");
    curl.until("data: two");

    // scott, by his token, reads the private channel.
    let token = server.token(dir.path(), "localhost:users:scott");
    let bearer = format!("Authorization: Bearer {token}");
    let mut scotts = Curl::events(&format!("http://{addr}/private"), &[&bearer]);
    scotts.until(": subscribed");
    send(
        &server,
        dir.path(),
        "localhost:chat:private",
        "Ext<Say>",
        "psst",
    );
    scotts.until("data: psst");

    // Deleting the channel ends its stream, with the event that says why (for those who may
    // read where it was: scott may read all of localhost).
    server.exec(dir.path(), "delete localhost:chat:private");
    scotts.until("event: deleted");
    scotts.ends();
    drop(curl);
    server.stop();
}

fn websockets_publish_and_receive_as_the_requests_agent(registry: &Registry) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = setup(dir.path(), registry, &[]);
    let addr = server.http_addr();
    let token = server.token(dir.path(), "localhost:users:scott");
    runtime().block_on(async {
        // Anonymous may read the room but not write it: its message closes its socket
        // (policy violation) and is not published.
        let mut reader = ws(&addr, "/room", None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut writer = ws(&addr, "/room", None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        writer
            .send(Message::text("not allowed"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(closed(&mut writer).await, (1008, "Forbidden".to_string()));
        send(
            &server,
            dir.path(),
            "localhost:chat:room",
            "Ext<Say>",
            "marker",
        );
        assert_eq!(text(&next(&mut reader).await), "marker");

        // With w, what one client sends every client receives (itself included); text as
        // text, bytes as bytes, and what the CLI publishes too.
        server.exec(
            dir.path(),
            "grant +csd-rWx on localhost:chat:room to hyperspace:users:anonymous",
        );
        let mut one = ws(&addr, "/room", None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut two = ws(&addr, "/room", None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        one.send(Message::text("hello from one"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text(&next(&mut two).await), "hello from one");
        assert_eq!(text(&next(&mut one).await), "hello from one");
        assert_eq!(text(&next(&mut reader).await), "hello from one");
        two.send(Message::binary(vec![0u8, 1, 2, 255]))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(next(&mut one).await, Message::binary(vec![0u8, 1, 2, 255]));
        assert_eq!(next(&mut two).await, Message::binary(vec![0u8, 1, 2, 255]));
        send(
            &server,
            dir.path(),
            "localhost:chat:room",
            "Ext<Say>",
            "from the cli",
        );
        assert_eq!(text(&next(&mut one).await), "from the cli");

        // A message over the gateway's body limit closes the socket (1009); nothing of it
        // is published.
        one.send(Message::text("x".repeat(MAX_BODY + 1)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(closed(&mut one).await.0, 1009);
        assert_eq!(text(&next(&mut two).await), "from the cli");
        send(
            &server,
            dir.path(),
            "localhost:chat:room",
            "Ext<Say>",
            "after",
        );
        assert_eq!(text(&next(&mut two).await), "after");

        // The private channel: 403 at the handshake for Anonymous, a two-way socket for scott.
        match ws(&addr, "/private", None).await {
            Err(WsError::Http(answer)) => assert_eq!(answer.status().as_u16(), 403),
            Err(other) => panic!("expected 403, got {other}"),
            Ok(_) => panic!("Anonymous opened the private channel"),
        }
        let mut scott = ws(&addr, "/private", Some(&token))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        scott
            .send(Message::text("note to self"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text(&next(&mut scott).await), "note to self");

        // A route that is not a channel does not become a WebSocket.
        match ws(&addr, "/page", None).await {
            Err(WsError::Http(answer)) => assert_eq!(answer.status().as_u16(), 200),
            Err(other) => panic!("expected the page's 200, got {other}"),
            Ok(_) => panic!("a page became a WebSocket"),
        }

        // A stopping server closes its sockets: 1001, going away.
        let stopping = tokio::task::spawn_blocking(move || server.stop());
        assert_eq!(closed(&mut two).await.0, 1001);
        assert_eq!(closed(&mut scott).await.0, 1001);
        stopping.await.unwrap_or_else(|e| panic!("{e}"));
    });
}

tests::on_each_registry!(
    server_sent_events_carry_what_is_published,
    websockets_publish_and_receive_as_the_requests_agent,
);

/// The pid of the `starlane serve` whose data directory is `home` (from `/proc`).
fn server_pid(home: &Path) -> u32 {
    let wanted = format!("STARLANE_HOME={}", home.display());
    std::fs::read_dir("/proc")
        .unwrap_or_else(|e| panic!("/proc: {e}"))
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            cmdline.split(|b| *b == 0).any(|arg| arg == b"serve")
                && environ
                    .split(|b| *b == 0)
                    .any(|var| var == wanted.as_bytes())
        })
        .unwrap_or_else(|| panic!("no starlane serve with {wanted}"))
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS for {pid}"))
}

/// A client that opens a WebSocket and never reads is dropped — by the hub once it is
/// `WATCHER_QUEUE` deliveries behind, by the connection's write deadline once the socket is
/// full — while 128 MiB are published past it: the server's memory does not grow with what
/// the client leaves unread, and everyone else carries on.
#[test]
fn a_client_that_does_not_read_is_dropped_and_memory_stays_bounded() {
    const MESSAGES: usize = 16_384;
    const SIZE: usize = 8 * 1024;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = setup(
        dir.path(),
        &Registry::Embedded,
        &[("STARLANE_HTTP_READ_TIMEOUT", "1000")],
    );
    server.exec(
        dir.path(),
        "grant +csd-rWx on localhost:chat:room to hyperspace:users:anonymous",
    );
    let addr = server.http_addr();
    let pid = server_pid(server.home());
    runtime().block_on(async {
        // The publisher reads everything (it hears itself) on a task of its own.
        let (mut publish, mut hear) = ws(&addr, "/room", None)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .split();
        let heard = tokio::spawn(async move {
            let mut count = 0usize;
            while count < MESSAGES + 1 {
                match tokio::time::timeout(PATIENCE, hear.next()).await {
                    Ok(Some(Ok(Message::Text(_)))) => count += 1,
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            count
        });
        publish
            .send(Message::text("warm-up"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = rss_kib(pid);

        // The sluggard: a small receive buffer, and it never reads.
        let socket = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
        socket
            .set_recv_buffer_size(4096)
            .unwrap_or_else(|e| panic!("{e}"));
        let stream = socket
            .connect(addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}")))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (mut sluggard, _) =
            tokio_tungstenite::client_async(format!("ws://{addr}/room"), stream)
                .await
                .unwrap_or_else(|e| panic!("{e}"));

        let body = "m".repeat(SIZE);
        let mut peak = before;
        for n in 0..MESSAGES {
            publish
                .send(Message::text(body.clone()))
                .await
                .unwrap_or_else(|e| panic!("message {n}: {e}"));
            if n % 1024 == 0 {
                peak = peak.max(rss_kib(pid));
            }
        }
        let count = tokio::time::timeout(Duration::from_secs(120), heard)
            .await
            .unwrap_or_else(|_| panic!("the publisher did not hear its messages"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(count, MESSAGES + 1, "the publisher missed messages");
        peak = peak.max(rss_kib(pid));
        let grown_mib = peak.saturating_sub(before) / 1024;
        let published_mib = MESSAGES * SIZE / (1024 * 1024);
        assert!(
            grown_mib < 64,
            "the server grew by {grown_mib} MiB while {published_mib} MiB went past a client \
             that did not read ({before} KiB before, {peak} KiB at the peak)"
        );

        // The sluggard now reads: what was in flight, then the end — never everything.
        let mut received = 0usize;
        let ended = loop {
            match tokio::time::timeout(PATIENCE, sluggard.next()).await {
                Ok(Some(Ok(Message::Text(_)))) => received += 1,
                Ok(Some(Ok(Message::Close(frame)))) => break format!("closed: {frame:?}"),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => break format!("broken: {e}"),
                Ok(None) => break "ended".to_string(),
                Err(_) => panic!("the server never dropped the client that did not read"),
            }
        };
        assert!(
            received < MESSAGES,
            "the sluggard received all {received} messages ({ended})"
        );

        // The room carries on for everyone else.
        let mut fresh = ws(&addr, "/room", None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        send(
            &server,
            dir.path(),
            "localhost:chat:room",
            "Ext<Say>",
            "still here",
        );
        assert_eq!(text(&next(&mut fresh).await), "still here");
    });
    server.stop();
}
