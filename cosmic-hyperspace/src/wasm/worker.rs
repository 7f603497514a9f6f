//! The worker threads guests live on, the calls into guests and the host imports.
//!
//! `wasmer::Store` is neither `Send` nor `Sync`, so each guest's store stays on the worker
//! thread that created it. Callers talk to a worker over a channel and await a oneshot answer.
//! A guest waiting in `host_send` for a Pong (or a Ripple's Echoes) does not idle its worker:
//! the worker keeps serving requests for its other guests (nested on the same stack, up to
//! `max_nesting` deep), deferring those for guests that are mid-call, until the answer arrives
//! on the same channel or the wait times out.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cosmic_space::wire::{pack_ptr_len, unpack_ptr_len};
use cosmic_space::{
    Agent, Details, DirectedWave, Echo, Limits, LogLevel, Ping, Point, Pong, Recipients,
    ReflectedCore, Ripple, Status, Surface, WaitTime, Wire,
};
use tokio::sync::oneshot;
use wasmer::{
    Engine, Function, FunctionEnv, FunctionEnvMut, Global, Imports, Instance, Memory, MemoryView,
    Module, RuntimeError, Store, TypedFunction, Value, imports,
};

use super::engine::with_memory_cap;
use super::{
    ABI_VERSION, GuestOutbox, GuestSpec, LogRecord, WasmError, decode_reflected, decode_status,
    details_frame, encode_input, ping_frame, pong_frame,
};

static NEXT_GUEST: AtomicU64 = AtomicU64::new(1);

enum Request {
    Instantiate {
        id: u64,
        module: Module,
        spec: Box<GuestSpec>,
        reply: oneshot::Sender<Result<(), WasmError>>,
    },
    Call {
        id: u64,
        export: Export,
        frame: Vec<u8>,
        reply: oneshot::Sender<Result<Option<Vec<u8>>, WasmError>>,
    },
    Restart {
        id: u64,
        reply: oneshot::Sender<Result<(), WasmError>>,
    },
    Remove {
        id: u64,
    },
    Pong {
        token: u64,
        pong: Option<Reply>,
    },
    Shutdown,
}

/// What answers a wave a guest sent and waits for: a Ping's Pong, or a Ripple's Echoes.
#[derive(Debug)]
enum Reply {
    Pong(Box<Pong>),
    Echoes(Vec<Echo>),
}

impl Request {
    fn guest(&self) -> Option<u64> {
        match self {
            Request::Call { id, .. } | Request::Restart { id, .. } | Request::Remove { id } => {
                Some(*id)
            }
            Request::Instantiate { .. } | Request::Pong { .. } | Request::Shutdown => None,
        }
    }
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

#[derive(Clone)]
struct WorkerHandle {
    tx: Sender<Request>,
    guests: Arc<AtomicUsize>,
    /// Calls sent to the worker and not yet answered.
    calls: Arc<AtomicUsize>,
}

/// The worker threads of a host.
pub(crate) struct Pool {
    workers: Vec<WorkerHandle>,
    wire: Wire,
}

impl Pool {
    /// Starts `count` workers (at least one).
    pub(crate) fn start(
        count: usize,
        engine: Engine,
        wire: Wire,
        max_nesting: usize,
    ) -> Result<Pool, WasmError> {
        let mut workers = Vec::with_capacity(count.max(1));
        for n in 0..count.max(1) {
            let (tx, rx) = mpsc::channel();
            let guests = Arc::new(AtomicUsize::new(0));
            let ctx_tx = tx.clone();
            let ctx_guests = guests.clone();
            let engine = engine.clone();
            std::thread::Builder::new()
                .name(format!("wasm-worker-{n}"))
                .spawn(move || {
                    run_worker(WorkerCtx {
                        engine,
                        wire,
                        max_nesting,
                        rx,
                        tx: ctx_tx,
                        guests: ctx_guests,
                        slots: RefCell::new(HashMap::new()),
                        busy: RefCell::new(HashSet::new()),
                        deferred: RefCell::new(VecDeque::new()),
                        waiting: RefCell::new(HashSet::new()),
                        pongs: RefCell::new(HashMap::new()),
                        depth: Cell::new(0),
                        next_token: Cell::new(1),
                    })
                })
                .map_err(|e| WasmError::Setup(format!("starting a wasm worker: {e}")))?;
            workers.push(WorkerHandle {
                tx,
                guests,
                calls: Arc::new(AtomicUsize::new(0)),
            });
        }
        Ok(Pool { workers, wire })
    }

