//! The NATS fabric: the stars of many machines exchange envelopes over one NATS (SPEC §14.2).
//!
//! - **Subjects.** Every star listens on `starlane.COSMOS.star.MACHINE.NAME.INDEX`; the cosmos's
//!   name prefixes every subject, so several cosmoses can share a NATS. An envelope travels as
//!   its `wire` frame, the payload of one message.
//! - **Stars of this machine** are reached in-process through a [`LocalFabric`]: no frame, no
//!   copy, no trip through the server.
//! - **Large frames.** NATS refuses messages over the server's `max_payload` (1 MiB by
//!   default); a larger frame (up to the wire's 16 MiB limit) is split into chunks that carry a
//!   `Starlane-Chunk: ID INDEX COUNT` header, and joined again by the receiving star. Chunks of
//!   one frame come from one publisher on one subject, so they arrive in order; a frame whose
//!   chunks stop coming is dropped after [`CHUNK_PATIENCE`].
//! - **Nobody there.** A Ping is published with a reply subject naming the sender's star and
//!   the wave (`starlane.COSMOS.bounce.MACHINE.NAME.INDEX.WAVE`). Nobody ever replies to it —
//!   except the NATS server itself, with a "no responders" status, when no star subscribes to
//!   the target subject. The sender's exchange then ends at once with 503 instead of at its
//!   wait time.
//! - **The bus down.** While the client is not connected, sends fail at once
//!   ([`FabricError::Unavailable`]) rather than queue; the client reconnects by itself, and its
//!   subscriptions with it.
//! - **Bus messages are input from outside the process**: a frame that does not decode, a
//!   chunk that does not fit, is dropped with a line naming the subject and what was wrong.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, HeaderMap, Message};
use async_trait::async_trait;
use bytes::Bytes;
use cosmic_space::wire::Wire;
use cosmic_space::{StarKey, Wave, WaveId};
use futures_util::StreamExt;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Envelope, Fabric, FabricError, Inbox, LocalFabric};
use crate::credentials::redact;
use crate::registry::{Change, ChangeFeed, Forget};

/// The `tracing` target of what the fabric drops or cannot publish.
const NATS_TARGET: &str = "starlane::nats";

/// The header that marks a chunk of a frame: `ID INDEX COUNT`.
const CHUNK_HEADER: &str = "Starlane-Chunk";

/// How long a partly received frame waits for its next chunk before it is dropped.
pub const CHUNK_PATIENCE: Duration = Duration::from_secs(30);

/// Room left in each message for the headers, below the server's `max_payload`.
const HEADER_ROOM: usize = 1024;

/// How to join a cosmos over NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSettings {
    /// The server, e.g. `nats://user:pass@host:4222` (credentials in the URL).
    pub url: String,
    /// The cosmos's name: the prefix of every subject (skewer case).
    pub cosmos: String,
    /// This machine's name (the constellation of its stars' keys).
    pub machine: String,
    /// The largest frame a star accepts.
    pub max_frame: usize,
    /// How long the first connection may take.
    pub connect_timeout: Duration,
}

