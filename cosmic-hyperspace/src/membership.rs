//! Membership of a cosmos across machines (SPEC §14.2): who is alive, who is dead, and when a
//! machine may serve at all.
//!
//! - **Leases are the truth.** Each machine holds a lease in the registry's database
//!   ([`Leases`]: a row per machine with an epoch and an expiry, by the database's clock, so
//!   machines' clocks need not agree) and renews it every fraction of its length. NATS is only
//!   the carrier: nothing it says makes a machine dead.
//! - **Dead** is a lease that expired and was not renewed. A survivor that sees one *buries* it
//!   — a conditional update on the lease's epoch, so exactly one survivor wins — and places
//!   that machine's particles again over the live stars (rendezvous: nobody else's move).
//! - **Fencing.** A machine serves only while it is sure nobody has buried it: until its last
//!   successful renewal *began* plus the lease's length less a margin ([`Judge::may_serve`]), by
//!   its own monotonic clock (which keeps running through `SIGSTOP`), and only while it is on the
//!   bus. Survivors bury only after the lease's expiry *by the database's clock*, which comes
//!   later than that deadline; so a machine is never served twice. A machine that lost its
//!   lease forgets what it cached, takes a new epoch and starts again.
//! - **No panic after a partition.** A machine that has just regained the bus, or its lease
//!   after the database was away, buries nobody until it has held both for a whole lease
//!   ([`Judge::may_bury`]): the others may not have had a chance to renew meanwhile (wasmCloud
//!   once declared every host dead when its operator lost NATS).
//! - **One process per name.** A lease is taken only when nobody else holds it: a process
//!   started with the name of a machine that still renews its lease waits for that lease to
//!   end and gives up with [`JoinError::NameTaken`] if it never does ([`Leases::acquire`] is
//!   conditional, and idempotent for its own holder, so a lost answer can be asked again).
//! - **Every burial is adopted.** The database records who buried a lease; a burier whose
//!   answer was lost finds its burial on its next read and adopts then.
//!
//! [`Judge`] holds the decisions and no I/O, so they can be driven by a simulation with
//! injected loss and delay; [`Gate`] is what the stars consult on every wave.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cosmic_space::StarKey;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::warn;

use crate::fabric::Fabric;
use crate::metrics::Metrics;
use crate::registry::RegistryError;

/// Why a machine could not join its cosmos.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The leases could not be read or written.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Another process holds this machine's lease and keeps renewing it.
    #[error(
        "machine {machine} is running elsewhere: its lease was renewed all through the {waited:?} \
         this process waited for it. A name belongs to one process in a cosmos: stop the other \
         process, or give this one another name (--machine)"
    )]
    NameTaken {
        /// The machine's name.
        machine: String,
        /// How long this process waited for the lease.
        waited: Duration,
    },
}

/// One machine's lease, as the database sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The machine's name.
    pub machine: String,
    /// Bumped each time the machine takes its lease anew; renewals and burials name it.
    pub epoch: u64,
    /// How many stars the machine runs (`STAR::MACHINE:star[0..stars]`).
    pub stars: u16,
    /// How long the lease still holds; `None` once it has expired.
    pub remaining: Option<Duration>,
    /// Whether a survivor has declared it dead (and placed its particles elsewhere).
    pub buried: bool,
    /// The machine that buried it, once buried.
    pub buried_by: Option<String>,
}

impl Lease {
    /// Whether the machine counts as alive: its lease holds and nobody buried it.
    pub fn is_live(&self) -> bool {
        self.remaining.is_some() && !self.buried
    }

    /// The keys of its stars.
    pub fn star_keys(&self) -> Vec<StarKey> {
        (0..self.stars)
            .filter_map(|index| StarKey::new(&self.machine, "star", index).ok())
            .collect()
    }
}

