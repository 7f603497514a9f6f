//! The worker threads guests run on, the calls into guests and the host imports.
//!
//! A guest is not tied to a thread (see `docs/decisions/wasm-host.md`, "Fairness"):
//!
//! - While idle, a guest's Store sits in its [`Cell`]. A call puts a job in the guest's bounded
//!   mailbox and, if the guest is not already queued or running, the guest on the pool's run
//!   queue. Any worker takes the next guest, runs up to [`BATCH`] of its jobs and gives it
//!   back (to the end of the queue when more are waiting), so a guest flooded with calls does
//!   not hold a worker from the others.
//! - A guest busy for seconds holds one worker. A monitor thread watches the calls in progress:
//!   while those running longer than [`LONG`] and those waiting in `host_send` leave fewer than
//!   `warm` workers free, it starts more (up to `max`); extra workers stop after [`IDLE`]
//!   without work. The operating system shares the cores between them, so a busy guest slows
//!   its neighbours by a share of the CPU, never by its whole run.
//! - Every call has a wall-clock deadline (the guest's `Limits::timeout`): the monitor
//!   interrupts a call that runs past it, which fails with [`WasmError::Timeout`].
//! - A job whose caller has given up (its answer channel closed, or its wave's wait time
//!   passed while it queued) is not started: it fails with [`WasmError::NotStarted`]. A full
//!   mailbox refuses new calls at once with [`WasmError::Busy`].
//! - A guest waiting in `host_send` for a Pong (or a Ripple's Echoes) blocks its worker; the
//!   monitor's rule above keeps `warm` others free, so the answer — often from another guest
//!   — is never stuck behind the waiter.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cosmic_space::wire::{pack_ptr_len, unpack_ptr_len};
use cosmic_space::{
    Agent, Details, DirectedWave, Echo, Limits, LogLevel, Ping, Point, Pong, Recipients,
    ReflectedCore, Ripple, Status, Surface, WaitTime, Wire,
};
use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;
use wasmer::{
    Engine, Function, FunctionEnv, FunctionEnvMut, Global, Imports, Instance, Memory, MemoryView,
    Module, RuntimeError, Store, TypedFunction, Value, imports,
};

use super::engine::with_memory_cap;
use super::{
    ABI_VERSION, CallObserver, CallOutcome, GuestOutbox, GuestSpec, LogRecord, WasmError,
    decode_reflected, decode_status, details_frame, encode_input, ping_frame, pong_frame,
};

/// How many jobs of one guest a worker runs before it gives the guest back to the queue.
const BATCH: usize = 16;

/// A call running longer than this no longer counts its worker as free.
const LONG: Duration = Duration::from_millis(10);

/// How often the monitor looks at the calls in progress while any runs.
const TICK: Duration = Duration::from_millis(2);

/// How long the monitor sleeps when no call was running at its last look.
const QUIET_TICK: Duration = Duration::from_millis(50);

/// How long a worker beyond the warm ones waits for work before it stops.
const IDLE: Duration = Duration::from_secs(10);

/// How long after interrupting an overdue call the monitor tries again if it still runs (the
/// signal can miss when the call is in a host import at that moment).
const RETRY: Duration = Duration::from_millis(20);

/// The most waves one guest call may send (`host_send`): a single call may not spawn
/// unbounded work. Past it, `host_send` fails and so does the call.
pub(crate) const MAX_SENDS_PER_CALL: u32 = 4096;

/// How the pool is sized and bounded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolConfig {
    /// Workers kept free for new work (and running when idle).
    pub(crate) warm: usize,
    /// The most workers, busy, waiting and free together.
    pub(crate) max: usize,
    /// Jobs one guest's mailbox holds before calls are refused.
    pub(crate) queue: usize,
}

enum Job {
    Instantiate {
        module: Module,
        spec: Box<GuestSpec>,
        reply: oneshot::Sender<Result<(), WasmError>>,
    },
    Call {
        export: Export,
        frame: Vec<u8>,
        /// When the caller stops waiting: a job still queued then is not started.
        expires: Option<Instant>,
        reply: oneshot::Sender<Result<Option<Vec<u8>>, WasmError>>,
    },
    Restart {
        reply: oneshot::Sender<Result<(), WasmError>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Export {
    Init,
    Handle,
}

impl Export {
    fn name(self) -> &'static str {
        match self {
            Export::Init => "mechtron_init",
            Export::Handle => "mechtron_handle",
        }
    }
}

/// A guest's idle Store, parked in its cell between calls.
///
/// `wasmer::Store` has not been `Send` since wasmer 7.0, only because its optional
/// `on_called` hook lost its `Send` bound (wasmerio/wasmer#7001); through 6.x it was `Send`,
/// and the sys backend keeps no thread-affine state in a store between calls (trap handling
/// and the store context are installed per call, on the calling thread). The host never sets
/// `on_called`, and a slot leaves its cell only to run on one worker at a time, so moving an
/// idle one between threads is what wasmer 6 allowed.
struct Parked(Slot);

// SAFETY: see above — a parked slot is idle (no call in progress on any thread) and has no
// `on_called` hook; its cell's mutex hands it to one thread at a time.
unsafe impl Send for Parked {}

/// One guest: its parked Store, its mailbox, whether it is queued or running.
struct Cell {
    state: Mutex<CellState>,
}

struct CellState {
    /// The guest while idle; `None` while a worker runs it (or before it is instantiated).
    slot: Option<Parked>,
    mailbox: VecDeque<Job>,
    /// On the run queue or on a worker.
    scheduled: bool,
    /// The guest's handle is gone: its jobs are dropped and its Store freed.
    removed: bool,
}

/// What the monitor sees of one worker thread.
#[derive(Default)]
struct Worker {
    current: Mutex<Option<Running>>,
}

/// The call a worker is running.
struct Running {
    started: Instant,
    deadline: Instant,
    stopper: Stopper,
    /// In `host_send`, waiting for an answer (counted apart from long calls).
    waiting: bool,
    interrupted_at: Option<Instant>,
}

struct Run {
    ready: VecDeque<Arc<Cell>>,
    threads: usize,
    /// Workers waiting for work.
    idle: usize,
    /// Workers blocked in `host_send`.
    waiting: usize,
    workers: Vec<Arc<Worker>>,
    shutdown: bool,
    spawned: usize,
}

/// Counts the host keeps for operators and tests.
#[derive(Debug, Default)]
struct Counters {
    not_started: AtomicU64,
    busy: AtomicU64,
    timed_out: AtomicU64,
}

/// What a pool has done so far and holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Live guests.
    pub guests: usize,
    /// Worker threads now.
    pub workers: usize,
    /// Calls never started because their caller had given up.
    pub not_started: u64,
    /// Calls refused because the guest's mailbox was full.
    pub busy: u64,
    /// Calls stopped at their wall-clock timeout.
    pub timed_out: u64,
}

