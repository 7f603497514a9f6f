//! The client side of the control protocol, as the CLI uses it.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use cosmic_space::{Agent, Ping, Point, Pong, Selector, Signal, Token};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::time::timeout;

use super::frame::{FrameError, read_frame, write_frame};
use super::{
    Answer, ClientMessage, ControlError, ControlLimits, Request, ServerMessage, StatusReport,
};

/// How far an upload has got: `sent` of `total` bytes of the request's frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes written so far.
    pub sent: u64,
    /// Bytes in the whole frame.
    pub total: u64,
}

/// An authenticated control connection to a running machine.
///
/// Requests go one at a time (`&mut self`). If a request's future is dropped before its
/// answer arrives, the connection is left mid-exchange and refuses further requests; connect
/// again.
#[derive(Debug)]
pub struct Client {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    agent: Agent,
    server: SocketAddr,
    limits: ControlLimits,
    next: u64,
    interrupted: bool,
}

impl Client {
    /// Connects to the server at `addr` and says Hello with `token`, with the default
    /// [`ControlLimits`].
    pub async fn connect<A>(addr: A, token: &str) -> Result<Client, ControlError>
    where
        A: ToSocketAddrs + fmt::Display,
    {
        Client::connect_with(addr, token, ControlLimits::default()).await
    }

    /// Connects to the server at `addr` and says Hello with `token`; the connection and the
    /// answer to the Hello must come within [`ControlLimits::handshake`].
    pub async fn connect_with<A>(
        addr: A,
        token: &str,
        limits: ControlLimits,
    ) -> Result<Client, ControlError>
    where
        A: ToSocketAddrs + fmt::Display,
    {
        let stream = match timeout(limits.handshake, TcpStream::connect(&addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(ControlError::Connect {
                    addr: addr.to_string(),
                    source,
                });
            }
            Err(_) => {
                return Err(ControlError::Connect {
                    addr: addr.to_string(),
                    source: io::Error::new(io::ErrorKind::TimedOut, "no answer"),
                });
            }
        };
        let _ = stream.set_nodelay(true);
        let server = stream.peer_addr()?;
        let (mut reader, mut writer) = stream.into_split();

        let hello = ClientMessage::Hello {
            token: Token::new(token),
        };
        let bytes = limits.hello_wire().encode_framed(&hello)?;
        write_frame(&mut writer, &bytes, limits.stall, &mut |_, _| {})
            .await
            .map_err(|err| frame_error(err, "sending the Hello"))?;
        let frame = read_frame(&mut reader, &limits.wire(), limits.handshake, limits.stall)
            .await
            .map_err(|err| frame_error(err, "waiting for the answer to the Hello"))?;
        match limits.wire().decode::<ServerMessage>(&frame)? {
            ServerMessage::Welcome { agent } => Ok(Client {
                reader,
                writer,
                agent,
                server,
                limits,
                next: 1,
                interrupted: false,
            }),
            ServerMessage::Denied { message } => Err(ControlError::Denied(message)),
            ServerMessage::Refused { message } => Err(ControlError::Refused(message)),
            ServerMessage::Answer { .. } | ServerMessage::Delivery { .. } => {
                Err(ControlError::Protocol(
                    "the server answered a Hello with something other than Welcome".to_string(),
                ))
            }
        }
    }

    /// The agent this session acts as.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The server's address.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Sends `ping` into the cosmos and returns its Pong (of any status). The server stamps
    /// the agent, and a fresh id unless the Ping carries one; the answer is awaited for the Ping's wait time plus one stall period.
    pub async fn ping(&mut self, ping: Ping) -> Result<Pong, ControlError> {
        self.ping_with_progress(ping, |_| {}).await
    }