/// Where the leases of a cosmos are kept (the PostgreSQL registry's database).
#[async_trait]
pub trait Leases: Send + Sync + 'static {
    /// Takes `machine`'s lease for `ttl` with a new epoch (the old one, if any, is void) and
    /// returns that epoch — unless another holder has it: a lease that is unexpired, unburied
    /// and was taken by a `holder` other than this one is left alone (`None`). A holder is a
    /// number a process draws once, so asking again after a lost answer takes the lease.
    async fn acquire(
        &self,
        machine: &str,
        holder: u64,
        stars: u16,
        ttl: Duration,
    ) -> Result<Option<u64>, RegistryError>;

    /// Extends the lease of `machine` at `epoch` by `ttl` from now; `false` if that lease is
    /// gone (it expired, was buried, or another process took the name).
    async fn renew(&self, machine: &str, epoch: u64, ttl: Duration) -> Result<bool, RegistryError>;

    /// Every machine's lease, by name.
    async fn leases(&self) -> Result<Vec<Lease>, RegistryError>;

    /// Declares `machine` dead if its lease at `epoch` has expired and nobody has buried it
    /// yet, recording that machine `by` did; `true` for the one caller that did.
    async fn bury(&self, machine: &str, epoch: u64, by: &str) -> Result<bool, RegistryError>;

    /// Gives the lease up at once (a machine shutting down), so survivors take over without
    /// waiting for it to expire.
    async fn release(&self, machine: &str, epoch: u64) -> Result<(), RegistryError>;
}

/// How long leases last and how often they are looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a lease holds after a renewal.
    pub ttl: Duration,
    /// How much before its lease's end a machine stops serving (covers the time a renewal
    /// takes to reach the database and clock drift over one lease).
    pub margin: Duration,
    /// How often a machine renews its lease and reads the others'.
    pub tick: Duration,
    /// How long one call to the leases' store may take before it counts as failed (a renewal
    /// that late is of no use: the machine stops serving soon after).
    pub patience: Duration,
}

impl Default for LeaseTiming {
    /// A 2 s lease renewed every 250 ms; a machine stops serving 500 ms before its lease ends.
    fn default() -> LeaseTiming {
        LeaseTiming::with_ttl(Duration::from_secs(2))
    }
}

impl LeaseTiming {
    /// Leases of `ttl`, renewed every eighth of it, with a quarter of it as the margin and as
    /// the patience of one call.
    pub fn with_ttl(ttl: Duration) -> LeaseTiming {
        LeaseTiming {
            ttl,
            margin: ttl / 4,
            tick: ttl / 8,
            patience: ttl / 4,
        }
    }
}

/// The decisions of one machine's membership, from what it has seen; times are milliseconds
/// of a monotonic clock.
#[derive(Debug, Clone)]
pub struct Judge {
    timing: LeaseTiming,
    /// When the last successful renewal (or acquisition) began.
    renewed_at: Option<u64>,
    /// When the lease now held was taken (renewals that fail do not lose it: only a refusal
    /// does, [`Judge::lost`]).
    held_since: Option<u64>,
    /// Since when the machine has been on the bus without a break.
    bus_since: Option<u64>,
}

impl Judge {
    /// A machine that holds no lease yet and has not been on the bus.
    pub fn new(timing: LeaseTiming) -> Judge {
        Judge {
            timing,
            renewed_at: None,
            held_since: None,
            bus_since: None,
        }
    }

    /// A renewal (or acquisition) that began at `began` succeeded.
    pub fn renewed(&mut self, began: u64) {
        self.held_since.get_or_insert(began);
        self.renewed_at = Some(self.renewed_at.map_or(began, |at| at.max(began)));
    }

    /// The lease is lost: stop serving at once.
    pub fn lost(&mut self) {
        self.renewed_at = None;
        self.held_since = None;
    }

    /// Until when the lease is surely held, by the last renewal: its window less the margin.
    fn lease_until(&self) -> Option<u64> {
        let window = self.timing.ttl.saturating_sub(self.timing.margin);
        Some(self.renewed_at?.saturating_add(millis(window)))
    }

    /// Whether the machine is on the bus at `now`.
    pub fn bus(&mut self, connected: bool, now: u64) {
        match (connected, self.bus_since) {
            (true, None) => self.bus_since = Some(now),
            (false, Some(_)) => self.bus_since = None,
            _ => {}
        }
    }

    /// Until when (exclusive) the machine may serve, if it may serve at all.
    pub fn serving_until(&self) -> Option<u64> {
        self.bus_since?;
        self.lease_until()
    }

