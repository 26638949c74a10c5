use core::num::NonZeroU32;

use crate::codec::Reply;
use crate::ids::{BookingId, EventId, RequestId};
use crate::status::Status;

/// An event's seat counts at one moment.
///
/// Taken under the ledger's lock together with the change it follows, so
/// `remaining` is exact for that moment: the `remaining` a reply carries is
/// what the request left, not what a later read saw.
///
/// # Examples
///
/// ```
/// use guichet::ledger::Seats;
/// use guichet::Ledger;
///
/// let ledger = Ledger::new([("Concert", 10)], 100)?;
/// let seats = ledger.events().next().ok_or("no event")?.seats;
/// assert_eq!(seats, Seats { remaining: 10, capacity: 10 });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Seats {
    /// Seats not booked.
    pub remaining: u32,
    /// Seats in all.
    pub capacity: u32,
}

/// What an operation did to the ledger: one variant per way it can end
/// (five of them OK: queried, reserved, cancelled, held, confirmed), so a reply is a pure
/// function of it ([`Outcome::reply`]).
///
/// The statuses no ledger gives (INVALID_REQUEST, BAD_MESSAGE,
/// SHUTTING_DOWN) have no variant: the server answers those before a
/// request reaches the ledger.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use guichet::ledger::Outcome;
/// use guichet::{EventId, Ledger, Status};
///
/// let mut ledger = Ledger::new([("Concert", 1)], 100)?;
/// let event = EventId::new(1).ok_or("no event 0")?;
/// let outcome = ledger.reserve(event, NonZeroU32::MIN, None);
/// assert!(matches!(outcome, Outcome::Reserved { created: true, .. }));
/// let outcome = ledger.reserve(event, NonZeroU32::MIN, None);
/// assert!(matches!(outcome, Outcome::SoldOut { seats, .. } if seats.remaining == 0));
/// assert_eq!(outcome.status(), Status::SoldOut);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// QUERY answered OK.
    Queried {
        /// The event.
        event: EventId,
        /// Its seats.
        seats: Seats,
    },
    /// RESERVE answered OK: a new booking, or an identical retry of one.
    Reserved {
        /// The booking.
        booking: BookingId,
        /// Its event.
        event: EventId,
        /// Its seats.
        quantity: NonZeroU32,
        /// The event's seats after the request.
        seats: Seats,
        /// `true` if this call created the booking; `false` for a retry
        /// that changed nothing.
        created: bool,
    },
    /// CANCEL answered OK: the booking is cancelled now, by this call or an earlier one.
    Cancelled {
        /// The booking.
        booking: BookingId,
        /// Its event.
        event: EventId,
        /// Its seats, returned to the event.
        quantity: NonZeroU32,
        /// The event's seats after the request.
        seats: Seats,
        /// `true` if this call cancelled it; `false` if it already was.
        cancelled_now: bool,
    },
    /// SOLD_OUT: fewer seats remain than asked.
    SoldOut {
        /// The event.
        event: EventId,
        /// Its seats, unchanged.
        seats: Seats,
    },
    /// UNKNOWN_EVENT.
    UnknownEvent {
        /// The id asked for.
        event: EventId,
    },
    /// UNKNOWN_BOOKING.
    UnknownBooking {
        /// The id asked for.
        booking: BookingId,
    },
    /// BOOKING_CONFLICT: the id names a booking of another event or quantity.
    BookingConflict {
        /// The existing booking.
        booking: BookingId,
        /// The existing booking's event.
        event: EventId,
        /// That event's seats.
        seats: Seats,
    },
    /// BOOKING_CANCELLED: the id names a cancelled booking.
    BookingCancelled {
        /// The cancelled booking.
        booking: BookingId,
        /// Its event.
        event: EventId,
        /// That event's seats.
        seats: Seats,
    },
    /// LEDGER_FULL: a new booking would exceed the configured maximum.
    LedgerFull {
        /// The event asked for.
        event: EventId,
        /// Its seats, unchanged.
        seats: Seats,
    },
    /// HOLD answered OK: a new hold, or an identical retry of one (held
    /// still, or confirmed since).
    Held {
        /// The booking.
        booking: BookingId,
        /// Its event.
        event: EventId,
        /// Its seats.
        quantity: NonZeroU32,
        /// The event's seats after the request.
        seats: Seats,
        /// `true` if this call created the hold; `false` for a retry that
        /// changed nothing (and did not extend it).
        created: bool,
        /// When the hold expires (Unix ms on the ledger's clock); `None`
        /// for a retry of a hold confirmed since.
        expires_at_ms: Option<u64>,
    },
    /// CONFIRM answered OK: the booking is active now, by this call or before.
    Confirmed {
        /// The booking.
        booking: BookingId,
        /// Its event.
        event: EventId,
        /// Its seats.
        quantity: NonZeroU32,
        /// The event's seats after the request.
        seats: Seats,
        /// `true` if this call confirmed a hold; `false` if the booking
        /// was active already.
        confirmed_now: bool,
    },
    /// HOLD_EXPIRED: the id names a hold that expired before it was confirmed.
    HoldExpired {
        /// The expired hold.
        booking: BookingId,
        /// Its event.
        event: EventId,
        /// That event's seats.
        seats: Seats,
    },
}

