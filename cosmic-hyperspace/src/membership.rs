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
//! - **No panic after a partition.** A machine that has just regained the bus buries nobody
//!   until it has been connected for a whole lease ([`Judge::may_bury`]): it may not have heard
//!   the others' renewals while it was away (wasmCloud once declared every host dead when its
//!   operator lost NATS).
//!
//! [`Judge`] holds the decisions and no I/O, so they can be driven by a simulation with
//! injected loss and delay; [`Gate`] is what the stars consult on every wave.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cosmic_space::StarKey;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::registry::RegistryError;

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
    /// returns that epoch.
    async fn acquire(&self, machine: &str, stars: u16, ttl: Duration)
    -> Result<u64, RegistryError>;

    /// Extends the lease of `machine` at `epoch` by `ttl` from now; `false` if that lease is
    /// gone (it expired, was buried, or another process took the name).
    async fn renew(&self, machine: &str, epoch: u64, ttl: Duration) -> Result<bool, RegistryError>;

    /// Every machine's lease, by name.
    async fn leases(&self) -> Result<Vec<Lease>, RegistryError>;

    /// Declares `machine` dead if its lease at `epoch` has expired and nobody has buried it
    /// yet; `true` for the one caller that did.
    async fn bury(&self, machine: &str, epoch: u64) -> Result<bool, RegistryError>;

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
}

impl Default for LeaseTiming {
    /// A 2 s lease renewed every 250 ms; a machine stops serving 500 ms before its lease ends.
    fn default() -> LeaseTiming {
        LeaseTiming::with_ttl(Duration::from_secs(2))
    }
}

impl LeaseTiming {
    /// Leases of `ttl`, renewed every eighth of it, with a quarter of it as the margin.
    pub fn with_ttl(ttl: Duration) -> LeaseTiming {
        LeaseTiming {
            ttl,
            margin: ttl / 4,
            tick: ttl / 8,
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
    /// Since when the machine has been on the bus without a break.
    bus_since: Option<u64>,
}

impl Judge {
    /// A machine that holds no lease yet and has not been on the bus.
    pub fn new(timing: LeaseTiming) -> Judge {
        Judge {
            timing,
            renewed_at: None,
            bus_since: None,
        }
    }

    /// A renewal (or acquisition) that began at `began` succeeded.
    pub fn renewed(&mut self, began: u64) {
        self.renewed_at = Some(self.renewed_at.map_or(began, |at| at.max(began)));
    }

    /// The lease is lost: stop serving at once.
    pub fn lost(&mut self) {
        self.renewed_at = None;
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
        let renewed = self.renewed_at?;
        let window = self.timing.ttl.saturating_sub(self.timing.margin);
        Some(renewed.saturating_add(millis(window)))
    }

    /// Whether the machine may serve its particles at `now`.
    pub fn may_serve(&self, now: u64) -> bool {
        self.serving_until().is_some_and(|until| now < until)
    }

    /// Whether the machine may declare others dead at `now`: it serves, and it has been on the
    /// bus for a whole lease (so it has heard any renewal that happened).
    pub fn may_bury(&self, now: u64) -> bool {
        self.may_serve(now)
            && self
                .bus_since
                .is_some_and(|since| now >= since.saturating_add(millis(self.timing.ttl)))
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

/// What the membership loop acts on: the machine it keeps in the cosmos.
#[async_trait]
pub trait Member: Send + Sync + 'static {
    /// Whether the machine is connected to the bus now.
    fn on_bus(&self) -> bool;

    /// The live stars of the other machines changed.
    fn set_remote_stars(&self, stars: Vec<StarKey>);

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
    epoch: AtomicU64,
    judge: Mutex<Judge>,
}

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
    /// Takes `machine`'s lease and reads the others', so the machine knows the live stars
    /// before it places anything; its stars' `gate` opens once the lease is held on the bus.
    pub async fn join(
        machine: &str,
        stars: u16,
        timing: LeaseTiming,
        leases: Arc<dyn Leases>,
        gate: Arc<Gate>,
        member: &dyn Member,
    ) -> Result<Arc<Membership>, RegistryError> {
        let began = gate.now();
        let epoch = leases.acquire(machine, stars, timing.ttl).await?;
        let mut judge = Judge::new(timing);
        judge.renewed(began);
        judge.bus(member.on_bus(), gate.now());
        gate.serve_until(judge.serving_until());
        let membership = Arc::new(Membership {
            machine: machine.to_string(),
            stars,
            timing,
            leases,
            gate,
            epoch: AtomicU64::new(epoch),
            judge: Mutex::new(judge),
        });
        let all = membership.leases.leases().await?;
        member.set_remote_stars(membership.others(&all));
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
                membership.tick(member.as_ref()).await;
            }
            membership.gate.serve_until(None);
            let _ = membership
                .leases
                .release(&membership.machine, membership.epoch())
                .await;
        });
        (stop, task)
    }

    /// One round: renew (or take the lease anew), open or close the gate, read the leases,
    /// bury the dead.
    async fn tick(&self, member: &dyn Member) {
        let began = self.gate.now();
        self.judge.lock().bus(member.on_bus(), began);
        match self
            .leases
            .renew(&self.machine, self.epoch(), self.timing.ttl)
            .await
        {
            Ok(true) => self.judge.lock().renewed(began),
            Ok(false) => {
                self.judge.lock().lost();
                self.gate.serve_until(None);
                eprintln!(
                    "membership: machine {} lost its lease (epoch {}): it stops serving and \
                     takes a new one",
                    self.machine,
                    self.epoch()
                );
                let began = self.gate.now();
                match self
                    .leases
                    .acquire(&self.machine, self.stars, self.timing.ttl)
                    .await
                {
                    Ok(epoch) => {
                        self.epoch.store(epoch, Ordering::Release);
                        member.forget();
                        let until = {
                            let mut judge = self.judge.lock();
                            judge.renewed(began);
                            judge.serving_until()
                        };
                        self.gate.serve_until(until);
                        member.rejoined().await;
                    }
                    Err(err) => eprintln!("membership: {err}"),
                }
            }
            // The database is away: the gate closes by itself when the last renewal lapses.
            Err(err) => eprintln!("membership: {err}"),
        }
        let judge = self.judge.lock().clone();
        self.gate.serve_until(judge.serving_until());
        let all = match self.leases.leases().await {
            Ok(all) => all,
            Err(err) => {
                eprintln!("membership: {err}");
                return;
            }
        };
        member.set_remote_stars(self.others(&all));
        for dead in judge.to_bury(self.gate.now(), &self.machine, &all) {
            match self.leases.bury(&dead.machine, dead.epoch).await {
                Ok(true) => {
                    eprintln!(
                        "membership: machine {} is dead (its lease expired); {} takes its particles",
                        dead.machine, self.machine
                    );
                    member.adopt(dead).await;
                }
                Ok(false) => {}
                Err(err) => eprintln!("membership: {err}"),
            }
        }
    }
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