    pub(crate) fn len(&self) -> usize {
        self.workers.len()
    }

    pub(crate) fn load(&self) -> Vec<usize> {
        self.workers
            .iter()
            .map(|w| w.guests.load(Ordering::Relaxed))
            .collect()
    }

    pub(crate) async fn instantiate(
        &self,
        module: Module,
        spec: GuestSpec,
    ) -> Result<Guest, WasmError> {
        let worker = self
            .workers
            .iter()
            .min_by_key(|w| w.guests.load(Ordering::Relaxed))
            .ok_or(WasmError::Closed)?
            .clone();
        let id = NEXT_GUEST.fetch_add(1, Ordering::Relaxed);
        let wire = self.wire;
        let (reply, answer) = oneshot::channel();
        worker
            .tx
            .send(Request::Instantiate {
                id,
                module,
                spec: Box::new(spec),
                reply,
            })
            .map_err(|_| WasmError::Closed)?;
        answer.await.map_err(|_| WasmError::Closed)??;
        Ok(Guest { id, worker, wire })
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for worker in &self.workers {
            let _ = worker.tx.send(Request::Shutdown);
        }
    }
}

/// Counts a call as in flight on its worker until dropped (also when the caller gives up).
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
    id: u64,
    worker: WorkerHandle,
    wire: Wire,
}

impl std::fmt::Debug for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guest").field("id", &self.id).finish()
    }
}

impl Guest {
    async fn call(&self, export: Export, frame: Vec<u8>) -> Result<Option<Vec<u8>>, WasmError> {
        let (reply, mut answer) = oneshot::channel();
        let in_flight = InFlight::enter(&self.worker.calls);
        self.worker
            .tx
            .send(Request::Call {
                id: self.id,
                export,
                frame,
                reply,
            })
            .map_err(|_| WasmError::Closed)?;
        // The only call on its worker: the answer usually comes within microseconds, so poll
        // for it briefly instead of parking this thread at once (see [`SPIN`]).
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
        let frame = details_frame(&self.wire, details)?;
        match self.call(Export::Init, frame).await? {
            Some(answer) => decode_status(&self.wire, &answer),
            None => Err(WasmError::Answer(
                "mechtron_init returned no status frame".to_string(),
            )),
        }
    }

    /// Hands `ping` to the guest's `mechtron_handle` and returns its answer (200, empty, when
    /// the guest absorbs it).
    pub async fn handle(&self, ping: &Ping) -> Result<ReflectedCore, WasmError> {
        let frame = ping_frame(&self.wire, ping)?;
        let answer = self.call(Export::Handle, frame).await?;
        decode_reflected(&self.wire, answer.as_deref())
    }

    /// Hands `ripple`, as delivered to this guest (addressed to it alone), to the guest's
    /// `mechtron_handle` and returns its answer, which becomes the Echo (SPEC §11.3: the
    /// guest answers a Ripple as it answers a Ping).
    pub async fn handle_ripple(&self, ripple: &Ripple) -> Result<ReflectedCore, WasmError> {
        let frame = encode_input(&self.wire, "ripple", &DirectedWave::Ripple(ripple.clone()))?;
        let answer = self.call(Export::Handle, frame).await?;
        decode_reflected(&self.wire, answer.as_deref())
    }

    /// Throws the instance away and instantiates the module again (fresh state, not broken);
    /// run [`Guest::init`] after it.
    pub async fn restart(&self) -> Result<(), WasmError> {
        let (reply, answer) = oneshot::channel();
        self.worker
            .tx
            .send(Request::Restart { id: self.id, reply })
            .map_err(|_| WasmError::Closed)?;
        answer.await.map_err(|_| WasmError::Closed)?
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.worker.tx.send(Request::Remove { id: self.id });
    }
}

