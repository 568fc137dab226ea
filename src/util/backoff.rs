/*!
Retry delays (watch streams, delivery, the backend): exponential with jitter, capped, with
`Retry-After` honoured, reset once a stream is productive again.

Pure and seeded, so tests can check the sequence without sleeping. Jitter
keeps every delay in [½·d, d] so many daemons restarted together (or many
streams of one daemon) do not hit the API server in lockstep.
*/

use std::time::Duration;

use super::random::Rng;

/// A server asking for more than this is capped: a broken `Retry-After`
/// must not park a watch for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    multiplier: f64,
    failures: u32,
    rng: Rng,
}

impl Backoff {
    /// `initial` multiplied by `multiplier` per failure, capped at `max`.
    pub fn new(initial: Duration, max: Duration, multiplier: f64, rng: Rng) -> Backoff {
        Backoff {
            initial,
            max,
            multiplier,
            failures: 0,
            rng,
        }
    }

    /// Consecutive failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Counts a failure that is retried at once (the first 410 Gone): the
    /// next one in a row waits.
    pub fn bump(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    /// The delay before the next attempt; counts one more failure.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let exp = self.multiplier.powi(self.failures.min(64) as i32);
        let base = self.initial.as_secs_f64() * exp;
        let capped = base.min(self.max.as_secs_f64());
        let jittered = capped * (0.5 + 0.5 * self.rng.unit());
        self.failures = self.failures.saturating_add(1);
        let d = Duration::from_secs_f64(jittered);
        match retry_after {
            Some(ra) => d.max(ra.min(MAX_RETRY_AFTER)),
            None => d,
        }
    }

    /// A jittered value in [lo, hi] from the same generator (watch timeouts).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.between(lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(initial_ms: u64, max_ms: u64, mult: f64, seed: u64) -> Backoff {
        Backoff::new(
            Duration::from_millis(initial_ms),
            Duration::from_millis(max_ms),
            mult,
            Rng::new(seed),
        )
    }

    #[test]
    fn delays_grow_exponentially_within_jitter_and_stop_at_the_cap() {
        let mut b = backoff(1000, 30_000, 2.0, 7);
        let expected = [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0];
        for (i, e) in expected.iter().enumerate() {
            let d = b.next_delay(None).as_secs_f64();
            assert!(
                d >= e / 2.0 - 1e-9 && d <= *e + 1e-9,
                "attempt {i}: {d} not in [{}, {e}]",
                e / 2.0
            );
        }
        assert_eq!(b.failures(), 8);
    }

    #[test]
    fn reset_starts_over() {
        let mut b = backoff(1000, 30_000, 2.0, 1);
        for _ in 0..6 {
            b.next_delay(None);
        }
        b.reset();
        assert!(b.next_delay(None) <= Duration::from_secs(1));
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let mut b = backoff(100, 1000, 2.0, 3);
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(86_400))),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn jitter_differs_between_seeds() {
        let a = backoff(1000, 30_000, 2.0, 1).next_delay(None);
        let b = backoff(1000, 30_000, 2.0, 2).next_delay(None);
        assert_ne!(a, b);
    }

    #[test]
    fn between_stays_in_range() {
        let mut b = backoff(1000, 30_000, 2.0, 9);
        for _ in 0..1000 {
            let v = b.between(300, 600);
            assert!((300..=600).contains(&v));
        }
    }
}