    /// Whether the machine may serve its particles at `now`.
    pub fn may_serve(&self, now: u64) -> bool {
        self.serving_until().is_some_and(|until| now < until)
    }

    /// Whether the machine may declare others dead at `now`: it serves, and it has been on the
    /// bus and held its lease for a whole lease each (so it has heard any renewal that
    /// happened, and the others have had a whole lease to take theirs again after the database
    /// was away).
    pub fn may_bury(&self, now: u64) -> bool {
        let ttl = millis(self.timing.ttl);
        let for_a_lease = |since: Option<u64>| since.is_some_and(|s| now >= s.saturating_add(ttl));
        self.may_serve(now) && for_a_lease(self.bus_since) && for_a_lease(self.held_since)
    }

    /// The leases this machine should try to bury at `now`: expired, not buried, not its own
    /// — none at all unless it [may bury](Judge::may_bury).
    pub fn to_bury<'a>(&self, now: u64, me: &str, leases: &'a [Lease]) -> Vec<&'a Lease> {
        if !self.may_bury(now) {
            return Vec::new();
        }
        leases
            .iter()
            .filter(|lease| lease.machine != me && lease.remaining.is_none() && !lease.buried)
            .collect()
    }
}

/// The stars of every live machine in `leases`.
pub fn live_stars(leases: &[Lease]) -> Vec<StarKey> {
    leases
        .iter()
        .filter(|lease| lease.is_live())
        .flat_map(Lease::star_keys)
        .collect()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// What a machine's stars consult before serving a wave: open on a machine of its own, and on
/// a machine of a cosmos while [`Judge::may_serve`] holds.
#[derive(Debug)]
pub struct Gate {
    base: Instant,
    /// Milliseconds since `base` until which waves are served; `u64::MAX`: always.
    until: AtomicU64,
}

impl Gate {
    /// A gate that is always open (a machine alone needs no lease).
    pub fn open() -> Gate {
        Gate {
            base: Instant::now(),
            until: AtomicU64::new(u64::MAX),
        }
    }

    /// A gate that is closed until [`Gate::serve_until`] opens it.
    pub fn closed() -> Gate {
        Gate {
            base: Instant::now(),
            until: AtomicU64::new(0),
        }
    }

    /// Milliseconds on this gate's monotonic clock.
    pub fn now(&self) -> u64 {
        millis(self.base.elapsed())
    }

    /// Serves until `until` (a time of [`Gate::now`]'s clock), or not at all.
    pub fn serve_until(&self, until: Option<u64>) {
        self.until.store(until.unwrap_or(0), Ordering::Release);
    }

    /// Whether waves may be served now.
    pub fn is_open(&self) -> bool {
        let until = self.until.load(Ordering::Acquire);
        until == u64::MAX || self.now() < until
    }
}

/// What the membership loop asks of the machine it keeps in the cosmos (what it asks of the
/// bus, it asks of the machine's [`Fabric`]).
#[async_trait]
pub trait Member: Send + Sync + 'static {
    /// This machine buried `dead`: its particles are to be placed on the live stars and
    /// started there.
    async fn adopt(&self, dead: &Lease);

    /// This machine lost its lease: what it cached may be stale (its particles may have
    /// moved). Called before it serves again.
    fn forget(&self);

    /// This machine has taken a new lease and serves again: it starts what is still its own.
    async fn rejoined(&self);
}

/// A machine's membership of its cosmos: its lease, renewed by a task, and the gate its stars
/// consult.
pub struct Membership {
    machine: String,
    stars: u16,
    timing: LeaseTiming,
    leases: Arc<dyn Leases>,
    gate: Arc<Gate>,
    /// The bus: whether the machine is on it, and which other stars it may send to.
    fabric: Arc<dyn Fabric>,
    /// This process's holder number for [`Leases::acquire`].
    holder: u64,
    epoch: AtomicU64,
    judge: Mutex<Judge>,
    /// The burials this machine made and has adopted, as (machine, epoch).
    adopted: Mutex<BTreeSet<(String, u64)>>,
    /// Where adoptions and restarts queue for the placer ([`Membership::place`]).
    placer: mpsc::UnboundedSender<Placing>,
    /// The task that runs them, one at a time; stopped with the membership.
    placer_task: JoinHandle<()>,
    /// Where the machines alive are counted (`starlane_machines_alive`), at every reading of
    /// the leases.
    metrics: Arc<Metrics>,
}