    /// Like [`Client::ping`], telling `progress` how much of the request has been sent (for
    /// large uploads such as `publish`).
    pub async fn ping_with_progress(
        &mut self,
        ping: Ping,
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<Pong, ControlError> {
        let wait = ping
            .handling
            .wait
            .as_duration()
            .min(self.limits.max_wait.as_duration())
            + self.limits.stall;
        let answer = self
            .request(Request::Ping(Box::new(ping)), wait, &mut |sent, total| {
                progress(Progress { sent, total })
            })
            .await?;
        match answer {
            Answer::Pong(pong) => Ok(*pong),
            other => Err(unexpected(other, "a Pong")),
        }
    }

    /// The machine's status.
    pub async fn status(&mut self) -> Result<StatusReport, ControlError> {
        let stall = self.limits.stall;
        match self.request(Request::Status, stall, &mut |_, _| {}).await? {
            Answer::Status(report) => Ok(*report),
            other => Err(unexpected(other, "a status report")),
        }
    }

    /// Issues a token acting as `agent` (the session must act as HyperUser; otherwise
    /// [`ControlError::Failed`] with 403).
    pub async fn issue_token(&mut self, agent: Point) -> Result<String, ControlError> {
        let stall = self.limits.stall;
        let request = Request::IssueToken { agent };
        match self.request(request, stall, &mut |_, _| {}).await? {
            Answer::Token(token) => Ok(token.as_str().to_string()),
            other => Err(unexpected(other, "a token")),
        }
    }

    /// Starts watching what `selector` publishes (SPEC §18: channels' messages, particles'
    /// lifecycle events), as this session's agent; the connection then only delivers.
    pub async fn watch(mut self, selector: Selector) -> Result<Watching, ControlError> {
        let stall = self.limits.stall;
        let number = self.next;
        match self
            .request(Request::Watch { selector }, stall, &mut |_, _| {})
            .await?
        {
            Answer::Watching => Ok(Watching {
                client: self,
                number,
            }),
            other => Err(unexpected(other, "a watch")),
        }
    }

    /// Sends one request and waits up to `wait` for its answer to begin.
    async fn request(
        &mut self,
        request: Request,
        wait: Duration,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<Answer, ControlError> {
        if self.interrupted {
            return Err(ControlError::Protocol(
                "an earlier request on this connection was interrupted; connect again".into(),
            ));
        }
        let number = self.next;
        let wire = self.limits.wire();
        let bytes = wire.encode_framed(&ClientMessage::Request { number, request })?;
        self.next += 1;
        self.interrupted = true;
        write_frame(&mut self.writer, &bytes, self.limits.stall, progress)
            .await
            .map_err(|err| frame_error(err, "sending the request"))?;
        drop(bytes);
        let frame = read_frame(&mut self.reader, &wire, wait, self.limits.stall)
            .await
            .map_err(|err| frame_error(err, "waiting for the answer"))?;
        match wire.decode::<ServerMessage>(&frame)? {
            ServerMessage::Answer {
                number: answered,
                answer,
            } if answered == number => {
                self.interrupted = false;
                Ok(answer)
            }
            ServerMessage::Answer {
                number: answered, ..
            } => Err(ControlError::Protocol(format!(
                "the server answered request {answered}, but request {number} was asked"
            ))),
            ServerMessage::Refused { message } => Err(ControlError::Refused(message)),
            ServerMessage::Denied { message } => Err(ControlError::Denied(message)),
            ServerMessage::Welcome { .. } => Err(ControlError::Protocol(
                "the server said Welcome twice".to_string(),
            )),
            ServerMessage::Delivery { .. } => Err(ControlError::Protocol(
                "the server delivered a wave to a connection that does not watch".to_string(),
            )),
        }
    }
}

/// A connection that watches (see [`Client::watch`]).
#[derive(Debug)]
pub struct Watching {
    client: Client,
    number: u64,
}

/// How long a watch waits for its next wave before it reads again (it waits for ever, in
/// these steps).
const WATCH_STEP: Duration = Duration::from_secs(3600);

impl Watching {
    /// The next wave; `Ok(None)` when the server ends the watch cleanly (it is stopping).
    pub async fn next(&mut self) -> Result<Option<Signal>, ControlError> {
        let limits = self.client.limits;
        let wire = limits.wire();
        let frame = loop {
            match read_frame(&mut self.client.reader, &wire, WATCH_STEP, limits.stall).await {
                Ok(frame) => break frame,
                Err(FrameError::TimedOut) => continue,
                Err(FrameError::Closed) => return Ok(None),
                Err(err) => return Err(frame_error(err, "watching")),
            }
        };
        match wire.decode::<ServerMessage>(&frame)? {
            ServerMessage::Delivery { number, wave } if number == self.number => Ok(Some(*wave)),
            ServerMessage::Answer {
                answer: Answer::Failed { status, message },
                ..
            } => Err(ControlError::Failed { status, message }),
            ServerMessage::Refused { message } => Err(ControlError::Refused(message)),
            _ => Err(ControlError::Protocol(
                "the server sent a watching connection something other than a wave".to_string(),
            )),
        }
    }
}

fn unexpected(answer: Answer, expected: &str) -> ControlError {
    match answer {
        Answer::Failed { status, message } => ControlError::Failed { status, message },
        other => ControlError::Protocol(format!(
            "expected {expected}, the server answered {}",
            match other {
                Answer::Pong(_) => "a Pong",
                Answer::Status(_) => "a status report",
                Answer::Token(_) => "a token",
                Answer::Watching => "a watch",
                Answer::Failed { .. } => "a failure",
            }
        )),
    }
}

fn frame_error(err: FrameError, doing: &'static str) -> ControlError {
    let closed = match &err {
        FrameError::Closed | FrameError::Truncated => true,
        FrameError::Io(err) => matches!(
            err.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        ),
        FrameError::TimedOut | FrameError::TooLarge(_) => false,
    };
    if closed {
        let during_hello = doing.contains("Hello");
        return ControlError::Closed(if during_hello {
            " before answering the Hello (it may be busy, shutting down, or not a starlane \
             control port)"
        } else {
            ""
        });
    }
    match err {
        FrameError::TimedOut => ControlError::Timeout(doing),
        FrameError::TooLarge(err) => ControlError::Wire(err),
        FrameError::Io(err) => ControlError::Io(err),
        FrameError::Closed | FrameError::Truncated => ControlError::Closed(""),
    }
}
