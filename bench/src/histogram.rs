//! A fixed-size, log-linear latency histogram: 32 linear sub-buckets per
//! power of two, so every recorded value is kept within 1/32 (3.125 %) of
//! its true value, in 15 KiB, for any `u64`.
//!
//! Hand-written rather than a dependency: the harness needs record, merge
//! and quantiles, nothing more, and this bounds memory whatever is recorded.

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets for values `0..SUB` (exact) plus `SUB` per octave above them.
const BUCKETS: usize = ((64 - SUB_BITS + 1) as usize) * SUB as usize;

/// Latencies in nanoseconds (or any `u64`), with quantiles.
///
/// Values below 32 are kept exactly; count, sum, min and max are exact
/// whatever the value.
///
/// # Examples
///
/// ```
/// use guichet_bench::Histogram;
///
/// let mut h = Histogram::new();
/// for ns in 1..=1000 {
///     h.record(ns);
/// }
/// assert_eq!(h.count(), 1000);
/// let p50 = h.quantile(0.5);
/// assert!((484..=516).contains(&p50), "{p50}");
/// assert_eq!(h.max(), 1000);
/// ```
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// The bucket holding `value`.
fn index(value: u64) -> usize {
    if value < SUB {
        // Lossless: value < 32.
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros(); // >= SUB_BITS
    let shift = exponent - SUB_BITS;
    let mantissa = (value >> shift) - SUB; // in 0..SUB
                                           // Lossless: at most (59 + 1) * 32 + 31 < BUCKETS.
    ((u64::from(shift) + 1) * SUB + mantissa) as usize
}

/// The largest value bucket `index` holds.
fn highest(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB {
        return index;
    }
    let shift = index / SUB - 1;
    let mantissa = index % SUB;
    // For the last bucket this is u64::MAX exactly, without overflow.
    ((SUB + mantissa) << shift) + ((1u64 << shift) - 1)
}

impl Histogram {
    /// An empty histogram. Allocates its 15 KiB of buckets now, so
    /// recording never allocates.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Histogram;
    ///
    /// let h = Histogram::new();
    /// assert_eq!((h.count(), h.min(), h.max(), h.mean(), h.quantile(0.5)), (0, 0, 0, 0, 0));
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value. O(1), no allocation: fit for a measured loop.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Histogram;
    ///
    /// let mut h = Histogram::new();
    /// h.record(u64::MAX); // any value has a bucket
    /// h.record(0);
    /// assert_eq!((h.count(), h.min(), h.max()), (2, 0, u64::MAX));
    /// ```
    pub fn record(&mut self, value: u64) {
        if let Some(c) = self.counts.get_mut(index(value)) {
            *c += 1;
        }
        self.count += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds every value of `other`, as if each had been recorded here: how
    /// per-thread histograms become one without sharing a lock while
    /// measuring.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Histogram;
    ///
    /// let (mut a, mut b) = (Histogram::new(), Histogram::new());
    /// a.record(10);
    /// b.record(30);
    /// a.merge(&b);
    /// assert_eq!((a.count(), a.min(), a.max(), a.mean()), (2, 10, 30, 20));
    /// ```
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Values recorded.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Histogram;
    ///
    /// let mut h = Histogram::new();
    /// (0..5).for_each(|v| h.record(v));
    /// assert_eq!(h.count(), 5);
    /// ```
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest value recorded, exactly; 0 if none.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Histogram;
    ///
    /// let mut h = Histogram::new();
    /// h.record(1_234_567);
    /// assert_eq!(h.max(), 1_234_567); // not rounded to its bucket
    /// ```
    #[must_use]
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest value recorded, exactly; 0 if none.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Histogram;
    ///
    /// let mut h = Histogram::new();
    /// h.record(1_234_567);
    /// h.record(7_654_321);
    /// assert_eq!(h.min(), 1_234_567);
    /// ```
    #[must_use]
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    /// The mean, rounded down; 0 if empty. Exact (from the sum, not the
    /// buckets).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Histogram;
    ///
    /// let mut h = Histogram::new();
    /// [1_000, 2_000, 2_001].into_iter().for_each(|v| h.record(v));
    /// assert_eq!(h.mean(), 1_667);
    /// ```
    #[must_use]
    pub fn mean(&self) -> u64 {
        match u128::from(self.count) {
            0 => 0,
            n => u64::try_from(self.sum / n).unwrap_or(u64::MAX),
        }
    }

    /// The value at quantile `q` (0.5 for the median, 0.999 for p99.9): the
    /// upper edge of the bucket holding the `ceil(q * count)`-th smallest
    /// value, capped at the exact maximum, so it overstates by at most
    /// 1/32. 0 if empty; `q` is clamped to `0..=1`, and NaN is taken as 1
    /// (the maximum), so a bad `q` overstates rather than hides a tail.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Histogram;
    ///
    /// let mut h = Histogram::new();
    /// for ns in 1..=100_000 {
    ///     h.record(ns);
    /// }
    /// let p99 = h.quantile(0.99);
    /// assert!((99_000..=99_000 + 99_000 / 32).contains(&p99), "{p99}");
    /// assert_eq!(h.quantile(1.0), 100_000); // capped at the exact maximum
    /// assert_eq!(h.quantile(f64::NAN), 100_000);
    /// assert_eq!(h.quantile(-1.0), h.quantile(0.0));
    /// ```
    #[must_use]
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
        // Exact enough: counts stay far below 2^53 in any bounded run.
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return highest(i).min(self.max).max(self.min);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order_and_within_precision() {
        let mut last = 0;
        for value in 0..5000u64 {
            let i = index(value);
            assert!(i >= last, "{value}");
            last = i;
        }
        for value in (0..5000u64)
            .chain((0..64).map(|s| 1u64 << s))
            .chain((1..64).map(|s| (1u64 << s) - 1))
            .chain([u64::MAX, u64::MAX - 1])
        {
            let i = index(value);
            assert!(i < BUCKETS, "{value}");
            assert!(highest(i) >= value, "{value}");
            // A bucket holds values within 1/32 of its upper edge.
            assert!(highest(i) - value <= value / SUB, "{value}");
        }
        assert_eq!(highest(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut h = Histogram::new();
        assert_eq!((h.quantile(0.5), h.min(), h.max(), h.mean()), (0, 0, 0, 0));
        for v in 0..10_000u64 {
            h.record(v * 100);
        }
        let mut other = Histogram::new();
        other.record(5_000_000);
        h.merge(&other);
        assert_eq!(h.count(), 10_001);
        assert_eq!(h.max(), 5_000_000);
        for (q, exact) in [(0.5, 500_000u64), (0.99, 990_000), (0.999, 999_000)] {
            let got = h.quantile(q);
            assert!(
                got >= exact - 200 && got <= exact + exact / 32,
                "{q}: {got}"
            );
        }
        assert_eq!(h.quantile(1.0), 5_000_000);
        assert_eq!(h.quantile(f64::NAN), 5_000_000);
    }
}
