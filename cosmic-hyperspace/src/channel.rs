//! Channels and events (SPEC §18): what a channel publishes and what happens to particles,
//! delivered to their subscribers on every machine.
//!
//! Each machine has one [`Hub`]. Something to deliver — a message sent to a `Channel`, or a
//! lifecycle event of a write made on this machine — becomes a **publication**: a Ripple
//! `from` its source and `to` [`Recipients::Watchers`] of that source. The hub of the machine
//! where it starts finds the subscriptions whose selectors match the source (the registry
//! keeps them; every hub caches the list and forgets it when the change feed says it
//! changed), and sends the publication **once to each other machine** that hosts a matching
//! subscriber, never once per subscriber. Each hub then delivers to its own subscribers:
//!
//! - a particle subscriber gets a [`Signal`] through its star, straight to its Core (it asked
//!   for these waves, so its `x` is not asked of the channel; its driver answers, and the
//!   answer is dropped, as a Signal's always is);
//! - a **watcher** — `starlane watch`, a web stream — is a bounded queue in this process,
//!   registered in the registry as a subscription of a topic on this machine's first star, so
//!   that other machines know to send here.
//!
//! Every delivery is checked as the subscription's agent: it needs `r` on the source.
//! Delivery is at most once and in order per publisher and subscriber: one dispatcher per
//! machine takes publications in the order they come (a publisher's waves reach its channel in
//! order, the fabric keeps order between two stars, and this hub's queue between a star and
//! its dispatcher), and each subscriber has one queue. A full queue drops: a particle's
//! message is counted as dropped; a watcher that does not keep up is closed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use cosmic_space::{
    Access, Agent, Details, DirectedCore, DirectedWave, Event, FullAccess, Kind, PUBLISHER,
    Permission, Ping, Point, PointHierarchy, Recipients, Ripple, Selector, Signal, StarKey,
    StarSubKind, Status, Stub, Subscription, Substance, Surface, Topic, Wave,
};
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::fabric::{Envelope, Fabric};
use crate::metrics::{ChannelDelivery, Metrics};
use crate::registry::{
    Cache, Change, ChangeFeed, EventSink, Forget, ParticleRecord, PointCache, Registry,
    RegistryError,
};
use crate::security::{self, AccessCache, SecurityError};

/// How many publications may wait for this machine's dispatcher before new ones are dropped.
const PUBLICATIONS: usize = 65_536;

/// How many deliveries may wait for one particle subscriber before new ones are dropped.
const PARTICLE_QUEUE: usize = 1_024;

/// How many deliveries may wait for one watcher before it is closed as too slow.
pub const WATCHER_QUEUE: usize = 1_024;

/// The most hierarchies of sources a hub keeps (selectors with kinds need them).
const HIERARCHIES: usize = 16_384;

/// The most sources whose matching subscriptions a hub keeps.
const SOURCES: usize = 16_384;

/// Where a hub hands a particle subscriber's deliveries: the star that hosts it.
#[async_trait]
pub trait Host: Send + Sync {
    /// Delivers `signal` to the particle `record` describes, which this star hosts, and
    /// returns when its driver has taken it.
    async fn deliver(&self, signal: Signal, record: ParticleRecord);
}

/// Counts of what a hub did beside its deliveries (which are the machine's [`Metrics`]'
/// `starlane_channel_deliveries_total`).
#[derive(Debug, Default)]
pub struct Counts {
    /// Publications sent to other machines.
    pub forwarded: AtomicU64,
}

