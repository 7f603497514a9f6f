//! Tests of the control protocol over real TCP sockets on 127.0.0.1, against a
//! [`ControlService`] that answers simply: a test of the protocol, not of the cosmos.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cosmic_space::{
    Agent, Ping, Point, Pong, ReflectedCore, StarKey, StatusCode, Substance, Token, WaitTime,
    WaveId, Wire,
};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;
use cosmic_space::Surface;

/// Answers `Ext<Echo>` with its body, `Ext<Sleep>` after the body's milliseconds,
/// `Ext<Big>` with the body's number of bytes, and panics on `Ext<Panic>`.
struct Fake {
    seen: Mutex<Vec<(Agent, Ping)>>,
}

fn user() -> Point {
    "localhost:users:scott".parse().unwrap()
}

#[async_trait]
impl ControlService for Fake {
    async fn watch(
        &self,
        _agent: Agent,
        _selector: cosmic_space::Selector,
    ) -> Result<crate::channel::Watch, crate::channel::WatchError> {
        Err(crate::channel::WatchError::Unavailable("this fake".into()))
    }

    async fn authenticate(&self, token: &str) -> Option<Agent> {
        match token {
            "hyper" => Some(Agent::HyperUser),
            "scott" => Some(Agent::Point(user())),
            _ => None,
        }
    }

    async fn ping(&self, agent: Agent, ping: Ping) -> Pong {
        self.seen.lock().push((agent, ping.clone()));
        let body = ping.core.body.clone();
        match ping.core.method.name() {
            "Sleep" => {
                let millis = u64::try_from(body.clone()).unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(millis)).await;
                ping.pong(ReflectedCore::ok(body))
            }
            "Big" => {
                let len = u64::try_from(body.clone()).unwrap_or(0) as usize;
                ping.pong(ReflectedCore::ok(Substance::Bin(vec![1; len])))
            }
            "Panic" => panic!("the fake machine panics on purpose"),
            _ => ping.pong(ReflectedCore::ok(body)),
        }
    }

    async fn status(&self) -> StatusReport {
        report()
    }

    async fn issue_token(&self, by: &Agent, agent: Point) -> Result<String, ControlError> {
        assert_eq!(by, &Agent::HyperUser);
        Ok(format!("token-for-{agent}"))
    }
}

fn report() -> StatusReport {
    let mut particles = BTreeMap::new();
    particles.insert("Space".to_string(), 2);
    particles.insert("Mechtron".to_string(), 7);
    StatusReport {
        machine: "test-machine".to_string(),
        uptime: Duration::from_secs(75),
        stars: vec![StarReport {
            key: "STAR::central:nexus[0]".parse::<StarKey>().unwrap(),
            kind: "Star<Central>".parse().unwrap(),
            particles: 9,
        }],
        particles,
        control: Some("127.0.0.1:4343".parse().unwrap()),
        http: None,
        registry: "embedded, in /data".to_string(),
        machines: Vec::new(),
    }
}

