//! Placement: which star hosts a particle (SPEC §14).
//!
//! Rendezvous (highest-random-weight) hashing of the point over the live stars: every machine
//! computes the same answer from the same star list, adding or losing a star moves only the
//! particles that must move, and no table has to be kept in sync. The chosen star is recorded
//! in the registry, which is what routing reads.

use cosmic_space::{Point, StarKey, wire};

/// Picks the star for `point` among `stars`; `None` only when there are no stars.
pub fn place<'a>(point: &Point, stars: &'a [StarKey]) -> Option<&'a StarKey> {
    let point = point.to_string();
    stars
        .iter()
        .max_by_key(|star| (weight(&point, &star.to_string()), (*star).clone()))
}

/// FNV-1a over the point and the star, finished with a 64-bit mixer: stable across platforms,
/// processes and Rust versions (unlike `std`'s hasher), which a cluster needs.
fn weight(point: &str, star: &str) -> u64 {
    let mut hash = wire::fnv1a(point.bytes().chain([0xff]).chain(star.bytes()));
    // splitmix64 finaliser: spreads FNV's weak low bits.
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stars(n: u16) -> Vec<StarKey> {
        (0..n)
            .map(|i| StarKey::new("machine", "star", i).expect("valid"))
            .collect()
    }

    fn point(i: usize) -> Point {
        format!("localhost:app:p{i}").parse().expect("valid")
    }

    #[test]
    fn placement_is_deterministic_and_spread() {
        let stars = stars(4);
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            let star = place(&point(i), &stars).expect("a star");
            assert_eq!(place(&point(i), &stars), Some(star));
            counts[usize::from(star.index)] += 1;
        }
        for count in counts {
            assert!((800..1200).contains(&count), "uneven spread: {counts:?}");
        }
        assert_eq!(place(&point(0), &[]), None);
    }

    #[test]
    fn losing_a_star_moves_only_its_particles() {
        let all = stars(4);
        let without_two: Vec<StarKey> = all.iter().filter(|s| s.index != 2).cloned().collect();
        for i in 0..2000 {
            let before = place(&point(i), &all).expect("a star");
            let after = place(&point(i), &without_two).expect("a star");
            if before.index != 2 {
                assert_eq!(before, after);
            }
        }
    }
}