/// One machine's channels: publishes, forwards, and delivers to its own subscribers.
pub struct Hub {
    machine: String,
    /// The star this machine sends publications from and receives them on (its first):
    /// always the same two stars between two machines, so the fabric keeps their order.
    home_star: StarKey,
    registry: Arc<dyn Registry>,
    fabric: Arc<dyn Fabric>,
    subscriptions: Arc<Subscriptions>,
    access: Arc<AccessCache>,
    readable: Arc<Readable>,
    hierarchies: Arc<Hierarchies>,
    publications: mpsc::Sender<Publication>,
    watchers: Mutex<HashMap<Uuid, Watcher>>,
    particles: Mutex<HashMap<Point, mpsc::Sender<Delivery>>>,
    hosts: RwLock<HashMap<StarKey, Weak<dyn Host>>>,
    counts: Counts,
    /// Where deliveries and drops are counted.
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("machine", &self.machine)
            .field("watchers", &self.watchers.lock().len())
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

/// Something to deliver, and whether it started on this machine (then other machines'
/// subscribers get it from here).
struct Publication {
    ripple: Ripple,
    origin: bool,
}

impl Publication {
    /// A publication starting here: `core` from `source`, acting as it, to its watchers.
    fn from(source: Point, core: DirectedCore) -> Publication {
        let mut ripple = Ripple::new(
            Surface::from(source.clone()),
            Recipients::Watchers(source.clone()),
            core.method.clone(),
            (),
        );
        ripple.core = core;
        ripple.agent = Agent::Point(source);
        ripple.id = crate::ids::wave_id();
        Publication {
            ripple,
            origin: true,
        }
    }
}

/// A watcher's queue and what it listens to.
struct Watcher {
    surface: Surface,
    selector: Selector,
    queue: mpsc::Sender<Delivery>,
}

/// One delivery waiting in a subscriber's queue: the publication, shared by every subscriber
/// it goes to, and what is this subscriber's own. It becomes a Signal when it is taken, on
/// the subscriber's side, so that fanning out costs the dispatcher no copies of bodies.
#[derive(Debug)]
struct Delivery {
    ripple: Arc<Ripple>,
    to: Surface,
    /// The body as this subscriber may see it, when that is not the publication's (an event's
    /// properties, without those it may not read).
    body: Option<Substance>,
}

impl Delivery {
    fn into_signal(self) -> Signal {
        let core = match self.body {
            Some(body) => DirectedCore {
                body,
                ..self.ripple.core.clone()
            },
            None => self.ripple.core.clone(),
        };
        Signal {
            id: crate::ids::wave_id(),
            from: self.ripple.from.clone(),
            to: self.to,
            agent: self.ripple.agent.clone(),
            handling: self.ripple.handling,
            hops: 0,
            core,
        }
    }
}

/// The subscriptions of the cosmos, read once and kept until a change says otherwise, and
/// which of them each source's publications go to.
struct Subscriptions {
    index: RwLock<Option<Arc<Index>>>,
    /// The subscriptions that match each source (by its point and kinds).
    matches: PointCache<Arc<Vec<Subscription>>>,
    epoch: AtomicU64,
}

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions {
            index: RwLock::new(None),
            matches: Cache::new(SOURCES),
            epoch: AtomicU64::new(0),
        }
    }
}

impl Forget for Subscriptions {
    fn forget(&self, change: &Change) {
        // A deleted particle takes its subscriptions with it; a particle created again may
        // have another kind (selectors with kinds match it differently).
        if matches!(
            change,
            Change::Subscriptions | Change::Subtree(_) | Change::Anything
        ) {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            *self.index.write() = None;
            self.matches.forget_all();
        }
    }
}

/// The subscriptions, indexed: those whose selector names one point exactly (the common
/// case: a channel) by that point, the patterns in a list matched one by one.
#[derive(Debug, Default)]
struct Index {
    exact: HashMap<Point, Vec<Subscription>>,
    patterns: Vec<Subscription>,
}

impl Index {
    fn new(subscriptions: Vec<Subscription>) -> Index {
        let mut index = Index::default();
        for subscription in subscriptions {
            match exactly(&subscription.selector) {
                Some(point) => index.exact.entry(point).or_default().push(subscription),
                None => index.patterns.push(subscription),
            }
        }
        index
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.patterns.is_empty()
    }

    /// The points of every subscriber.
    fn subscribers(&self) -> impl Iterator<Item = &Point> {
        self.exact
            .values()
            .flatten()
            .chain(&self.patterns)
            .map(|subscription| &subscription.subscriber.point)
    }

    /// The subscriptions that match `source` (whose kinds are in `hierarchy`, when known).
    fn matching(&self, source: &Point, hierarchy: Option<&PointHierarchy>) -> Vec<Subscription> {
        let mut found: Vec<Subscription> = self.exact.get(source).cloned().unwrap_or_default();
        found.extend(
            self.patterns
                .iter()
                .filter(|subscription| match hierarchy {
                    Some(hierarchy) => subscription.selector.matches(hierarchy),
                    None => subscription.selector.matches_point(source),
                })
                .cloned(),
        );
        found
    }
}

/// The one point `selector` matches, when it names exactly one (no wildcard, no kind).
fn exactly(selector: &Selector) -> Option<Point> {
    let point = selector.literal_prefix()?;
    (point.to_string() == selector.to_string()).then_some(point)
}

/// The last decision that an agent may read a source, by source and agent: a deleted
/// particle's last event is checked by what was decided while it lived (the registry can no
/// longer decide on a point it does not have). Forgotten when grants or owners change.
#[derive(Default)]
struct Readable(Mutex<HashMap<(Point, Agent), Access>>);

