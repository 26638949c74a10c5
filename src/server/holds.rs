//! The builder's hold settings: how long a HOLD keeps its seats, and the
//! clock that times it (the system's, or a test's).

use std::sync::Arc;

use super::{Builder, ServerError};
use crate::ledger::{Clock, Ledger, SystemClock, DEFAULT_HOLD_MS, MAX_HOLD_MS, MIN_HOLD_MS};

impl Builder {
    /// How long a HOLD keeps its seats unless confirmed or cancelled, in
    /// milliseconds: [`Ledger::MIN_HOLD_MS`](crate::ledger::Ledger::MIN_HOLD_MS) (1) to
    /// [`Ledger::MAX_HOLD_MS`](crate::ledger::Ledger::MAX_HOLD_MS) (24 h); default
    /// [`Ledger::DEFAULT_HOLD_MS`](crate::ledger::Ledger::DEFAULT_HOLD_MS) (10 minutes). Checked by [`Builder::spawn`].
    ///
    /// ```
    /// use guichet::ClientError;
    /// let server = guichet::Server::builder().event("E", 5).hold_ms(600_000).spawn()?;
    /// let held = server.client().hold(1, 2, 0)?;
    /// assert_eq!(server.client().query(1)?.remaining, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hold_ms(mut self, hold_ms: u64) -> Self {
        self.hold_ms = Some(hold_ms);
        self
    }

    /// Times holds by `clock` instead of the system's monotonic clock: for
    /// tests that move time by hand
    /// ([`ManualClock`](crate::ledger::ManualClock)). With a journal, the
    /// clock should read Unix milliseconds, as expiries are journalled as such.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use guichet::ledger::{Clock, ManualClock, SystemClock};
    /// use guichet::ClientError;
    ///
    /// let clock = ManualClock::new(SystemClock::new().now_ms());
    /// let server = guichet::Server::builder()
    ///     .event("E", 5)
    ///     .hold_ms(1_000)
    ///     .clock(Arc::new(clock.clone()))
    ///     .spawn()?;
    /// let held = server.client().hold(1, 2, 0)?;
    /// clock.advance_ms(1_000);
    /// assert_eq!(server.client().query(1)?.remaining, 5);
    /// let late = server.client().confirm(held.booking);
    /// assert!(matches!(late, Err(ClientError::HoldExpired { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
}

/// Refuses a `hold_ms` out of range before anything is created.
pub(super) fn check(hold_ms: Option<u64>) -> Result<(), ServerError> {
    if let Some(hold_ms) = hold_ms {
        super::LimitError::check("hold_ms", hold_ms, MIN_HOLD_MS, MAX_HOLD_MS)?;
    }
    Ok(())
}

/// The ledger as the builder's hold settings time it.
pub(super) fn timed(
    ledger: Ledger,
    hold_ms: Option<u64>,
    clock: Option<Arc<dyn Clock>>,
) -> Result<Ledger, ServerError> {
    let clock = clock.unwrap_or_else(|| Arc::new(SystemClock::new()));
    Ok(ledger
        .with_clock(clock)
        .with_hold_ms(hold_ms.unwrap_or(DEFAULT_HOLD_MS))?)
}