struct Shared {
    engine: Engine,
    wire: Wire,
    config: PoolConfig,
    run: Mutex<Run>,
    /// Workers wait here for guests to run.
    work: Condvar,
    /// The monitor sleeps here between looks.
    watch: Condvar,
    /// Workers polling the run queue before they sleep (at most `warm` at once).
    spinning: AtomicUsize,
    guests: AtomicUsize,
    /// Calls submitted and not answered (a caller alone polls for its answer briefly).
    calls: AtomicUsize,
    counters: Counters,
    observer: Option<Arc<dyn CallObserver>>,
}

/// The worker threads of a host and its guests' run queue.
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    /// Starts `config.warm` workers (at least one) and the monitor.
    pub(crate) fn start(
        config: PoolConfig,
        engine: Engine,
        wire: Wire,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Result<Pool, WasmError> {
        let config = PoolConfig {
            warm: config.warm.max(1),
            max: config.max.max(config.warm.max(1)),
            queue: config.queue.max(1),
        };
        let shared = Arc::new(Shared {
            engine,
            wire,
            config,
            run: Mutex::new(Run {
                ready: VecDeque::new(),
                threads: 0,
                idle: 0,
                waiting: 0,
                workers: Vec::new(),
                shutdown: false,
                spawned: 0,
            }),
            work: Condvar::new(),
            watch: Condvar::new(),
            spinning: AtomicUsize::new(0),
            guests: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
            counters: Counters::default(),
            observer,
        });
        {
            let mut run = shared.run.lock();
            for _ in 0..config.warm {
                shared.spawn(&mut run)?;
            }
        }
        let monitor = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("wasm-monitor".to_string())
            .spawn(move || watch(&monitor))
            .map_err(|e| WasmError::Setup(format!("starting the wasm monitor: {e}")))?;
        Ok(Pool { shared })
    }

    /// What the pool has done and holds.
    pub(crate) fn stats(&self) -> PoolStats {
        let counters = &self.shared.counters;
        PoolStats {
            guests: self.shared.guests.load(Ordering::Relaxed),
            workers: self.shared.run.lock().threads,
            not_started: counters.not_started.load(Ordering::Relaxed),
            busy: counters.busy.load(Ordering::Relaxed),
            timed_out: counters.timed_out.load(Ordering::Relaxed),
        }
    }

    pub(crate) async fn instantiate(
        &self,
        module: Module,
        spec: GuestSpec,
    ) -> Result<Guest, WasmError> {
        let guest = Guest {
            cell: Arc::new(Cell {
                state: Mutex::new(CellState {
                    slot: None,
                    mailbox: VecDeque::new(),
                    scheduled: false,
                    removed: false,
                }),
            }),
            shared: self.shared.clone(),
        };
        let (reply, answer) = oneshot::channel();
        guest.submit(Job::Instantiate {
            module,
            spec: Box::new(spec),
            reply,
        })?;
        answer.await.map_err(|_| WasmError::Closed)??;
        Ok(guest)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.run.lock().shutdown = true;
        self.shared.work.notify_all();
        self.shared.watch.notify_all();
    }
}

impl Shared {
    /// Starts one more worker thread.
    fn spawn(self: &Arc<Shared>, run: &mut Run) -> Result<(), WasmError> {
        let worker = Arc::new(Worker::default());
        let name = format!("wasm-worker-{}", run.spawned);
        let shared = self.clone();
        let me = worker.clone();
        std::thread::Builder::new()
            .name(name)
            .spawn(move || work(&shared, &me))
            .map_err(|e| WasmError::Setup(format!("starting a wasm worker: {e}")))?;
        run.spawned += 1;
        run.threads += 1;
        run.workers.push(worker);
        Ok(())
    }

    /// Starts workers while fewer than `warm` are free of long calls and waits (`long`: the
    /// workers in calls longer than [`LONG`], as the monitor last counted).
    fn top_up(self: &Arc<Shared>, run: &mut Run, long: usize) {
        while !run.shutdown && run.threads < self.config.max {
            let free = run.threads.saturating_sub(run.waiting + long);
            if free >= self.config.warm || self.spawn(run).is_err() {
                break;
            }
        }
    }

    /// Puts `cell` at the end of the run queue and wakes a worker if none is looking.
    fn schedule(&self, cell: Arc<Cell>) -> Result<(), WasmError> {
        let mut run = self.run.lock();
        if run.shutdown {
            return Err(WasmError::Closed);
        }
        run.ready.push_back(cell);
        let wake = run.idle > 0 && self.spinning.load(Ordering::Acquire) == 0;
        drop(run);
        if wake {
            self.work.notify_one();
        }
        Ok(())
    }