/// The way back for the answer to a wave a guest sent — a Ping's Pong, a Ripple's Echoes:
/// answer through it exactly once, from any thread. Dropping it unanswered answers a Ping
/// with a 500 and a Ripple with no Echoes.
pub struct PongReply {
    tx: Sender<Request>,
    token: u64,
    sent: bool,
}

impl std::fmt::Debug for PongReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PongReply")
            .field("token", &self.token)
            .finish()
    }
}

impl PongReply {
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
        let _ = self.tx.send(Request::Pong {
            token: self.token,
            pong: Some(reply),
        });
    }
}

impl Drop for PongReply {
    fn drop(&mut self) {
        if !self.sent {
            let _ = self.tx.send(Request::Pong {
                token: self.token,
                pong: None,
            });
        }
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
}

/// One guest on its worker.
struct Slot {
    store: Store,
    module: Module,
    spec: GuestSpec,
    memory: Memory,
    alloc: TypedFunction<u32, u32>,
    dealloc: TypedFunction<(u32, u32), ()>,
    init: TypedFunction<(u32, u32), u64>,
    handle: TypedFunction<(u32, u32), u64>,
    remaining: Global,
    exhausted: Global,
    broken: Option<String>,
}

struct WorkerCtx {
    engine: Engine,
    wire: Wire,
    max_nesting: usize,
    rx: Receiver<Request>,
    tx: Sender<Request>,
    guests: Arc<AtomicUsize>,
    slots: RefCell<HashMap<u64, Slot>>,
    busy: RefCell<HashSet<u64>>,
    deferred: RefCell<VecDeque<Request>>,
    waiting: RefCell<HashSet<u64>>,
    pongs: RefCell<HashMap<u64, Option<Reply>>>,
    depth: Cell<usize>,
    next_token: Cell<u64>,
}

thread_local! {
    static CTX: OnceCell<Rc<WorkerCtx>> = const { OnceCell::new() };
}

fn current_ctx() -> Option<Rc<WorkerCtx>> {
    CTX.with(|ctx| ctx.get().cloned())
}

fn run_worker(ctx: WorkerCtx) {
    let ctx = Rc::new(ctx);
    if CTX.with(|cell| cell.set(ctx.clone())).is_err() {
        return;
    }
    loop {
        let deferred = ctx.deferred.borrow_mut().pop_front();
        let request = match deferred {
            Some(request) => request,
            None => match receive(&ctx.rx) {
                Ok(request) => request,
                Err(_) => break,
            },
        };
        if matches!(request, Request::Shutdown) {
            break;
        }
        ctx.serve(request);
    }
    ctx.slots.borrow_mut().clear();
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

/// The next request: polled for [`SPIN`], then waited for.
fn receive(rx: &Receiver<Request>) -> Result<Request, mpsc::RecvError> {
    match spin(|| match rx.try_recv() {
        Err(mpsc::TryRecvError::Empty) => None,
        other => Some(other),
    }) {
        Some(received) => received.map_err(|_| mpsc::RecvError),
        None => rx.recv(),
    }
}

impl WorkerCtx {
    /// Serves one request (possibly nested inside a guest waiting for a Pong).
    fn serve(&self, request: Request) {
        if let Some(id) = request.guest()
            && self.busy.borrow().contains(&id)
        {
            self.deferred.borrow_mut().push_back(request);
            return;
        }
        match request {
            Request::Instantiate {
                id,
                module,
                spec,
                reply,
            } => {
                let result = guarded(|| self.instantiate(module, *spec)).map(|slot| {
                    self.slots.borrow_mut().insert(id, slot);
                    self.guests.fetch_add(1, Ordering::Relaxed);
                });
                let _ = reply.send(result);
            }
            Request::Call {
                id,
                export,
                frame,
                reply,
            } => {
                let result = self.with_slot(id, |slot| slot.call(&self.wire, export, &frame));
                let _ = reply.send(result);
            }
            Request::Restart { id, reply } => {
                let result = self.with_slot(id, |slot| {
                    let fresh =
                        guarded(|| self.instantiate(slot.module.clone(), slot.spec.clone()))?;
                    *slot = fresh;
                    Ok(())
                });
                let _ = reply.send(result);
            }
            Request::Remove { id } => {
                if self.slots.borrow_mut().remove(&id).is_some() {
                    self.guests.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Request::Pong { token, pong } => {
                if self.waiting.borrow().contains(&token) {
                    self.pongs.borrow_mut().insert(token, pong);
                }
            }
            Request::Shutdown => {
                // Only the top-level loop stops the worker; keep it for that loop.
                self.deferred.borrow_mut().push_back(Request::Shutdown);
            }
        }
    }

    /// Runs `f` on guest `id`'s slot, taken out of the map (so nested serving can reach the
    /// others) and marked busy meanwhile.
    fn with_slot<R>(
        &self,
        id: u64,
        f: impl FnOnce(&mut Slot) -> Result<R, WasmError>,
    ) -> Result<R, WasmError> {
        let Some(mut slot) = self.slots.borrow_mut().remove(&id) else {
            return Err(WasmError::Closed);
        };
        self.busy.borrow_mut().insert(id);
        let result = match catch_unwind(AssertUnwindSafe(|| f(&mut slot))) {
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
        self.busy.borrow_mut().remove(&id);
        self.slots.borrow_mut().insert(id, slot);
        result
    }

    fn instantiate(&self, module: Module, spec: GuestSpec) -> Result<Slot, WasmError> {
        instantiate(&self.engine, self.wire, module, spec)
    }

    /// The first deferred request whose guest is no longer mid-call (never a shutdown).
    fn ready_deferred(&self) -> Option<Request> {
        let mut deferred = self.deferred.borrow_mut();
        let busy = self.busy.borrow();
        let at = deferred.iter().position(|request| match request {
            Request::Shutdown | Request::Pong { .. } => false,
            other => other.guest().is_none_or(|id| !busy.contains(&id)),
        })?;
        deferred.remove(at)
    }

    /// Waits for the answer of `token`, serving other guests meanwhile; `None` if the outbox
    /// dropped the reply, `Err(())` on timeout.
    fn wait_pong(&self, token: u64, deadline: Instant) -> Result<Option<Reply>, ()> {
        self.depth.set(self.depth.get() + 1);
        let result = loop {
            if let Some(pong) = self.pongs.borrow_mut().remove(&token) {
                break Ok(pong);
            }
            let now = Instant::now();
            if now >= deadline {
                break Err(());
            }
            if self.depth.get() <= self.max_nesting
                && let Some(request) = self.ready_deferred()
            {
                self.serve(request);
                continue;
            }
            match self.rx.recv_timeout(deadline - now) {
                Ok(Request::Pong { token: t, pong }) if t == token => break Ok(pong),
                Ok(request @ Request::Pong { .. }) => self.serve(request),
                Ok(request) => {
                    if self.depth.get() <= self.max_nesting && !matches!(request, Request::Shutdown)
                    {
                        self.serve(request);
                    } else {
                        self.deferred.borrow_mut().push_back(request);
                    }
                }
                Err(RecvTimeoutError::Timeout) => break Err(()),
                Err(RecvTimeoutError::Disconnected) => break Ok(None),
            }
        };
        self.depth.set(self.depth.get() - 1);
        result
    }
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
    let mut slot = Slot {
        store,
        module,
        spec,
        memory,
        alloc,
        dealloc,
        init,
        handle,
        remaining,
        exhausted,
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

    /// The error for a call of `call` that did not return normally.
    fn failure(&mut self, call: &'static str, error: RuntimeError) -> WasmError {
        if matches!(self.exhausted.get(&mut self.store), Value::I32(n) if n != 0) {
            WasmError::FuelExhausted {
                call,
                fuel: self.spec.limits.fuel(),
            }
        } else {
            WasmError::Trap {
                call,
                reason: error.message(),
            }
        }
    }

    fn call(
        &mut self,
        wire: &Wire,
        export: Export,
        input: &[u8],
    ) -> Result<Option<Vec<u8>>, WasmError> {
        if let Some(reason) = &self.broken {
            return Err(WasmError::Broken(reason.clone()));
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
    let data = env.data();
    let mut wave: DirectedWave = data.wire.decode(&frame).map_err(|source| {
        host_error(WasmError::Frame {
            what: "host_send",
            source,
        })
    })?;
    wave.set_agent(Agent::Point(data.point.clone()));
    wave.set_from(data.surface.clone());
    let outbox = data.outbox.clone();
    let send_timeout = data.send_timeout;
    let ping = match wave {
        DirectedWave::Signal(_) => {
            outbox.send(wave, None);
            return Ok(0);
        }
        DirectedWave::Ping(ping) => ping,
        DirectedWave::Ripple(ripple) => {
            let echoes = send_ripple(outbox, send_timeout, ripple)?;
            let frame = encode_input(&env.data().wire, "echoes", &echoes).map_err(host_error)?;
            return give_guest(&mut env, "echoes", &frame);
        }
    };
    let ctx = current_ctx().ok_or_else(|| host_error("host_send outside a wasm worker"))?;
    let token = ctx.next_token.get();
    ctx.next_token.set(token + 1);
    ctx.waiting.borrow_mut().insert(token);
    let wait = send_timeout.min(ping.handling.wait.as_duration());
    let deadline = Instant::now() + wait;
    let reply = PongReply {
        tx: ctx.tx.clone(),
        token,
        sent: false,
    };
    outbox.send(DirectedWave::Ping(ping.clone()), Some(reply));
    let answer = ctx.wait_pong(token, deadline);
    ctx.waiting.borrow_mut().remove(&token);
    ctx.pongs.borrow_mut().remove(&token);
    let pong = match answer {
        Ok(Some(reply)) => match reply {
            Reply::Pong(pong) => *pong,
            Reply::Echoes(_) => ping.pong(ReflectedCore::error(
                cosmic_space::StatusCode::ERROR,
                "the host answered the ping with echoes",
            )),
        },
        Ok(None) => ping.pong(ReflectedCore::error(
            cosmic_space::StatusCode::ERROR,
            "the host dropped the ping without an answer",
        )),
        Err(()) => ping.pong(ReflectedCore::timeout()),
    };
    let frame = pong_frame(&env.data().wire, &pong).map_err(host_error)?;
    give_guest(&mut env, "pong", &frame)
}

/// Sends a guest's Ripple and waits for its Echoes, serving the worker's other guests
/// meanwhile. Its wait time is cut to the guest's send timeout; whatever the Ripple's rule,
/// the guest gets what arrived by then (nothing if the host dropped it).
///
/// # Errors
/// A Ripple to `Watchers` or `Stars`: those are the infrastructure's deliveries (a channel's,
/// a machine's), and a guest may not pass for either.
fn send_ripple(
    outbox: Arc<dyn GuestOutbox>,
    send_timeout: Duration,
    mut ripple: Ripple,
) -> Result<Vec<Echo>, RuntimeError> {
    if let Recipients::Watchers(_) | Recipients::Stars = ripple.to {
        return Err(host_error(format!(
            "a guest's Ripple goes to a list of points or a selector, not to {}",
            ripple.to
        )));
    }
    let ctx = current_ctx().ok_or_else(|| host_error("host_send outside a wasm worker"))?;
    let wait = send_timeout.min(ripple.handling.wait.as_duration());
    ripple.handling.wait =
        WaitTime::from_millis(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
    let token = ctx.next_token.get();
    ctx.next_token.set(token + 1);
    ctx.waiting.borrow_mut().insert(token);
    let deadline = Instant::now() + wait + RIPPLE_GRACE;
    let reply = PongReply {
        tx: ctx.tx.clone(),
        token,
        sent: false,
    };
    outbox.send(DirectedWave::Ripple(ripple), Some(reply));
    let answer = ctx.wait_pong(token, deadline);
    ctx.waiting.borrow_mut().remove(&token);
    ctx.pongs.borrow_mut().remove(&token);
    Ok(match answer {
        Ok(Some(reply)) => match reply {
            Reply::Echoes(echoes) => echoes,
            Reply::Pong(_) => Vec::new(),
        },
        Ok(None) | Err(()) => Vec::new(),
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
        },
    );
    host_imports(store, &env)
}
