//! Holds: HOLD, CONFIRM and expiry (PROTOCOL.md, Holds).
//!
//! Expiry is lazy but exact. Each event indexes its live holds by expiry
//! (a `BTreeMap`, first due first); every change first expires the due
//! holds of the events it touches (O(log n) each), and every read
//! (`query`, `events`, `booking`) counts a due hold as expired whether or
//! not a sweep ran. So a hold has expired for every request after its
//! deadline, whatever order requests come in.

use std::num::NonZeroU32;
use std::sync::Arc;

use super::clock::ClockHandle;
use super::{
    checked, Booking, BookingState, ConfigError, Event, Ledger, Origin, Outcome, Seats,
    MAX_HOLD_MS, MIN_HOLD_MS,
};
use crate::ids::{BookingId, ClientBookingId, EventId};
use crate::ledger::Clock;

/// Whether a hold expiring at `expires_at_ms` has expired at `now_ms`:
/// from its deadline on, included.
pub(super) const fn is_due(expires_at_ms: u64, now_ms: u64) -> bool {
    expires_at_ms <= now_ms
}

impl Event {
    /// Seats as a request at `now_ms` sees them: holds due but not swept
    /// yet are back in `remaining`.
    pub(super) fn seats_at(&self, now_ms: u64) -> Seats {
        let due: u32 = self
            .holds
            .iter()
            .take_while(|((expires_at_ms, _), _)| is_due(*expires_at_ms, now_ms))
            .map(|(_, q)| q.get())
            .fold(0, |sum, q| checked(sum.checked_add(q)));
        Seats {
            remaining: checked(self.remaining.checked_add(due)),
            capacity: self.capacity,
        }
    }
}

impl Booking {
    /// This booking as a request at `now_ms` sees it: a due hold is expired.
    pub(super) fn at(self, now_ms: u64) -> Booking {
        match self.state {
            BookingState::Held { expires_at_ms } if is_due(expires_at_ms, now_ms) => Booking {
                state: BookingState::Expired,
                ..self
            },
            _ => self,
        }
    }
}

