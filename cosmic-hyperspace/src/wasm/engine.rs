//! The engine side of the wasm host: compiling with cranelift and fuel metering, the memory
//! tunables that keep idle guests cheap, and the module caches (memory, then disk).

use std::cell::Cell;
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::Arc;

use parking_lot::Mutex;
use wasmer::sys::vm::{
    MemoryError, MemoryStyle, TableStyle, VMMemory, VMMemoryDefinition, VMTable, VMTableDefinition,
};
use wasmer::sys::{
    BaseTunables, CompilerConfig, Cranelift, EngineBuilder, NativeEngineExt, Tunables,
};
use wasmer::wasmparser::Operator;
use wasmer::{Engine, ExternType, MemoryType, Module, Pages, TableType};
use wasmer_middlewares::Metering;

use super::cache::{self, CacheSource, DiskCache};
use super::worker::{Guest, Pool, PoolConfig, PoolStats};
use super::{GuestSpec, WasmConfig, WasmError};

/// The wasmer release line compiled artifacts belong to (part of the cache key).
const WASMER_VERSION: &str = "wasmer 7.4 sys";

/// Everything about compilation that changes the artifact (part of the cache key): bump it when
/// any setting below changes.
const COMPILE_SETTINGS: &str =
    "cranelift default-opt; metering v1 cost=1/operator; memory dynamic guard=64KiB; abi 1";

/// The offset guard after each linear memory: small, so that 10k idle guests do not reserve
/// terabytes of address space (SPEC §15); cranelift emits bounds checks instead.
const OFFSET_GUARD: u64 = 64 * 1024;

thread_local! {
    /// The memory cap (in pages) of the guest being instantiated on this thread; read by
    /// [`GuestTunables`] when the instance's memory is created.
    static MEMORY_CAP: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Runs `f` with the memory cap of guests instantiated on this thread set to `pages`.
pub(crate) fn with_memory_cap<R>(pages: u32, f: impl FnOnce() -> R) -> R {
    MEMORY_CAP.with(|cap| cap.set(Some(pages)));
    let result = f();
    MEMORY_CAP.with(|cap| cap.set(None));
    result
}

/// Memories are dynamic with a small guard (not wasmer's default 8 GiB static reservation per
/// instance), and capped at the guest's memory limit when they are created.
struct GuestTunables {
    base: BaseTunables,
}

impl GuestTunables {
    fn new() -> GuestTunables {
        GuestTunables {
            base: BaseTunables::new(),
        }
    }
}

impl GuestTunables {
    fn capped(ty: &MemoryType) -> Result<MemoryType, MemoryError> {
        let Some(cap) = MEMORY_CAP.with(Cell::get) else {
            return Ok(*ty);
        };
        let cap = Pages(cap);
        if ty.minimum > cap {
            return Err(MemoryError::Generic(format!(
                "the memory's minimum of {} pages exceeds the limit of {} pages",
                ty.minimum.0, cap.0
            )));
        }
        let maximum = ty.maximum.map_or(cap, |max| max.min(cap));
        Ok(MemoryType::new(ty.minimum, Some(maximum), ty.shared))
    }
}

impl Tunables for GuestTunables {
    fn memory_style(&self, _memory: &MemoryType) -> MemoryStyle {
        MemoryStyle::Dynamic {
            offset_guard_size: OFFSET_GUARD,
        }
    }

    fn table_style(&self, table: &TableType) -> TableStyle {
        self.base.table_style(table)
    }

    fn create_host_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
    ) -> Result<VMMemory, MemoryError> {
        self.base.create_host_memory(&Self::capped(ty)?, style)
    }

    unsafe fn create_vm_memory(
        &self,
        ty: &MemoryType,
        _compiled_for: &MemoryStyle,
        vm_definition_location: NonNull<VMMemoryDefinition>,
    ) -> Result<VMMemory, MemoryError> {
        let ty = Self::capped(ty)?;
        // Compiled code is for a dynamic memory (it reads base and length from the definition on
        // every access, so it runs on either style). A dynamic memory that grows past its
        // reservation moves, copying — and so touching — every page it had; a guest whose
        // allocator grows memory once would then have all of it resident. Created static, the
        // memory reserves its address space up front (no RSS, no overcommit charge while
        // inaccessible) and grows in place, so only pages a guest touches cost memory.
        // SAFETY: the caller's contract (a valid, owned definition location) is passed on.
        unsafe {
            self.base
                .create_vm_memory(&ty, &MemoryStyle::Static, vm_definition_location)
        }
    }

    fn create_host_table(&self, ty: &TableType, style: &TableStyle) -> Result<VMTable, String> {
        self.base.create_host_table(ty, style)
    }

    unsafe fn create_vm_table(
        &self,
        ty: &TableType,
        style: &TableStyle,
        vm_definition_location: NonNull<VMTableDefinition>,
    ) -> Result<VMTable, String> {
        // SAFETY: the caller's contract (a valid, owned definition location) is passed on.
        unsafe { self.base.create_vm_table(ty, style, vm_definition_location) }
    }
}