impl NatsSettings {
    /// Settings for `url`, cosmos `cosmos`, machine `machine`, with the default frame limit
    /// (16 MiB) and a 5 s connect timeout.
    pub fn new(url: &str, cosmos: &str, machine: &str) -> NatsSettings {
        NatsSettings {
            url: url.to_string(),
            cosmos: cosmos.to_string(),
            machine: machine.to_string(),
            max_frame: Wire::DEFAULT_MAX_FRAME,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Carries envelopes between the stars of every machine of a cosmos over NATS.
pub struct NatsFabric {
    client: Client,
    subjects: Subjects,
    wire: Wire,
    /// The largest payload of one message (the server's `max_payload`, less room for headers).
    chunk: usize,
    /// This machine's stars.
    local: LocalFabric,
    /// The live stars of other machines, as membership last said.
    remote: RwLock<Vec<StarKey>>,
    /// The receiving task of each star of this machine, and what tells it to stop.
    listeners: Mutex<HashMap<StarKey, Listening>>,
    /// The tasks that hear bounces, and that carry registry changes both ways.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Kept alive for the feed, which holds it weakly.
    relay: Mutex<Option<Arc<ChangeRelay>>>,
    /// The registry's feed, once changes are carried.
    feed: Arc<RwLock<Option<Arc<ChangeFeed>>>>,
}

/// Hands this machine's registry changes to the task that publishes them (the feed calls it
/// synchronously, inside the write; the bus is asynchronous).
struct ChangeRelay(mpsc::UnboundedSender<Change>);

impl Forget for ChangeRelay {
    fn forget(&self, change: &Change) {
        let _ = self.0.send(change.clone());
    }
}

/// A star's receiving task: told to stop, it unsubscribes and ends.
struct Listening {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// The header naming the machine a change comes from.
const MACHINE_HEADER: &str = "Starlane-Machine";

impl std::fmt::Debug for NatsFabric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsFabric")
            .field("prefix", &self.subjects.prefix)
            .field("local", &self.local)
            .field("remote", &self.remote.read().len())
            .finish_non_exhaustive()
    }
}

/// The subjects of one cosmos.
#[derive(Debug, Clone)]
struct Subjects {
    /// `starlane.COSMOS`.
    prefix: String,
    /// This machine's name.
    machine: String,
}

impl Subjects {
    /// Where `star` listens.
    fn star(&self, star: &StarKey) -> String {
        format!(
            "{}.star.{}.{}.{}",
            self.prefix, star.constellation, star.name, star.index
        )
    }

    /// Where the server says that nobody took the Ping `wave` sent by `star`.
    fn bounce(&self, star: &StarKey, wave: WaveId) -> String {
        format!(
            "{}.bounce.{}.{}.{}.{wave}",
            self.prefix, star.constellation, star.name, star.index
        )
    }

    /// Where every machine tells the others what it changed in the registry.
    fn changes(&self) -> String {
        format!("{}.changes", self.prefix)
    }

    /// Every bounce addressed to a star of this machine.
    fn bounces(&self) -> String {
        format!("{}.bounce.{}.>", self.prefix, self.machine)
    }

    /// The sending star and the wave a bounce subject names.
    fn parse_bounce(&self, subject: &str) -> Option<(StarKey, WaveId)> {
        let rest = subject
            .strip_prefix(&self.prefix)?
            .strip_prefix(".bounce.")?;
        let mut parts = rest.splitn(4, '.');
        let constellation = parts.next()?;
        let name = parts.next()?;
        let index = parts.next()?.parse().ok()?;
        let wave = parts.next()?.parse().ok()?;
        Some((StarKey::new(constellation, name, index).ok()?, wave))
    }
}

impl NatsFabric {
    /// Connects to the NATS of `settings` (waiting at most its connect timeout for the first
    /// connection; later ones are retried for ever) and starts hearing bounces for this
    /// machine's stars.
    pub async fn connect(settings: &NatsSettings) -> Result<Arc<NatsFabric>, FabricError> {
        let shown = redact(&settings.url);
        // The feed, once `carry_changes` has it: after a reconnection every cache forgets
        // everything (changes may have been missed both ways while the bus was away).
        let feed: Arc<RwLock<Option<Arc<ChangeFeed>>>> = Arc::default();
        let heard = feed.clone();
        let options = ConnectOptions::new()
            .event_callback(move |event| {
                let heard = heard.clone();
                async move {
                    if matches!(event, async_nats::Event::Connected)
                        && let Some(feed) = heard.read().clone()
                    {
                        feed.publish(&Change::Anything);
                    }
                }
            })
            .name(format!("starlane {} {}", settings.cosmos, settings.machine))
            .connection_timeout(settings.connect_timeout)
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                // Quick at first (a restarted server is back in well under a second), then at
                // most every two seconds.
                Duration::from_millis((50 * attempts.min(40) as u64).max(50))
            });
        let client = tokio::time::timeout(
            settings.connect_timeout,
            async_nats::connect_with_options(settings.url.as_str(), options),
        )
        .await
        .map_err(|_| {
            FabricError::Unavailable(format!(
                "NATS at {shown} did not answer within {:?}",
                settings.connect_timeout
            ))
        })?
        .map_err(|err| {
            FabricError::Unavailable(format!("cannot connect to NATS at {shown}: {err}"))
        })?;
        let max_payload = client.server_info().max_payload;
        let chunk = max_payload.saturating_sub(HEADER_ROOM).max(HEADER_ROOM);
        let subjects = Subjects {
            prefix: format!("starlane.{}", settings.cosmos),
            machine: settings.machine.clone(),
        };
        let fabric = Arc::new(NatsFabric {
            client,
            subjects,
            wire: Wire::new(settings.max_frame),
            chunk,
            local: LocalFabric::new(),
            remote: RwLock::new(Vec::new()),
            listeners: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            relay: Mutex::new(None),
            feed,
        });
        let bounces = fabric
            .client
            .subscribe(fabric.subjects.bounces())
            .await
            .map_err(|err| FabricError::Unavailable(format!("subscribing to bounces: {err}")))?;
        let task = tokio::spawn(hear_bounces(Arc::downgrade(&fabric), bounces));
        fabric.tasks.lock().push(task);
        Ok(fabric)
    }