/// A change to the ledger: what a journal must record to replay it.
///
/// Only what changed state: a retry that changed nothing, a refusal, or a
/// QUERY makes no change, so the journal stays as short as the history of
/// the seats. Replayed with [`Ledger::replay`](crate::Ledger::replay).
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use guichet::ledger::Change;
/// use guichet::{BookingId, EventId, Ledger};
///
/// let mut ledger = Ledger::new([("Concert", 10)], 100)?;
/// let event = EventId::new(1).ok_or("no event 0")?;
/// let change = ledger.reserve(event, NonZeroU32::MIN, None).change();
/// let booking = BookingId::server(1).ok_or("not a server id")?;
/// assert_eq!(change, Some(Change::Reserved { booking, event, quantity: NonZeroU32::MIN }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Change {
    /// A booking was created.
    Reserved {
        /// Its id (server-assigned ones included, so replay gives the same ids).
        booking: BookingId,
        /// Its event.
        event: EventId,
        /// Its seats.
        quantity: NonZeroU32,
    },
    /// A booking went from active or held to cancelled.
    Cancelled {
        /// Its id.
        booking: BookingId,
    },
    /// A hold was created, expiring at `expires_at_ms`.
    Held {
        /// Its id.
        booking: BookingId,
        /// Its event.
        event: EventId,
        /// Its seats.
        quantity: NonZeroU32,
        /// Its expiry, in wall-clock Unix milliseconds.
        expires_at_ms: u64,
    },
    /// A hold was confirmed: active, for good.
    Confirmed {
        /// Its id.
        booking: BookingId,
    },
    /// A hold expired. Never an outcome's change (expiry follows from the
    /// time, not from a request): only a snapshot's expired hold replays as one.
    Expired {
        /// Its id.
        booking: BookingId,
    },
}