/// The most decisions [`Readable`] keeps before it starts again from empty.
const READABLE: usize = 16_384;

impl Readable {
    fn remember(&self, source: &Point, agent: &Agent, access: &Access) {
        let mut decisions = self.0.lock();
        if decisions.len() >= READABLE {
            decisions.clear();
        }
        decisions.insert((source.clone(), agent.clone()), access.clone());
    }

    fn recall(&self, source: &Point, agent: &Agent) -> Option<Access> {
        self.0.lock().get(&(source.clone(), agent.clone())).cloned()
    }
}

impl Forget for Readable {
    fn forget(&self, change: &Change) {
        if matches!(change, Change::Grants | Change::Owners | Change::Anything) {
            self.0.lock().clear();
        }
    }
}

/// The hierarchies (points with their kinds) of sources, for selectors that name kinds.
struct Hierarchies(PointCache<PointHierarchy>);

impl Forget for Hierarchies {
    fn forget(&self, change: &Change) {
        match change {
            Change::Subtree(top) => self.0.forget_subtree(top),
            Change::Anything => self.0.forget_all(),
            _ => {}
        }
    }
}

/// What a watcher receives, until it is dropped (which ends its subscription).
#[derive(Debug)]
pub struct Watch {
    id: Uuid,
    hub: Weak<Hub>,
    queue: mpsc::Receiver<Delivery>,
}

impl Watch {
    /// The next delivery; `None` once the watch is closed (it fell behind, or the machine is
    /// stopping).
    pub async fn next(&mut self) -> Option<Signal> {
        self.queue.recv().await.map(Delivery::into_signal)
    }

    /// A delivery already waiting, if there is one (to say what is left before closing).
    pub fn try_next(&mut self) -> Option<Signal> {
        self.queue.try_recv().ok().map(Delivery::into_signal)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.unwatch(self.id);
        }
    }
}

/// Why a watch or a subscription could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The agent may read nothing the selector matches now.
    #[error(transparent)]
    Denied(#[from] SecurityError),
    /// The registry could not keep the subscription.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Nothing here delivers watches (a service that is not a machine).
    #[error("{0} does not deliver watches")]
    Unavailable(String),
}

impl From<WatchError> for cosmic_space::ReflectedCore {
    fn from(err: WatchError) -> cosmic_space::ReflectedCore {
        match err {
            WatchError::Denied(denied) => denied.into(),
            WatchError::Registry(err) => err.into(),
            WatchError::Unavailable(_) => cosmic_space::ReflectedCore::error(
                cosmic_space::StatusCode::UNAVAILABLE,
                err.to_string(),
            ),
        }
    }
}

/// Refuses (403) a subscription of `agent` to `selector` when the selector matches particles
/// now and the agent may read (`r`) none of them. A selector that matches nothing yet is
/// accepted: each delivery is checked as the agent anyway.
pub async fn may_subscribe(
    registry: &dyn Registry,
    agent: &Agent,
    selector: &Selector,
) -> Result<(), SecurityError> {
    if *agent == Agent::HyperUser {
        return Ok(());
    }
    let mut refusal = None;
    for stub in registry.select(selector).await? {
        match security::require(registry, agent, &stub.point, Permission::Read).await {
            Ok(()) => return Ok(()),
            Err(denied) => refusal = refusal.or(Some(denied)),
        }
    }
    refusal.map_or(Ok(()), Err)
}

/// Subscribes the particle `subscriber` to `selector`, as itself, if it may (see
/// [`may_subscribe`]): deliveries go to its Core.
pub async fn subscribe(
    registry: &dyn Registry,
    subscriber: &Point,
    selector: Selector,
) -> Result<(), WatchError> {
    let agent = Agent::Point(subscriber.clone());
    may_subscribe(registry, &agent, &selector).await?;
    let subscription = Subscription {
        subscriber: Surface::from(subscriber.clone()),
        selector,
        agent,
    };
    registry.subscribe(&subscription).await?;
    Ok(())
}

/// The point a machine's `online` and `offline` events come from: `hyperspace:machines:NAME`.
/// It is not a particle: whoever may read `hyperspace` hears them (HyperUser, and agents
/// granted `r` there), and `starlane watch 'hyperspace:machines:*'` watches them all.
pub fn machine_point(machine: &str) -> Option<Point> {
    format!("hyperspace:machines:{machine}").parse().ok()
}