    /// The next guest to run: polled for [`SPIN`] (by at most `warm` workers at once: more
    /// would only burn the cores), then waited for. `None`: this worker stops (shutdown, or
    /// idle beyond the warm ones).
    fn next(&self, me: &Arc<Worker>) -> Option<Arc<Cell>> {
        if self.spinning.fetch_add(1, Ordering::AcqRel) < self.config.warm {
            let found = spin(|| {
                self.run
                    .try_lock()
                    .and_then(|mut run| run.ready.pop_front())
            });
            self.spinning.fetch_sub(1, Ordering::AcqRel);
            if found.is_some() {
                return found;
            }
        } else {
            self.spinning.fetch_sub(1, Ordering::AcqRel);
        }
        let mut run = self.run.lock();
        loop {
            if let Some(cell) = run.ready.pop_front() {
                return Some(cell);
            }
            if run.shutdown {
                retire(&mut run, me);
                return None;
            }
            run.idle += 1;
            let timed_out = self.work.wait_for(&mut run, IDLE).timed_out();
            run.idle -= 1;
            if timed_out && run.ready.is_empty() && run.threads > self.config.warm {
                retire(&mut run, me);
                return None;
            }
        }
    }

    /// Runs up to [`BATCH`] jobs of `cell`'s guest, then hands the guest back.
    fn serve(&self, me: &Worker, cell: Arc<Cell>) {
        let mut parked = cell.state.lock().slot.take();
        for _ in 0..BATCH {
            let job = {
                let mut state = cell.state.lock();
                if state.removed {
                    None
                } else {
                    state.mailbox.pop_front()
                }
            };
            let Some(job) = job else { break };
            self.run_job(me, &mut parked, job);
        }
        let mut state = cell.state.lock();
        if state.removed {
            drop(state);
            if parked.take().is_some() {
                self.guests.fetch_sub(1, Ordering::Relaxed);
            }
            return;
        }
        state.slot = parked;
        if state.mailbox.is_empty() {
            state.scheduled = false;
        } else {
            drop(state);
            // Shut down: the queued jobs are dropped with the cell, their callers told so.
            let _ = self.schedule(cell);
        }
    }

    fn run_job(&self, me: &Worker, parked: &mut Option<Parked>, job: Job) {
        match job {
            Job::Instantiate {
                module,
                spec,
                reply,
            } => {
                let result = guarded(|| instantiate(&self.engine, self.wire, module, *spec));
                let answer = result.map(|slot| {
                    *parked = Some(Parked(slot));
                    self.guests.fetch_add(1, Ordering::Relaxed);
                });
                let _ = reply.send(answer);
            }
            Job::Restart { reply } => {
                let result = match parked.as_mut() {
                    Some(Parked(slot)) => guarded(|| {
                        instantiate(
                            &self.engine,
                            self.wire,
                            slot.module.clone(),
                            slot.spec.clone(),
                        )
                    })
                    .map(|fresh| *slot = fresh),
                    None => Err(WasmError::Closed),
                };
                let _ = reply.send(result);
            }
            Job::Call {
                export,
                frame,
                expires,
                reply,
            } => {
                if reply.is_closed() || expires.is_some_and(|at| Instant::now() >= at) {
                    self.counters.not_started.fetch_add(1, Ordering::Relaxed);
                    self.observe(CallOutcome::NotStarted, 0, Duration::ZERO);
                    let _ = reply.send(Err(WasmError::NotStarted));
                    return;
                }
                let result = match parked.as_mut() {
                    Some(Parked(slot)) => self.call(me, slot, export, &frame),
                    None => Err(WasmError::Closed),
                };
                let _ = reply.send(result);
            }
        }
    }

    /// Runs one call of `slot` under its deadline, visible to the monitor meanwhile.
    fn call(
        &self,
        me: &Worker,
        slot: &mut Slot,
        export: Export,
        frame: &[u8],
    ) -> Result<Option<Vec<u8>>, WasmError> {
        let started = Instant::now();
        let deadline = started + slot.spec.limits.timeout();
        *me.current.lock() = Some(Running {
            started,
            deadline,
            stopper: slot.stopper.clone(),
            waiting: false,
            interrupted_at: None,
        });
        let result = match catch_unwind(AssertUnwindSafe(|| {
            slot.call(&self.wire, export, frame, deadline)
        })) {
            Ok(result) => result,
            Err(_) => {
                let error = WasmError::Trap {
                    call: "host",
                    reason: "the host panicked while serving the guest".to_string(),
                };
                slot.broken = Some(error.to_string());
                Err(error)
            }
        };
        *me.current.lock() = None;
        let outcome = match &result {
            Ok(_) => CallOutcome::Ok,
            Err(WasmError::FuelExhausted { .. }) => CallOutcome::Fuel,
            Err(WasmError::Timeout { .. }) => {
                self.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                CallOutcome::Timeout
            }
            Err(_) => CallOutcome::Trap,
        };
        // The fuel burnt is read from the guest only when someone looks.
        if let Some(observer) = &self.observer {
            observer.observe(outcome, slot.fuel_used(), started.elapsed());
        }
        result
    }

    fn observe(&self, outcome: CallOutcome, fuel: u64, elapsed: Duration) {
        if let Some(observer) = &self.observer {
            observer.observe(outcome, fuel, elapsed);
        }
    }

    /// One look at the calls in progress: interrupts those past their deadline, starts
    /// workers if long calls and waits leave too few free. Whether any call was running.
    fn inspect(self: &Arc<Shared>) -> bool {
        let now = Instant::now();
        let workers = self.run.lock().workers.clone();
        let (mut running, mut long) = (false, 0);
        for worker in &workers {
            let mut current = worker.current.lock();
            let Some(call) = current.as_mut() else {
                continue;
            };
            running = true;
            if !call.waiting && now.duration_since(call.started) >= LONG {
                long += 1;
            }
            if now >= call.deadline
                && call
                    .interrupted_at
                    .is_none_or(|at| now.duration_since(at) >= RETRY)
            {
                call.stopper.stop();
                call.interrupted_at = Some(now);
            }
        }
        let mut run = self.run.lock();
        if long > 0 || run.waiting > 0 {
            self.top_up(&mut run, long);
        }
        running
    }
}

