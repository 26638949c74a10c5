use core::num::NonZeroU32;

use crate::codec::Reply;
use crate::ids::{BookingId, EventId, RequestId};
use crate::status::Status;

/// An event's seat counts at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Seats {
    /// Seats not booked.
    pub remaining: u32,
    /// Seats in all.
    pub capacity: u32,
}

/// What an operation did to the ledger: one variant per reply status, so a
/// reply is a pure function of it ([`Outcome::reply`]).
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
}

/// A change to the ledger: what a journal must record to replay it.
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
    /// A booking went from active to cancelled.
    Cancelled {
        /// Its id.
        booking: BookingId,
    },
}

impl Outcome {
    /// The reply status this outcome is answered with.
    pub const fn status(&self) -> Status {
        match self {
            Outcome::Queried { .. } | Outcome::Reserved { .. } | Outcome::Cancelled { .. } => {
                Status::Ok
            }
            Outcome::SoldOut { .. } => Status::SoldOut,
            Outcome::UnknownEvent { .. } => Status::UnknownEvent,
            Outcome::UnknownBooking { .. } => Status::UnknownBooking,
            Outcome::BookingConflict { .. } => Status::BookingConflict,
            Outcome::BookingCancelled { .. } => Status::BookingCancelled,
            Outcome::LedgerFull { .. } => Status::LedgerFull,
        }
    }

    /// The change this outcome made, if any.
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
            _ => None,
        }
    }

    /// The reply to the request tagged `request_id`, as PROTOCOL.md fills it.
    ///
    /// ```
    /// use guichet::{EventId, Ledger, Operation, RequestId, Status};
    /// let mut ledger = Ledger::new([("Concert", 2)], 10).unwrap();
    /// let event = EventId::new(1).unwrap();
    /// let reply = ledger.apply(&Operation::Query { event }).reply(RequestId(5));
    /// assert_eq!((reply.status, reply.remaining, reply.capacity), (Status::Ok, 2, 2));
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