/// Work that places particles: an adoption, or starting this machine's own again.
type Placing = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("machine", &self.machine)
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl Membership {
    /// Takes `machine`'s lease and reads the others', so that `fabric` knows the live stars
    /// before the machine places anything; its stars' `gate` opens once the lease is held on
    /// the bus.
    /// While another process holds the lease (one killed a moment ago, whose lease has yet to
    /// end), waits for it, for two leases and a tick at most. The machines holding a lease are
    /// counted in `metrics` at every reading.
    pub async fn join(
        machine: &str,
        stars: u16,
        timing: LeaseTiming,
        leases: Arc<dyn Leases>,
        gate: Arc<Gate>,
        fabric: Arc<dyn Fabric>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Membership>, JoinError> {
        let holder = holder();
        let started = Instant::now();
        let waiting = timing.ttl * 2 + timing.tick;
        let (epoch, began) = loop {
            let began = gate.now();
            let taken = patiently(timing, leases.acquire(machine, holder, stars, timing.ttl));
            if let Some(epoch) = taken.await? {
                break (epoch, began);
            }
            if started.elapsed() >= waiting {
                return Err(JoinError::NameTaken {
                    machine: machine.to_string(),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(timing.tick).await;
        };
        let (placer, mut queue) = mpsc::unbounded_channel::<Placing>();
        let mut judge = Judge::new(timing);
        judge.renewed(began);
        judge.bus(fabric.on_bus(), gate.now());
        gate.serve_until(judge.serving_until());
        let all = patiently(timing, leases.leases()).await?;
        metrics.set_machines_alive(all.iter().filter(|lease| lease.is_live()).count());
        // What is buried now is placed again by the machine's start (`Lifecycle::reawaken`).
        let adopted = all
            .iter()
            .filter(|lease| lease.buried)
            .map(|lease| (lease.machine.clone(), lease.epoch))
            .collect();
        let membership = Arc::new(Membership {
            machine: machine.to_string(),
            stars,
            timing,
            leases,
            gate,
            fabric,
            holder,
            epoch: AtomicU64::new(epoch),
            judge: Mutex::new(judge),
            adopted: Mutex::new(adopted),
            placer,
            placer_task: tokio::spawn(async move {
                while let Some(work) = queue.recv().await {
                    work.await;
                }
            }),
            metrics,
        });
        membership.fabric.set_remote_stars(membership.others(&all));
        Ok(membership)
    }

    /// The lease's epoch now.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Every machine's lease (for `starlane status`).
    pub async fn leases(&self) -> Result<Vec<Lease>, RegistryError> {
        self.leases.leases().await
    }

    /// The live stars of the machines other than this one.
    fn others(&self, all: &[Lease]) -> Vec<StarKey> {
        live_stars(all)
            .into_iter()
            .filter(|star| star.constellation != self.machine)
            .collect()
    }

    /// Renews the lease, reads the others', buries the dead and adopts their particles, every
    /// tick, until `stop` fires; then gives the lease up.
    pub fn spawn(
        self: &Arc<Self>,
        member: Arc<dyn Member>,
    ) -> (oneshot::Sender<()>, JoinHandle<()>) {
        let (stop, mut stopped) = oneshot::channel();
        let membership = self.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(membership.timing.tick) => {}
                }
                membership.tick(&member).await;
            }
            membership.gate.serve_until(None);
            membership.placer_task.abort();
            let _ = membership
                .leases
                .release(&membership.machine, membership.epoch())
                .await;
        });
        (stop, task)
    }

    /// One round: renew (or take the lease anew), open or close the gate, read the leases,
    /// bury the dead, adopt what this machine buried.
    async fn tick(&self, member: &Arc<dyn Member>) {
        let began = self.gate.now();
        self.judge.lock().bus(self.fabric.on_bus(), began);
        let renewal = self
            .leases
            .renew(&self.machine, self.epoch(), self.timing.ttl);
        match patiently(self.timing, renewal).await {
            Ok(true) => self.judge.lock().renewed(began),
            Ok(false) => self.take_anew(member).await,
            // The database is away: the gate closes by itself when the last renewal lapses.
            Err(err) => warn!(target: "starlane::membership", "cannot renew the lease: {err}"),
        }
        let judge = self.judge.lock().clone();
        self.gate.serve_until(judge.serving_until());
        let all = match patiently(self.timing, self.leases.leases()).await {
            Ok(all) => all,
            Err(err) => {
                warn!(target: "starlane::membership", "cannot read the leases: {err}");
                return;
            }
        };
        self.metrics
            .set_machines_alive(all.iter().filter(|lease| lease.is_live()).count());
        self.fabric.set_remote_stars(self.others(&all));
        // Burials of ours whose answer was lost: the database says who buried.
        for dead in all
            .iter()
            .filter(|lease| lease.buried && lease.buried_by.as_deref() == Some(&self.machine))
        {
            self.adopt(member, dead);
        }
        for dead in judge.to_bury(self.gate.now(), &self.machine, &all) {
            let burial = self.leases.bury(&dead.machine, dead.epoch, &self.machine);
            match patiently(self.timing, burial).await {
                Ok(true) => self.adopt(member, dead),
                Ok(false) => {}
                Err(err) => warn!(
                    target: "starlane::membership",
                    dead = %dead.machine,
                    "cannot bury a dead machine's lease: {err}"
                ),
            }
        }
        self.adopted.lock().retain(|(machine, epoch)| {
            all.iter()
                .any(|lease| lease.buried && lease.machine == *machine && lease.epoch == *epoch)
        });
    }

    /// The lease was refused (it expired, was buried, or another process took the name): stop
    /// serving, and take it anew if nobody else holds it.
    async fn take_anew(&self, member: &Arc<dyn Member>) {
        self.judge.lock().lost();
        self.gate.serve_until(None);
        warn!(
            target: "starlane::membership",
            machine = %self.machine,
            epoch = self.epoch(),
            "this machine lost its lease: it stops serving and takes a new one"
        );
        let began = self.gate.now();
        let taking = self
            .leases
            .acquire(&self.machine, self.holder, self.stars, self.timing.ttl);
        match patiently(self.timing, taking).await {
            Ok(Some(epoch)) => {
                self.epoch.store(epoch, Ordering::Release);
                member.forget();
                let until = {
                    let mut judge = self.judge.lock();
                    judge.renewed(began);
                    judge.serving_until()
                };
                self.gate.serve_until(until);
                let rejoined = member.clone();
                self.place(async move { rejoined.rejoined().await });
            }
            Ok(None) => warn!(
                target: "starlane::membership",
                machine = %self.machine,
                "another process holds this machine's lease: this one serves nothing until \
                 that lease ends"
            ),
            Err(err) => warn!(target: "starlane::membership", "cannot take a new lease: {err}"),
        }
    }

    /// This machine buried `dead`: its particles are placed again (once per burial).
    fn adopt(&self, member: &Arc<dyn Member>, dead: &Lease) {
        let burial = (dead.machine.clone(), dead.epoch);
        if !self.adopted.lock().insert(burial) {
            return;
        }
        warn!(
            target: "starlane::membership",
            dead = %dead.machine,
            machine = %self.machine,
            "a machine is dead (its lease expired): this one takes its particles"
        );
        let (member, dead) = (member.clone(), dead.clone());
        self.place(async move { member.adopt(&dead).await });
    }

    /// Queues `work` (an adoption, or starting this machine's own particles again) for the
    /// placer, which runs it beside the ticks, one at a time: placing many particles takes as
    /// long as it takes, and the lease must be renewed meanwhile.
    fn place(&self, work: impl Future<Output = ()> + Send + 'static) {
        let _ = self.placer.send(Box::pin(work));
    }
}

