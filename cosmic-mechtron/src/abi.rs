//! The guest side of the host ⇄ guest ABI (SPEC §11.3, `docs/decisions/guest-sdk.md`).
//!
//! `#[mechtron]` expands (once per wasm) to the exports `mechtron_abi_version`,
//! `mechtron_alloc`, `mechtron_dealloc`, `mechtron_init` and `mechtron_handle`; each is a thin
//! shell over the functions here. Everything that touches bytes goes through
//! [`cosmic_space::wire`]; the frame-level functions ([`init_frame`], [`handle_frame`]) take
//! and return plain byte slices so they run natively in tests as they do in wasm.
//!
//! Who frees what:
//! - A buffer the host passes in (to `mechtron_init`/`mechtron_handle`) was allocated by the
//!   host through `mechtron_alloc`; the guest frees it once it has decoded it.
//! - A buffer the guest returns (a packed `(ptr << 32) | len`) was allocated by the guest; the
//!   host frees it with `mechtron_dealloc(ptr, len)` after reading it. `0` returns nothing.
//! - A buffer the guest passes to an import (`host_send`, `host_log`, `host_random`) stays
//!   the guest's: the host only reads (or, for `host_random`, fills) it during the call.
//! - A buffer `host_send` returns was allocated by the host through `mechtron_alloc`; the
//!   guest frees it after decoding it.

use std::rc::Rc;

use cosmic_space::{
    Details, DirectedWave, LogLevel, Ping, ReflectedCore, Status, StatusCode, WireError, wire,
};
use serde::{Deserialize, Serialize};

use crate::ctx::{Ctx, Host};
use crate::error::Error;
use crate::mechtron::{Instance, Registration, create};

/// The ABI version the guest speaks (`mechtron_abi_version`).
pub const ABI_VERSION: u32 = 1;

/// One `host_log` frame: the level, then the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// How important the line is.
    pub level: LogLevel,
    /// The line.
    pub message: String,
}

/// A live mechtron with what it answers waves with: its details and its host.
pub struct Guest {
    instance: Box<dyn Instance>,
    details: Rc<Details>,
    host: Rc<dyn Host>,
}

impl std::fmt::Debug for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guest")
            .field("point", &self.details.stub.point)
            .finish_non_exhaustive()
    }
}

impl Guest {
    /// Creates the mechtron `details` names (property `mechtron`) among `registry`.
    pub fn init(
        registry: &[Registration],
        details: Details,
        host: Rc<dyn Host>,
    ) -> Result<Guest, Error> {
        let instance = create(registry, &details)?;
        Ok(Guest {
            instance,
            details: Rc::new(details),
            host,
        })
    }

    /// Answers `wave`; `None` for a Signal (absorbed: signals are never answered).
    pub fn handle(&mut self, wave: DirectedWave) -> Option<ReflectedCore> {
        let signal = matches!(wave, DirectedWave::Signal(_));
        let mut ctx = Ctx::new(wave, self.details.clone(), self.host.clone());
        let core = self.instance.handle(&mut ctx);
        (!signal).then_some(core)
    }
}

/// `mechtron_init` on bytes: decodes the Details `frame`, creates the mechtron, and returns it
/// with the `Status` frame to hand back (`Ready`, or `Fatal(reason)`).
pub fn init_frame(
    registry: &[Registration],
    frame: &[u8],
    host: Rc<dyn Host>,
) -> (Option<Guest>, Vec<u8>) {
    let result = wire::decode::<Details>(frame)
        .map_err(Error::from)
        .and_then(|details| Guest::init(registry, details, host));
    match result {
        Ok(guest) => (Some(guest), encode_status(&Status::Ready)),
        Err(error) => (None, encode_status(&Status::Fatal(error.to_string()))),
    }
}

/// `mechtron_handle` on bytes: decodes the directed wave `frame`, answers it with `guest`
/// (503 when there is none: init failed or never ran), and returns the `ReflectedCore` frame;
/// `None` when the wave was a Signal.
pub fn handle_frame(guest: Option<&mut Guest>, frame: &[u8]) -> Option<Vec<u8>> {
    match decode_directed(frame) {
        Ok(wave) => handle_wave(guest, wave),
        Err(error) => Some(encode_core(&ReflectedCore::bad_request(format!(
            "the guest could not read the wave: {error}"
        )))),
    }
}

