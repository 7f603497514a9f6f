//! The server side of the control protocol: accepting connections, the Hello handshake, and
//! answering requests through a [`ControlService`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cosmic_space::{Agent, Signal, StatusCode, Token, Wire};
use tokio::io::AsyncWrite;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::frame::{FrameError, read_frame, write_frame};
use super::{Answer, ClientMessage, ControlLimits, ControlService, Request, ServerMessage};
use crate::channel::Watch;

/// Serves the control protocol on `listener` with the default [`ControlLimits`] until
/// `shutdown` completes; see [`serve_with`].
pub async fn serve<F>(listener: TcpListener, service: Arc<dyn ControlService>, shutdown: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_with(listener, service, ControlLimits::default(), shutdown).await;
}

/// Serves the control protocol on `listener` until `shutdown` completes.
///
/// Then it stops accepting (new connections are refused), stops reading requests, gives the
/// requests under way [`ControlLimits::grace`] to be answered, closes every connection —
/// cutting off what is still under way — and returns. A failed
/// `accept` (e.g. out of file descriptors) is retried after a short pause; a misbehaving
/// connection only ever closes itself.
pub async fn serve_with<F>(
    listener: TcpListener,
    service: Arc<dyn ControlService>,
    limits: ControlLimits,
    shutdown: F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop, stopping) = watch::channel(false);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let mut sessions = JoinSet::new();
    let shutdown = std::pin::pin!(shutdown);
    let mut shutdown = shutdown;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    // Over the limit the connection is closed at once: it holds nothing.
                    if let Ok(permit) = connections.clone().try_acquire_owned() {
                        sessions.spawn(session(
                            stream,
                            service.clone(),
                            limits,
                            stopping.clone(),
                            permit,
                        ));
                    }
                }
                Err(_) => sleep(Duration::from_millis(50)).await,
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    // New connections are refused from now on.
    drop(listener);
    let _ = stop.send(true);
    // Sessions answer what is under way within the grace period; whatever is left after it
    // (a request still being worked on, an answer still being written) is cut off when the
    // set drops.
    let _ = timeout(limits.grace, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
}

