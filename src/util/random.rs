/*!
`Rng`: a small seeded generator (splitmix64) for jitter — retry delays, watch
timeouts, leader-election polls. Nothing here needs cryptographic quality;
it needs to differ between processes and streams so many daemons restarted
together do not hit the API server in lockstep, and to be reproducible in
tests (a fixed seed gives a fixed sequence).
*/

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// Seeded from the clock, the process id, `salt` and std's per-process
    /// random hasher keys: differs between streams and process starts.
    pub fn seeded(salt: u64) -> Rng {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(t);
        h.write_u32(std::process::id());
        h.write_u64(salt);
        Rng::new(h.finish())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in [lo, hi].
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + ((hi.saturating_sub(lo) + 1) as f64 * self.unit()) as u64
    }

    /// `d` stretched by up to `fraction` (0.2: up to 20 % longer).
    pub fn stretch(&mut self, d: Duration, fraction: f64) -> Duration {
        d.mul_f64(1.0 + fraction * self.unit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_a_fixed_sequence_and_seeds_differ() {
        let (mut a, mut b, mut c) = (Rng::new(7), Rng::new(7), Rng::new(8));
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn values_stay_in_their_ranges() {
        let mut r = Rng::seeded(1);
        for _ in 0..10_000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            let b = r.between(240, 360);
            assert!((240..=360).contains(&b));
            let d = r.stretch(Duration::from_secs(10), 0.2);
            assert!(d >= Duration::from_secs(10) && d <= Duration::from_secs(12));
        }
    }
}
