//! The seat ledger: events, their capacities, and the bookings against them.
//!
//! Plain single-threaded data; the server wraps it in a `Mutex`. Every
//! change asserts the invariants it can touch (`remaining + booked ==
//! capacity` for the event it changed, the booking's one allowed
//! transition), and [`Ledger::check_invariants`] re-derives all of them from
//! scratch for tests.

mod outcome;

use std::collections::HashMap;
use std::num::NonZeroU32;

pub use outcome::{Change, Outcome, Seats};

use crate::codec::Operation;
use crate::ids::{BookingId, ClientBookingId, EventId};

/// Most events a ledger holds.
pub const MAX_EVENTS: usize = 4096;
/// Longest event name, in bytes.
pub const MAX_EVENT_NAME_BYTES: usize = 64;
/// Largest `max_bookings` a ledger accepts: bounds its memory (a booking
/// costs a few dozen bytes).
pub const MAX_BOOKINGS_LIMIT: usize = 1 << 24;
/// `max_bookings` when none is configured.
pub const DEFAULT_MAX_BOOKINGS: usize = 1 << 20;

/// A booking's life: created active, cancelled at most once, never back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BookingState {
    /// Its seats are taken.
    Active,
    /// Its seats went back to the event.
    Cancelled,
}

/// A booking as the ledger holds it. Its event and quantity never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Booking {
    /// The event booked.
    pub event: EventId,
    /// Seats booked.
    pub quantity: NonZeroU32,
    /// Active or cancelled.
    pub state: BookingState,
}

/// One event's configuration and counts, as [`Ledger::events`] shows them.
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
    /// Seats of active bookings; kept so each change can assert
    /// `remaining + booked == capacity` in O(1).
    booked: u32,
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
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// More than [`MAX_EVENTS`] events.
    #[error("{count} events configured; at most {MAX_EVENTS} are allowed")]
    TooManyEvents {
        /// Events given.
        count: usize,
    },
    /// An empty name, one over [`MAX_EVENT_NAME_BYTES`], or with control characters.
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
    /// `max_bookings` of 0 or over [`MAX_BOOKINGS_LIMIT`].
    #[error("max_bookings is {max_bookings}; it must be 1 to {MAX_BOOKINGS_LIMIT}")]
    MaxBookings {
        /// The value given.
        max_bookings: usize,
    },
}

/// Why [`Ledger::check_invariants`] failed: a bug, never a client's doing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ledger invariant broken: {0}")]
pub struct InvariantError(String);

/// Why a recorded [`Change`] cannot be replayed onto this ledger.
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
}