fn operator_cost(_operator: &Operator<'_>) -> u64 {
    1
}

/// A compiled guest module, ready to instantiate (cheap to clone; shared by every guest of the
/// same wasm).
#[derive(Clone)]
pub struct GuestModule {
    pub(crate) module: Module,
    key: Arc<str>,
}

impl std::fmt::Debug for GuestModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestModule")
            .field("key", &self.key)
            .finish()
    }
}

impl GuestModule {
    /// The cache key: hex sha256 of the wasm, the wasmer version and the compile settings.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The bytes of memory the module's memory needs at start (its declared minimum).
    pub fn min_memory(&self) -> u64 {
        self.module
            .exports()
            .filter_map(|export| match export.ty() {
                ExternType::Memory(ty) => Some(u64::from(ty.minimum.0) * 65536),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }
}

/// The result of [`WasmHost::compile`].
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The module.
    pub module: GuestModule,
    /// Where it came from (hit in memory, hit on disk, or compiled).
    pub source: CacheSource,
    /// Why the disk cache could not be written, if it could not (the module is fine).
    pub cache_error: Option<String>,
}

struct HostInner {
    engine: Engine,
    cache: Option<DiskCache>,
    modules: Mutex<HashMap<Arc<str>, Module>>,
    pool: Pool,
}

/// The wasm host of a machine: one engine, the module caches and the worker threads guests
/// live on. Cheap to clone.
#[derive(Clone)]
pub struct WasmHost {
    inner: Arc<HostInner>,
}

impl std::fmt::Debug for WasmHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmHost")
            .field("cache", &self.inner.cache)
            .field("pool", &self.inner.pool.stats())
            .finish_non_exhaustive()
    }
}

impl WasmHost {
    /// A host with `config`: opens (creates) the cache directory and starts the workers.
    pub fn new(config: WasmConfig) -> Result<WasmHost, WasmError> {
        let cache = match &config.cache_dir {
            Some(dir) => Some(DiskCache::open(dir).map_err(|e| {
                WasmError::Setup(format!("cache directory {}: {e}", dir.display()))
            })?),
            None => None,
        };
        let mut engine = Engine::headless();
        engine.set_tunables(GuestTunables::new());
        let workers = if config.workers == 0 {
            std::thread::available_parallelism().map_or(2, usize::from)
        } else {
            config.workers
        };
        let pool = Pool::start(
            PoolConfig {
                warm: workers,
                max: config.max_workers,
                queue: config.queue,
            },
            engine.clone(),
            config.wire,
            config.observer.clone(),
        )?;
        Ok(WasmHost {
            inner: Arc::new(HostInner {
                engine,
                cache,
                modules: Mutex::new(HashMap::new()),
                pool,
            }),
        })
    }