/// Removes `me` from the pool's workers as its thread ends.
fn retire(run: &mut Run, me: &Arc<Worker>) {
    run.threads -= 1;
    run.workers.retain(|worker| !Arc::ptr_eq(worker, me));
}

thread_local! {
    /// The pool and worker of this thread, for `host_send`'s waits.
    static HERE: RefCell<Option<(Arc<Shared>, Arc<Worker>)>> = const { RefCell::new(None) };
}

fn work(shared: &Arc<Shared>, me: &Arc<Worker>) {
    HERE.with(|here| *here.borrow_mut() = Some((shared.clone(), me.clone())));
    while let Some(cell) = shared.next(me) {
        shared.serve(me, cell);
    }
    HERE.with(|here| here.borrow_mut().take());
}

/// The monitor: looks at the calls in progress every [`TICK`] while any runs.
fn watch(shared: &Weak<Shared>) {
    let mut pause = QUIET_TICK;
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        {
            let mut run = shared.run.lock();
            if run.shutdown {
                return;
            }
            shared.watch.wait_for(&mut run, pause);
            if run.shutdown {
                return;
            }
        }
        pause = if shared.inspect() { TICK } else { QUIET_TICK };
    }
}

/// Blocks this worker on `wait` (`host_send` waiting for an answer) as a worker not free for
/// other guests: more are started if that leaves too few.
fn waiting<T>(wait: impl FnOnce() -> T) -> T {
    let here = HERE.with(|here| here.borrow().clone());
    let Some((shared, me)) = here else {
        return wait();
    };
    if let Some(call) = me.current.lock().as_mut() {
        call.waiting = true;
    }
    {
        let mut run = shared.run.lock();
        run.waiting += 1;
        shared.top_up(&mut run, 0);
    }
    let result = wait();
    shared.run.lock().waiting -= 1;
    if let Some(call) = me.current.lock().as_mut() {
        call.waiting = false;
    }
    result
}

/// How long a thread that expects an answer soon spins before it sleeps. Waking a sleeping
/// thread costs tens of microseconds on a quiet machine — more than a whole guest call — so a
/// worker that has just answered, and a caller that has just asked, poll briefly first.
const SPIN: Duration = Duration::from_micros(30);

/// Calls `try_once` until it gives something, for at most [`SPIN`]; `None` if nothing came.
fn spin<T>(mut try_once: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = try_once() {
            return Some(value);
        }
        if start.elapsed() >= SPIN {
            return None;
        }
        std::hint::spin_loop();
    }
}

/// Counts a call as in flight until dropped (also when the caller gives up).
struct InFlight<'a> {
    calls: &'a AtomicUsize,
    /// Whether it was the only call in flight when it started.
    alone: bool,
}

impl<'a> InFlight<'a> {
    fn enter(calls: &'a AtomicUsize) -> InFlight<'a> {
        let alone = calls.fetch_add(1, Ordering::AcqRel) == 0;
        InFlight { calls, alone }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.calls.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One live guest instance: its state survives between calls. Dropping it frees the instance.
pub struct Guest {
    cell: Arc<Cell>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guest").finish_non_exhaustive()
    }
}

impl Guest {
    /// Queues `job` for this guest, and the guest for a worker if it is not already.
    fn submit(&self, job: Job) -> Result<(), WasmError> {
        let mut state = self.cell.state.lock();
        if state.removed {
            return Err(WasmError::Closed);
        }
        if state.mailbox.len() >= self.shared.config.queue {
            let queued = state.mailbox.len();
            drop(state);
            self.shared.counters.busy.fetch_add(1, Ordering::Relaxed);
            self.shared.observe(CallOutcome::Busy, 0, Duration::ZERO);
            return Err(WasmError::Busy { queued });
        }
        state.mailbox.push_back(job);
        let schedule = !state.scheduled;
        state.scheduled = true;
        drop(state);
        if schedule {
            self.shared.schedule(self.cell.clone())?;
        }
        Ok(())
    }

    async fn call(
        &self,
        export: Export,
        frame: Vec<u8>,
        expires: Option<Instant>,
    ) -> Result<Option<Vec<u8>>, WasmError> {
        let (reply, mut answer) = oneshot::channel();
        let in_flight = InFlight::enter(&self.shared.calls);
        self.submit(Job::Call {
            export,
            frame,
            expires,
            reply,
        })?;
        // The only call in flight: the answer usually comes within microseconds, so poll for
        // it briefly instead of parking this thread at once (see [`SPIN`]).
        if in_flight.alone
            && let Some(result) = spin(|| match answer.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) => None,
                other => Some(other),
            })
        {
            return result.map_err(|_| WasmError::Closed)?;
        }
        answer.await.map_err(|_| WasmError::Closed)?
    }

    /// Runs the guest's `mechtron_init` with `details` (whose properties should name the
    /// mechtron type under [`super::MECHTRON_PROPERTY`]) and returns the status it reports.
    pub async fn init(&self, details: &Details) -> Result<Status, WasmError> {
        let frame = details_frame(&self.shared.wire, details)?;
        match self.call(Export::Init, frame, None).await? {
            Some(answer) => decode_status(&self.shared.wire, &answer),
            None => Err(WasmError::Answer(
                "mechtron_init returned no status frame".to_string(),
            )),
        }
    }

    /// Hands `ping` to the guest's `mechtron_handle` and returns its answer (200, empty, when
    /// the guest absorbs it). Not started if it is still queued when the Ping's wait time has
    /// passed ([`WasmError::NotStarted`]).
    pub async fn handle(&self, ping: &Ping) -> Result<ReflectedCore, WasmError> {
        let expires = Instant::now() + ping.handling.wait.as_duration();
        let frame = ping_frame(&self.shared.wire, ping)?;
        let answer = self.call(Export::Handle, frame, Some(expires)).await?;
        decode_reflected(&self.shared.wire, answer.as_deref())
    }