impl Ledger {
    /// A ledger with `events` (numbered from 1 in this order) and room for
    /// `max_bookings` bookings, cancelled ones included (they are kept so a
    /// retried RESERVE or CANCEL stays idempotent).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if a limit is broken or a name is empty or repeated.
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
            });
        }
        Ok(Self {
            events: list,
            bookings: HashMap::new(),
            max_bookings,
            server_ids: 0,
        })
    }

    /// Applies one operation and says what happened.
    ///
    /// RESERVE with a client-chosen id looks the id up first, so a retry is
    /// answered from the stored booking alone: OK with the same booking if
    /// event and quantity match and it is active, BOOKING_CONFLICT if they
    /// differ, BOOKING_CANCELLED if it was cancelled. A new booking then
    /// needs a known event (UNKNOWN_EVENT), enough seats (SOLD_OUT) and room
    /// in the ledger (LEDGER_FULL), in that order.
    pub fn apply(&mut self, operation: &Operation) -> Outcome {
        match *operation {
            Operation::Query { event } => self.query(event),
            Operation::Reserve {
                event,
                quantity,
                booking,
            } => self.reserve(event, quantity, booking),
            Operation::Cancel { booking } => self.cancel(booking),
        }
    }

    /// QUERY: an event's seats. Changes nothing.
    pub fn query(&self, event: EventId) -> Outcome {
        match self.event(event) {
            Some(e) => Outcome::Queried {
                event,
                seats: e.seats(),
            },
            None => Outcome::UnknownEvent { event },
        }
    }

    /// RESERVE: books `quantity` seats of `event`, all or nothing; see [`Ledger::apply`].
    pub fn reserve(
        &mut self,
        event: EventId,
        quantity: NonZeroU32,
        booking: Option<ClientBookingId>,
    ) -> Outcome {
        if let Some(id) = booking.map(BookingId::from) {
            if let Some(existing) = self.bookings.get(&id).copied() {
                return self.retry_outcome(id, existing, event, quantity);
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
        self.insert(id, event, quantity)
    }

    /// CANCEL: returns a booking's seats to its event. Cancelling a
    /// cancelled booking changes nothing and answers OK again.
    pub fn cancel(&mut self, booking: BookingId) -> Outcome {
        let Some(entry) = self.bookings.get_mut(&booking) else {
            return Outcome::UnknownBooking { booking };
        };
        let was = entry.state;
        entry.state = BookingState::Cancelled;
        let Booking {
            event, quantity, ..
        } = *entry;
        let e = self.event_mut(event);
        if was == BookingState::Active {
            e.booked = checked(e.booked.checked_sub(quantity.get()));
            e.remaining = checked(e.remaining.checked_add(quantity.get()));
        }
        e.assert_balanced();
        Outcome::Cancelled {
            booking,
            event,
            quantity,
            seats: e.seats(),
            cancelled_now: was == BookingState::Active,
        }
    }

    /// Replays a change a journal recorded, with the booking id it recorded.
    ///
    /// # Errors
    ///
    /// [`ReplayError::Refused`] if the change does not apply to this state
    /// (the journal and the ledger disagree); the ledger is then unchanged.
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
            } => {
                if self.bookings.contains_key(&booking) {
                    return Err(refused(crate::Status::BookingConflict));
                }
                let Some(e) = self.event(event) else {
                    return Err(refused(crate::Status::UnknownEvent));
                };
                if e.remaining < quantity.get() {
                    return Err(refused(crate::Status::SoldOut));
                }
                if self.bookings.len() >= self.max_bookings {
                    return Err(refused(crate::Status::LedgerFull));
                }
                self.insert(booking, event, quantity);
                Ok(())
            }
            Change::Cancelled { booking } => match self.bookings.get(&booking) {
                None => Err(refused(crate::Status::UnknownBooking)),
                Some(b) if b.state == BookingState::Cancelled => {
                    Err(refused(crate::Status::BookingCancelled))
                }
                Some(_) => {
                    self.cancel(booking);
                    Ok(())
                }
            },
        }
    }

    /// The events, in id order.
    pub fn events(&self) -> impl ExactSizeIterator<Item = EventView<'_>> + '_ {
        self.events.iter().map(|e| EventView {
            id: e.id,
            name: &e.name,
            seats: e.seats(),
        })
    }

    /// A booking, if the ledger holds one with this id.
    pub fn booking(&self, id: BookingId) -> Option<Booking> {
        self.bookings.get(&id).copied()
    }

    /// Every booking, in no particular order.
    pub fn bookings(&self) -> impl Iterator<Item = (BookingId, Booking)> + '_ {
        self.bookings.iter().map(|(id, b)| (*id, *b))
    }

    /// Bookings held, cancelled ones included.
    pub fn booking_count(&self) -> usize {
        self.bookings.len()
    }

    /// The configured maximum of bookings.
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
        let mut booked = vec![0u64; self.events.len()];
        for (id, b) in &self.bookings {
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
            if b.state == BookingState::Active {
                *slot += u64::from(b.quantity.get());
            }
        }
        for (e, active) in self.events.iter().zip(booked) {
            if u64::from(e.booked) != active
                || u64::from(e.remaining) + active != u64::from(e.capacity)
            {
                return broken(format!(
                    "event {:?}: remaining {} + active booked {} (cached {}) != capacity {}",
                    e.name, e.remaining, active, e.booked, e.capacity
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

    fn retry_outcome(
        &self,
        id: BookingId,
        existing: Booking,
        event: EventId,
        quantity: NonZeroU32,
    ) -> Outcome {
        let seats = self
            .event(existing.event)
            .map(Event::seats)
            .unwrap_or(Seats {
                remaining: 0,
                capacity: 0,
            });
        if existing.event != event || existing.quantity != quantity {
            return Outcome::BookingConflict {
                booking: id,
                event: existing.event,
                seats,
            };
        }
        match existing.state {
            BookingState::Cancelled => Outcome::BookingCancelled {
                booking: id,
                event,
                seats,
            },
            BookingState::Active => Outcome::Reserved {
                booking: id,
                event,
                quantity,
                seats,
                created: false,
            },
        }
    }

    /// Takes the seats and records the booking; the caller checked that the
    /// event exists, the seats remain and the ledger has room.
    fn insert(&mut self, id: BookingId, event: EventId, quantity: NonZeroU32) -> Outcome {
        if id.is_server_assigned() {
            self.server_ids = self
                .server_ids
                .max(id.get() & !crate::wire::SERVER_BOOKING_BIT);
        }
        let e = self.event_mut(event);
        e.remaining = checked(e.remaining.checked_sub(quantity.get()));
        e.booked = checked(e.booked.checked_add(quantity.get()));
        e.assert_balanced();
        let seats = e.seats();
        let previous = self.bookings.insert(
            id,
            Booking {
                event,
                quantity,
                state: BookingState::Active,
            },
        );
        assert!(previous.is_none(), "booking {id} inserted twice");
        assert!(self.bookings.len() <= self.max_bookings);
        Outcome::Reserved {
            booking: id,
            event,
            quantity,
            seats,
            created: true,
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