/// A running server with its address, its fake, and the switch that stops it.
struct Server {
    addr: SocketAddr,
    fake: Arc<Fake>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(limits: ControlLimits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = Arc::new(Fake {
            seen: Mutex::new(Vec::new()),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let service: Arc<dyn ControlService> = fake.clone();
        let task = tokio::spawn(serve_with(listener, service, limits, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            fake,
            stop: Some(stop),
            task,
        }
    }

    /// Waits (up to half a second) until a request has reached the fake machine.
    async fn until_seen(&self) {
        for _ in 0..100 {
            if !self.fake.seen.lock().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap();
    }
}

fn ping(method: &str, body: impl Into<Substance>) -> Ping {
    Ping::new(
        Surface::core(user()),
        Surface::core(Point::global_executor()),
        method.parse().unwrap(),
        body,
    )
}

// Raw frames, for what a well-behaved client never sends.

async fn send_raw(stream: &mut TcpStream, message: &ClientMessage) {
    let bytes = Wire::default().encode_framed(message).unwrap();
    stream.write_all(&bytes).await.unwrap();
}

/// The next message from the server, or `None` once it has closed the connection.
async fn recv_raw(stream: &mut TcpStream) -> Option<ServerMessage> {
    let mut prefix = [0u8; 4];
    if stream.read_exact(&mut prefix).await.is_err() {
        return None;
    }
    let wire = Wire::new(ControlLimits::DEFAULT_MAX_FRAME);
    let mut frame = vec![0; wire.frame_len(prefix).unwrap()];
    stream.read_exact(&mut frame).await.unwrap();
    Some(wire.decode(&frame).unwrap())
}

async fn hello_raw(addr: SocketAddr, token: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    send_raw(
        &mut stream,
        &ClientMessage::Hello {
            token: Token::new(token),
        },
    )
    .await;
    assert!(matches!(
        recv_raw(&mut stream).await,
        Some(ServerMessage::Welcome { .. })
    ));
    stream
}

fn request(number: u64, request: Request) -> ClientMessage {
    ClientMessage::Request { number, request }
}

#[tokio::test]
async fn a_ping_is_stamped_by_the_server_not_the_client() {
    let server = Server::start(ControlLimits::default()).await;
    let mut client = Client::connect(server.addr, "scott").await.unwrap();
    assert_eq!(client.agent(), &Agent::Point(user()));
    assert_eq!(client.server(), server.addr);

    let mut sent = ping("Ext<Echo>", "hello")
        .with_agent(Agent::HyperUser)
        .with_wait(WaitTime::from_secs(3600));
    sent.hops = 9;
    let pong = client.ping(sent).await.unwrap();
    assert_eq!(pong.core.status, StatusCode::OK);
    assert_eq!(pong.core.body, Substance::from("hello"));

    let seen = server.fake.seen.lock().clone();
    assert_eq!(seen.len(), 1);
    let (agent, stamped) = &seen[0];
    assert_eq!(agent, &Agent::Point(user()));
    assert_eq!(stamped.agent, Agent::Point(user()));
    assert!(!stamped.id.is_nil(), "a Ping without an id gets one");
    assert_eq!(stamped.hops, 0);
    assert_eq!(stamped.handling.wait, WaitTime::from_secs(300));
    assert_eq!(pong.reflection_of, stamped.id);

    // A second ping on the same connection gets another fresh id.
    client.ping(ping("Ext<Echo>", 2i64)).await.unwrap();
    let seen = server.fake.seen.lock().clone();
    assert_ne!(seen[1].1.id, seen[0].1.id);
    assert!(!seen[1].1.id.is_nil());
    server.stop().await;
}

#[tokio::test]
async fn a_clients_own_wave_id_is_kept_so_a_retry_is_recognisable() {
    let server = Server::start(ControlLimits::default()).await;
    let mut client = Client::connect(server.addr, "scott").await.unwrap();
    let chosen = WaveId::from_random_bytes([7; 16]);
    for _ in 0..2 {
        let sent = ping("Ext<Echo>", "again")
            .with_id(chosen)
            .with_agent(Agent::HyperUser);
        let pong = client.ping(sent).await.unwrap();
        assert_eq!(pong.reflection_of, chosen);
    }
    let seen = server.fake.seen.lock().clone();
    let ids: Vec<WaveId> = seen.iter().map(|(_, ping)| ping.id).collect();
    assert_eq!(ids, [chosen, chosen]);
    // Only the id is the client's: the agent is still the session's.
    assert!(
        seen.iter()
            .all(|(_, ping)| ping.agent == Agent::Point(user()))
    );
    server.stop().await;
}

#[tokio::test]
async fn status_and_tokens() {
    let server = Server::start(ControlLimits::default()).await;
    let mut hyper = Client::connect(server.addr, "hyper").await.unwrap();
    assert_eq!(hyper.status().await.unwrap(), report());
    assert_eq!(
        hyper.issue_token(user()).await.unwrap(),
        "token-for-localhost:users:scott"
    );

    let mut scott = Client::connect(server.addr, "scott").await.unwrap();
    match scott.issue_token(user()).await {
        Err(ControlError::Failed { status, message }) => {
            assert_eq!(status, StatusCode::FORBIDDEN);
            assert_eq!(
                message,
                "only HyperUser may issue tokens; this session acts as localhost:users:scott"
            );
        }
        other => panic!("{other:?}"),
    }
    // The refusal is an answer: the connection goes on.
    assert_eq!(scott.status().await.unwrap().machine, "test-machine");
    server.stop().await;
}

#[tokio::test]
async fn a_bad_token_is_denied_and_gets_nothing_else() {
    let server = Server::start(ControlLimits::default()).await;
    match Client::connect(server.addr, "guess").await {
        Err(ControlError::Denied(message)) => assert_eq!(message, "the token is not valid"),
        other => panic!("{other:?}"),
    }

    // Raw: a request after a denied Hello is never answered; the server has closed.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    send_raw(
        &mut stream,
        &ClientMessage::Hello {
            token: Token::new("guess"),
        },
    )
    .await;
    let _ = stream.write_all(&[0, 0, 0, 1, 1]).await;
    assert_eq!(
        recv_raw(&mut stream).await,
        Some(ServerMessage::Denied {
            message: "the token is not valid".into()
        })
    );
    assert_eq!(recv_raw(&mut stream).await, None);
    assert!(server.fake.seen.lock().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn anything_but_hello_first_is_denied() {
    let server = Server::start(ControlLimits::default()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    send_raw(&mut stream, &request(1, Request::Status)).await;
    assert_eq!(
        recv_raw(&mut stream).await,
        Some(ServerMessage::Denied {
            message: "the first message must be a Hello with a token".into()
        })
    );
    assert_eq!(recv_raw(&mut stream).await, None);

    // Garbage as the first frame.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&[0, 0, 0, 3, 200, 1, 2]).await.unwrap();
    match recv_raw(&mut stream).await {
        Some(ServerMessage::Denied { message }) => {
            assert!(message.starts_with("malformed Hello"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(recv_raw(&mut stream).await, None);

    // A Hello frame announced larger than a Hello may be: refused before it is read.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
    assert_eq!(
        recv_raw(&mut stream).await,
        Some(ServerMessage::Denied {
            message: "the Hello is too large: frame of 1048576 bytes exceeds the limit of \
                      65536 bytes"
                .into()
        })
    );
    assert_eq!(recv_raw(&mut stream).await, None);
    server.stop().await;
}

#[tokio::test]
async fn silent_slow_and_idle_clients_are_closed() {
    let limits = ControlLimits {
        handshake: Duration::from_millis(200),
        idle: Duration::from_millis(200),
        stall: Duration::from_millis(200),
        ..ControlLimits::default()
    };
    let server = Server::start(limits).await;

    // Says nothing at all.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(recv_raw(&mut silent).await, None);

    // Starts a Hello and stalls half-way.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(&[0, 0, 0, 50, 0]).await.unwrap();
    assert_eq!(recv_raw(&mut slow).await, None);

    // Authenticates, then idles.
    let mut idle = hello_raw(server.addr, "hyper").await;
    assert_eq!(recv_raw(&mut idle).await, None);

    // Authenticates, then stalls in the middle of a request.
    let mut stalled = hello_raw(server.addr, "hyper").await;
    stalled.write_all(&[0, 0, 1, 0, 1, 2]).await.unwrap();
    assert_eq!(recv_raw(&mut stalled).await, None);
    server.stop().await;
}

#[tokio::test]
async fn malformed_and_oversize_requests_are_refused_then_closed() {
    let limits = ControlLimits {
        max_frame: 4096,
        ..ControlLimits::default()
    };
    let server = Server::start(limits).await;

    let mut stream = hello_raw(server.addr, "hyper").await;
    stream.write_all(&[0, 0, 0, 2, 9, 9]).await.unwrap();
    match recv_raw(&mut stream).await {
        Some(ServerMessage::Refused { message }) => {
            assert!(message.starts_with("malformed frame: "), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(recv_raw(&mut stream).await, None);

    let mut stream = hello_raw(server.addr, "hyper").await;
    stream.write_all(&4097u32.to_be_bytes()).await.unwrap();
    assert_eq!(
        recv_raw(&mut stream).await,
        Some(ServerMessage::Refused {
            message: "frame of 4097 bytes exceeds the limit of 4096 bytes".into()
        })
    );
    assert_eq!(recv_raw(&mut stream).await, None);

    let mut stream = hello_raw(server.addr, "hyper").await;
    send_raw(
        &mut stream,
        &ClientMessage::Hello {
            token: Token::new("hyper"),
        },
    )
    .await;
    assert_eq!(
        recv_raw(&mut stream).await,
        Some(ServerMessage::Refused {
            message: "this connection has already said Hello".into()
        })
    );
    assert_eq!(recv_raw(&mut stream).await, None);

    // The client refuses to send a request over its own limit, and stays usable.
    let mut client = Client::connect_with(server.addr, "hyper", limits)
        .await
        .unwrap();
    let err = client
        .ping(ping("Ext<Echo>", Substance::Bin(vec![0; 5000])))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ControlError::Wire(WireError::FrameTooLarge { limit: 4096, .. })
        ),
        "{err}"
    );
    assert_eq!(
        client
            .ping(ping("Ext<Echo>", "ok"))
            .await
            .unwrap()
            .core
            .body,
        Substance::from("ok")
    );

    // An answer too large for a frame becomes a 413 answer.
    let pong = client.ping(ping("Ext<Big>", 5000i64)).await;
    match pong {
        Err(ControlError::Failed { status, message }) => {
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
            assert!(
                message.starts_with("the answer cannot be sent: frame of "),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn requests_of_one_connection_are_answered_as_they_finish() {
    let server = Server::start(ControlLimits::default()).await;
    let mut stream = hello_raw(server.addr, "hyper").await;
    let slow = Request::Ping(Box::new(ping("Ext<Sleep>", 300i64)));
    let fast = Request::Ping(Box::new(ping("Ext<Echo>", "fast")));
    send_raw(&mut stream, &request(41, slow)).await;
    send_raw(&mut stream, &request(42, fast)).await;
    let numbers: Vec<u64> = [recv_raw(&mut stream).await, recv_raw(&mut stream).await]
        .into_iter()
        .map(|message| match message {
            Some(ServerMessage::Answer {
                number,
                answer: Answer::Pong(_),
            }) => number,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(numbers, [42, 41]);
    server.stop().await;
}

#[tokio::test]
async fn a_panicking_machine_fails_one_request_not_the_connection() {
    let server = Server::start(ControlLimits::default()).await;
    let mut stream = hello_raw(server.addr, "hyper").await;
    send_raw(
        &mut stream,
        &request(5, Request::Ping(Box::new(ping("Ext<Panic>", ())))),
    )
    .await;
    assert_eq!(
        recv_raw(&mut stream).await,
        Some(ServerMessage::Answer {
            number: 5,
            answer: Answer::Failed {
                status: StatusCode::ERROR,
                message: "the machine failed while answering".into()
            }
        })
    );
    send_raw(&mut stream, &request(6, Request::Status)).await;
    assert!(matches!(
        recv_raw(&mut stream).await,
        Some(ServerMessage::Answer {
            number: 6,
            answer: Answer::Status(_)
        })
    ));
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_limit_are_closed() {
    let limits = ControlLimits {
        max_connections: 1,
        ..ControlLimits::default()
    };
    let server = Server::start(limits).await;
    let mut first = Client::connect(server.addr, "hyper").await.unwrap();
    match Client::connect(server.addr, "hyper").await {
        Err(ControlError::Closed(why)) => assert!(why.contains("busy"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(first.status().await.is_ok());
    drop(first);
    // The slot frees once the first connection is gone.
    let mut again = None;
    for _ in 0..50 {
        if let Ok(client) = Client::connect(server.addr, "hyper").await {
            again = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.expect("a free slot").status().await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn uploads_report_progress() {
    let server = Server::start(ControlLimits::default()).await;
    let mut client = Client::connect(server.addr, "hyper").await.unwrap();
    let mut steps = Vec::new();
    let body = Substance::Bin(vec![5; 1 << 20]);
    let pong = client
        .ping_with_progress(ping("Ext<Echo>", body.clone()), |p| steps.push(p))
        .await
        .unwrap();
    assert_eq!(pong.core.body, body);
    let total = steps.last().unwrap().total;
    assert!(total > 1 << 20);
    assert_eq!(steps.last().unwrap().sent, total);
    assert_eq!(steps.len(), total.div_ceil(64 * 1024) as usize);
    assert!(steps.windows(2).all(|w| w[0].sent < w[1].sent));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_answers_what_is_under_way_then_closes() {
    let server = Server::start(ControlLimits::default()).await;
    let addr = server.addr;
    let mut stream = hello_raw(addr, "hyper").await;
    send_raw(
        &mut stream,
        &request(1, Request::Ping(Box::new(ping("Ext<Sleep>", 200i64)))),
    )
    .await;
    // Let the request reach the machine before stopping.
    server.until_seen().await;
    let stopping = tokio::spawn(server.stop());
    assert!(matches!(
        recv_raw(&mut stream).await,
        Some(ServerMessage::Answer {
            number: 1,
            answer: Answer::Pong(_)
        })
    ));
    assert_eq!(recv_raw(&mut stream).await, None);
    stopping.await.unwrap();
    assert!(matches!(
        Client::connect(addr, "hyper").await,
        Err(ControlError::Connect { .. })
    ));
}

#[tokio::test]
async fn shutdown_refuses_newcomers_at_once_and_cuts_off_what_outlasts_the_grace() {
    let server = Server::start(ControlLimits {
        grace: Duration::from_millis(200),
        ..ControlLimits::default()
    })
    .await;
    let addr = server.addr;
    let mut stream = hello_raw(addr, "hyper").await;
    send_raw(
        &mut stream,
        &request(1, Request::Ping(Box::new(ping("Ext<Sleep>", 10_000i64)))),
    )
    .await;
    server.until_seen().await;
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(server.stop());
    // While the request is under way, nobody new gets in.
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(refused, "a new connection was accepted while stopping");
    // The request outlasts the grace: the connection closes without its answer, and the
    // server stops long before the request would have been answered.
    assert_eq!(recv_raw(&mut stream).await, None);
    stopping.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_interrupted_request_poisons_only_its_client() {
    let server = Server::start(ControlLimits::default()).await;
    let mut client = Client::connect(server.addr, "hyper").await.unwrap();
    let interrupted = tokio::time::timeout(
        Duration::from_millis(50),
        client.ping(ping("Ext<Sleep>", 500i64)),
    )
    .await;
    assert!(interrupted.is_err());
    assert!(matches!(
        client.status().await,
        Err(ControlError::Protocol(message)) if message.contains("connect again")
    ));
    let mut fresh = Client::connect(server.addr, "hyper").await.unwrap();
    assert!(fresh.status().await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn connecting_to_nothing_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = Client::connect(addr, "hyper").await.unwrap_err();
    assert!(matches!(err, ControlError::Connect { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to the control address {addr}: ")),
        "{err}"
    );
}

#[tokio::test]
async fn garbage_never_brings_the_server_down() {
    let limits = ControlLimits {
        handshake: Duration::from_millis(100),
        idle: Duration::from_millis(100),
        stall: Duration::from_millis(100),
        ..ControlLimits::default()
    };
    let server = Server::start(limits).await;
    // A small linear congruential generator: the same garbage on every run.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u8
    };
    for round in 0..40 {
        let mut stream = if round % 2 == 0 {
            TcpStream::connect(server.addr).await.unwrap()
        } else {
            hello_raw(server.addr, "hyper").await
        };
        let len = 1 + usize::from(next()) * 4;
        // A plausible small length prefix half of the time, so the body reaches the decoder.
        let mut bytes: Vec<u8> = (0..len).map(|_| next()).collect();
        if round % 4 < 2 {
            let body = (len - 1).min(255) as u8;
            bytes.splice(0..1, [0, 0, 0, body]);
        }
        let _ = stream.write_all(&bytes).await;
        // Whatever it says, it ends by closing the connection.
        while recv_raw_lenient(&mut stream).await {}
    }
    let mut client = Client::connect(server.addr, "hyper").await.unwrap();
    assert_eq!(client.status().await.unwrap(), report());
    server.stop().await;
}

/// Reads and discards one server message; false once the connection is closed.
async fn recv_raw_lenient(stream: &mut TcpStream) -> bool {
    let mut prefix = [0u8; 4];
    if stream.read_exact(&mut prefix).await.is_err() {
        return false;
    }
    let len = u32::from_be_bytes(prefix) as usize;
    let mut frame = vec![0; len.min(1 << 20)];
    stream.read_exact(&mut frame).await.is_ok()
}

#[test]
fn messages_round_trip_through_the_wire() {
    let wire = Wire::default();
    let messages = vec![
        ServerMessage::Welcome {
            agent: Agent::Point(user()),
        },
        ServerMessage::Answer {
            number: u64::MAX,
            answer: Answer::Status(Box::new(report())),
        },
        ServerMessage::Answer {
            number: 3,
            answer: Answer::Token(Token::new("t")),
        },
        ServerMessage::Refused {
            message: "no".into(),
        },
    ];
    for message in messages {
        let frame = wire.encode(&message).unwrap();
        assert_eq!(wire.decode::<ServerMessage>(&frame).unwrap(), message);
    }
    let hello = ClientMessage::Hello {
        token: Token::new("secret"),
    };
    assert!(!format!("{hello:?}").contains("secret"));
}