    /// Hands `ripple`, as delivered to this guest (addressed to it alone), to the guest's
    /// `mechtron_handle` and returns its answer, which becomes the Echo (SPEC §11.3: the
    /// guest answers a Ripple as it answers a Ping).
    pub async fn handle_ripple(&self, ripple: &Ripple) -> Result<ReflectedCore, WasmError> {
        let expires = Instant::now() + ripple.handling.wait.as_duration();
        let frame = encode_input(
            &self.shared.wire,
            "ripple",
            &DirectedWave::Ripple(ripple.clone()),
        )?;
        let answer = self.call(Export::Handle, frame, Some(expires)).await?;
        decode_reflected(&self.shared.wire, answer.as_deref())
    }

    /// Throws the instance away and instantiates the module again (fresh state, not broken);
    /// run [`Guest::init`] after it.
    pub async fn restart(&self) -> Result<(), WasmError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Restart { reply })?;
        answer.await.map_err(|_| WasmError::Closed)?
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let (slot, jobs) = {
            let mut state = self.cell.state.lock();
            state.removed = true;
            (state.slot.take(), std::mem::take(&mut state.mailbox))
        };
        // Freed outside the lock: the Store's memory is unmapped, the jobs' callers told.
        drop(jobs);
        if slot.is_some() {
            self.shared.guests.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The way back for the answer to a wave a guest sent — a Ping's Pong, a Ripple's Echoes:
/// answer through it exactly once, from any thread. Dropping it unanswered answers a Ping
/// with a 500 and a Ripple with no Echoes.
pub struct PongReply {
    tx: SyncSender<Option<Reply>>,
    sent: bool,
}

/// What answers a wave a guest sent and waits for: a Ping's Pong, or a Ripple's Echoes.
#[derive(Debug)]
enum Reply {
    Pong(Box<Pong>),
    Echoes(Vec<Echo>),
}

impl std::fmt::Debug for PongReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PongReply")
            .field("sent", &self.sent)
            .finish()
    }
}

impl PongReply {
    /// A reply and the receiver its answer arrives on.
    fn new() -> (PongReply, Receiver<Option<Reply>>) {
        let (tx, rx) = mpsc::sync_channel(1);
        (PongReply { tx, sent: false }, rx)
    }

    /// Delivers the Pong to the waiting guest (ignored if it stopped waiting).
    pub fn send(self, pong: Pong) {
        self.answer(Reply::Pong(Box::new(pong)));
    }

    /// Delivers a Ripple's Echoes to the waiting guest (ignored if it stopped waiting).
    pub fn send_echoes(self, echoes: Vec<Echo>) {
        self.answer(Reply::Echoes(echoes));
    }

    fn answer(mut self, reply: Reply) {
        self.sent = true;
        let _ = self.tx.try_send(Some(reply));
    }
}

impl Drop for PongReply {
    fn drop(&mut self) {
        if !self.sent {
            let _ = self.tx.try_send(None);
        }
    }
}

/// Stops a guest's call in progress from another thread (the monitor, at the call's deadline).
#[derive(Clone)]
struct Stopper {
    #[cfg(unix)]
    interrupter: wasmer::Interrupter,
}

impl Stopper {
    fn of(store: &Store) -> Stopper {
        Stopper {
            #[cfg(unix)]
            interrupter: store.interrupter(),
        }
    }

    /// Interrupts the store's running wasm: the call traps. Elsewhere than Unix, wasmer cannot
    /// interrupt, and a call past its deadline runs until its fuel ends (its caller has its
    /// answer at the deadline all the same).
    fn stop(&self) {
        #[cfg(unix)]
        self.interrupter.interrupt();
    }
}

/// What the host imports of one guest see.
struct GuestEnv {
    point: Point,
    surface: Surface,
    outbox: Arc<dyn GuestOutbox>,
    send_timeout: Duration,
    wire: Wire,
    memory: Option<Memory>,
    alloc: Option<TypedFunction<u32, u32>>,
    /// The deadline of the call in progress.
    deadline: Option<Instant>,
    /// Waves sent during the call in progress.
    sent: u32,
}

/// One guest.
struct Slot {
    store: Store,
    env: FunctionEnv<GuestEnv>,
    module: Module,
    spec: GuestSpec,
    memory: Memory,
    alloc: TypedFunction<u32, u32>,
    dealloc: TypedFunction<(u32, u32), ()>,
    init: TypedFunction<(u32, u32), u64>,
    handle: TypedFunction<(u32, u32), u64>,
    remaining: Global,
    exhausted: Global,
    stopper: Stopper,
    broken: Option<String>,
}

/// Runs `f`, turning a panic into an error (a panic must never take a worker down).
fn guarded<R>(f: impl FnOnce() -> Result<R, WasmError>) -> Result<R, WasmError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(WasmError::Instantiate(
            "the host panicked while instantiating".to_string(),
        ))
    })
}

fn abi(what: impl std::fmt::Display) -> WasmError {
    WasmError::Abi(what.to_string())
}

