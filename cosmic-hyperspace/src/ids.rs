//! Fresh wave ids, fast.
//!
//! Every Ping and Pong needs a new id. Asking the operating system for 16 random bytes each
//! time is a system call per wave; instead each thread keeps a wyrand generator seeded once
//! from the operating system. The ids are unique and unpredictable enough to key exchanges;
//! they are not secrets (tokens come from `getrandom` directly).

use std::cell::Cell;

use cosmic_space::WaveId;

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to the address of a stack value and the time, which
        // still differ between threads and runs.
        let here = &bytes as *const _ as u64;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        return here ^ now.rotate_left(32);
    }
    u64::from_le_bytes(bytes)
}

fn next() -> u64 {
    STATE.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s).wrapping_mul(u128::from(s ^ 0xe703_7ed1_a0b4_28db));
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// A new random (version 4) wave id.
pub fn wave_id() -> WaveId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&next().to_le_bytes());
    bytes[8..].copy_from_slice(&next().to_le_bytes());
    WaveId::from_random_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_do_not_repeat() {
        let ids: HashSet<WaveId> = (0..100_000).map(|_| wave_id()).collect();
        assert_eq!(ids.len(), 100_000);
        assert!(!wave_id().is_nil());
    }

    #[test]
    fn threads_draw_different_ids() {
        let other = std::thread::spawn(wave_id).join().expect("thread ran");
        assert_ne!(other, wave_id());
    }
}