/// One connection: the handshake, then requests until the client leaves, idles, breaks the
/// protocol, or the server stops.
async fn session(
    stream: TcpStream,
    service: Arc<dyn ControlService>,
    limits: ControlLimits,
    stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut stop = stop;
    // A connection still saying Hello when the server stops is simply closed.
    let agent = tokio::select! {
        agent = timeout(
            limits.handshake,
            handshake(&mut reader, &mut writer, service.as_ref(), &limits),
        ) => agent.ok().flatten(),
        _ = stopped(&mut stop) => None,
    };
    let Some(agent) = agent else {
        return;
    };
    if send(
        &mut writer,
        &ServerMessage::Welcome {
            agent: agent.clone(),
        },
        &limits,
    )
    .await
    .is_err()
    {
        return;
    }

    // The reader runs on its own so that reading a frame is never cancelled half-way; it hands
    // decoded messages over one at a time (so it stops reading while the session is full).
    let (inbox, mut incoming) = mpsc::channel::<Result<ClientMessage, String>>(1);
    // A watching client sends nothing for as long as it watches: it is not idle.
    let watching = Arc::new(AtomicBool::new(false));
    let quiet_is_fine = watching.clone();
    let reading = tokio::spawn(async move {
        let wire = limits.wire();
        loop {
            let message = match read_frame(&mut reader, &wire, limits.idle, limits.stall).await {
                Ok(frame) => wire
                    .decode::<ClientMessage>(&frame)
                    .map_err(|err| format!("malformed frame: {err}")),
                Err(FrameError::TooLarge(err)) => Err(err.to_string()),
                Err(FrameError::TimedOut) if quiet_is_fine.load(Ordering::Relaxed) => continue,
                // Closed, idle, stalled or broken: the session ends quietly.
                Err(_) => break,
            };
            let failed = message.is_err();
            if inbox.send(message).await.is_err() || failed {
                break;
            }
        }
    });
    let _reading = AbortOnDrop(reading.abort_handle());

    let mut under_way: JoinSet<Answer> = JoinSet::new();
    let mut numbers = HashMap::new();
    let mut open = true;
    let mut deadline: Option<Instant> = None;
    let mut watch: Option<(u64, Watch)> = None;
    loop {
        if !open && under_way.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            _ = stopped(&mut stop), if open => {
                open = false;
                incoming.close();
                deadline = Some(Instant::now() + limits.grace);
                // What the watch was given before the stop (a machine says it goes offline
                // first) is still said.
                if let Some((number, watching)) = watch.as_mut() {
                    while let Some(wave) = watching.try_next() {
                        if deliver(&mut writer, *number, wave, &limits).await.is_err() {
                            break;
                        }
                    }
                }
                watch = None;
            }
            delivery = next_delivery(&mut watch), if watch.is_some() => {
                let Some(number) = watch.as_ref().map(|(number, _)| *number) else { continue };
                let sent = match delivery {
                    Some(wave) => deliver(&mut writer, number, wave, &limits).await,
                    None => {
                        // The watch fell behind (or the machine is stopping): say so, and end.
                        let failed = Answer::Failed {
                            status: StatusCode::UNAVAILABLE,
                            message: "the watch could not keep up and was closed".to_string(),
                        };
                        let _ = answer_client(&mut writer, number, failed, &limits).await;
                        break;
                    }
                };
                if sent.is_err() {
                    break;
                }
            }
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => break,
            Some(done) = under_way.join_next_with_id() => {
                let (id, answer) = match done {
                    Ok((id, answer)) => (id, answer),
                    Err(err) => (err.id(), Answer::Failed {
                        status: StatusCode::ERROR,
                        message: "the machine failed while answering".to_string(),
                    }),
                };
                let Some(number) = numbers.remove(&id) else { continue };
                if answer_client(&mut writer, number, answer, &limits).await.is_err() {
                    break;
                }
            }
            message = incoming.recv(), if open && under_way.len() < limits.max_in_flight => {
                match message {
                    None => open = false,
                    Some(Ok(ClientMessage::Request { number, request: Request::Watch { selector } })) => {
                        let answer = if watch.is_some() {
                            Answer::Failed {
                                status: StatusCode::CONFLICT,
                                message: "this connection is watching already".to_string(),
                            }
                        } else {
                            match service.watch(agent.clone(), selector).await {
                                Ok(started) => {
                                    watch = Some((number, started));
                                    watching.store(true, Ordering::Relaxed);
                                    Answer::Watching
                                }
                                Err(err) => {
                                    let core = cosmic_space::ReflectedCore::from(err);
                                    Answer::Failed {
                                        status: core.status,
                                        message: core.error_message().unwrap_or_default(),
                                    }
                                }
                            }
                        };
                        if answer_client(&mut writer, number, answer, &limits).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(ClientMessage::Request { number, request })) => {
                        let handle = under_way.spawn(answer(
                            service.clone(),
                            agent.clone(),
                            request,
                            limits,
                        ));
                        numbers.insert(handle.id(), number);
                    }
                    Some(Ok(ClientMessage::Hello { .. })) => {
                        refuse(&mut writer, "this connection has already said Hello", &limits).await;
                        break;
                    }
                    Some(Err(message)) => {
                        refuse(&mut writer, &message, &limits).await;
                        break;
                    }
                }
            }
            else => break,
        }
    }
}

/// Reads the Hello and authenticates it (the caller bounds the whole by
/// [`ControlLimits::handshake`]). Anything else is denied (or, if nothing usable arrived, the
/// connection is closed without a word).
async fn handshake<R, W>(
    reader: &mut R,
    writer: &mut W,
    service: &dyn ControlService,
    limits: &ControlLimits,
) -> Option<Agent>
where
    R: tokio::io::AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let wire = limits.hello_wire();
    let frame = read_frame(reader, &wire, limits.handshake, limits.stall).await;
    let denial = match frame {
        Ok(frame) => match wire.decode::<ClientMessage>(&frame) {
            Ok(ClientMessage::Hello { token }) => {
                match service.authenticate(token.as_str()).await {
                    Some(agent) => return Some(agent),
                    None => "the token is not valid".to_string(),
                }
            }
            Ok(ClientMessage::Request { .. }) => {
                "the first message must be a Hello with a token".to_string()
            }
            Err(err) => format!("malformed Hello: {err}"),
        },
        Err(FrameError::TooLarge(err)) => format!("the Hello is too large: {err}"),
        _ => return None,
    };
    let _ = send(writer, &ServerMessage::Denied { message: denial }, limits).await;
    None
}