impl Hub {
    /// Tells every subscriber of `hyperspace:machines:NAME` that machine `machine` came
    /// online (started, or serves again after losing its lease) or went offline (stopped, or
    /// was declared dead by the machine that buried it). Delivered before it returns to this
    /// machine's subscribers (and sent to the others'), so that a machine that is stopping
    /// says so before it closes its watches.
    pub async fn announce(&self, machine: &str, event: Event) {
        let Some(point) = machine_point(machine) else {
            return;
        };
        let status = match event {
            Event::Online => Status::Ready,
            _ => Status::Unknown,
        };
        let stub = Stub {
            point: point.clone(),
            kind: Kind::Star(StarSubKind::Machine),
            status,
        };
        let core = event.core(stub, None);
        self.dispatch_one(Publication::from(point, core)).await;
    }

    /// The hub of machine `machine`, whose stars are `stars` (the first receives what other
    /// machines send), over `registry` (whose feed is `changes`) and `fabric`, counting its
    /// deliveries in `metrics`. Starts its dispatcher on the current runtime.
    pub fn new(
        machine: &str,
        stars: &[StarKey],
        registry: Arc<dyn Registry>,
        changes: &ChangeFeed,
        fabric: Arc<dyn Fabric>,
        metrics: Arc<Metrics>,
    ) -> Option<Arc<Hub>> {
        let home_star = stars.first()?.clone();
        let subscriptions = Arc::new(Subscriptions::default());
        let access = Arc::new(AccessCache::new());
        let hierarchies = Arc::new(Hierarchies(Cache::new(HIERARCHIES)));
        let listener: Arc<dyn Forget> = subscriptions.clone();
        changes.listen(Arc::downgrade(&listener));
        let listener: Arc<dyn Forget> = access.clone();
        changes.listen(Arc::downgrade(&listener));
        let listener: Arc<dyn Forget> = hierarchies.clone();
        changes.listen(Arc::downgrade(&listener));
        let readable = Arc::new(Readable::default());
        let listener: Arc<dyn Forget> = readable.clone();
        changes.listen(Arc::downgrade(&listener));
        let (publications, queue) = mpsc::channel(PUBLICATIONS);
        let hub = Arc::new(Hub {
            machine: machine.to_string(),
            home_star,
            registry,
            fabric,
            subscriptions,
            access,
            readable,
            hierarchies,
            publications,
            watchers: Mutex::new(HashMap::new()),
            particles: Mutex::new(HashMap::new()),
            hosts: RwLock::new(HashMap::new()),
            counts: Counts::default(),
            metrics,
        });
        tokio::spawn(dispatch(Arc::downgrade(&hub), queue));
        Some(hub)
    }

    /// Registers the star `key` of this machine as the host of its particles' deliveries.
    pub fn attach(&self, key: StarKey, host: Weak<dyn Host>) {
        self.hosts.write().insert(key, host);
    }

    /// What this hub has done.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// How many watchers this machine serves now.
    pub fn watchers(&self) -> usize {
        self.watchers.lock().len()
    }

    /// Publishes what `ping` carries on `channel` (the channel's driver calls this): every
    /// subscriber receives it as a Signal from the channel, with the publisher's agent in the
    /// [`PUBLISHER`] header. Returns at once; delivery follows (at most once).
    pub fn publish(&self, channel: &Point, ping: &Ping) {
        let core = ping
            .core
            .clone()
            .with_header(PUBLISHER, ping.agent.to_point().to_string());
        self.originate(channel.clone(), core);
    }

    /// Starts a publication from `source` carrying `core`.
    fn originate(&self, source: Point, core: DirectedCore) {
        self.enqueue(Publication::from(source, core));
    }

    /// Takes a publication another machine sent here (the star's inbox calls this, in the
    /// order the fabric delivers): this machine's subscribers get it.
    pub fn arrived(&self, ripple: Ripple) {
        self.enqueue(Publication {
            ripple,
            origin: false,
        });
    }

    fn enqueue(&self, publication: Publication) {
        if self.publications.try_send(publication).is_err() {
            self.metrics.channel_delivery(ChannelDelivery::Dropped);
        }
    }