    /// The compiled module of `wasm`: from memory, else from the disk cache, else compiled
    /// now (CPU-heavy: call it off the async executor, e.g. in `spawn_blocking`).
    pub fn compile(&self, wasm: &[u8]) -> Result<Compiled, WasmError> {
        let key: Arc<str> =
            cache::key(&[wasm, WASMER_VERSION.as_bytes(), COMPILE_SETTINGS.as_bytes()]).into();
        if let Some(module) = self.inner.modules.lock().get(&key) {
            return Ok(self.compiled(module.clone(), key, CacheSource::Memory, None));
        }
        if let Some(cache) = &self.inner.cache
            && let Some(payload) = cache.load(&key)
        {
            // SAFETY: the payload is what `Module::serialize` wrote under this key (same wasmer
            // version and settings), verified against the checksum stored with it.
            if let Ok(module) = unsafe { Module::deserialize(&self.inner.engine, payload) } {
                return Ok(self.remember(module, key, CacheSource::Disk, None));
            }
        }
        let serialized = compile_serialized(wasm)?;
        let cache_error = self
            .inner
            .cache
            .as_ref()
            .and_then(|cache| cache.store(&key, &serialized).err())
            .map(|e| e.to_string());
        // SAFETY: `serialized` was produced by `Module::serialize` just now, in this process.
        let module = unsafe { Module::deserialize(&self.inner.engine, serialized) }
            .map_err(|e| WasmError::Compile(format!("reloading the compiled module: {e}")))?;
        Ok(self.remember(module, key, CacheSource::Compiled, cache_error))
    }

    fn remember(
        &self,
        module: Module,
        key: Arc<str>,
        source: CacheSource,
        cache_error: Option<String>,
    ) -> Compiled {
        self.inner
            .modules
            .lock()
            .insert(key.clone(), module.clone());
        self.compiled(module, key, source, cache_error)
    }

    fn compiled(
        &self,
        module: Module,
        key: Arc<str>,
        source: CacheSource,
        cache_error: Option<String>,
    ) -> Compiled {
        Compiled {
            module: GuestModule { module, key },
            source,
            cache_error,
        }
    }

    /// Forgets the in-memory copy of every module (guests keep theirs); the next compile of a
    /// wasm reads the disk cache.
    pub fn forget_modules(&self) {
        self.inner.modules.lock().clear();
    }

    /// A new guest of `module` set up by `spec`: instantiated (on a worker), its
    /// ABI version checked; not yet initialised (call [`Guest::init`]).
    pub async fn instantiate(
        &self,
        module: &GuestModule,
        spec: GuestSpec,
    ) -> Result<Guest, WasmError> {
        let needed = module.min_memory();
        if needed > spec.limits.memory() {
            return Err(WasmError::MemoryLimit {
                needed,
                limit: spec.limits.memory(),
            });
        }
        self.inner
            .pool
            .instantiate(module.module.clone(), spec)
            .await
    }

    /// Live guests, worker threads, and the calls refused, not started or stopped so far.
    pub fn stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    /// Measures the floor of a guest call for benchmarks: a raw wasmer call of the export
    /// `name` (`() -> ()`) of `module`, `calls` times on one thread, with no host around it.
    /// Returns the nanoseconds of each call.
    pub fn raw_call_floor(
        &self,
        module: &GuestModule,
        name: &str,
        calls: usize,
    ) -> Result<Vec<u64>, WasmError> {
        super::worker::raw_call_floor(&self.inner.engine, &module.module, name, calls)
    }
}

/// Compiles `wasm` with a fresh cranelift engine (the metering middleware keeps per-module
/// state, so each compile gets its own) and returns the serialized artifact.
fn compile_serialized(wasm: &[u8]) -> Result<Vec<u8>, WasmError> {
    let mut compiler = Cranelift::new();
    compiler.push_middleware(Arc::new(Metering::new(0, operator_cost)));
    let mut engine: Engine = EngineBuilder::new(compiler).engine().into();
    engine.set_tunables(GuestTunables::new());
    let module = Module::new(&engine, wasm).map_err(|e| WasmError::Compile(e.to_string()))?;
    module
        .serialize()
        .map(|bytes| bytes.to_vec())
        .map_err(|e| WasmError::Compile(format!("serializing the compiled module: {e}")))
}