    /// Publishes `frame` on `subject`, in chunks when it is larger than one message may be.
    async fn publish(
        &self,
        subject: String,
        reply: Option<String>,
        frame: Vec<u8>,
    ) -> Result<(), FabricError> {
        let failed = |err: async_nats::PublishError| {
            FabricError::Unavailable(format!("publishing on {subject}: {err}"))
        };
        if frame.len() <= self.chunk {
            let payload = Bytes::from(frame);
            return match reply {
                Some(reply) => {
                    self.client
                        .publish_with_reply(subject.clone(), reply, payload)
                        .await
                }
                None => self.client.publish(subject.clone(), payload).await,
            }
            .map_err(failed);
        }
        let frame = Bytes::from(frame);
        let count = frame.len().div_ceil(self.chunk);
        let id = crate::ids::wave_id();
        for index in 0..count {
            let start = index * self.chunk;
            let part = frame.slice(start..(start + self.chunk).min(frame.len()));
            let mut headers = HeaderMap::new();
            headers.insert(CHUNK_HEADER, format!("{id} {index} {count}").as_str());
            // Only the last chunk carries the reply subject: "no responders" then comes once.
            match (&reply, index + 1 == count) {
                (Some(reply), true) => {
                    self.client
                        .publish_with_reply_and_headers(
                            subject.clone(),
                            reply.clone(),
                            headers,
                            part,
                        )
                        .await
                }
                _ => {
                    self.client
                        .publish_with_headers(subject.clone(), headers, part)
                        .await
                }
            }
            .map_err(failed)?;
        }
        Ok(())
    }
}

impl Drop for NatsFabric {
    fn drop(&mut self) {
        for (_, listening) in self.listeners.lock().drain() {
            listening.task.abort();
        }
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }
}

#[async_trait]
impl Fabric for NatsFabric {
    async fn connect(&self, star: StarKey, inbox: Arc<dyn Inbox>) -> Result<(), FabricError> {
        let subject = self.subjects.star(&star);
        let subscriber = self
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|err| FabricError::Unavailable(format!("subscribing to {subject}: {err}")))?;
        // Make sure the server has the subscription before anyone is told the star is there.
        self.client
            .flush()
            .await
            .map_err(|err| FabricError::Unavailable(format!("subscribing to {subject}: {err}")))?;
        self.local.connect(star.clone(), inbox.clone()).await?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(receive(subscriber, inbox, self.wire, stopped));
        if let Some(old) = self.listeners.lock().insert(star, Listening { stop, task }) {
            old.task.abort();
        }
        Ok(())
    }

    /// Waits until the server has dropped the star's subscription, so that waves sent to it
    /// from now on bounce at once (no responders) instead of vanishing.
    async fn disconnect(&self, star: &StarKey) {
        self.local.disconnect(star).await;
        let listening = self.listeners.lock().remove(star);
        if let Some(Listening { stop, task }) = listening {
            let _ = stop.send(());
            let _ = task.await;
            let _ = self.client.flush().await;
        }
    }

    async fn send(&self, to: &StarKey, envelope: Envelope) -> Result<(), FabricError> {
        if to.constellation == self.subjects.machine {
            return self.local.send(to, envelope).await;
        }
        if self.remote.read().binary_search(to).is_err() {
            return Err(FabricError::UnknownStar(to.clone()));
        }
        if !self.on_bus() {
            return Err(FabricError::Unavailable(format!(
                "not connected to NATS: cannot reach star {to}"
            )));
        }
        let reply = match &envelope.wave {
            Wave::Directed(cosmic_space::DirectedWave::Ping(ping)) => {
                Some(self.subjects.bounce(&envelope.from_star, ping.id))
            }
            _ => None,
        };
        let frame = self
            .wire
            .encode(&envelope)
            .map_err(|err| FabricError::Frame(err.to_string()))?;
        self.publish(self.subjects.star(to), reply, frame).await
    }

    fn on_bus(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// Sends to any remote star not among `stars` are refused at once from now on.
    fn set_remote_stars(&self, mut stars: Vec<StarKey>) {
        stars.retain(|star| star.constellation != self.subjects.machine);
        stars.sort();
        stars.dedup();
        *self.remote.write() = stars;
    }

    fn stars(&self) -> Vec<StarKey> {
        let mut stars = self.local.stars();
        stars.extend(self.remote.read().iter().cloned());
        stars.sort();
        stars
    }

    async fn carry_changes(&self, feed: Arc<ChangeFeed>) -> Result<(), FabricError> {
        let subject = self.subjects.changes();
        let incoming = self
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|err| FabricError::Unavailable(format!("subscribing to {subject}: {err}")))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let relay = Arc::new(ChangeRelay(tx));
        let weak: Arc<dyn Forget> = relay.clone();
        feed.relay(Arc::downgrade(&weak));
        *self.relay.lock() = Some(relay);
        *self.feed.write() = Some(feed.clone());
        let machine = self.subjects.machine.clone();
        let outgoing = tokio::spawn(send_changes(
            self.client.clone(),
            subject,
            machine.clone(),
            self.wire,
            rx,
        ));
        let incoming = tokio::spawn(hear_changes(incoming, machine, self.wire, feed));
        self.tasks.lock().extend([outgoing, incoming]);
        Ok(())
    }
}