    /// Starts watching `selector` as `agent` (SPEC §18: `starlane watch`, a web stream):
    /// refused (403) when the selector matches particles now and the agent may read none of
    /// them. The watch lasts until it is dropped.
    pub async fn watch(
        self: &Arc<Self>,
        agent: Agent,
        selector: Selector,
    ) -> Result<Watch, WatchError> {
        may_subscribe(self.registry.as_ref(), &agent, &selector).await?;
        if let Some(source) = exactly(&selector) {
            // Decided now, so that the source's deletion reaches this watch even if nothing
            // was published before it.
            let _ = self.may_read(&agent, &source).await;
        }
        let id = crate::ids::wave_id().as_uuid();
        let surface = Surface {
            point: self.home_star.point(),
            layer: cosmic_space::Layer::Core,
            topic: Some(Topic::Uuid(id)),
        };
        let (queue, receiver) = mpsc::channel(WATCHER_QUEUE);
        self.watchers.lock().insert(
            id,
            Watcher {
                surface: surface.clone(),
                selector: selector.clone(),
                queue,
            },
        );
        let subscription = Subscription {
            subscriber: surface,
            selector,
            agent,
        };
        if let Err(err) = self.registry.subscribe(&subscription).await {
            self.watchers.lock().remove(&id);
            return Err(err.into());
        }
        Ok(Watch {
            id,
            hub: Arc::downgrade(self),
            queue: receiver,
        })
    }