impl Ledger {
    /// This ledger reading time from `clock` instead of the system's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::sync::Arc;
    /// use guichet::ledger::ManualClock;
    /// use guichet::{EventId, Ledger, Status};
    ///
    /// let clock = ManualClock::new(0);
    /// let mut ledger = Ledger::new([("Concert", 1)], 10)?
    ///     .with_clock(Arc::new(clock.clone()))
    ///     .with_hold_ms(1_000)?;
    /// let event = EventId::new(1).ok_or("no event 0")?;
    /// assert_eq!(ledger.hold(event, NonZeroU32::MIN, None).status(), Status::Ok);
    /// assert_eq!(ledger.query(event).reply(Default::default()).remaining, 0);
    /// clock.advance_ms(1_000);
    /// assert_eq!(ledger.query(event).reply(Default::default()).remaining, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = ClockHandle(clock);
        self
    }

    /// This ledger with holds of `hold_ms` milliseconds (default
    /// [`Ledger::DEFAULT_HOLD_MS`](crate::ledger::Ledger::DEFAULT_HOLD_MS)); holds made before keep
    /// their expiry.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ledger::ConfigError;
    /// use guichet::Ledger;
    ///
    /// assert_eq!(Ledger::new([("Concert", 1)], 10)?.with_hold_ms(5)?.hold_ms(), 5);
    /// let too_long = Ledger::new([("Concert", 1)], 10)?.with_hold_ms(Ledger::MAX_HOLD_MS + 1);
    /// assert_eq!(too_long, Err(ConfigError::HoldMs { hold_ms: Ledger::MAX_HOLD_MS + 1 }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::HoldMs`] if `hold_ms` is under [`Ledger::MIN_HOLD_MS`](crate::ledger::Ledger::MIN_HOLD_MS) or
    /// over [`Ledger::MAX_HOLD_MS`](crate::ledger::Ledger::MAX_HOLD_MS).
    pub fn with_hold_ms(mut self, hold_ms: u64) -> Result<Self, ConfigError> {
        if !(MIN_HOLD_MS..=MAX_HOLD_MS).contains(&hold_ms) {
            return Err(ConfigError::HoldMs { hold_ms });
        }
        self.hold_ms = hold_ms;
        Ok(self)
    }

    /// How long a HOLD keeps its seats, in milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::Ledger;
    ///
    /// assert_eq!(Ledger::new([("Concert", 1)], 10)?.hold_ms(), Ledger::DEFAULT_HOLD_MS);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hold_ms(&self) -> u64 {
        self.hold_ms
    }

    /// The time on the ledger's clock, in Unix milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use guichet::ledger::ManualClock;
    /// use guichet::Ledger;
    ///
    /// let ledger = Ledger::new([("Concert", 1)], 10)?.with_clock(Arc::new(ManualClock::new(9)));
    /// assert_eq!(ledger.now_ms(), 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// HOLD: books `quantity` seats of `event` as RESERVE does (same checks,
    /// same ids), held until confirmed, cancelled, or [`Ledger::hold_ms`]
    /// from now. A retry answers OK with the same booking and does not
    /// extend it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use guichet::ledger::Outcome;
    /// use guichet::{ClientBookingId, EventId, Ledger, Status};
    ///
    /// let mut ledger = Ledger::new([("Concert", 3)], 100)?;
    /// let event = EventId::new(1).ok_or("no event 0")?;
    /// let id = ClientBookingId::new(5);
    /// assert!(matches!(ledger.hold(event, NonZeroU32::MIN, id), Outcome::Held { created: true, .. }));
    /// assert!(matches!(ledger.hold(event, NonZeroU32::MIN, id), Outcome::Held { created: false, .. }));
    /// // A RESERVE with a hold's id is a conflict, whatever its fields.
    /// assert_eq!(ledger.reserve(event, NonZeroU32::MIN, id).status(), Status::BookingConflict);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hold(
        &mut self,
        event: EventId,
        quantity: NonZeroU32,
        booking: Option<ClientBookingId>,
    ) -> Outcome {
        self.book(event, quantity, booking, Origin::Hold)
    }

    /// CONFIRM: makes a live hold an ordinary booking, for good. Confirming
    /// an active booking (confirmed before, or made by RESERVE) changes
    /// nothing and answers OK; a cancelled one answers BOOKING_CANCELLED,
    /// an expired hold HOLD_EXPIRED, an unknown id UNKNOWN_BOOKING.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::sync::Arc;
    /// use guichet::ledger::{ManualClock, Outcome};
    /// use guichet::{EventId, Ledger, Status};
    ///
    /// let clock = ManualClock::new(0);
    /// let mut ledger = Ledger::new([("Concert", 3)], 100)?.with_clock(Arc::new(clock.clone()));
    /// let event = EventId::new(1).ok_or("no event 0")?;
    /// let Outcome::Held { booking: paid, .. } = ledger.hold(event, NonZeroU32::MIN, None) else {
    ///     return Err("not held".into());
    /// };
    /// let Outcome::Held { booking: late, .. } = ledger.hold(event, NonZeroU32::MIN, None) else {
    ///     return Err("not held".into());
    /// };
    /// assert!(matches!(ledger.confirm(paid), Outcome::Confirmed { confirmed_now: true, .. }));
    /// clock.advance_ms(ledger.hold_ms());
    /// assert_eq!(ledger.confirm(paid).status(), Status::Ok); // confirmed holds never expire
    /// assert_eq!(ledger.confirm(late).status(), Status::HoldExpired);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn confirm(&mut self, booking: BookingId) -> Outcome {
        let Some(b) = self.bookings.get(&booking).copied() else {
            return Outcome::UnknownBooking { booking };
        };
        self.sweep_event(b.event);
        let b = self.bookings.get(&booking).copied().unwrap_or(b);
        let seats = self.event_mut(b.event).seats();
        let (event, quantity) = (b.event, b.quantity);
        match b.state {
            BookingState::Cancelled => Outcome::BookingCancelled {
                booking,
                event,
                seats,
            },
            BookingState::Expired => Outcome::HoldExpired {
                booking,
                event,
                seats,
            },
            BookingState::Active => Outcome::Confirmed {
                booking,
                event,
                quantity,
                seats,
                confirmed_now: false,
            },
            BookingState::Held { expires_at_ms } => {
                self.make_active(booking, expires_at_ms);
                Outcome::Confirmed {
                    booking,
                    event,
                    quantity,
                    seats,
                    confirmed_now: true,
                }
            }
        }
    }

    /// Every booking as stored: a hold due but not swept yet is still
    /// `Held`. For a snapshot, which must describe the ledger as of the
    /// changes it covers, whatever the time it is written at.
    pub(crate) fn stored_bookings(&self) -> impl Iterator<Item = (BookingId, Booking)> + '_ {
        self.bookings.iter().map(|(id, b)| (*id, *b))
    }

    /// Expires every hold due by the clock, in every event; returns how many.
    ///
    /// Requests need no sweep (each expires what it must see expired); a
    /// journal's replay calls this once at its end, so that holds due while
    /// the server was down are expired before it serves.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::sync::Arc;
    /// use guichet::ledger::ManualClock;
    /// use guichet::{EventId, Ledger};
    ///
    /// let clock = ManualClock::new(0);
    /// let mut ledger = Ledger::new([("Concert", 3)], 100)?.with_clock(Arc::new(clock.clone()));
    /// ledger.hold(EventId::new(1).ok_or("no event 0")?, NonZeroU32::MIN, None);
    /// assert_eq!(ledger.expire_due(), 0);
    /// clock.advance_ms(ledger.hold_ms());
    /// assert_eq!(ledger.expire_due(), 1);
    /// ledger.check_invariants()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn expire_due(&mut self) -> usize {
        let ids: Vec<EventId> = self.events.iter().map(|e| e.id).collect();
        ids.into_iter().map(|id| self.sweep_event(id)).sum()
    }

    /// Expires the due holds of `event` (none if it is unknown); returns how many.
    pub(super) fn sweep_event(&mut self, event: EventId) -> usize {
        let now_ms = self.clock.now_ms();
        let mut expired = 0;
        while self.event(event).is_some_and(|e| {
            e.holds
                .first_key_value()
                .is_some_and(|((expires_at_ms, _), _)| is_due(*expires_at_ms, now_ms))
        }) {
            self.expire_first(event);
            expired += 1;
        }
        expired
    }

    /// Expires the first hold due in `event`, if it has one.
    pub(super) fn expire_first(&mut self, event: EventId) {
        let e = self.event_mut(event);
        let Some(((_, id), quantity)) = e.holds.pop_first() else {
            return;
        };
        e.booked = checked(e.booked.checked_sub(quantity.get()));
        e.remaining = checked(e.remaining.checked_add(quantity.get()));
        e.assert_balanced();
        let b = self.bookings.get_mut(&id);
        let b = b.unwrap_or_else(|| panic!("indexed hold {id} has no booking"));
        assert!(matches!(b.state, BookingState::Held { .. }));
        b.state = BookingState::Expired;
    }

    /// Held to active: the seats stay taken, the expiry is dropped.
    fn make_active(&mut self, booking: BookingId, expires_at_ms: u64) {
        let Some(b) = self.bookings.get_mut(&booking) else {
            return;
        };
        b.state = BookingState::Active;
        let event = b.event;
        let e = self.event_mut(event);
        let removed = e.holds.remove(&(expires_at_ms, booking));
        assert!(removed.is_some(), "hold {booking} missing from its event");
        e.assert_balanced();
    }

    /// Replays a confirmation: the booking must be held (whatever the
    /// clock says: the original confirmed it in time).
    pub(super) fn replay_confirm(&mut self, booking: BookingId) -> Result<(), crate::Status> {
        match self.bookings.get(&booking).map(|b| b.state) {
            None => Err(crate::Status::UnknownBooking),
            Some(BookingState::Held { expires_at_ms }) => {
                self.make_active(booking, expires_at_ms);
                Ok(())
            }
            Some(BookingState::Cancelled) => Err(crate::Status::BookingCancelled),
            Some(BookingState::Expired) => Err(crate::Status::HoldExpired),
            Some(BookingState::Active) => Err(crate::Status::BookingConflict),
        }
    }

    /// Replays an expiry (a snapshot's expired hold): the booking must be held.
    pub(super) fn replay_expire(&mut self, booking: BookingId) -> Result<(), crate::Status> {
        let Some(b) = self.bookings.get(&booking).copied() else {
            return Err(crate::Status::UnknownBooking);
        };
        let BookingState::Held { expires_at_ms } = b.state else {
            return Err(crate::Status::BookingConflict);
        };
        // Expire it alone, whatever its place in the event's order.
        let e = self.event_mut(b.event);
        let quantity: NonZeroU32 = e
            .holds
            .remove(&(expires_at_ms, booking))
            .unwrap_or_else(|| panic!("hold {booking} missing from its event"));
        e.booked = checked(e.booked.checked_sub(quantity.get()));
        e.remaining = checked(e.remaining.checked_add(quantity.get()));
        e.assert_balanced();
        if let Some(b) = self.bookings.get_mut(&booking) {
            b.state = BookingState::Expired;
        }
        Ok(())
    }
}