impl Outcome {
    /// The reply status this outcome is answered with.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::{EventId, Ledger, Status};
    ///
    /// let ledger = Ledger::new([("Concert", 10)], 100)?;
    /// let unknown = EventId::new(9).ok_or("no event 0")?;
    /// assert_eq!(ledger.query(unknown).status(), Status::UnknownEvent);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn status(&self) -> Status {
        match self {
            Outcome::Queried { .. }
            | Outcome::Reserved { .. }
            | Outcome::Cancelled { .. }
            | Outcome::Held { .. }
            | Outcome::Confirmed { .. } => Status::Ok,
            Outcome::SoldOut { .. } => Status::SoldOut,
            Outcome::UnknownEvent { .. } => Status::UnknownEvent,
            Outcome::UnknownBooking { .. } => Status::UnknownBooking,
            Outcome::BookingConflict { .. } => Status::BookingConflict,
            Outcome::BookingCancelled { .. } => Status::BookingCancelled,
            Outcome::LedgerFull { .. } => Status::LedgerFull,
            Outcome::HoldExpired { .. } => Status::HoldExpired,
        }
    }

    /// The change this outcome made, if any: `Some` only for a RESERVE or
    /// HOLD that created its booking, a CANCEL that cancelled it now and a
    /// CONFIRM that confirmed it now.
    ///
    /// A server journals exactly these, and must have them on disk before
    /// it answers OK.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use guichet::ledger::Change;
    /// use guichet::{ClientBookingId, EventId, Ledger};
    ///
    /// let mut ledger = Ledger::new([("Concert", 10)], 100)?;
    /// let event = EventId::new(1).ok_or("no event 0")?;
    /// let id = ClientBookingId::new(42);
    /// assert!(ledger.reserve(event, NonZeroU32::MIN, id).change().is_some());
    /// assert_eq!(ledger.reserve(event, NonZeroU32::MIN, id).change(), None); // a retry
    /// assert_eq!(ledger.query(event).change(), None);
    /// let booking = id.ok_or("not a client id")?.booking_id();
    /// assert_eq!(ledger.cancel(booking).change(), Some(Change::Cancelled { booking }));
    /// assert_eq!(ledger.cancel(booking).change(), None); // already cancelled
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn change(&self) -> Option<Change> {
        match *self {
            Outcome::Reserved {
                booking,
                event,
                quantity,
                created: true,
                ..
            } => Some(Change::Reserved {
                booking,
                event,
                quantity,
            }),
            Outcome::Cancelled {
                booking,
                cancelled_now: true,
                ..
            } => Some(Change::Cancelled { booking }),
            Outcome::Held {
                booking,
                event,
                quantity,
                created: true,
                expires_at_ms: Some(expires_at_ms),
                ..
            } => Some(Change::Held {
                booking,
                event,
                quantity,
                expires_at_ms,
            }),
            Outcome::Confirmed {
                booking,
                confirmed_now: true,
                ..
            } => Some(Change::Confirmed { booking }),
            _ => None,
        }
    }

    /// The reply to the request tagged `request_id`, as PROTOCOL.md fills it:
    /// `remaining` and `capacity` whenever the event is known, `quantity`
    /// only for an OK RESERVE, CANCEL, HOLD or CONFIRM, ids when the outcome
    /// names them.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::{EventId, Ledger, Operation, RequestId, Status};
    ///
    /// let mut ledger = Ledger::new([("Concert", 2)], 10)?;
    /// let event = EventId::new(1).ok_or("no event 0")?;
    /// let reply = ledger.apply(&Operation::Query { event }).reply(RequestId(5));
    /// assert_eq!((reply.status, reply.remaining, reply.capacity), (Status::Ok, 2, 2));
    /// assert_eq!((reply.request_id, reply.booking, reply.quantity), (RequestId(5), None, 0));
    ///
    /// let unknown = EventId::new(3).ok_or("no event 0")?;
    /// let reply = ledger.query(unknown).reply(RequestId(6));
    /// assert_eq!((reply.event, reply.capacity), (Some(unknown), 0)); // echoed, not known
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reply(&self, request_id: RequestId) -> Reply {
        let mut reply = Reply::bare(self.status(), request_id);
        let (booking, event, quantity, seats) = match *self {
            Outcome::Queried { event, seats }
            | Outcome::SoldOut { event, seats }
            | Outcome::LedgerFull { event, seats } => (None, Some(event), 0, Some(seats)),
            Outcome::Reserved {
                booking,
                event,
                quantity,
                seats,
                ..
            }
            | Outcome::Cancelled {
                booking,
                event,
                quantity,
                seats,
                ..
            }
            | Outcome::Held {
                booking,
                event,
                quantity,
                seats,
                ..
            }
            | Outcome::Confirmed {
                booking,
                event,
                quantity,
                seats,
                ..
            } => (Some(booking), Some(event), quantity.get(), Some(seats)),
            Outcome::UnknownEvent { event } => (None, Some(event), 0, None),
            Outcome::UnknownBooking { booking } => (Some(booking), None, 0, None),
            Outcome::BookingConflict {
                booking,
                event,
                seats,
            }
            | Outcome::BookingCancelled {
                booking,
                event,
                seats,
            }
            | Outcome::HoldExpired {
                booking,
                event,
                seats,
            } => (Some(booking), Some(event), 0, Some(seats)),
        };
        reply.booking = booking;
        reply.event = event;
        reply.quantity = quantity;
        if let Some(seats) = seats {
            reply.remaining = seats.remaining;
            reply.capacity = seats.capacity;
        }
        reply
    }
}