/// Instantiates `module` in a store of its own, links the host imports and checks the ABI.
fn instantiate(
    engine: &Engine,
    wire: Wire,
    module: Module,
    spec: GuestSpec,
) -> Result<Slot, WasmError> {
    let mut store = Store::new(engine.clone());
    let env = FunctionEnv::new(
        &mut store,
        GuestEnv {
            point: spec.point.clone(),
            surface: spec.surface.clone(),
            outbox: spec.outbox.clone(),
            send_timeout: spec.send_timeout,
            wire,
            memory: None,
            alloc: None,
            deadline: None,
            sent: 0,
        },
    );
    let imports = host_imports(&mut store, &env);
    let instance = with_memory_cap(spec.limits.memory_pages(), || {
        Instance::new(&mut store, &module, &imports)
            .map_err(|e| WasmError::Instantiate(e.to_string()))
    })?;
    let exports = &instance.exports;
    let memory = exports
        .get_memory("memory")
        .map_err(|e| abi(format!("export `memory`: {e}")))?
        .clone();
    let version: TypedFunction<(), u32> = exports
        .get_typed_function(&store, "mechtron_abi_version")
        .map_err(|e| abi(format!("export `mechtron_abi_version`: {e}")))?;
    let alloc = exports
        .get_typed_function(&store, "mechtron_alloc")
        .map_err(|e| abi(format!("export `mechtron_alloc`: {e}")))?;
    let dealloc = exports
        .get_typed_function(&store, "mechtron_dealloc")
        .map_err(|e| abi(format!("export `mechtron_dealloc`: {e}")))?;
    let init = exports
        .get_typed_function(&store, "mechtron_init")
        .map_err(|e| abi(format!("export `mechtron_init`: {e}")))?;
    let handle = exports
        .get_typed_function(&store, "mechtron_handle")
        .map_err(|e| abi(format!("export `mechtron_handle`: {e}")))?;
    let remaining = exports
        .get_global("wasmer_metering_remaining_points")
        .map_err(|e| abi(format!("metering: {e}")))?
        .clone();
    let exhausted = exports
        .get_global("wasmer_metering_points_exhausted")
        .map_err(|e| abi(format!("metering: {e}")))?
        .clone();
    {
        let data = env.as_mut(&mut store);
        data.memory = Some(memory.clone());
        data.alloc = Some(alloc.clone());
    }
    let stopper = Stopper::of(&store);
    let mut slot = Slot {
        store,
        env,
        module,
        spec,
        memory,
        alloc,
        dealloc,
        init,
        handle,
        remaining,
        exhausted,
        stopper,
        broken: None,
    };
    slot.refuel()?;
    let found = version
        .call(&mut slot.store)
        .map_err(|e| slot.failure("mechtron_abi_version", e))?;
    if found != ABI_VERSION {
        return Err(abi(format!(
            "mechtron_abi_version is {found}, this host speaks {ABI_VERSION}"
        )));
    }
    Ok(slot)
}

fn host_imports(store: &mut Store, env: &FunctionEnv<GuestEnv>) -> Imports {
    imports! {
        "cosmic" => {
            "host_send" => Function::new_typed_with_env(store, env, host_send),
            "host_log" => Function::new_typed_with_env(store, env, host_log),
            "host_now" => Function::new_typed(store, host_now),
            "host_random" => Function::new_typed_with_env(store, env, host_random),
        }
    }
}

impl Slot {
    fn refuel(&mut self) -> Result<(), WasmError> {
        let fuel = i64::try_from(self.spec.limits.fuel()).unwrap_or(i64::MAX);
        self.remaining
            .set(&mut self.store, Value::I64(fuel))
            .and_then(|()| self.exhausted.set(&mut self.store, Value::I32(0)))
            .map_err(|e| abi(format!("metering: {e}")))
    }

    /// The fuel the last call burned.
    fn fuel_used(&mut self) -> u64 {
        let budget = self.spec.limits.fuel();
        match self.remaining.get(&mut self.store) {
            Value::I64(left) => budget.saturating_sub(u64::try_from(left).unwrap_or(0)),
            _ => budget,
        }
    }

    /// The error for a call of `call` that did not return normally.
    fn failure(&mut self, call: &'static str, error: RuntimeError) -> WasmError {
        let deadline = self.env.as_ref(&self.store).deadline;
        if matches!(self.exhausted.get(&mut self.store), Value::I32(n) if n != 0) {
            WasmError::FuelExhausted {
                call,
                fuel: self.spec.limits.fuel(),
            }
        } else if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            WasmError::Timeout {
                call,
                timeout: self.spec.limits.timeout(),
            }
        } else {
            WasmError::Trap {
                call,
                reason: error.message(),
            }
        }
    }

    /// Calls `export` with `input`, to end by `deadline`.
    fn call(
        &mut self,
        wire: &Wire,
        export: Export,
        input: &[u8],
        deadline: Instant,
    ) -> Result<Option<Vec<u8>>, WasmError> {
        if let Some(reason) = &self.broken {
            return Err(WasmError::Broken(reason.clone()));
        }
        {
            let env = self.env.as_mut(&mut self.store);
            env.deadline = Some(deadline);
            env.sent = 0;
        }
        let result = self.call_inner(wire, export, input);
        if let Err(error) = &result
            && error.breaks_guest()
        {
            self.broken = Some(error.to_string());
        }
        result
    }

    fn call_inner(
        &mut self,
        wire: &Wire,
        export: Export,
        input: &[u8],
    ) -> Result<Option<Vec<u8>>, WasmError> {
        self.refuel()?;
        let len = frame_len(wire, "input", input.len() as u64)?;
        let ptr = self
            .alloc
            .call(&mut self.store, len)
            .map_err(|e| self.failure("mechtron_alloc", e))?;
        {
            let view = self.memory.view(&self.store);
            check_bounds(&view, "input", ptr, len)?;
            view.write(u64::from(ptr), input)
                .map_err(|e| oob("input", ptr, len, &view, e))?;
        }
        let function = match export {
            Export::Init => self.init.clone(),
            Export::Handle => self.handle.clone(),
        };
        let packed = function
            .call(&mut self.store, ptr, len)
            .map_err(|e| self.failure(export.name(), e))?;
        if packed == 0 {
            return Ok(None);
        }
        let (out_ptr, out_len) = unpack_ptr_len(packed);
        frame_len(wire, "output", u64::from(out_len))?;
        let output = {
            let view = self.memory.view(&self.store);
            check_bounds(&view, "output", out_ptr, out_len)?;
            read(&view, "output", out_ptr, out_len)?
        };
        self.dealloc
            .call(&mut self.store, out_ptr, out_len)
            .map_err(|e| self.failure("mechtron_dealloc", e))?;
        Ok(Some(output))
    }
}

