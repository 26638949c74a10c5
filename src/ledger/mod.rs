//! The seat ledger: events, their capacities, and the bookings against them.
//!
//! Plain single-threaded data; the server wraps it in a `Mutex`. Every
//! change asserts the invariants it can touch (`remaining + booked ==
//! capacity` for the event it changed, where `booked` counts the seats of
//! bookings neither cancelled nor expired; a new booking's id not already
//! held); a booking's allowed transitions (held to active, cancelled or
//! expired; active to cancelled) hold by construction, since nothing sets
//! a booking held again or a cancelled or expired one active.
//! [`Ledger::check_invariants`] re-derives all of them from scratch for
//! tests.
//!
//! No I/O, and time only through the [`Clock`] it is given (holds expire
//! by it): the same operations at the same times give the same outcomes
//! and the same booking ids, which is what lets a journal replay them and
//! a model-based test compare against a reference.
//!
//! # Examples
//!
//! An idempotent RESERVE, retried after (say) a lost reply, then cancelled:
//!
//! ```
//! use std::num::NonZeroU32;
//! use guichet::ledger::Outcome;
//! use guichet::{BookingId, ClientBookingId, EventId, Ledger, Operation};
//!
//! let mut ledger = Ledger::new([("Concert", 10)], 100)?;
//! let reserve = Operation::Reserve {
//!     event: EventId::new(1).ok_or("no event 0")?,
//!     quantity: NonZeroU32::new(4).ok_or("no seats")?,
//!     booking: ClientBookingId::new(42),
//! };
//! assert!(matches!(ledger.apply(&reserve), Outcome::Reserved { created: true, .. }));
//! assert!(matches!(ledger.apply(&reserve), Outcome::Reserved { created: false, .. }));
//! let booking = BookingId::new(42).ok_or("0 is no booking")?;
//! let cancelled = ledger.apply(&Operation::Cancel { booking });
//! assert!(matches!(cancelled, Outcome::Cancelled { cancelled_now: true, .. }));
//! assert_eq!(ledger.events().next().map(|e| e.seats.remaining), Some(10));
//! ledger.check_invariants()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod clock;
mod holds;
mod outcome;

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::Arc;

#[cfg(test)]
pub(crate) use clock::unix_now_ms;
pub use clock::{Clock, ManualClock, SystemClock};
pub(crate) use clock::{DEFAULT_HOLD_MS, MAX_HOLD_MS, MIN_HOLD_MS};
pub use outcome::{Change, Outcome, Seats};

use clock::ClockHandle;

use crate::codec::Operation;
use crate::ids::{BookingId, ClientBookingId, EventId};

/// Most events a ledger holds.
///
/// With [`Ledger::MAX_EVENT_NAME_BYTES`](crate::ledger::Ledger::MAX_EVENT_NAME_BYTES), it bounds a journal's header record,
/// which lists every event by name and must fit the payload limit of a
/// journal record.
pub(crate) const MAX_EVENTS: usize = 4096;
/// Longest event name, in bytes (of UTF-8, not characters); see
/// [`Ledger::MAX_EVENTS`](crate::ledger::Ledger::MAX_EVENTS) for why it is bounded.
pub(crate) const MAX_EVENT_NAME_BYTES: usize = 64;
/// Largest `max_bookings` a ledger accepts: bounds its memory (a booking
/// costs a few dozen bytes).
pub(crate) const MAX_BOOKINGS_LIMIT: usize = 1 << 24;
/// `max_bookings` when none is configured.
pub(crate) const DEFAULT_MAX_BOOKINGS: usize = 1 << 20;

/// A booking's life: created active (RESERVE) or held (HOLD); a held one
/// becomes active (CONFIRM), cancelled or expired; an active one may be
/// cancelled. Never back.
///
/// Cancelled and expired bookings are kept, not removed, so that a retried
/// RESERVE or HOLD with a client-chosen id is answered BOOKING_CANCELLED or
/// HOLD_EXPIRED rather than booked again, and a retried CANCEL answers OK
/// again.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use guichet::ledger::{BookingState, Outcome};
/// use guichet::{EventId, Ledger};
///
/// let mut ledger = Ledger::new([("Concert", 10)], 100)?;
/// let event = EventId::new(1).ok_or("no event 0")?;
/// let Outcome::Reserved { booking, .. } = ledger.reserve(event, NonZeroU32::MIN, None) else {
///     return Err("not reserved".into());
/// };
/// assert_eq!(ledger.booking(booking).map(|b| b.state), Some(BookingState::Active));
/// ledger.cancel(booking);
/// assert_eq!(ledger.booking(booking).map(|b| b.state), Some(BookingState::Cancelled));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BookingState {
    /// Its seats are taken, for good.
    Active,
    /// Its seats are taken until `expires_at_ms` (on the ledger's
    /// [`Clock`]), unless confirmed or cancelled before.
    Held {
        /// When the hold expires, in Unix milliseconds.
        expires_at_ms: u64,
    },
    /// Its seats went back to the event.
    Cancelled,
    /// A hold that reached its expiry unconfirmed: its seats went back.
    Expired,
}

