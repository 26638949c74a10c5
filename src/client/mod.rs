//! The client: typed calls over a server's queue, with a timeout on each.
//!
//! ```
//! use guichet::ClientError;
//! let server = guichet::Server::builder().event("Concert", 3).spawn()?;
//! let client = server.client().with_timeout_ms(2_000);
//! let receipt = client.reserve(1, 2)?;
//! assert_eq!((receipt.quantity, receipt.remaining), (2, 1));
//! assert!(matches!(client.reserve(1, 2), Err(ClientError::SoldOut { remaining: 1, .. })));
//! client.cancel(receipt.booking)?;
//! assert_eq!(client.query(1)?.remaining, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod slots;

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

pub use error::ClientError;
pub use slots::MAX_CALLS_IN_FLIGHT;

use crate::codec::{decode_reply, Operation, Reply, Request};
use crate::ids::{BookingId, ClientBookingId, EventId};
use crate::status::Status;
use crate::sysv::{Key, MessageBuf, Queue, QueueId, RecvFlags, SysvError};
use crate::wire::{BODY_SIZE, REQUEST_MTYPE};

use slots::{next_request_id, Slot};

/// Timeout of a call when none is set.
pub const DEFAULT_TIMEOUT_MS: u32 = 5_000;

/// Seats of an event, as a QUERY answered them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Availability {
    /// The event.
    pub event: EventId,
    /// Seats left.
    pub remaining: u32,
    /// Seats in all.
    pub capacity: u32,
}

/// A booking, as an OK RESERVE or CANCEL answered it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The booking's id (keep it to cancel).
    pub booking: BookingId,
    /// Its event.
    pub event: EventId,
    /// Its seats.
    pub quantity: u32,
    /// The event's seats left after the call.
    pub remaining: u32,
    /// The event's seats in all.
    pub capacity: u32,
}

/// A client of one server queue. Cheap to copy, safe to share between
/// threads: each call in flight gets its own reply tag.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    queue: Queue,
    timeout_ms: u32,
}

impl Client {
    /// A client of the server whose queue has `key`.
    ///
    /// # Errors
    ///
    /// [`ClientError::QueueGone`] if no queue has the key (no server runs),
    /// [`ClientError::Transport`] for other msgget(2) failures.
    pub fn open(key: Key) -> Result<Self, ClientError> {
        Queue::open(key)
            .map(Self::from_queue)
            .map_err(ClientError::from_transport)
    }

    /// A client of the queue with this id (how private queues are reached).
    pub fn from_id(id: QueueId) -> Self {
        Self::from_queue(Queue::from_id(id))
    }

