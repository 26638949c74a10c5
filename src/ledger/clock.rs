//! The time a ledger reads to expire holds, and the limits of a hold's duration.
//!
//! The ledger never reads a clock of the system by itself: it asks the
//! [`Clock`] it was given, so a test drives time by hand ([`ManualClock`])
//! and a server gives it a [`SystemClock`]. Times are milliseconds on a
//! Unix-epoch scale, so that an expiry can be journalled as wall-clock time
//! and read back after a restart (see `docs/holds.md`).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Shortest hold a ledger or server accepts, in milliseconds.
pub(crate) const MIN_HOLD_MS: u64 = 1;
/// Longest hold a ledger or server accepts, in milliseconds: 24 hours.
pub(crate) const MAX_HOLD_MS: u64 = 24 * 60 * 60 * 1000;
/// A hold's duration when none is configured, in milliseconds: 10 minutes.
pub(crate) const DEFAULT_HOLD_MS: u64 = 600_000;

/// Where a ledger reads the time.
///
/// `now_ms` must never go backwards for one clock: a hold that expired must
/// stay expired.
///
/// # Examples
///
/// ```
/// use guichet::ledger::{Clock, ManualClock};
///
/// let clock = ManualClock::new(1_000);
/// clock.advance_ms(500);
/// assert_eq!(clock.now_ms(), 1_500);
/// ```
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch, as this clock tells them.
    fn now_ms(&self) -> u64;
}

/// The system's monotonic clock, anchored once to the wall clock.
///
/// Reads `Instant` (never jumps) and adds the wall-clock time read when the
/// clock was made: a wall-clock step while the server runs changes no
/// hold's expiry, while expiries still read as Unix milliseconds for the
/// journal.
///
/// # Examples
///
/// ```
/// use guichet::ledger::{Clock, SystemClock};
///
/// let clock = SystemClock::new();
/// let (a, b) = (clock.now_ms(), clock.now_ms());
/// assert!(a > 1_600_000_000_000 && b >= a);
/// ```
#[derive(Debug)]
pub struct SystemClock {
    anchor_unix_ms: u64,
    anchor: Instant,
}

impl SystemClock {
    /// A clock anchored to the wall clock now.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ledger::{Clock, SystemClock};
    ///
    /// let wall_ms = std::time::SystemTime::UNIX_EPOCH.elapsed()?.as_millis() as u64;
    /// assert!(SystemClock::new().now_ms() + 1_000 >= wall_ms);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Self {
        Self {
            anchor_unix_ms: unix_now_ms(),
            anchor: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.anchor.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.anchor_unix_ms.saturating_add(elapsed)
    }
}

/// The wall clock in Unix milliseconds (0 if the system clock is set
/// before 1970).
pub(crate) fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A clock that moves only when told: for tests. Clones share one time.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use guichet::ledger::{Clock, ManualClock};
///
/// let clock = ManualClock::new(0);
/// let shared: Arc<dyn Clock> = Arc::new(clock.clone());
/// clock.advance_ms(7);
/// assert_eq!(shared.now_ms(), 7);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock that reads `start_ms` until moved.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ledger::{Clock, ManualClock};
    ///
    /// assert_eq!(ManualClock::new(42).now_ms(), 42);
    /// ```
    pub fn new(start_ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(start_ms)))
    }

    /// Moves the clock forward by `ms` (saturating).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ledger::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new(u64::MAX - 1);
    /// clock.advance_ms(5);
    /// assert_eq!(clock.now_ms(), u64::MAX);
    /// ```
    pub fn advance_ms(&self, ms: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(ms))
            });
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The clock a ledger holds. Not part of the ledger's state: two ledgers
/// with equal events and bookings are equal whatever clocks they read.
#[derive(Clone)]
pub(crate) struct ClockHandle(pub(crate) Arc<dyn Clock>);

impl ClockHandle {
    pub(crate) fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }
}

impl PartialEq for ClockHandle {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ClockHandle {}

impl fmt::Debug for ClockHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