/// Which operation made a booking: a RESERVE retried as a HOLD, or the
/// other way round, is a BOOKING_CONFLICT (PROTOCOL.md, Holds).
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use guichet::ledger::Origin;
/// use guichet::{BookingId, ClientBookingId, EventId, Ledger};
///
/// let mut ledger = Ledger::new([("Concert", 10)], 100)?;
/// let event = EventId::new(1).ok_or("no event 0")?;
/// ledger.hold(event, NonZeroU32::MIN, ClientBookingId::new(7));
/// let booking = ledger.booking(BookingId::new(7).ok_or("0 is no booking")?);
/// assert_eq!(booking.map(|b| b.origin), Some(Origin::Hold));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Made by RESERVE.
    Reserve,
    /// Made by HOLD (confirmed or not).
    Hold,
}

/// A booking as the ledger holds it. Its event and quantity never change.
///
/// Returned by value ([`Ledger::booking`], [`Ledger::bookings`]): a
/// snapshot, not a handle into the ledger.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use guichet::ledger::{Booking, BookingState, Origin};
/// use guichet::{BookingId, ClientBookingId, EventId, Ledger};
///
/// let mut ledger = Ledger::new([("Concert", 10)], 100)?;
/// let event = EventId::new(1).ok_or("no event 0")?;
/// let quantity = NonZeroU32::new(3).ok_or("no seats")?;
/// ledger.reserve(event, quantity, ClientBookingId::new(7));
/// let booking = ledger.booking(BookingId::new(7).ok_or("0 is no booking")?);
/// let state = BookingState::Active;
/// assert_eq!(booking, Some(Booking { event, quantity, state, origin: Origin::Reserve }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Booking {
    /// The event booked.
    pub event: EventId,
    /// Seats booked.
    pub quantity: NonZeroU32,
    /// Active, held, cancelled or expired.
    pub state: BookingState,
    /// RESERVE or HOLD.
    pub origin: Origin,
}

/// One event's configuration and counts, as [`Ledger::events`] shows them.
///
/// Borrows the name from the ledger, so listing events allocates nothing.
///
/// # Examples
///
/// ```
/// use guichet::Ledger;
///
/// let ledger = Ledger::new([("Concert", 10), ("Opera", 4)], 100)?;
/// let opera = ledger.events().nth(1).ok_or("no second event")?;
/// assert_eq!((opera.id.get(), opera.name), (2, "Opera"));
/// assert_eq!((opera.seats.remaining, opera.seats.capacity), (4, 4));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventView<'a> {
    /// Its id.
    pub id: EventId,
    /// Its name, as configured.
    pub name: &'a str,
    /// Its seats.
    pub seats: Seats,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Event {
    id: EventId,
    name: String,
    capacity: u32,
    remaining: u32,
    /// Seats of active and held bookings; kept so each change can assert
    /// `remaining + booked == capacity` in O(1).
    booked: u32,
    /// The held bookings not yet expired (as far as a sweep knows), by
    /// expiry: the first due is the first key, found in O(log n).
    holds: BTreeMap<(u64, BookingId), NonZeroU32>,
}

impl Event {
    fn seats(&self) -> Seats {
        Seats {
            remaining: self.remaining,
            capacity: self.capacity,
        }
    }

    fn assert_balanced(&self) {
        assert_eq!(
            u64::from(self.remaining) + u64::from(self.booked),
            u64::from(self.capacity),
            "ledger invariant broken for {:?}",
            self.name
        );
    }
}

/// Why a ledger could not be built.
///
/// Every variant is a configuration mistake, caught before any request is
/// served: a server with a bad event list does not start.
///
/// # Examples
///
/// ```
/// use guichet::ledger::ConfigError;
/// use guichet::Ledger;
///
/// let err = Ledger::new([("Concert", 10), ("Concert", 5)], 100).unwrap_err();
/// assert_eq!(err, ConfigError::DuplicateName { name: "Concert".into() });
/// assert_eq!(err.to_string(), "event name \"Concert\" is configured twice");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// More than [`Ledger::MAX_EVENTS`](crate::ledger::Ledger::MAX_EVENTS) events.
    #[error("{count} events configured; at most {MAX_EVENTS} are allowed")]
    TooManyEvents {
        /// Events counted when the limit was found broken: always
        /// `MAX_EVENTS + 1`, not the length of the list given, which is
        /// not read past its first event over the limit.
        count: usize,
    },
    /// An empty name, one over [`Ledger::MAX_EVENT_NAME_BYTES`](crate::ledger::Ledger::MAX_EVENT_NAME_BYTES), or with control characters.
    #[error(
        "event name {name:?} must be 1 to {MAX_EVENT_NAME_BYTES} bytes without control characters"
    )]
    BadName {
        /// The name given.
        name: String,
    },
    /// Two events with one name.
    #[error("event name {name:?} is configured twice")]
    DuplicateName {
        /// The name given twice.
        name: String,
    },
    /// `max_bookings` of 0 or over [`Ledger::MAX_BOOKINGS_LIMIT`](crate::ledger::Ledger::MAX_BOOKINGS_LIMIT).
    #[error("max_bookings is {max_bookings}; it must be 1 to {MAX_BOOKINGS_LIMIT}")]
    MaxBookings {
        /// The value given.
        max_bookings: usize,
    },
    /// A hold duration under [`Ledger::MIN_HOLD_MS`](crate::ledger::Ledger::MIN_HOLD_MS) or over [`Ledger::MAX_HOLD_MS`](crate::ledger::Ledger::MAX_HOLD_MS).
    #[error("hold_ms is {hold_ms}; it must be {MIN_HOLD_MS} to {MAX_HOLD_MS}")]
    HoldMs {
        /// The value given.
        hold_ms: u64,
    },
}