/// Publishes this machine's registry changes, in the order they were made.
async fn send_changes(
    client: Client,
    subject: String,
    machine: String,
    wire: Wire,
    mut changes: mpsc::UnboundedReceiver<Change>,
) {
    while let Some(change) = changes.recv().await {
        let frame = match wire.encode(&change) {
            Ok(frame) => frame,
            Err(err) => {
                tracing::error!(
                    target: NATS_TARGET,
                    "cannot frame the registry change {change:?}: {err}"
                );
                continue;
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(MACHINE_HEADER, machine.as_str());
        if let Err(err) = client
            .publish_with_headers(subject.clone(), headers, Bytes::from(frame))
            .await
        {
            // The other machines' caches may now hold what this change made stale: when this
            // client is connected again it tells every machine to forget everything.
            tracing::warn!(
                target: NATS_TARGET,
                "could not publish the registry change {change:?}: {err}"
            );
        }
    }
}

/// Publishes the registry changes of the other machines on this machine's feed.
async fn hear_changes(
    mut incoming: async_nats::Subscriber,
    machine: String,
    wire: Wire,
    feed: Arc<ChangeFeed>,
) {
    while let Some(message) = incoming.next().await {
        let from = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(MACHINE_HEADER))
            .map(|value| value.as_str());
        if from == Some(machine.as_str()) {
            continue;
        }
        match wire.decode::<Change>(&message.payload) {
            Ok(change) => feed.publish_from_elsewhere(&change),
            Err(err) => tracing::warn!(
                target: NATS_TARGET,
                "dropped a registry change on {} from {}: {err}",
                message.subject,
                from.unwrap_or("an unnamed machine")
            ),
        }
    }
}

/// Hands what arrives on one star's subject to its inbox, joining chunks into frames, until
/// told to stop (then it unsubscribes).
async fn receive(
    mut subscriber: async_nats::Subscriber,
    inbox: Arc<dyn Inbox>,
    wire: Wire,
    mut stop: oneshot::Receiver<()>,
) {
    let mut partial = Chunks::new(wire.max_frame());
    loop {
        let message = tokio::select! {
            _ = &mut stop => {
                let _ = subscriber.unsubscribe().await;
                return;
            }
            message = subscriber.next() => match message {
                Some(message) => message,
                None => return,
            },
        };
        // Kept for the messages below: a subject is shared bytes, so this copies nothing.
        let subject = message.subject.clone();
        let frame = match partial.take(message) {
            Ok(Some(frame)) => frame,
            Ok(None) => continue,
            Err(why) => {
                tracing::warn!(target: NATS_TARGET, "dropped a message on {subject}: {why}");
                continue;
            }
        };
        match wire.decode::<Envelope>(&frame) {
            Ok(envelope) => inbox.deliver(envelope),
            Err(err) => {
                tracing::warn!(target: NATS_TARGET, "dropped a frame on {subject}: {err}");
            }
        }
    }
}

/// Ends the exchanges whose Pings the server said nobody took.
async fn hear_bounces(fabric: std::sync::Weak<NatsFabric>, mut bounces: async_nats::Subscriber) {
    while let Some(message) = bounces.next().await {
        let Some(fabric) = fabric.upgrade() else {
            return;
        };
        if message.status != Some(async_nats::StatusCode::NO_RESPONDERS) {
            continue;
        }
        let Some((star, wave)) = fabric.subjects.parse_bounce(message.subject.as_str()) else {
            tracing::warn!(
                target: NATS_TARGET,
                "a bounce on {} names no star and wave",
                message.subject
            );
            continue;
        };
        if let Some(inbox) = fabric.local.inbox(&star) {
            inbox.undeliverable(
                wave,
                "nobody on the bus serves the target's star (its machine is gone)".to_string(),
            );
        }
    }
}

/// Frames being joined from their chunks, by chunk id.
struct Chunks {
    max_frame: usize,
    joining: HashMap<String, Joining>,
}

struct Joining {
    next: usize,
    count: usize,
    bytes: Vec<u8>,
    started: Instant,
}

impl Chunks {
    fn new(max_frame: usize) -> Chunks {
        Chunks {
            max_frame,
            joining: HashMap::new(),
        }
    }

    /// The whole frame `message` carries or completes; `None` while chunks are missing.
    fn take(&mut self, message: Message) -> Result<Option<Bytes>, String> {
        let Some(header) = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(CHUNK_HEADER))
        else {
            return Ok(Some(message.payload));
        };
        let (id, index, count) = parse_chunk_header(header.as_str())
            .ok_or_else(|| format!("{CHUNK_HEADER}: '{}' is not 'ID INDEX COUNT'", header))?;
        let now = Instant::now();
        self.joining
            .retain(|_, joining| now.duration_since(joining.started) < CHUNK_PATIENCE);
        if index == 0 {
            if count > self.max_frame {
                return Err(format!("a frame in {count} chunks is over the limit"));
            }
            self.joining.insert(
                id.to_string(),
                Joining {
                    next: 0,
                    count,
                    bytes: Vec::new(),
                    started: now,
                },
            );
        }
        let Some(joining) = self.joining.get_mut(id) else {
            return Err(format!("chunk {index} of {id} without its first"));
        };
        if joining.next != index || joining.count != count {
            self.joining.remove(id);
            return Err(format!("chunk {index} of {id} out of order"));
        }
        if joining.bytes.len() + message.payload.len() > self.max_frame {
            self.joining.remove(id);
            return Err(format!(
                "frame {id} grows over the {} byte limit",
                self.max_frame
            ));
        }
        joining.bytes.extend_from_slice(&message.payload);
        joining.next += 1;
        if joining.next < joining.count {
            return Ok(None);
        }
        let done = self.joining.remove(id).map(|joining| joining.bytes);
        Ok(done.map(Bytes::from))
    }
}