    /// Ends watcher `id` and its subscription.
    fn unwatch(&self, id: Uuid) {
        let Some(watcher) = self.watchers.lock().remove(&id) else {
            return;
        };
        let registry = self.registry.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = registry
                    .unsubscribe(&watcher.surface, &watcher.selector)
                    .await;
            });
        }
    }

    /// Forgets the watchers a previous run of this machine left in the registry (they died
    /// with it).
    pub async fn sweep(&self) -> Result<usize, RegistryError> {
        self.registry.unsubscribe_all(&self.home_star.point()).await
    }

    /// The subscriptions of the cosmos, indexed (cached).
    async fn index(&self) -> Result<Arc<Index>, RegistryError> {
        if let Some(index) = self.subscriptions.index.read().clone() {
            return Ok(index);
        }
        let epoch = self.subscriptions.epoch.load(Ordering::Acquire);
        let index = Arc::new(Index::new(self.registry.subscriptions().await?));
        if self.subscriptions.epoch.load(Ordering::Acquire) == epoch {
            *self.subscriptions.index.write() = Some(index.clone());
            // The delivery queues of particles that subscribe no more (unsubscribed, deleted)
            // close: their tasks end once they have delivered what they hold.
            let subscribers: HashSet<&Point> = index.subscribers().collect();
            self.particles
                .lock()
                .retain(|point, _| subscribers.contains(point));
        }
        Ok(index)
    }

    /// The hierarchy of `source` (cached); `None` when it is not registered (a deleted
    /// particle's last event): then selectors match its point alone.
    async fn hierarchy(&self, source: &Point) -> Option<PointHierarchy> {
        if let Some(hierarchy) = self.hierarchies.0.get(source) {
            return Some(hierarchy);
        }
        let epoch = self.hierarchies.0.epoch();
        let hierarchy = self.registry.hierarchy(source).await.ok()?;
        self.hierarchies
            .0
            .insert_if(epoch, source.clone(), hierarchy.clone());
        Some(hierarchy)
    }

    /// The subscriptions whose selectors match `source` (cached per source).
    async fn matching(&self, source: &Point) -> Arc<Vec<Subscription>> {
        if let Some(found) = self.subscriptions.matches.get(source) {
            return found;
        }
        let epoch = self.subscriptions.matches.epoch();
        let Ok(index) = self.index().await else {
            return Arc::new(Vec::new());
        };
        let hierarchy = match index.patterns.is_empty() {
            true => None,
            false => self.hierarchy(source).await,
        };
        let found = Arc::new(index.matching(source, hierarchy.as_ref()));
        self.subscriptions
            .matches
            .insert_if(epoch, source.clone(), found.clone());
        found
    }

    /// The star that receives `subscriber`'s deliveries: the star in a watcher's surface, or
    /// the star its particle is placed on.
    async fn star_of(&self, subscriber: &Surface) -> Option<StarKey> {
        match subscriber.point.route() {
            cosmic_space::RouteSeg::Star(key) => Some(key.clone()),
            _ => self
                .registry
                .location(&subscriber.point)
                .await
                .ok()
                .flatten(),
        }
    }

    /// What `agent` may do on `source`, if it may read it (the rule for every delivery).
    async fn may_read(&self, agent: &Agent, source: &Point) -> Option<Access> {
        if *agent == Agent::HyperUser {
            return Some(Access::full(FullAccess::HyperUser));
        }
        match self
            .access
            .access_on(self.registry.as_ref(), agent, source)
            .await
        {
            Ok(access) if access.has(Permission::Read) => {
                self.readable.remember(source, agent, &access);
                Some(access)
            }
            Ok(_) => None,
            // A deleted particle's last event: the agent may read it if it could while the
            // particle lived (the last decision made here, or its nearest registered ancestor).
            Err(RegistryError::NotFound(_)) => match self.readable.recall(source, agent) {
                Some(access) => Some(access),
                None => match source.parent() {
                    Some(parent) => Box::pin(self.may_read(agent, &parent)).await,
                    None => None,
                },
            },
            Err(_) => None,
        }
    }

    /// Delivers one publication: to the other machines that host subscribers (if it started
    /// here), and to this machine's subscribers.
    async fn dispatch_one(&self, publication: Publication) {
        let Publication { ripple, origin } = publication;
        let ripple = Arc::new(ripple);
        let source = match &ripple.to {
            Recipients::Watchers(source) => source.clone(),
            _ => return,
        };
        let matching = self.matching(&source).await;
        if matching.is_empty() {
            return;
        }
        let mut elsewhere: BTreeMap<String, StarKey> = BTreeMap::new();
        for subscription in matching.iter() {
            let Some(star) = self.star_of(&subscription.subscriber).await else {
                continue;
            };
            if star.constellation != self.machine {
                if origin {
                    // One envelope per machine: to the smallest star of it that hosts a
                    // subscriber, so two machines keep talking between the same two stars.
                    let entry = elsewhere
                        .entry(star.constellation.clone())
                        .or_insert_with(|| star.clone());
                    if star < *entry {
                        *entry = star;
                    }
                }
                continue;
            }
            let Some(access) = self.may_read(&subscription.agent, &source).await else {
                continue;
            };
            self.deliver_here(&ripple, subscription, &star, &access);
        }
        for star in elsewhere.into_values() {
            let envelope = Envelope {
                from_star: self.home_star.clone(),
                wave: Wave::Directed(DirectedWave::Ripple((*ripple).clone())),
            };
            match self.fabric.send(&star, envelope).await {
                Ok(()) => {
                    self.counts.forwarded.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => self.metrics.channel_delivery(ChannelDelivery::Dropped),
            }
        }
    }

    /// Hands `ripple` to one subscriber on this machine (hosted by `star`).
    /// `access` is the subscriber's on the source: an event's properties are only those it may
    /// read (SPEC §9's guarded properties).
    fn deliver_here(
        &self,
        ripple: &Arc<Ripple>,
        subscription: &Subscription,
        star: &StarKey,
        access: &Access,
    ) {
        let body = match &ripple.core.body {
            Substance::Details(details) if !access.is_full() => Some(Substance::Details(Box::new(
                security::readable((**details).clone(), access),
            ))),
            _ => None,
        };
        let delivery = Delivery {
            ripple: ripple.clone(),
            to: subscription.subscriber.clone(),
            body,
        };
        if let Some(Topic::Uuid(id)) = &subscription.subscriber.topic
            && subscription.subscriber.point == star.point()
        {
            self.to_watcher(*id, delivery);
            return;
        }
        self.to_particle(subscription.subscriber.point.clone(), delivery);
    }

    fn to_watcher(&self, id: Uuid, signal: Delivery) {
        let mut watchers = self.watchers.lock();
        let Some(watcher) = watchers.get(&id) else {
            // Another machine's leftover, or a watch just ended.
            return;
        };
        if watcher.queue.try_send(signal).is_ok() {
            self.metrics.channel_delivery(ChannelDelivery::Delivered);
            return;
        }
        // Too slow (or gone): closed, not buffered without limit.
        self.metrics.channel_delivery(ChannelDelivery::Dropped);
        if let Some(watcher) = watchers.remove(&id) {
            let registry = self.registry.clone();
            tokio::spawn(async move {
                let _ = registry
                    .unsubscribe(&watcher.surface, &watcher.selector)
                    .await;
            });
        }
    }

    fn to_particle(&self, subscriber: Point, signal: Delivery) {
        let mut particles = self.particles.lock();
        if let Some(queue) = particles.get(&subscriber) {
            match queue.try_send(signal) {
                Ok(()) => {
                    self.metrics.channel_delivery(ChannelDelivery::Delivered);
                    return;
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.metrics.channel_delivery(ChannelDelivery::Dropped);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(signal)) => {
                    particles.remove(&subscriber);
                    drop(particles);
                    return self.to_particle(subscriber, signal);
                }
            }
        }
        let (queue, receiver) = mpsc::channel(PARTICLE_QUEUE);
        let _ = queue.try_send(signal);
        self.metrics.channel_delivery(ChannelDelivery::Delivered);
        particles.insert(subscriber.clone(), queue);
        let registry = self.registry.clone();
        let hosts: HashMap<StarKey, Weak<dyn Host>> = self.hosts.read().clone();
        tokio::spawn(feed_particle(subscriber, receiver, registry, hosts));
    }
}