/// Why [`Ledger::check_invariants`] failed: a bug, never a client's doing.
///
/// Its message describes the first broken invariant, for a test failure
/// or an audit log; it is not meant to be matched on.
///
/// # Examples
///
/// A ledger built and changed through its API never breaks an invariant:
///
/// ```
/// use guichet::ledger::InvariantError;
/// use guichet::Ledger;
///
/// let ledger = Ledger::new([("Concert", 10)], 100)?;
/// let checked: Result<(), InvariantError> = ledger.check_invariants();
/// assert!(checked.is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ledger invariant broken: {0}")]
pub struct InvariantError(String);

/// Why a recorded [`Change`] cannot be replayed onto this ledger.
///
/// A journal replayed onto the ledger it was recorded from never gets one;
/// seeing it means the journal and the configuration disagree, or the
/// journal is damaged in a way its checksums did not catch.
///
/// # Examples
///
/// ```
/// use guichet::ledger::{Change, ReplayError};
/// use guichet::{BookingId, Ledger, Status};
///
/// let mut ledger = Ledger::new([("Concert", 10)], 100)?;
/// let change = Change::Cancelled { booking: BookingId::new(42).ok_or("0 is no booking")? };
/// let err = ledger.replay(&change).unwrap_err();
/// assert_eq!(err, ReplayError::Refused { change, status: Status::UnknownBooking });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The change does not apply: the ledger answered this instead.
    #[error("change {change:?} does not apply: the ledger answers {status}")]
    Refused {
        /// The change.
        change: Change,
        /// The status the ledger answered instead of OK.
        status: crate::Status,
    },
}

/// The seat ledger.
///
/// Holds the events (fixed at creation) and every booking ever made,
/// cancelled ones included, up to `max_bookings`. Server-assigned booking
/// ids are issued in order (`BookingId::server(1)`, `(2)`…), so equal
/// histories give equal ids.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use guichet::{EventId, Ledger, Operation, Status};
///
/// let mut ledger = Ledger::new([("Concert", 3)], 100)?;
/// let event = EventId::new(1).unwrap();
/// let two = NonZeroU32::new(2).unwrap();
/// let reserve = Operation::Reserve { event, quantity: two, booking: None };
/// assert_eq!(ledger.apply(&reserve).status(), Status::Ok);
/// assert_eq!(ledger.apply(&reserve).status(), Status::SoldOut); // 1 seat left
/// ledger.check_invariants()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ledger {
    events: Vec<Event>,
    bookings: HashMap<BookingId, Booking>,
    max_bookings: usize,
    /// Server ids issued so far; the next one is `server_ids + 1`.
    server_ids: u64,
    /// How long a HOLD keeps its seats.
    hold_ms: u64,
    /// Where holds read the time.
    clock: ClockHandle,
}

impl Ledger {
    /// Most events a ledger holds: with [`Ledger::MAX_EVENT_NAME_BYTES`]
    /// it bounds a journal's header record, which lists every event.
    pub const MAX_EVENTS: usize = MAX_EVENTS;
    /// Longest event name, in bytes of UTF-8.
    pub const MAX_EVENT_NAME_BYTES: usize = MAX_EVENT_NAME_BYTES;
    /// Largest `max_bookings` a ledger accepts: bounds its memory (a
    /// booking costs a few dozen bytes).
    pub const MAX_BOOKINGS_LIMIT: usize = MAX_BOOKINGS_LIMIT;
    /// `max_bookings` when none is configured.
    pub const DEFAULT_MAX_BOOKINGS: usize = DEFAULT_MAX_BOOKINGS;
    /// How long a HOLD keeps its seats when none is configured: 10 minutes.
    pub const DEFAULT_HOLD_MS: u64 = DEFAULT_HOLD_MS;
    /// Shortest hold time accepted.
    pub const MIN_HOLD_MS: u64 = MIN_HOLD_MS;
    /// Longest hold time accepted: a day.
    pub const MAX_HOLD_MS: u64 = MAX_HOLD_MS;