/// Answers a decoded wave like [`handle_frame`].
pub fn handle_wave(guest: Option<&mut Guest>, wave: DirectedWave) -> Option<Vec<u8>> {
    let core = match guest {
        Some(guest) => guest.handle(wave)?,
        None if matches!(wave, DirectedWave::Signal(_)) => return None,
        None => ReflectedCore::error(StatusCode::UNAVAILABLE, "the mechtron is not initialized"),
    };
    Some(encode_core(&core))
}

/// A directed wave from a frame of [`DirectedWave`], or of a bare [`Ping`] (both are
/// accepted: their first bytes cannot be confused, a `DirectedWave` tag is 0–2 and a Ping
/// begins with its 16-byte id's length, 16).
pub fn decode_directed(frame: &[u8]) -> Result<DirectedWave, WireError> {
    match wire::decode::<DirectedWave>(frame) {
        Ok(wave) => Ok(wave),
        Err(error) => wire::decode::<Ping>(frame)
            .map(DirectedWave::Ping)
            .map_err(|_| error),
    }
}

/// A `ReflectedCore` frame; a core too large to encode becomes a 500 saying so.
pub fn encode_core(core: &ReflectedCore) -> Vec<u8> {
    wire::encode(core).unwrap_or_else(|error| {
        let fallback = ReflectedCore::error(
            StatusCode::ERROR,
            format!("the answer cannot be sent: {error}"),
        );
        wire::encode(&fallback).unwrap_or_default()
    })
}

fn encode_status(status: &Status) -> Vec<u8> {
    wire::encode(status).unwrap_or_else(|error| {
        let fallback = Status::Fatal(format!("the init status cannot be sent: {error}"));
        wire::encode(&fallback).unwrap_or_default()
    })
}

/// Allocates `len` bytes for the host to write into (`mechtron_alloc`); never null.
pub fn alloc_buffer(len: usize) -> *mut u8 {
    let Ok(layout) = std::alloc::Layout::array::<u8>(len) else {
        return std::ptr::null_mut();
    };
    if len == 0 {
        return std::ptr::NonNull::<u8>::dangling().as_ptr();
    }
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { std::alloc::alloc(layout) };
    if ptr.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    ptr
}

/// Frees a buffer of `len` bytes from [`alloc_buffer`] or [`into_buffer`]
/// (`mechtron_dealloc`).
///
/// # Safety
/// `ptr` must come from [`alloc_buffer`]`(len)` or [`into_buffer`] of a `len`-byte frame,
/// and not have been freed.
pub unsafe fn dealloc_buffer(ptr: *mut u8, len: usize) {
    if len == 0 || ptr.is_null() {
        return;
    }
    let Ok(layout) = std::alloc::Layout::array::<u8>(len) else {
        return;
    };
    // SAFETY: the caller promises ptr was allocated with this layout.
    unsafe { std::alloc::dealloc(ptr, layout) }
}

/// Hands `frame` over as a buffer of exactly its length (what a packed return points at):
/// the pointer and the length; free it with [`dealloc_buffer`].
pub fn into_buffer(frame: Vec<u8>) -> (*mut u8, usize) {
    let len = frame.len();
    let boxed = frame.into_boxed_slice();
    (Box::into_raw(boxed).cast::<u8>(), len)
}