    /// A client of `queue`.
    pub fn from_queue(queue: Queue) -> Self {
        Self {
            queue,
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    /// The same client with another timeout per call (send and reply).
    pub fn with_timeout_ms(self, timeout_ms: u32) -> Self {
        Self { timeout_ms, ..self }
    }

    /// The timeout per call.
    pub fn timeout_ms(&self) -> u32 {
        self.timeout_ms
    }

    /// QUERY: the seats of `event`.
    ///
    /// # Errors
    ///
    /// [`ClientError::UnknownEvent`], a transport error, or
    /// [`ClientError::InvalidArgument`] for event 0.
    pub fn query(&self, event: u32) -> Result<Availability, ClientError> {
        let event = event_id(event)?;
        let reply = self.call(Operation::Query { event })?;
        Ok(Availability {
            event,
            remaining: reply.remaining,
            capacity: reply.capacity,
        })
    }

    /// RESERVE `quantity` seats of `event`; the server picks the booking id.
    ///
    /// Not idempotent: a retry after a timeout may book twice. Use
    /// [`Client::reserve_with_id`] when retrying.
    ///
    /// # Errors
    ///
    /// [`ClientError::SoldOut`], [`ClientError::UnknownEvent`],
    /// [`ClientError::LedgerFull`], a transport error, or
    /// [`ClientError::InvalidArgument`] for event or quantity 0.
    pub fn reserve(&self, event: u32, quantity: u32) -> Result<Receipt, ClientError> {
        self.reserve_as(event, quantity, None)
    }

    /// RESERVE with a client-chosen booking id (non-zero, bit 63 clear):
    /// idempotent, so safe to retry after a timeout.
    ///
    /// # Errors
    ///
    /// Those of [`Client::reserve`], and [`ClientError::BookingConflict`]
    /// or [`ClientError::BookingCancelled`] when the id is taken.
    pub fn reserve_with_id(
        &self,
        event: u32,
        quantity: u32,
        booking: u64,
    ) -> Result<Receipt, ClientError> {
        let booking = ClientBookingId::new(booking).ok_or(ClientError::InvalidArgument(
            "a client-chosen booking id must be non-zero with bit 63 clear",
        ))?;
        self.reserve_as(event, quantity, Some(booking))
    }

    /// CANCEL a booking; cancelling it again answers OK again.
    ///
    /// # Errors
    ///
    /// [`ClientError::UnknownBooking`], a transport error, or
    /// [`ClientError::InvalidArgument`] for id 0.
    pub fn cancel(&self, booking: impl Into<u64>) -> Result<Receipt, ClientError> {
        let booking = BookingId::new(booking.into()).ok_or(ClientError::InvalidArgument(
            "booking id 0 names no booking",
        ))?;
        let reply = self.call(Operation::Cancel { booking })?;
        receipt(&reply)
    }

    /// Sends one request and returns the server's reply, whatever its status.
    ///
    /// Waits at most the client's timeout in all. Replies left on this
    /// call's tag by an earlier call that timed out are recognised by their
    /// `request_id` and discarded.
    ///
    /// # Errors
    ///
    /// A transport error, [`ClientError::Timeout`], or
    /// [`ClientError::BadReply`]. A non-OK status is *not* an error here;
    /// the typed calls turn it into one.
    pub fn send(&self, operation: Operation) -> Result<Reply, ClientError> {
        let slot = Slot::take().ok_or(ClientError::TooManyCalls {
            max: MAX_CALLS_IN_FLIGHT,
        })?;
        let reply_to = slot.reply_to().ok_or(ClientError::InvalidArgument(
            "this process's pid does not fit a reply tag",
        ))?;
        let request = Request {
            reply_to,
            request_id: next_request_id(),
            operation,
        };
        let start = Instant::now();
        let timeout = Duration::from_millis(self.timeout_ms.into());
        let left_ms = || {
            let left = timeout.saturating_sub(start.elapsed());
            u32::try_from(left.as_millis()).unwrap_or(u32::MAX)
        };
        let timed_out = |error| match error {
            SysvError::TimedOut { .. } => ClientError::Timeout {
                timeout_ms: self.timeout_ms,
            },
            other => ClientError::from_transport(other),
        };
        self.queue
            .send_timeout(REQUEST_MTYPE, &request.encode(), left_ms())
            .map_err(timed_out)?;
        let mut buf =
            MessageBuf::with_body_capacity(BODY_SIZE + 1).map_err(ClientError::Transport)?;
        loop {
            self.queue
                .recv_timeout(reply_to.get(), &mut buf, RecvFlags::NOERROR, left_ms())
                .map_err(timed_out)?;
            let reply = decode_reply(buf.body()).map_err(ClientError::BadReply)?;
            if reply.request_id == request.request_id {
                return Ok(reply);
            }
            // A reply to an earlier call on this tag that gave up waiting.
        }
    }

    fn call(&self, operation: Operation) -> Result<Reply, ClientError> {
        let reply = self.send(operation)?;
        refusal(&operation, &reply)?;
        Ok(reply)
    }

    fn reserve_as(
        &self,
        event: u32,
        quantity: u32,
        booking: Option<ClientBookingId>,
    ) -> Result<Receipt, ClientError> {
        let event = event_id(event)?;
        let quantity = NonZeroU32::new(quantity).ok_or(ClientError::InvalidArgument(
            "a reservation needs at least 1 seat",
        ))?;
        let reply = self.call(Operation::Reserve {
            event,
            quantity,
            booking,
        })?;
        receipt(&reply)
    }
}

fn event_id(event: u32) -> Result<EventId, ClientError> {
    EventId::new(event).ok_or(ClientError::InvalidArgument("event ids start at 1"))
}

fn receipt(reply: &Reply) -> Result<Receipt, ClientError> {
    match (reply.booking, reply.event) {
        (Some(booking), Some(event)) => Ok(Receipt {
            booking,
            event,
            quantity: reply.quantity,
            remaining: reply.remaining,
            capacity: reply.capacity,
        }),
        _ => Err(ClientError::IncompleteReply {
            status: reply.status,
        }),
    }
}

/// The error a non-OK reply stands for.
fn refusal(operation: &Operation, reply: &Reply) -> Result<(), ClientError> {
    let (asked_event, asked_booking) = match *operation {
        Operation::Query { event } => (Some(event), None),
        Operation::Reserve { event, booking, .. } => (Some(event), booking.map(BookingId::from)),
        Operation::Cancel { booking } => (None, Some(booking)),
    };
    let incomplete = || ClientError::IncompleteReply {
        status: reply.status,
    };
    let event = reply.event.or(asked_event).ok_or_else(incomplete);
    let booking = reply.booking.or(asked_booking).ok_or_else(incomplete);
    Err(match reply.status {
        Status::Ok => return Ok(()),
        Status::SoldOut => ClientError::SoldOut {
            event: event?,
            remaining: reply.remaining,
            capacity: reply.capacity,
        },
        Status::UnknownEvent => ClientError::UnknownEvent {
            event: event?.get(),
        },
        Status::UnknownBooking => ClientError::UnknownBooking { booking: booking? },
        Status::BookingConflict => ClientError::BookingConflict { booking: booking? },
        Status::BookingCancelled => ClientError::BookingCancelled { booking: booking? },
        Status::InvalidRequest => ClientError::InvalidRequest,
        Status::BadMessage => ClientError::BadMessage,
        Status::LedgerFull => ClientError::LedgerFull,
        Status::ShuttingDown => ClientError::ShuttingDown,
    })
}