    /// A ledger with `events` (numbered from 1 in this order) and room for
    /// `max_bookings` bookings, cancelled ones included (they are kept so a
    /// retried RESERVE or CANCEL stays idempotent).
    ///
    /// A capacity of 0 is allowed: such an event answers SOLD_OUT to every
    /// RESERVE. Events are read in order and no further than the first
    /// over [`Ledger::MAX_EVENTS`](crate::ledger::Ledger::MAX_EVENTS).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ledger::ConfigError;
    /// use guichet::Ledger;
    ///
    /// let events = vec![("Concert".to_string(), 100), ("Opera".to_string(), 0)];
    /// let ledger = Ledger::new(events, Ledger::DEFAULT_MAX_BOOKINGS)?;
    /// assert_eq!(ledger.events().len(), 2);
    /// assert_eq!(
    ///     Ledger::new([("Concert", 100)], 0),
    ///     Err(ConfigError::MaxBookings { max_bookings: 0 })
    /// );
    /// assert!(Ledger::new([("", 1)], 10).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`ConfigError::MaxBookings`] if `max_bookings` is 0 or over
    ///   [`Ledger::MAX_BOOKINGS_LIMIT`](crate::ledger::Ledger::MAX_BOOKINGS_LIMIT) (checked first);
    /// - [`ConfigError::TooManyEvents`] past [`Ledger::MAX_EVENTS`](crate::ledger::Ledger::MAX_EVENTS) events;
    /// - [`ConfigError::BadName`] for a name that is empty, over
    ///   [`Ledger::MAX_EVENT_NAME_BYTES`](crate::ledger::Ledger::MAX_EVENT_NAME_BYTES), or holds a control character;
    /// - [`ConfigError::DuplicateName`] for a name given twice.
    pub fn new<I, S>(events: I, max_bookings: usize) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (S, u32)>,
        S: Into<String>,
    {
        if max_bookings == 0 || max_bookings > MAX_BOOKINGS_LIMIT {
            return Err(ConfigError::MaxBookings { max_bookings });
        }
        let mut list: Vec<Event> = Vec::new();
        for (name, capacity) in events {
            let name = name.into();
            let id = u32::try_from(list.len() + 1).ok().and_then(EventId::new);
            let (Some(id), false) = (id, list.len() == MAX_EVENTS) else {
                return Err(ConfigError::TooManyEvents {
                    count: list.len() + 1,
                });
            };
            if name.is_empty()
                || name.len() > MAX_EVENT_NAME_BYTES
                || name.chars().any(char::is_control)
            {
                return Err(ConfigError::BadName { name });
            }
            if list.iter().any(|e| e.name == name) {
                return Err(ConfigError::DuplicateName { name });
            }
            list.push(Event {
                id,
                name,
                capacity,
                remaining: capacity,
                booked: 0,
                holds: BTreeMap::new(),
            });
        }
        Ok(Self {
            events: list,
            bookings: HashMap::new(),
            max_bookings,
            server_ids: 0,
            hold_ms: DEFAULT_HOLD_MS,
            clock: ClockHandle(Arc::new(SystemClock::new())),
        })
    }

