//! Exponential backoff with optional jitter, for retry loops.
//!
//! Pure: no clock and no sleeping. A loop asks [`Backoff::next_delay`] how long to
//! wait after a failure and calls [`Backoff::reset`] after a success:
//!
//! ```
//! use std::time::Duration;
//! use daemon_kit::backoff::Backoff;
//!
//! let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
//! assert_eq!(b.next_delay(), Duration::from_millis(100));
//! assert_eq!(b.next_delay(), Duration::from_millis(200));
//! b.reset();
//! assert_eq!(b.next_delay(), Duration::from_millis(100));
//! ```
//!
//! Jitter spreads retries that would otherwise arrive together (every node of a
//! cluster reconnecting to the datastore the moment it comes back): with
//! `.jitter(0.2)` each delay is drawn uniformly from ±20 % around the plain
//! exponential value.

use std::time::Duration;

use rand::Rng;

/// Delays `initial`, `2 * initial`, `4 * initial` ... capped at `max`, each
/// optionally jittered. See the [module documentation](self).
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// The un-jittered delay the next call returns.
    current: Duration,
    /// Fraction in `[0, 1]`: a delay `d` becomes uniform in `d * (1 ± jitter)`.
    jitter: f64,
}

impl Backoff {
    /// Starts at `initial` and doubles up to `max` (an `initial` above `max` is
    /// lowered to `max`). No jitter until [`jitter`](Self::jitter) is set.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.min(max);
        Self {
            initial,
            max,
            current: initial,
            jitter: 0.0,
        }
    }

    /// Jitters every delay by up to `± fraction` of it (0.2 = ±20 %), so that
    /// many clients failing together do not retry together. `fraction` is
    /// clamped to `[0, 1]`; NaN means none. The jittered delay may exceed `max`
    /// by the same fraction: capping it would pile half the retries onto `max`.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// The delay before the next attempt: the current step (jittered), after
    /// which the step doubles, up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = self.current.saturating_mul(2).min(self.max);
        if self.jitter == 0.0 || base.is_zero() {
            return base;
        }
        let factor = rand::rng().random_range(1.0 - self.jitter..=1.0 + self.jitter);
        base.mul_f64(factor)
    }

    /// Back to `initial`, after a success.
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_from_initial_up_to_the_cap() {
        let mut b = Backoff::new(100 * MS, 1000 * MS);
        let got: Vec<_> = (0..7).map(|_| b.next_delay()).collect();
        assert_eq!(
            got,
            [100, 200, 400, 800, 1000, 1000, 1000].map(|n| n * MS),
            "doubling, then capped at max"
        );
    }

    #[test]
    fn cap_that_is_not_a_power_of_two_of_initial() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let got: Vec<_> = (0..7).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn initial_above_max_starts_at_max() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(3));
        assert_eq!(b.next_delay(), Duration::from_secs(3));
        assert_eq!(b.next_delay(), Duration::from_secs(3));
    }

    #[test]
    fn equal_initial_and_max_is_a_constant_delay() {
        let mut b = Backoff::new(Duration::from_secs(5), Duration::from_secs(5));
        for _ in 0..5 {
            assert_eq!(b.next_delay(), Duration::from_secs(5));
        }
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(50 * MS, 10_000 * MS);
        for _ in 0..5 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), 1600 * MS);
        b.reset();
        assert_eq!(b.next_delay(), 50 * MS);
        assert_eq!(b.next_delay(), 100 * MS);
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::MAX);
        for _ in 0..200 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), Duration::MAX);
    }

    #[test]
    fn jittered_delays_stay_within_the_fraction_of_each_step() {
        let mut b = Backoff::new(100 * MS, 800 * MS).jitter(0.2);
        for _ in 0..50 {
            for base in [100u32, 200, 400, 800, 800] {
                let d = b.next_delay();
                let (lo, hi) = (base * 8 / 10, base * 12 / 10);
                assert!(
                    d >= lo * MS && d <= hi * MS,
                    "{d:?} outside [{lo}, {hi}] ms for step {base} ms"
                );
            }
            b.reset();
        }
    }

    #[test]
    fn jitter_actually_spreads_the_delays() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).jitter(0.5);
        let ds: Vec<_> = (0..200).map(|_| b.next_delay()).collect();
        let (min, max) = (ds.iter().min().unwrap(), ds.iter().max().unwrap());
        assert!(*min >= 500 * MS && *max <= 1500 * MS, "{min:?} .. {max:?}");
        // 200 uniform draws over ±50 %: both halves are hit (failure odds 2^-199).
        assert!(*min < Duration::from_secs(1) && *max > Duration::from_secs(1));
    }

    #[test]
    fn jitter_fraction_is_clamped() {
        let mut none = Backoff::new(100 * MS, 100 * MS).jitter(-1.0);
        assert_eq!(none.next_delay(), 100 * MS);
        let mut nan = Backoff::new(100 * MS, 100 * MS).jitter(f64::NAN);
        assert_eq!(nan.next_delay(), 100 * MS);
        let mut full = Backoff::new(100 * MS, 100 * MS).jitter(7.0);
        for _ in 0..100 {
            assert!(full.next_delay() <= 200 * MS);
        }
    }

    #[test]
    fn zero_initial_stays_zero() {
        let mut b = Backoff::new(Duration::ZERO, Duration::from_secs(1)).jitter(0.2);
        assert_eq!(b.next_delay(), Duration::ZERO);
        assert_eq!(b.next_delay(), Duration::ZERO);
    }
}
