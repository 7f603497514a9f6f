//! A guest that breaks the mechtron ABI on purpose (SPEC §11.3, §16). It exists to prove that
//! the host validates every frame a guest hands over — pointer and length inside the guest's
//! memory, length within the frame limit, bytes that decode exactly — and answers a bad one
//! with an error instead of crashing, reading out of bounds or trusting it.
//!
//! It uses no SDK macros: the exports are written by hand here, over `cosmic_space::wire`,
//! so they can do what the SDK never would. `mechtron_init` answers a valid `Ready`;
//! `mechtron_handle` decodes the Ping and misbehaves according to its path
//! ([`Misbehaviour::for_path`]):
//!
//! | Path | The guest … |
//! | --- | --- |
//! | `/out-of-bounds` | returns a ptr/len that runs past the end of its memory |
//! | `/garbage` | returns bytes that do not decode as a `ReflectedCore` |
//! | `/too-long` | returns a buffer (inside its memory) longer than the 16 MiB frame limit |
//! | `/send-garbage` | calls `host_send` with garbage bytes, then answers 200 `sent` |
//! | `/log-out-of-bounds` | calls `host_log` with a buffer past the end of its memory |
//! | anything else | answers a valid 200 `fine` |
//!
//! The decisions and frames are plain functions, tested natively; the exports exist on
//! `wasm32` only.

use cosmic_space::{DirectedWave, Ping, ReflectedCore, Status, Wire, wire};

/// The ABI version the exports speak (`mechtron_abi_version`).
pub const ABI_VERSION: u32 = 1;

/// Bytes that are no frame of anything: `0xFF` opens no bincode varint or enum tag.
pub const GARBAGE: &[u8] = &[0xFF; 32];

/// A length just over the default frame limit (16 MiB + 1).
pub const TOO_LONG: u32 = Wire::DEFAULT_MAX_FRAME as u32 + 1;

/// How the guest answers a wave, chosen by the wave's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Return a ptr/len beyond the guest's memory: the host must check bounds before reading.
    OutOfBounds,
    /// Return bytes that do not decode: the host must decode, not trust, the answer.
    Garbage,
    /// Return a length over the frame limit: the host must refuse before copying it.
    TooLong,
    /// Send garbage through `host_send`: the host must validate what a guest sends.
    SendGarbage,
    /// Log from outside the guest's memory: `host_log` must check bounds too.
    LogOutOfBounds,
    /// Behave: a valid 200 `fine`, to show the guest works when asked nicely.
    Fine,
}

impl Misbehaviour {
    /// The misbehaviour a wave on `path` asks for.
    pub fn for_path(path: &str) -> Misbehaviour {
        match path {
            "/out-of-bounds" => Misbehaviour::OutOfBounds,
            "/garbage" => Misbehaviour::Garbage,
            "/too-long" => Misbehaviour::TooLong,
            "/send-garbage" => Misbehaviour::SendGarbage,
            "/log-out-of-bounds" => Misbehaviour::LogOutOfBounds,
            _ => Misbehaviour::Fine,
        }
    }
}

/// The path of the wave in a `mechtron_handle` frame (a Ping, or any directed wave), or the
/// codec's complaint.
pub fn path_of(frame: &[u8]) -> Result<String, String> {
    match wire::decode::<Ping>(frame) {
        Ok(ping) => Ok(ping.core.path),
        Err(error) => wire::decode::<DirectedWave>(frame)
            .map(|wave| wave.path().to_string())
            .map_err(|_| error.to_string()),
    }
}

/// The `Status::Ready` frame `mechtron_init` answers with.
pub fn ready_frame() -> Vec<u8> {
    wire::encode(&Status::Ready).unwrap_or_default()
}

/// A valid `ReflectedCore` frame: `core` encoded.
pub fn core_frame(core: &ReflectedCore) -> Vec<u8> {
    wire::encode(core).unwrap_or_default()
}

/// The hand-written exports and the imports they call.
#[cfg(target_arch = "wasm32")]
mod exports {
    use std::sync::OnceLock;

    use cosmic_space::{ReflectedCore, wire};

    use super::{ABI_VERSION, GARBAGE, Misbehaviour, TOO_LONG};