/// Works out the answer to one request.
async fn answer(
    service: Arc<dyn ControlService>,
    agent: Agent,
    request: Request,
    limits: ControlLimits,
) -> Answer {
    match request {
        Request::Ping(ping) => {
            let mut ping = *ping;
            // A client's own id is kept: a retry under the same id is recognisable (SPEC
            // §17.1), and a second Ping under an id still in flight is refused, not merged.
            if ping.id.is_nil() {
                ping.id = crate::ids::wave_id();
            }
            ping.agent = agent.clone();
            ping.hops = 0;
            if ping.handling.wait > limits.max_wait {
                ping.handling.wait = limits.max_wait;
            }
            Answer::Pong(Box::new(service.ping(agent, ping).await))
        }
        Request::Status => Answer::Status(Box::new(service.status().await)),
        // Watches are answered by the session itself, which then delivers.
        Request::Watch { .. } => Answer::Failed {
            status: StatusCode::BAD_REQUEST,
            message: "a watch is asked on its own".to_string(),
        },
        Request::IssueToken { agent: target } => {
            if agent != Agent::HyperUser {
                return Answer::Failed {
                    status: StatusCode::FORBIDDEN,
                    message: format!(
                        "only HyperUser may issue tokens; this session acts as {}",
                        agent.to_point()
                    ),
                };
            }
            match service.issue_token(&agent, target).await {
                Ok(token) => Answer::Token(Token::new(token)),
                Err(err) => Answer::Failed {
                    status: err.status(),
                    message: err.to_string(),
                },
            }
        }
    }
}

/// Sends the answer to request `number`; an answer too large for a frame becomes a 413.
async fn answer_client<W: AsyncWrite + Unpin>(
    writer: &mut W,
    number: u64,
    answer: Answer,
    limits: &ControlLimits,
) -> Result<(), FrameError> {
    let message = ServerMessage::Answer { number, answer };
    match limits.wire().encode_framed(&message) {
        Ok(bytes) => write_frame(writer, &bytes, limits.stall, &mut |_, _| {}).await,
        Err(err) => {
            let status = match err {
                cosmic_space::WireError::FrameTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::ERROR,
            };
            let failed = ServerMessage::Answer {
                number,
                answer: Answer::Failed {
                    status,
                    message: format!("the answer cannot be sent: {err}"),
                },
            };
            send(writer, &failed, limits).await
        }
    }
}

/// The next wave the session's watch delivers; `None` when it has ended.
async fn next_delivery(watch: &mut Option<(u64, Watch)>) -> Option<Signal> {
    match watch {
        Some((_, watch)) => watch.next().await,
        None => std::future::pending().await,
    }
}

/// Sends one delivery of watch `number`; a wave too large for a frame is skipped.
async fn deliver<W: AsyncWrite + Unpin>(
    writer: &mut W,
    number: u64,
    wave: Signal,
    limits: &ControlLimits,
) -> Result<(), FrameError> {
    let message = ServerMessage::Delivery {
        number,
        wave: Box::new(wave),
    };
    match limits.wire().encode_framed(&message) {
        Ok(bytes) => write_frame(writer, &bytes, limits.stall, &mut |_, _| {}).await,
        Err(_) => Ok(()),
    }
}

async fn refuse<W: AsyncWrite + Unpin>(writer: &mut W, message: &str, limits: &ControlLimits) {
    let refused = ServerMessage::Refused {
        message: message.to_string(),
    };
    let _ = send(writer, &refused, limits).await;
}

/// Sends a small message the server makes itself (with a frame limit that always fits it).
async fn send<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &ServerMessage,
    limits: &ControlLimits,
) -> Result<(), FrameError> {
    let bytes = Wire::new(limits.max_frame.max(limits.hello_frame))
        .encode_framed(message)
        .map_err(FrameError::TooLarge)?;
    write_frame(writer, &bytes, limits.stall, &mut |_, _| {}).await
}

/// Completes when the server stops (or is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// Aborts a task when dropped, so a session's reader never outlives it.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