    /// Applies one operation and says what happened.
    ///
    /// RESERVE with a client-chosen id looks the id up first, so a retry is
    /// answered from the stored booking alone: OK with the same booking if
    /// event and quantity match and it is active, BOOKING_CONFLICT if they
    /// differ (cancelled or not), BOOKING_CANCELLED if they match and it was
    /// cancelled. A new booking then needs a known event (UNKNOWN_EVENT),
    /// enough seats (SOLD_OUT) and room in the ledger (LEDGER_FULL), in that
    /// order.
    ///
    /// Never fails: every refusal is an [`Outcome`] a client is answered
    /// with, and only an OK outcome changed anything ([`Outcome::change`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use guichet::{ClientBookingId, EventId, Ledger, Operation, Status};
    ///
    /// let mut ledger = Ledger::new([("Concert", 10)], 100)?;
    /// let event = EventId::new(1).ok_or("no event 0")?;
    /// let booking = ClientBookingId::new(42);
    /// let two = NonZeroU32::new(2).ok_or("no seats")?;
    /// let three = NonZeroU32::new(3).ok_or("no seats")?;
    /// let reserve = |quantity| Operation::Reserve { event, quantity, booking };
    /// assert_eq!(ledger.apply(&reserve(two)).status(), Status::Ok);
    /// assert_eq!(ledger.apply(&reserve(two)).status(), Status::Ok); // a retry
    /// assert_eq!(ledger.apply(&reserve(three)).status(), Status::BookingConflict);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply(&mut self, operation: &Operation) -> Outcome {
        match *operation {
            Operation::Query { event } => self.query(event),
            Operation::Reserve {
                event,
                quantity,
                booking,
            } => self.reserve(event, quantity, booking),
            Operation::Cancel { booking } => self.cancel(booking),
            Operation::Hold {
                event,
                quantity,
                booking,
            } => self.hold(event, quantity, booking),
            Operation::Confirm { booking } => self.confirm(booking),
        }
    }

    /// QUERY: an event's seats. Changes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ledger::{Outcome, Seats};
    /// use guichet::{EventId, Ledger};
    ///
    /// let ledger = Ledger::new([("Concert", 10)], 100)?;
    /// let event = EventId::new(1).ok_or("no event 0")?;
    /// let seats = Seats { remaining: 10, capacity: 10 };
    /// assert_eq!(ledger.query(event), Outcome::Queried { event, seats });
    /// let unknown = EventId::new(2).ok_or("no event 0")?;
    /// assert_eq!(ledger.query(unknown), Outcome::UnknownEvent { event: unknown });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn query(&self, event: EventId) -> Outcome {
        let now_ms = self.clock.now_ms();
        match self.event(event) {
            Some(e) => Outcome::Queried {
                event,
                seats: e.seats_at(now_ms),
            },
            None => Outcome::UnknownEvent { event },
        }
    }

    /// RESERVE: books `quantity` seats of `event`, all or nothing; see
    /// [`Ledger::apply`] for the order of the checks.
    ///
    /// With `booking: None` the ledger picks the next server id.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use guichet::ledger::Outcome;
    /// use guichet::{BookingId, EventId, Ledger, Status};
    ///
    /// let mut ledger = Ledger::new([("Concert", 3)], 100)?;
    /// let event = EventId::new(1).ok_or("no event 0")?;
    /// let two = NonZeroU32::new(2).ok_or("no seats")?;
    /// let Outcome::Reserved { booking, seats, .. } = ledger.reserve(event, two, None) else {
    ///     return Err("not reserved".into());
    /// };
    /// assert_eq!(Some(booking), BookingId::server(1));
    /// assert_eq!(seats.remaining, 1);
    /// // All or nothing: 2 seats asked, 1 left, none taken.
    /// assert_eq!(ledger.reserve(event, two, None).status(), Status::SoldOut);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve(
        &mut self,
        event: EventId,
        quantity: NonZeroU32,
        booking: Option<ClientBookingId>,
    ) -> Outcome {
        self.book(event, quantity, booking, Origin::Reserve)
    }

    /// RESERVE or HOLD, after the due holds of the events concerned expired.
    fn book(
        &mut self,
        event: EventId,
        quantity: NonZeroU32,
        booking: Option<ClientBookingId>,
        origin: Origin,
    ) -> Outcome {
        self.sweep_event(event);
        if let Some(id) = booking.map(BookingId::from) {
            if let Some(existing) = self.bookings.get(&id).copied() {
                self.sweep_event(existing.event);
                let existing = self.bookings.get(&id).copied().unwrap_or(existing);
                return self.retry_outcome(id, existing, event, quantity, origin);
            }
        }
        let Some(e) = self.event(event) else {
            return Outcome::UnknownEvent { event };
        };
        let seats = e.seats();
        if seats.remaining < quantity.get() {
            return Outcome::SoldOut { event, seats };
        }
        if self.bookings.len() >= self.max_bookings {
            return Outcome::LedgerFull { event, seats };
        }
        let id = match booking {
            Some(id) => id.booking_id(),
            None => match self.server_ids.checked_add(1).and_then(BookingId::server) {
                Some(id) => id,
                // 2^63 ids are far beyond MAX_BOOKINGS_LIMIT: unreachable in
                // practice, but a full id space is a full ledger, not a panic.
                None => return Outcome::LedgerFull { event, seats },
            },
        };
        let state = match origin {
            Origin::Reserve => BookingState::Active,
            Origin::Hold => BookingState::Held {
                expires_at_ms: self.clock.now_ms().saturating_add(self.hold_ms),
            },
        };
        self.insert(id, event, quantity, state)
    }

    /// CANCEL: returns a booking's seats to its event. Cancelling a
    /// cancelled booking changes nothing and answers OK again, with the
    /// same quantity, so a client may retry a CANCEL whose reply it lost.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use guichet::ledger::Outcome;
    /// use guichet::{BookingId, EventId, Ledger, Status};
    ///
    /// let mut ledger = Ledger::new([("Concert", 3)], 100)?;
    /// let event = EventId::new(1).ok_or("no event 0")?;
    /// let Outcome::Reserved { booking, .. } = ledger.reserve(event, NonZeroU32::MIN, None) else {
    ///     return Err("not reserved".into());
    /// };
    /// assert!(matches!(ledger.cancel(booking), Outcome::Cancelled { cancelled_now: true, .. }));
    /// assert!(matches!(ledger.cancel(booking), Outcome::Cancelled { cancelled_now: false, .. }));
    /// let nobody = BookingId::new(99).ok_or("0 is no booking")?;
    /// assert_eq!(ledger.cancel(nobody).status(), Status::UnknownBooking);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel(&mut self, booking: BookingId) -> Outcome {
        if let Some(b) = self.bookings.get(&booking) {
            self.sweep_event(b.event);
        }
        self.cancel_swept(booking)
    }

    /// CANCEL once the booking's event has no due hold left unexpired.
    fn cancel_swept(&mut self, booking: BookingId) -> Outcome {
        let Some(entry) = self.bookings.get_mut(&booking) else {
            return Outcome::UnknownBooking { booking };
        };
        let was = entry.state;
        let Booking {
            event, quantity, ..
        } = *entry;
        if was == BookingState::Expired {
            let seats = self.event_mut(event).seats();
            return Outcome::HoldExpired {
                booking,
                event,
                seats,
            };
        }
        entry.state = BookingState::Cancelled;
        let e = self.event_mut(event);
        let taken = match was {
            BookingState::Held { expires_at_ms } => {
                let removed = e.holds.remove(&(expires_at_ms, booking));
                assert!(removed.is_some(), "hold {booking} missing from its event");
                true
            }
            BookingState::Active => true,
            BookingState::Cancelled | BookingState::Expired => false,
        };
        if taken {
            e.booked = checked(e.booked.checked_sub(quantity.get()));
            e.remaining = checked(e.remaining.checked_add(quantity.get()));
        }
        e.assert_balanced();
        Outcome::Cancelled {
            booking,
            event,
            quantity,
            seats: e.seats(),
            cancelled_now: taken,
        }
    }

    /// Replays a change a journal recorded, with the booking id it recorded.
    ///
    /// Stricter than [`Ledger::apply`]: a change is a fact to redo, not a
    /// request, so what `apply` would answer idempotently (a booking that
    /// already exists, a second cancel) is refused here. Replaying a
    /// server-assigned id also advances the ledger's id counter past it, so
    /// the ids issued after replay are the ones issued after the original.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use guichet::ledger::Outcome;
    /// use guichet::{EventId, Ledger};
    ///
    /// let mut original = Ledger::new([("Concert", 10)], 100)?;
    /// let event = EventId::new(1).ok_or("no event 0")?;
    /// let change = original.reserve(event, NonZeroU32::MIN, None).change().ok_or("no change")?;
    ///
    /// let mut replayed = Ledger::new([("Concert", 10)], 100)?;
    /// replayed.replay(&change)?;
    /// assert_eq!(replayed, original);
    /// assert!(replayed.replay(&change).is_err()); // that booking exists now
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReplayError::Refused`] if the change does not apply to this state
    /// (the journal and the ledger disagree), with the status that says why:
    /// for [`Change::Reserved`], BOOKING_CONFLICT if the id is taken,
    /// UNKNOWN_EVENT, SOLD_OUT or LEDGER_FULL; for [`Change::Cancelled`],
    /// UNKNOWN_BOOKING or BOOKING_CANCELLED. The ledger is then unchanged.
    pub fn replay(&mut self, change: &Change) -> Result<(), ReplayError> {
        let refused = |status| ReplayError::Refused {
            change: *change,
            status,
        };
        match *change {
            Change::Reserved {
                booking,
                event,
                quantity,
            } => self
                .replay_insert(booking, event, quantity, BookingState::Active)
                .map_err(refused),
            Change::Held {
                booking,
                event,
                quantity,
                expires_at_ms,
            } => self
                .replay_insert(
                    booking,
                    event,
                    quantity,
                    BookingState::Held { expires_at_ms },
                )
                .map_err(refused),
            Change::Cancelled { booking } => match self.bookings.get(&booking) {
                None => Err(refused(crate::Status::UnknownBooking)),
                Some(b) if b.state == BookingState::Cancelled => {
                    Err(refused(crate::Status::BookingCancelled))
                }
                Some(b) if b.state == BookingState::Expired => {
                    Err(refused(crate::Status::HoldExpired))
                }
                Some(_) => {
                    self.cancel_swept(booking);
                    Ok(())
                }
            },
            Change::Confirmed { booking } => self.replay_confirm(booking).map_err(refused),
            Change::Expired { booking } => self.replay_expire(booking).map_err(refused),
        }
    }

    /// Replays a new booking. Seats short by holds that the original run had
    /// expired (expiry is not journalled: it follows from time) are freed by
    /// expiring this event's holds earliest first: every hold the original
    /// had expired by then was due before any it still held, so these are
    /// exactly the ones it freed.
    fn replay_insert(
        &mut self,
        booking: BookingId,
        event: EventId,
        quantity: NonZeroU32,
        state: BookingState,
    ) -> Result<(), crate::Status> {
        if self.bookings.contains_key(&booking) {
            return Err(crate::Status::BookingConflict);
        }
        let Some(e) = self.event(event) else {
            return Err(crate::Status::UnknownEvent);
        };
        let held: u64 = e.holds.values().map(|q| u64::from(q.get())).sum();
        if u64::from(e.remaining) + held < u64::from(quantity.get()) {
            return Err(crate::Status::SoldOut);
        }
        if self.bookings.len() >= self.max_bookings {
            return Err(crate::Status::LedgerFull);
        }
        while self
            .event(event)
            .is_some_and(|e| e.remaining < quantity.get())
        {
            self.expire_first(event);
        }
        self.insert(booking, event, quantity, state);
        Ok(())
    }

    /// The events, in id order, with their current seats.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::Ledger;
    ///
    /// let ledger = Ledger::new([("Concert", 10), ("Opera", 4)], 100)?;
    /// let names: Vec<&str> = ledger.events().map(|e| e.name).collect();
    /// assert_eq!(names, ["Concert", "Opera"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn events(&self) -> impl ExactSizeIterator<Item = EventView<'_>> + '_ {
        let now_ms = self.clock.now_ms();
        self.events.iter().map(move |e| EventView {
            id: e.id,
            name: &e.name,
            seats: e.seats_at(now_ms),
        })
    }

    /// A booking, if the ledger holds one with this id (active or
    /// cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::{BookingId, Ledger};
    ///
    /// let ledger = Ledger::new([("Concert", 10)], 100)?;
    /// assert_eq!(ledger.booking(BookingId::new(1).ok_or("0 is no booking")?), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn booking(&self, id: BookingId) -> Option<Booking> {
        let now_ms = self.clock.now_ms();
        self.bookings.get(&id).map(|b| b.at(now_ms))
    }

    /// Every booking, cancelled ones included, in no particular order (sort
    /// them if a stable order matters, as a snapshot's writer does).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use guichet::ledger::BookingState;
    /// use guichet::{EventId, Ledger};
    ///
    /// let mut ledger = Ledger::new([("Concert", 10)], 100)?;
    /// let event = EventId::new(1).ok_or("no event 0")?;
    /// ledger.reserve(event, NonZeroU32::MIN, None);
    /// ledger.reserve(event, NonZeroU32::MIN, None);
    /// let mut ids: Vec<_> = ledger.bookings().map(|(id, _)| id).collect();
    /// ids.sort();
    /// assert_eq!(ids.len(), 2);
    /// assert!(ledger.bookings().all(|(_, b)| b.state == BookingState::Active));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bookings(&self) -> impl Iterator<Item = (BookingId, Booking)> + '_ {
        let now_ms = self.clock.now_ms();
        self.bookings.iter().map(move |(id, b)| (*id, b.at(now_ms)))
    }

    /// Bookings held, cancelled ones included: what counts against
    /// [`Ledger::max_bookings`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use guichet::ledger::Outcome;
    /// use guichet::{EventId, Ledger, Status};
    ///
    /// let mut ledger = Ledger::new([("Concert", 10)], 1)?;
    /// let event = EventId::new(1).ok_or("no event 0")?;
    /// let Outcome::Reserved { booking, .. } = ledger.reserve(event, NonZeroU32::MIN, None) else {
    ///     return Err("not reserved".into());
    /// };
    /// ledger.cancel(booking);
    /// assert_eq!(ledger.booking_count(), 1); // still held, though cancelled
    /// assert_eq!(ledger.reserve(event, NonZeroU32::MIN, None).status(), Status::LedgerFull);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn booking_count(&self) -> usize {
        self.bookings.len()
    }

    /// The configured maximum of bookings.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::Ledger;
    ///
    /// assert_eq!(Ledger::new([("Concert", 10)], 500)?.max_bookings(), 500);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_bookings(&self) -> usize {
        self.max_bookings
    }

    /// Re-derives every invariant from scratch: for every event,
    /// `remaining + (seats of its active bookings) == capacity`; every
    /// booking names a known event; no server id beyond the last one issued
    /// (so none can be issued twice); the booking count within the limit.
    ///
    /// O(events + bookings): for tests and audits, not the request path,
    /// which asserts the same facts incrementally.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use guichet::{EventId, Ledger};
    ///
    /// let mut ledger = Ledger::new([("Concert", 10), ("Opera", 5)], 100)?;
    /// for event in [1, 2, 1] {
    ///     let event = EventId::new(event).ok_or("no event 0")?;
    ///     ledger.reserve(event, NonZeroU32::MIN, None);
    ///     ledger.check_invariants()?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvariantError`] describing the first broken invariant.
    pub fn check_invariants(&self) -> Result<(), InvariantError> {
        let broken = |what: String| Err(InvariantError(what));
        if self.bookings.len() > self.max_bookings {
            return broken(format!(
                "{} bookings exceed the maximum {}",
                self.bookings.len(),
                self.max_bookings
            ));
        }
        let now_ms = self.clock.now_ms();
        let mut booked = vec![0u64; self.events.len()];
        let mut live = vec![0u64; self.events.len()];
        for (id, b) in &self.bookings {
            if let (Some(l), BookingState::Active | BookingState::Held { .. }) =
                (live.get_mut(b.event.index()), b.at(now_ms).state)
            {
                *l += u64::from(b.quantity.get());
            }
            let Some(slot) = booked.get_mut(b.event.index()) else {
                return broken(format!("booking {id} names unknown {}", b.event));
            };
            if id.is_server_assigned()
                && id.get() & !crate::wire::SERVER_BOOKING_BIT > self.server_ids
            {
                return broken(format!(
                    "server booking {id} is beyond the {} ids issued",
                    self.server_ids
                ));
            }
            match b.state {
                BookingState::Active => *slot += u64::from(b.quantity.get()),
                BookingState::Held { expires_at_ms } => {
                    *slot += u64::from(b.quantity.get());
                    let indexed = self.events[b.event.index()]
                        .holds
                        .get(&(expires_at_ms, *id))
                        .copied();
                    if indexed != Some(b.quantity) {
                        return broken(format!("hold {id} is not indexed by its expiry"));
                    }
                }
                BookingState::Cancelled | BookingState::Expired => {}
            }
            if b.origin == Origin::Reserve
                && !matches!(b.state, BookingState::Active | BookingState::Cancelled)
            {
                return broken(format!("reserved booking {id} is {:?}", b.state));
            }
        }
        for ((e, active), live) in self.events.iter().zip(booked).zip(live) {
            if u64::from(e.booked) != active
                || u64::from(e.remaining) + active != u64::from(e.capacity)
            {
                return broken(format!(
                    "event {:?}: remaining {} + active booked {} (cached {}) != capacity {}",
                    e.name, e.remaining, active, e.booked, e.capacity
                ));
            }
            let seats = e.seats_at(now_ms);
            if u64::from(seats.remaining) + live != u64::from(e.capacity) {
                return broken(format!(
                    "event {:?} now: remaining {} + seats neither cancelled nor expired {live} \
                     != capacity {}",
                    e.name, seats.remaining, e.capacity
                ));
            }
        }
        Ok(())
    }

    fn event(&self, id: EventId) -> Option<&Event> {
        let event = self.events.get(id.index())?;
        debug_assert_eq!(event.id, id);
        Some(event)
    }

    /// The event of a stored booking: always known, since events are fixed
    /// and bookings are only made against known events.
    fn event_mut(&mut self, id: EventId) -> &mut Event {
        let index = id.index();
        assert!(index < self.events.len(), "booking names unknown {id}");
        &mut self.events[index]
    }

    /// The answer to a RESERVE or HOLD whose id names `existing`, in the
    /// order PROTOCOL.md sets: made by the other operation, or of another
    /// event or quantity: BOOKING_CONFLICT; cancelled: BOOKING_CANCELLED;
    /// expired: HOLD_EXPIRED; else OK, unchanged.
    fn retry_outcome(
        &self,
        id: BookingId,
        existing: Booking,
        event: EventId,
        quantity: NonZeroU32,
        origin: Origin,
    ) -> Outcome {
        let seats = self
            .event(existing.event)
            .map(Event::seats)
            .unwrap_or(Seats {
                remaining: 0,
                capacity: 0,
            });
        if existing.origin != origin || existing.event != event || existing.quantity != quantity {
            return Outcome::BookingConflict {
                booking: id,
                event: existing.event,
                seats,
            };
        }
        match (existing.state, origin) {
            (BookingState::Cancelled, _) => Outcome::BookingCancelled {
                booking: id,
                event,
                seats,
            },
            (BookingState::Expired, _) => Outcome::HoldExpired {
                booking: id,
                event,
                seats,
            },
            (BookingState::Active, Origin::Reserve) => Outcome::Reserved {
                booking: id,
                event,
                quantity,
                seats,
                created: false,
            },
            (state, _) => Outcome::Held {
                booking: id,
                event,
                quantity,
                seats,
                created: false,
                expires_at_ms: match state {
                    BookingState::Held { expires_at_ms } => Some(expires_at_ms),
                    _ => None,
                },
            },
        }
    }

    /// Takes the seats and records the booking; the caller checked that the
    /// event exists, the seats remain and the ledger has room.
    fn insert(
        &mut self,
        id: BookingId,
        event: EventId,
        quantity: NonZeroU32,
        state: BookingState,
    ) -> Outcome {
        if id.is_server_assigned() {
            self.server_ids = self
                .server_ids
                .max(id.get() & !crate::wire::SERVER_BOOKING_BIT);
        }
        let e = self.event_mut(event);
        e.remaining = checked(e.remaining.checked_sub(quantity.get()));
        e.booked = checked(e.booked.checked_add(quantity.get()));
        let (origin, expires_at_ms) = match state {
            BookingState::Held { expires_at_ms } => {
                let previous = e.holds.insert((expires_at_ms, id), quantity);
                assert!(previous.is_none(), "hold {id} indexed twice");
                (Origin::Hold, Some(expires_at_ms))
            }
            _ => (Origin::Reserve, None),
        };
        e.assert_balanced();
        let seats = e.seats();
        let previous = self.bookings.insert(
            id,
            Booking {
                event,
                quantity,
                state,
                origin,
            },
        );
        assert!(previous.is_none(), "booking {id} inserted twice");
        assert!(self.bookings.len() <= self.max_bookings);
        match origin {
            Origin::Reserve => Outcome::Reserved {
                booking: id,
                event,
                quantity,
                seats,
                created: true,
            },
            Origin::Hold => Outcome::Held {
                booking: id,
                event,
                quantity,
                seats,
                created: true,
                expires_at_ms,
            },
        }
    }
}

/// Unwraps arithmetic the invariants make infallible (`remaining + booked
/// == capacity <= u32::MAX`): failing here is a ledger bug, never input.
#[track_caller]
fn checked(value: Option<u32>) -> u32 {
    match value {
        Some(v) => v,
        None => panic!("ledger arithmetic overflowed: invariant broken"),
    }
}

#[cfg(test)]
mod tests;