/// The wasm32 side: the host imports, the [`Host`] they make, the instance and the bodies of
/// the exports `#[mechtron]` generates.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod wasm {
    use std::cell::RefCell;
    use std::rc::Rc;

    use cosmic_space::{
        DirectedWave, Echo, LogLevel, Logger, Ping, Pong, ReflectedCore, Ripple, Signal,
        StatusCode, Transmitter, wire,
    };

    use super::{Guest, LogRecord, alloc_buffer, dealloc_buffer, into_buffer};
    use crate::ctx::Host;
    use crate::mechtron::Registration;

    #[link(wasm_import_module = "cosmic")]
    unsafe extern "C" {
        fn host_send(ptr: u32, len: u32) -> u64;
        fn host_log(ptr: u32, len: u32);
        fn host_now() -> u64;
        fn host_random(ptr: u32, len: u32);
    }

    thread_local! {
        static GUEST: RefCell<Option<Guest>> = const { RefCell::new(None) };
    }

    /// The host as the `cosmic` imports reach it.
    #[derive(Debug, Clone, Copy)]
    pub struct WasmHost;

    impl WasmHost {
        /// Sends a directed wave; the host's answer frame, if any (freed here).
        fn send(&self, wave: &DirectedWave) -> Result<Option<Vec<u8>>, String> {
            let frame = wire::encode(wave).map_err(|e| e.to_string())?;
            // SAFETY: the frame stays alive and unchanged for the call.
            let packed = unsafe { host_send(frame.as_ptr() as u32, frame.len() as u32) };
            if packed == 0 {
                return Ok(None);
            }
            let (ptr, len) = wire::unpack_ptr_len(packed);
            // SAFETY: the host wrote `len` bytes into a buffer it took from mechtron_alloc.
            let answer = unsafe {
                std::slice::from_raw_parts(ptr as usize as *const u8, len as usize).to_vec()
            };
            // SAFETY: the buffer came from mechtron_alloc(len) and is ours to free.
            unsafe { dealloc_buffer(ptr as usize as *mut u8, len as usize) };
            Ok(Some(answer))
        }
    }

    impl Transmitter for WasmHost {
        fn ping(&self, ping: Ping) -> Pong {
            let wave = DirectedWave::Ping(ping);
            let answer = self.send(&wave);
            let DirectedWave::Ping(ping) = wave else {
                unreachable!("the wave was made a Ping just above")
            };
            let failed =
                |message: String| ping.pong(ReflectedCore::error(StatusCode::ERROR, message));
            match answer {
                Ok(Some(frame)) => wire::decode::<Pong>(&frame)
                    .unwrap_or_else(|e| failed(format!("the host's Pong is malformed: {e}"))),
                Ok(None) => failed("the host answered no Pong".to_string()),
                Err(message) => failed(format!("the Ping cannot be sent: {message}")),
            }
        }

        fn signal(&self, signal: Signal) {
            let _ = self.send(&DirectedWave::Signal(signal));
        }

        fn ripple(&self, ripple: Ripple) -> Vec<Echo> {
            match self.send(&DirectedWave::Ripple(ripple)) {
                Ok(Some(frame)) => wire::decode::<Vec<Echo>>(&frame).unwrap_or_default(),
                _ => Vec::new(),
            }
        }
    }

    impl Logger for WasmHost {
        fn log(&self, level: LogLevel, message: &str) {
            let record = LogRecord {
                level,
                message: message.to_string(),
            };
            if let Ok(frame) = wire::encode(&record) {
                // SAFETY: the frame stays alive and unchanged for the call.
                unsafe { host_log(frame.as_ptr() as u32, frame.len() as u32) };
            }
        }
    }

    impl Host for WasmHost {
        fn now(&self) -> u64 {
            // SAFETY: no arguments.
            unsafe { host_now() }
        }

        fn random(&self, buf: &mut [u8]) {
            // SAFETY: the host writes exactly `len` bytes into the buffer during the call.
            unsafe { host_random(buf.as_mut_ptr() as u32, buf.len() as u32) };
        }
    }

    /// getrandom's custom backend (0.3 and 0.4 both call this symbol when built with
    /// `--cfg getrandom_backend="custom"`): `uuid`'s v4, `rand` and anything else on
    /// getrandom draw from the host's `host_random`, so an author writes nothing.
    ///
    /// # Safety
    /// getrandom passes a buffer of `len` writable (possibly uninitialized) bytes.
    #[cfg(getrandom_backend = "custom")]
    #[unsafe(no_mangle)]
    unsafe extern "Rust" fn __getrandom_v03_custom(
        dest: *mut u8,
        len: usize,
    ) -> Result<(), getrandom::Error> {
        // In pieces well under the host's frame limit, so any length can be asked for.
        const PIECE: usize = 64 * 1024;
        let mut done = 0;
        while done < len {
            let piece = (len - done).min(PIECE);
            // SAFETY: `done + piece <= len`: the piece lies inside getrandom's buffer. The
            // host writes exactly `piece` bytes there during the call and never reads them,
            // so their being uninitialized does not matter.
            unsafe { host_random(dest.add(done) as usize as u32, piece as u32) };
            done += piece;
        }
        Ok(())
    }

    /// `mechtron_alloc`.
    pub fn alloc(len: u32) -> u32 {
        alloc_buffer(len as usize) as usize as u32
    }

    /// `mechtron_dealloc`.
    ///
    /// # Safety
    /// As [`dealloc_buffer`].
    pub unsafe fn dealloc(ptr: u32, len: u32) {
        // SAFETY: passed on from the host, which frees only what the guest returned.
        unsafe { dealloc_buffer(ptr as usize as *mut u8, len as usize) }
    }

    /// Reads and frees the host's input buffer, then decodes it with `decode`.
    unsafe fn take<T>(ptr: u32, len: u32, decode: impl FnOnce(&[u8]) -> T) -> T {
        // SAFETY: the host wrote `len` bytes at `ptr`, into a buffer from mechtron_alloc(len).
        let value =
            decode(unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) });
        // SAFETY: the input buffer is the guest's to free once decoded.
        unsafe { dealloc_buffer(ptr as usize as *mut u8, len as usize) };
        value
    }

    fn give(frame: Vec<u8>) -> u64 {
        let (ptr, len) = into_buffer(frame);
        wire::pack_ptr_len(ptr as usize as u32, len as u32)
    }

    /// `mechtron_init`.
    ///
    /// # Safety
    /// `ptr`/`len` must be a buffer from `mechtron_alloc(len)` the host filled.
    pub unsafe fn init(registry: &'static [Registration], ptr: u32, len: u32) -> u64 {
        let frame = unsafe { take(ptr, len, <[u8]>::to_vec) };
        let (guest, status) = super::init_frame(registry, &frame, Rc::new(WasmHost));
        GUEST.with(|slot| {
            if let Ok(mut slot) = slot.try_borrow_mut() {
                *slot = guest;
            }
        });
        give(status)
    }

    /// `mechtron_handle`.
    ///
    /// # Safety
    /// `ptr`/`len` must be a buffer from `mechtron_alloc(len)` the host filled.
    pub unsafe fn handle(ptr: u32, len: u32) -> u64 {
        let wave = unsafe { take(ptr, len, super::decode_directed) };
        let wave = match wave {
            Ok(wave) => wave,
            Err(error) => {
                return give(super::encode_core(&ReflectedCore::bad_request(format!(
                    "the guest could not read the wave: {error}"
                ))));
            }
        };
        let answer = GUEST.with(|slot| match slot.try_borrow_mut() {
            Ok(mut guest) => super::handle_wave(guest.as_mut(), wave),
            Err(_) => Some(super::encode_core(&ReflectedCore::error(
                StatusCode::UNAVAILABLE,
                "the mechtron is busy answering another wave",
            ))),
        });
        answer.map(give).unwrap_or(0)
    }
}

/// Generates the wasm exports for the listed mechtron types; `#[mechtron]` writes the call.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_mechtrons {
    ($($ty:ty),+ $(,)?) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            static MECHTRONS: &[$crate::Registration] = &[$($crate::Registration::of::<$ty>()),+];

            #[unsafe(no_mangle)]
            pub extern "C" fn mechtron_abi_version() -> u32 {
                $crate::abi::ABI_VERSION
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn mechtron_alloc(len: u32) -> u32 {
                $crate::abi::wasm::alloc(len)
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn mechtron_dealloc(ptr: u32, len: u32) {
                // SAFETY: the host frees only buffers the guest returned, with their length.
                unsafe { $crate::abi::wasm::dealloc(ptr, len) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn mechtron_init(ptr: u32, len: u32) -> u64 {
                // SAFETY: the host passes a buffer it took from mechtron_alloc and filled.
                unsafe { $crate::abi::wasm::init(MECHTRONS, ptr, len) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn mechtron_handle(ptr: u32, len: u32) -> u64 {
                // SAFETY: the host passes a buffer it took from mechtron_alloc and filled.
                unsafe { $crate::abi::wasm::handle(ptr, len) }
            }
        };
    };
}