/// `call`, failed with [`RegistryError::Unavailable`] if it takes longer than the timing's
/// patience.
async fn patiently<T>(
    timing: LeaseTiming,
    call: impl Future<Output = Result<T, RegistryError>>,
) -> Result<T, RegistryError> {
    match tokio::time::timeout(timing.patience, call).await {
        Ok(answer) => answer,
        Err(_) => Err(RegistryError::Unavailable(format!(
            "the leases' store did not answer within {:?}",
            timing.patience
        ))),
    }
}

/// A holder number for this process, drawn at random (the time and the process id if the
/// system has no randomness to give).
fn holder() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_ok() {
        return u64::from_le_bytes(bytes);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (u64::from(std::process::id()) << 32) | u64::from(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(machine: &str, remaining: Option<u64>, buried: bool) -> Lease {
        Lease {
            machine: machine.into(),
            epoch: 1,
            stars: 2,
            remaining: remaining.map(Duration::from_millis),
            buried,
            buried_by: None,
        }
    }

    #[test]
    fn a_machine_serves_only_inside_its_renewed_lease_and_on_the_bus() {
        let mut judge = Judge::new(LeaseTiming::with_ttl(Duration::from_millis(2000)));
        assert!(!judge.may_serve(0));
        judge.renewed(100);
        assert!(!judge.may_serve(100), "not on the bus yet");
        judge.bus(true, 100);
        assert!(judge.may_serve(100));
        assert!(judge.may_serve(1599));
        assert!(!judge.may_serve(1600), "the margin before the lease ends");
        judge.renewed(1000);
        assert!(judge.may_serve(2499));
        judge.bus(false, 2000);
        assert!(!judge.may_serve(2001));
        judge.bus(true, 2100);
        judge.lost();
        assert!(!judge.may_serve(2101));
    }

    #[test]
    fn nobody_is_buried_until_a_whole_lease_on_the_bus() {
        let mut judge = Judge::new(LeaseTiming::with_ttl(Duration::from_millis(2000)));
        judge.bus(true, 0);
        judge.renewed(0);
        judge.renewed(1500);
        let leases = [
            lease("me", Some(1000), false),
            lease("dead", None, false),
            lease("buried", None, true),
            lease("alive", Some(500), false),
        ];
        assert!(judge.to_bury(1999, "me", &leases).is_empty());
        let dead: Vec<&str> = judge
            .to_bury(2000, "me", &leases)
            .iter()
            .map(|l| l.machine.as_str())
            .collect();
        assert_eq!(dead, ["dead"]);
        judge.bus(false, 2100);
        judge.bus(true, 2200);
        judge.renewed(2300);
        assert!(judge.to_bury(3000, "me", &leases).is_empty());
        judge.renewed(4000);
        assert_eq!(judge.to_bury(4200, "me", &leases).len(), 1);
        assert!(
            judge.to_bury(5600, "me", &leases).is_empty(),
            "not while its own lease may have lapsed"
        );
        assert_eq!(
            live_stars(&leases),
            vec![
                StarKey::new("me", "star", 0).expect("a key"),
                StarKey::new("me", "star", 1).expect("a key"),
                StarKey::new("alive", "star", 0).expect("a key"),
                StarKey::new("alive", "star", 1).expect("a key"),
            ]
        );
    }

    #[test]
    fn a_lease_taken_anew_buries_nobody_for_a_lease() {
        let mut judge = Judge::new(LeaseTiming::with_ttl(Duration::from_millis(2000)));
        let leases = [lease("me", Some(1000), false), lease("dead", None, false)];
        judge.bus(true, 0);
        judge.renewed(0);
        judge.renewed(2000);
        assert_eq!(judge.to_bury(2500, "me", &leases).len(), 1);
        // Renewals that failed for a while do not make the lease new...
        judge.renewed(3400);
        assert_eq!(judge.to_bury(3500, "me", &leases).len(), 1);
        // ...a refusal does (the database was away longer than a lease, say): the others get
        // a whole lease to take theirs anew.
        judge.lost();
        judge.renewed(4000);
        assert!(judge.to_bury(4100, "me", &leases).is_empty());
        judge.renewed(5500);
        assert!(judge.to_bury(5999, "me", &leases).is_empty());
        assert_eq!(judge.to_bury(6000, "me", &leases).len(), 1);
    }

    #[test]
    fn gates_open_and_close() {
        let gate = Gate::open();
        assert!(gate.is_open());
        gate.serve_until(None);
        assert!(!gate.is_open());
        gate.serve_until(Some(gate.now() + 60_000));
        assert!(gate.is_open());
        assert!(!Gate::closed().is_open());
    }
}