    #[link(wasm_import_module = "cosmic")]
    unsafe extern "C" {
        fn host_send(ptr: u32, len: u32) -> u64;
        fn host_log(ptr: u32, len: u32);
    }

    /// The size of the linear memory in bytes (saturated to `u32`).
    fn memory_bytes() -> u32 {
        let bytes = core::arch::wasm32::memory_size(0) * 64 * 1024;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    /// A buffer of [`TOO_LONG`] bytes inside the guest's memory, made once and never freed, so
    /// `/too-long` is over the frame limit *only* (its ptr/len are in bounds).
    fn too_long_buffer() -> u32 {
        *TOO_LONG_BUFFER.get_or_init(|| {
            let buffer: &'static mut [u8] =
                Box::leak(vec![0u8; TOO_LONG as usize].into_boxed_slice());
            buffer.as_ptr() as usize as u32
        })
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn mechtron_abi_version() -> u32 {
        ABI_VERSION
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn mechtron_alloc(len: u32) -> u32 {
        let Ok(layout) = std::alloc::Layout::array::<u8>(len as usize) else {
            return 0;
        };
        if len == 0 {
            return 1;
        }
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        ptr as usize as u32
    }

    /// Frees a buffer from `mechtron_alloc`; the `/too-long` buffer is never freed (the host
    /// should not free a frame it refused, but if it does, nothing breaks).
    ///
    /// # Safety
    /// `ptr` must come from `mechtron_alloc(len)` and not have been freed.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn mechtron_dealloc(ptr: u32, len: u32) {
        if len == 0 || ptr == 0 || TOO_LONG_BUFFER.get() == Some(&ptr) {
            return;
        }
        let Ok(layout) = std::alloc::Layout::array::<u8>(len as usize) else {
            return;
        };
        // SAFETY: the caller promises ptr came from mechtron_alloc(len).
        unsafe { std::alloc::dealloc(ptr as usize as *mut u8, layout) }
    }

    /// The address of the `/too-long` buffer, once it exists.
    static TOO_LONG_BUFFER: OnceLock<u32> = OnceLock::new();

    /// Copies `frame` into a fresh guest buffer and packs it for the host.
    fn give(frame: &[u8]) -> u64 {
        let len = frame.len() as u32;
        let ptr = mechtron_alloc(len);
        // SAFETY: the buffer was just allocated with `len` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(frame.as_ptr(), ptr as usize as *mut u8, frame.len())
        };
        wire::pack_ptr_len(ptr, len)
    }

    /// Copies out and frees the host's input buffer.
    ///
    /// # Safety
    /// `ptr`/`len` must be a buffer from `mechtron_alloc(len)` the host filled.
    unsafe fn take(ptr: u32, len: u32) -> Vec<u8> {
        // SAFETY: the host wrote `len` bytes at `ptr`.
        let frame =
            unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) }.to_vec();
        // SAFETY: the input buffer is the guest's to free.
        unsafe { mechtron_dealloc(ptr, len) };
        frame
    }

    /// Answers any Details with `Ready`: this guest holds no types to choose between.
    ///
    /// # Safety
    /// `ptr`/`len` must be a buffer from `mechtron_alloc(len)` the host filled.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn mechtron_init(ptr: u32, len: u32) -> u64 {
        // SAFETY: passed on from the host.
        let _details = unsafe { take(ptr, len) };
        give(&super::ready_frame())
    }

    /// Answers a wave by misbehaving as its path asks (see the crate docs).
    ///
    /// # Safety
    /// `ptr`/`len` must be a buffer from `mechtron_alloc(len)` the host filled.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn mechtron_handle(ptr: u32, len: u32) -> u64 {
        // SAFETY: passed on from the host.
        let frame = unsafe { take(ptr, len) };
        let path = match super::path_of(&frame) {
            Ok(path) => path,
            Err(error) => {
                return give(&super::core_frame(&ReflectedCore::bad_request(format!(
                    "the malformed guest could not read the wave: {error}"
                ))));
            }
        };
        match Misbehaviour::for_path(&path) {
            // Starts 8 bytes before the end of memory and runs 8 bytes past it: a host that
            // checks only the pointer, not pointer + length, would read beyond the memory.
            Misbehaviour::OutOfBounds => wire::pack_ptr_len(memory_bytes().saturating_sub(8), 16),
            // A well-placed buffer of bytes that decode as nothing.
            Misbehaviour::Garbage => give(GARBAGE),
            // A real buffer, in bounds, but one byte over the frame limit.
            Misbehaviour::TooLong => wire::pack_ptr_len(too_long_buffer(), TOO_LONG),
            // The host must refuse the frame (by failing the call); if it ever answered, the
            // answer is a buffer of ours to free.
            Misbehaviour::SendGarbage => {
                // SAFETY: GARBAGE is a live static of the length given.
                let answer = unsafe { host_send(GARBAGE.as_ptr() as u32, GARBAGE.len() as u32) };
                if answer != 0 {
                    let (ptr, len) = wire::unpack_ptr_len(answer);
                    // SAFETY: a host answer is a buffer it took from mechtron_alloc(len).
                    unsafe { mechtron_dealloc(ptr, len) };
                }
                give(&super::core_frame(&ReflectedCore::ok("sent")))
            }
            // A log line that starts inside memory and runs past its end.
            Misbehaviour::LogOutOfBounds => {
                // SAFETY: the host must refuse the out-of-bounds buffer; the guest never
                // touches it itself.
                unsafe { host_log(memory_bytes().saturating_sub(4), 64) };
                give(&super::core_frame(&ReflectedCore::ok("logged")))
            }
            Misbehaviour::Fine => give(&super::core_frame(&ReflectedCore::ok("fine"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use cosmic_space::{DirectedCore, LogLevel, Method, Point, StatusCode, Surface};

    use super::*;

    fn ping_on(path: &str) -> Ping {
        let from: Surface = "localhost:tester".parse::<Point>().unwrap().into();
        let to: Surface = "localhost:malformed".parse::<Point>().unwrap().into();
        let core = DirectedCore::new(Method::Ext("Go".to_string())).with_path(path);
        Ping::with_core(from, to, core)
    }

    #[test]
    fn each_path_picks_its_misbehaviour() {
        let cases = [
            ("/out-of-bounds", Misbehaviour::OutOfBounds),
            ("/garbage", Misbehaviour::Garbage),
            ("/too-long", Misbehaviour::TooLong),
            ("/send-garbage", Misbehaviour::SendGarbage),
            ("/log-out-of-bounds", Misbehaviour::LogOutOfBounds),
            ("/", Misbehaviour::Fine),
            ("/garbage/more", Misbehaviour::Fine),
        ];
        for (path, expected) in cases {
            let frame = wire::encode(&ping_on(path)).unwrap();
            assert_eq!(path_of(&frame).as_deref(), Ok(path));
            assert_eq!(Misbehaviour::for_path(path), expected, "{path}");
        }
        let wave = DirectedWave::Ping(ping_on("/garbage"));
        assert_eq!(
            path_of(&wire::encode(&wave).unwrap()).as_deref(),
            Ok("/garbage")
        );
        assert!(path_of(GARBAGE).is_err());
    }

    /// The garbage is garbage for every frame the host reads from a guest.
    #[test]
    fn garbage_decodes_as_nothing_the_host_reads() {
        assert!(wire::decode::<ReflectedCore>(GARBAGE).is_err());
        assert!(wire::decode::<DirectedWave>(GARBAGE).is_err());
        assert!(wire::decode::<Status>(GARBAGE).is_err());
        assert!(wire::decode::<(LogLevel, String)>(GARBAGE).is_err());
    }

    #[test]
    fn too_long_is_one_byte_over_the_limit() {
        assert_eq!(TOO_LONG as usize, Wire::DEFAULT_MAX_FRAME + 1);
    }

    #[test]
    fn the_valid_frames_decode() {
        assert_eq!(
            wire::decode::<Status>(&ready_frame()).unwrap(),
            Status::Ready
        );
        let core = wire::decode::<ReflectedCore>(&core_frame(&ReflectedCore::ok("fine"))).unwrap();
        assert_eq!(core.status, StatusCode::OK);
        assert_eq!(core.body.as_text(), Some("fine"));
    }
}