fn frame_len(wire: &Wire, what: &'static str, len: u64) -> Result<u32, WasmError> {
    match u32::try_from(len) {
        Ok(n) if len <= wire.max_frame() as u64 => Ok(n),
        _ => Err(WasmError::FrameTooLarge {
            what,
            len,
            limit: wire.max_frame(),
        }),
    }
}

fn check_bounds(
    view: &MemoryView<'_>,
    what: &'static str,
    ptr: u32,
    len: u32,
) -> Result<(), WasmError> {
    let end = u64::from(ptr) + u64::from(len);
    if end > view.data_size() {
        return Err(WasmError::OutOfBounds {
            what,
            ptr,
            len,
            memory: view.data_size(),
        });
    }
    Ok(())
}

fn oob(
    what: &'static str,
    ptr: u32,
    len: u32,
    view: &MemoryView<'_>,
    _error: impl std::fmt::Display,
) -> WasmError {
    WasmError::OutOfBounds {
        what,
        ptr,
        len,
        memory: view.data_size(),
    }
}

fn read(
    view: &MemoryView<'_>,
    what: &'static str,
    ptr: u32,
    len: u32,
) -> Result<Vec<u8>, WasmError> {
    let mut buf = vec![0; len as usize];
    view.read(u64::from(ptr), &mut buf)
        .map_err(|e| oob(what, ptr, len, view, e))?;
    Ok(buf)
}

/// Why a host import refused a guest's request: the guest's call fails with it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HostError(String);

fn host_error(error: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::user(Box::new(HostError(error.to_string())))
}

/// Reads the frame `(ptr, len)` a guest handed to a host import, validated.
fn guest_frame(
    env: &mut FunctionEnvMut<'_, GuestEnv>,
    what: &'static str,
    ptr: u32,
    len: u32,
) -> Result<Vec<u8>, RuntimeError> {
    let (data, store) = env.data_and_store_mut();
    frame_len(&data.wire, what, u64::from(len)).map_err(host_error)?;
    let memory = data
        .memory
        .as_ref()
        .ok_or_else(|| host_error("host import called before the guest was set up"))?;
    let view = memory.view(&store);
    check_bounds(&view, what, ptr, len).map_err(host_error)?;
    read(&view, what, ptr, len).map_err(host_error)
}

/// How much longer a guest waits for a Ripple's Echoes than the Ripple's own wait time: the
/// courier returns what arrived when that passes, and the guest should get it rather than
/// give up a moment before.
const RIPPLE_GRACE: Duration = Duration::from_secs(1);

fn host_send(
    mut env: FunctionEnvMut<'_, GuestEnv>,
    ptr: u32,
    len: u32,
) -> Result<u64, RuntimeError> {
    let frame = guest_frame(&mut env, "host_send", ptr, len)?;
    let data = env.data_mut();
    if data.sent >= MAX_SENDS_PER_CALL {
        return Err(host_error(format!(
            "one call may send at most {MAX_SENDS_PER_CALL} waves"
        )));
    }
    data.sent += 1;
    let mut wave: DirectedWave = data.wire.decode(&frame).map_err(|source| {
        host_error(WasmError::Frame {
            what: "host_send",
            source,
        })
    })?;
    wave.set_agent(Agent::Point(data.point.clone()));
    wave.set_from(data.surface.clone());
    let outbox = data.outbox.clone();
    // The guest waits no longer than its send timeout, nor past its call's deadline.
    let mut wait = data.send_timeout;
    if let Some(deadline) = data.deadline {
        wait = wait.min(deadline.saturating_duration_since(Instant::now()));
    }
    let ping = match wave {
        DirectedWave::Signal(_) => {
            outbox.send(wave, None);
            return Ok(0);
        }
        DirectedWave::Ping(ping) => ping,
        DirectedWave::Ripple(ripple) => {
            let echoes = send_ripple(outbox, wait, ripple)?;
            let frame = encode_input(&env.data().wire, "echoes", &echoes).map_err(host_error)?;
            return give_guest(&mut env, "echoes", &frame);
        }
    };
    let wait = wait.min(ping.handling.wait.as_duration());
    let (reply, answer) = PongReply::new();
    outbox.send(DirectedWave::Ping(ping.clone()), Some(reply));
    let pong = match waiting(|| answer.recv_timeout(wait)) {
        Ok(Some(Reply::Pong(pong))) => *pong,
        Ok(Some(Reply::Echoes(_))) => ping.pong(ReflectedCore::error(
            cosmic_space::StatusCode::ERROR,
            "the host answered the ping with echoes",
        )),
        Ok(None) | Err(RecvTimeoutError::Disconnected) => ping.pong(ReflectedCore::error(
            cosmic_space::StatusCode::ERROR,
            "the host dropped the ping without an answer",
        )),
        Err(RecvTimeoutError::Timeout) => ping.pong(ReflectedCore::timeout()),
    };
    let frame = pong_frame(&env.data().wire, &pong).map_err(host_error)?;
    give_guest(&mut env, "pong", &frame)
}