/// `ID INDEX COUNT`, with INDEX < COUNT.
fn parse_chunk_header(value: &str) -> Option<(&str, usize, usize)> {
    let mut parts = value.split(' ');
    let id = parts.next()?;
    let index: usize = parts.next()?.parse().ok()?;
    let count: usize = parts.next()?.parse().ok()?;
    (parts.next().is_none() && index < count && !id.is_empty()).then_some((id, index, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounce_subjects_round_trip() {
        let subjects = Subjects {
            prefix: "starlane.prod".into(),
            machine: "edge-1".into(),
        };
        let star = StarKey::new("edge-1", "star", 3).expect("a star key");
        let wave = crate::ids::wave_id();
        let subject = subjects.bounce(&star, wave);
        assert!(subject.starts_with("starlane.prod.bounce.edge-1."));
        assert_eq!(subjects.parse_bounce(&subject), Some((star.clone(), wave)));
        assert_eq!(
            subjects.parse_bounce("starlane.prod.bounce.edge-1.star"),
            None
        );
        assert_eq!(subjects.parse_bounce("other.bounce.edge-1.star.3.x"), None);
        assert_eq!(subjects.star(&star), "starlane.prod.star.edge-1.star.3");
    }

    #[test]
    fn chunk_headers_are_checked() {
        assert_eq!(parse_chunk_header("abc 0 2"), Some(("abc", 0, 2)));
        assert_eq!(parse_chunk_header("abc 2 2"), None);
        assert_eq!(parse_chunk_header("abc 0"), None);
        assert_eq!(parse_chunk_header("abc x 2"), None);
        assert_eq!(parse_chunk_header("abc 0 2 9"), None);
        assert_eq!(parse_chunk_header(" 0 2"), None);
    }
}