impl EventSink for Hub {
    fn wanted(&self) -> bool {
        // Whether anyone subscribes at all; unknown (not read yet) counts as wanted.
        self.subscriptions
            .index
            .read()
            .as_ref()
            .is_none_or(|index| !index.is_empty())
    }

    fn happened(&self, details: Details, event: Event) {
        let source = details.stub.point.clone();
        let with_properties = matches!(event, Event::Properties).then(|| details.clone());
        self.originate(source, event.core(details.stub, with_properties));
    }
}

/// The dispatcher: takes this machine's publications in order, one at a time.
async fn dispatch(hub: Weak<Hub>, mut queue: mpsc::Receiver<Publication>) {
    while let Some(publication) = queue.recv().await {
        let Some(hub) = hub.upgrade() else {
            return;
        };
        hub.dispatch_one(publication).await;
    }
}

/// Delivers one particle subscriber's queue, in order, through the star that hosts it.
async fn feed_particle(
    subscriber: Point,
    mut queue: mpsc::Receiver<Delivery>,
    registry: Arc<dyn Registry>,
    hosts: HashMap<StarKey, Weak<dyn Host>>,
) {
    while let Some(signal) = queue.recv().await {
        let record = match registry.record(&subscriber).await {
            Ok(record) => record,
            // Deleted (its subscriptions went with it): nothing more comes for it here.
            Err(RegistryError::NotFound(_)) => return,
            Err(_) => continue,
        };
        let Some(host) = record
            .location
            .as_ref()
            .and_then(|star| hosts.get(star))
            .and_then(Weak::upgrade)
        else {
            continue;
        };
        host.deliver(signal.into_signal(), record).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(subscriber: &str, selector: &str) -> Subscription {
        Subscription {
            subscriber: subscriber.parse().unwrap_or_else(|e| panic!("{e}")),
            selector: selector.parse().unwrap_or_else(|e| panic!("{e}")),
            agent: Agent::HyperUser,
        }
    }

    fn point(text: &str) -> Point {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn exact_selectors_are_indexed_by_their_point_and_patterns_matched() {
        let index = Index::new(vec![
            subscription("localhost:a", "localhost:chat:room"),
            subscription("localhost:b", "localhost:chat:*"),
            subscription("localhost:c", "localhost:chat:room<Channel>"),
            subscription("localhost:d", "localhost:chat:other"),
        ]);
        assert_eq!(index.exact.len(), 2, "{index:?}");
        assert_eq!(index.patterns.len(), 2, "{index:?}");
        let room = point("localhost:chat:room");
        let found: Vec<String> = index
            .matching(&room, None)
            .iter()
            .map(|s| s.subscriber.point.to_string())
            .collect();
        // Without the room's kinds, the kind pattern cannot match it.
        assert_eq!(found, ["localhost:a", "localhost:b"]);
        let hierarchy = PointHierarchy::new(
            room.clone(),
            vec![
                cosmic_space::Kind::Space,
                cosmic_space::Kind::App,
                cosmic_space::Kind::Channel,
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let found = index.matching(&room, Some(&hierarchy));
        assert_eq!(found.len(), 3);
        assert!(
            index
                .matching(&point("localhost:elsewhere"), None)
                .is_empty()
        );
    }

    /// A cached embedded registry in `dir` holding `particles` (points and kinds, owned by
    /// HyperUser, Ready), as a machine's hub reads it.
    async fn registry_of(
        dir: &std::path::Path,
        particles: &[(&str, cosmic_space::Kind)],
    ) -> (Arc<crate::registry::CachedRegistry>, Arc<dyn Registry>) {
        use crate::registry::{CachedRegistry, EmbeddedRegistry, Registration};
        use cosmic_space::{CreateStrategy, PropertyChanges};

        let store =
            EmbeddedRegistry::open(&dir.join("registry.redb")).unwrap_or_else(|e| panic!("{e}"));
        let cached = CachedRegistry::new(Arc::new(store));
        let registry: Arc<dyn Registry> = cached.clone();
        for (at, kind) in particles {
            let registration = Registration {
                point: point(at),
                kind: kind.clone(),
                owner: Point::hyperuser(),
                properties: PropertyChanges::new(),
                strategy: CreateStrategy::Commit,
                status: Status::Ready,
            };
            registry
                .register(registration)
                .await
                .unwrap_or_else(|e| panic!("{at}: {e}"));
        }
        (cached, registry)
    }

    /// A particle that stops subscribing loses its delivery queue (and its task ends) when
    /// the hub next reads the subscriptions.
    #[tokio::test]
    async fn a_particle_that_subscribes_no_more_loses_its_queue() {
        use cosmic_space::Kind;

        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let star = StarKey::new("m", "star", 0).unwrap_or_else(|e| panic!("{e}"));
        let particles = [
            ("ROOT", Kind::Root),
            ("localhost", Kind::Space),
            ("localhost:sub", Kind::Base),
            ("localhost:room", Kind::Channel),
        ];
        let (cached, registry) = registry_of(dir.path(), &particles).await;
        registry
            .set_location(&point("localhost:sub"), star.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let fabric: Arc<dyn Fabric> = Arc::new(crate::fabric::LocalFabric::new());
        let hub = Hub::new(
            "m",
            std::slice::from_ref(&star),
            registry.clone(),
            cached.changes(),
            fabric,
            Arc::new(Metrics::new()),
        )
        .unwrap_or_else(|| panic!("no hub"));
        let subscription = subscription("localhost:sub", "localhost:room");
        registry
            .subscribe(&subscription)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let room = point("localhost:room");
        let say = Ping::new(
            Point::hyperuser(),
            room.clone(),
            cosmic_space::Method::Cmd(cosmic_space::CmdMethod::Bounce),
            (),
        );
        let queues = |hub: &Hub| hub.particles.lock().len();
        hub.publish(&room, &say);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while queues(&hub) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no queue for the subscriber"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        registry
            .unsubscribe(&subscription.subscriber, &subscription.selector)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        hub.publish(&room, &say);
        while queues(&hub) == 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the queue outlived the subscription"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// A watcher whose `r` comes from a grant on the channel alone still hears the channel's
    /// deletion (decided as while it lived: the deleted point has no access of its own).
    #[tokio::test]
    async fn a_reader_of_a_channel_alone_hears_it_deleted() {
        use cosmic_space::{Command, Kind, UserBaseSubKind};

        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let particles = [
            ("ROOT", Kind::Root),
            ("localhost", Kind::Space),
            ("localhost:users", Kind::UserBase(None::<UserBaseSubKind>)),
            ("localhost:users:ann", Kind::User),
            ("localhost:room", Kind::Channel),
        ];
        let (cached, registry) = registry_of(dir.path(), &particles).await;
        let grant = "grant +csd-RWX on localhost:room to localhost:users:ann";
        let Ok(Command::Grant { kind, on, to }) = grant.parse::<Command>() else {
            panic!("{grant} does not parse");
        };
        registry
            .grant(kind, on, to, Point::hyperuser())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let star = StarKey::new("m", "star", 0).unwrap_or_else(|e| panic!("{e}"));
        let fabric: Arc<dyn Fabric> = Arc::new(crate::fabric::LocalFabric::new());
        let metrics = Arc::new(Metrics::new());
        let hub = Hub::new(
            "m",
            &[star],
            registry.clone(),
            cached.changes(),
            fabric,
            metrics.clone(),
        )
        .unwrap_or_else(|| panic!("no hub"));
        let sink: Arc<dyn EventSink> = hub.clone();
        cached.tell_events(Arc::downgrade(&sink));
        let ann = Agent::Point(point("localhost:users:ann"));
        let mut watch = hub
            .watch(
                ann,
                "localhost:room".parse().unwrap_or_else(|e| panic!("{e}")),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        registry
            .delete(&point("localhost:room"), false)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let heard = tokio::time::timeout(std::time::Duration::from_secs(5), watch.next())
            .await
            .unwrap_or_else(|_| panic!("ann never heard the room deleted"))
            .unwrap_or_else(|| panic!("the watch closed"));
        assert_eq!(
            cosmic_space::event_of(&heard),
            Some((point("localhost:room"), Event::Deleted))
        );
        // One delivery, to ann's watch, counted in the machine's metrics.
        assert_eq!(metrics.channel_deliveries(ChannelDelivery::Delivered), 1);
        assert_eq!(metrics.channel_deliveries(ChannelDelivery::Dropped), 0);
    }

    #[test]
    fn only_a_selector_without_wildcards_or_kinds_names_one_point() {
        let exact = |text: &str| exactly(&text.parse().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(
            exact("localhost:chat:room"),
            Some(point("localhost:chat:room"))
        );
        assert_eq!(exact("localhost:chat:*"), None);
        assert_eq!(exact("localhost:chat:**"), None);
        assert_eq!(exact("localhost:chat:room<Channel>"), None);
        assert_eq!(exact("localhost:chat+:room"), None);
    }
}