/// Sends a guest's Ripple and waits for its Echoes, at most `wait`. Its wait time is cut to
/// that; whatever the Ripple's rule, the guest gets what arrived by then (nothing if the host
/// dropped it).
///
/// # Errors
/// A Ripple to `Watchers` or `Stars`: those are the infrastructure's deliveries (a channel's,
/// a machine's), and a guest may not pass for either.
fn send_ripple(
    outbox: Arc<dyn GuestOutbox>,
    wait: Duration,
    mut ripple: Ripple,
) -> Result<Vec<Echo>, RuntimeError> {
    if let Recipients::Watchers(_) | Recipients::Stars = ripple.to {
        return Err(host_error(format!(
            "a guest's Ripple goes to a list of points or a selector, not to {}",
            ripple.to
        )));
    }
    let wait = wait.min(ripple.handling.wait.as_duration());
    ripple.handling.wait =
        WaitTime::from_millis(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
    let (reply, answer) = PongReply::new();
    outbox.send(DirectedWave::Ripple(ripple), Some(reply));
    Ok(match waiting(|| answer.recv_timeout(wait + RIPPLE_GRACE)) {
        Ok(Some(Reply::Echoes(echoes))) => echoes,
        Ok(Some(Reply::Pong(_)) | None) | Err(_) => Vec::new(),
    })
}

/// Copies `frame` into a buffer the guest allocates (`mechtron_alloc`) and returns it packed
/// as `(ptr << 32) | len`: the answer of `host_send`, which the guest frees.
fn give_guest(
    env: &mut FunctionEnvMut<'_, GuestEnv>,
    what: &'static str,
    frame: &[u8],
) -> Result<u64, RuntimeError> {
    let len = frame_len(&env.data().wire, what, frame.len() as u64).map_err(host_error)?;
    let alloc = env
        .data()
        .alloc
        .clone()
        .ok_or_else(|| host_error("host_send before the guest was set up"))?;
    let out = alloc.call(env, len)?;
    let (data, store) = env.data_and_store_mut();
    let memory = data
        .memory
        .as_ref()
        .ok_or_else(|| host_error("host_send before the guest was set up"))?;
    let view = memory.view(&store);
    check_bounds(&view, what, out, len).map_err(host_error)?;
    view.write(u64::from(out), frame)
        .map_err(|e| host_error(oob(what, out, len, &view, e)))?;
    Ok(pack_ptr_len(out, len))
}

fn host_log(mut env: FunctionEnvMut<'_, GuestEnv>, ptr: u32, len: u32) -> Result<(), RuntimeError> {
    let frame = guest_frame(&mut env, "host_log", ptr, len)?;
    let data = env.data();
    let (level, message): LogRecord = data.wire.decode(&frame).map_err(|source| {
        host_error(WasmError::Frame {
            what: "host_log",
            source,
        })
    })?;
    data.outbox.log(&data.point, level, &message);
    Ok(())
}

fn host_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn host_random(
    mut env: FunctionEnvMut<'_, GuestEnv>,
    ptr: u32,
    len: u32,
) -> Result<(), RuntimeError> {
    let (data, store) = env.data_and_store_mut();
    frame_len(&data.wire, "host_random", u64::from(len)).map_err(host_error)?;
    let memory = data
        .memory
        .as_ref()
        .ok_or_else(|| host_error("host_random before the guest was set up"))?;
    let view = memory.view(&store);
    check_bounds(&view, "host_random", ptr, len).map_err(host_error)?;
    let mut buf = vec![0; len as usize];
    getrandom::fill(&mut buf).map_err(|e| host_error(format!("no randomness: {e}")))?;
    view.write(u64::from(ptr), &buf)
        .map_err(|e| host_error(oob("host_random", ptr, len, &view, e)))
}

/// Figures of [`super::WasmHost::raw_call_floor`]-style measurements, for benchmarks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloorReport {
    /// Median nanoseconds per call.
    pub p50_ns: u64,
    /// 99th percentile nanoseconds per call.
    pub p99_ns: u64,
}

impl FloorReport {
    /// The median and 99th percentile of `samples` (nanoseconds); zeros when empty.
    pub fn of(samples: &mut [u64]) -> FloorReport {
        samples.sort_unstable();
        let at = |q: f64| -> u64 {
            if samples.is_empty() {
                0
            } else {
                let i = ((samples.len() - 1) as f64 * q).round() as usize;
                samples[i.min(samples.len() - 1)]
            }
        };
        FloorReport {
            p50_ns: at(0.5),
            p99_ns: at(0.99),
        }
    }
}

/// A guest of no consequence: for measuring raw calls.
struct NullOutbox;

impl GuestOutbox for NullOutbox {
    fn send(&self, _wave: DirectedWave, _reply: Option<PongReply>) {}
    fn log(&self, _point: &Point, _level: LogLevel, _message: &str) {}
}

pub(crate) fn raw_call_floor(
    engine: &Engine,
    module: &Module,
    name: &str,
    calls: usize,
) -> Result<Vec<u64>, WasmError> {
    let mut store = Store::new(engine.clone());
    let imports = host_imports_for_floor(&mut store);
    let instance = with_memory_cap(Limits::default().memory_pages(), || {
        Instance::new(&mut store, module, &imports)
            .map_err(|e| WasmError::Instantiate(e.to_string()))
    })?;
    let function: TypedFunction<(), ()> = instance
        .exports
        .get_typed_function(&store, name)
        .map_err(|e| abi(format!("export `{name}`: {e}")))?;
    if let Ok(fuel) = instance
        .exports
        .get_global("wasmer_metering_remaining_points")
    {
        fuel.set(&mut store, Value::I64(i64::MAX))
            .map_err(|e| abi(format!("metering: {e}")))?;
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        function.call(&mut store).map_err(|e| WasmError::Trap {
            call: "floor",
            reason: e.message(),
        })?;
        samples.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    Ok(samples)
}

fn host_imports_for_floor(store: &mut Store) -> Imports {
    let env = FunctionEnv::new(
        store,
        GuestEnv {
            point: Point::root(),
            surface: Surface::core(Point::root()),
            outbox: Arc::new(NullOutbox),
            send_timeout: Duration::from_secs(1),
            wire: Wire::default(),
            memory: None,
            alloc: None,
            deadline: None,
            sent: 0,
        },
    );
    host_imports(store, &env)
}
