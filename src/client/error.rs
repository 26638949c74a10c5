use crate::codec::Violation;
use crate::ids::{BookingId, EventId};
use crate::status::Status;
use crate::sysv::SysvError;

/// Why a call did not succeed: each non-OK status of the protocol, and each
/// way the transport can fail.
///
/// A refusal carries what the reply said (the seats left, the id refused),
/// so the caller can act on it without another call. [`ClientError::status`]
/// tells refusals, which the server decided, from transport failures, after
/// which the request may or may not have been applied.
///
/// # Examples
///
/// ```
/// use guichet::ClientError;
///
/// let server = guichet::Server::builder().event("Concert", 4).spawn()?;
/// let client = server.client();
/// let wanted = 6;
/// let booked = match client.reserve(1, wanted) {
///     Ok(receipt) => receipt.quantity,
///     // Take what is left rather than nothing.
///     Err(ClientError::SoldOut { remaining, .. }) if remaining > 0 => {
///         client.reserve(1, remaining)?.quantity
///     }
///     Err(other) => return Err(other.into()),
/// };
/// assert_eq!(booked, 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// SOLD_OUT: fewer seats remain than asked.
    #[error("sold out: {event} has {remaining} of {capacity} seats left")]
    SoldOut {
        /// The event.
        event: EventId,
        /// Seats left.
        remaining: u32,
        /// Seats in all.
        capacity: u32,
    },
    /// UNKNOWN_EVENT.
    #[error("no event has id {event}")]
    UnknownEvent {
        /// The id asked for.
        event: u32,
    },
    /// UNKNOWN_BOOKING.
    #[error("no booking has id {booking}")]
    UnknownBooking {
        /// The id asked for.
        booking: BookingId,
    },
    /// BOOKING_CONFLICT: the id names a booking of another event or quantity.
    #[error("booking {booking} exists with another event or quantity, or was made by the other of RESERVE and HOLD")]
    BookingConflict {
        /// The id.
        booking: BookingId,
    },
    /// BOOKING_CANCELLED: the id names a cancelled booking.
    #[error("booking {booking} was cancelled")]
    BookingCancelled {
        /// The id.
        booking: BookingId,
    },
    /// HOLD_EXPIRED: the id names a hold that expired before it was confirmed.
    #[error("hold {booking} expired before it was confirmed")]
    HoldExpired {
        /// The id.
        booking: BookingId,
    },
    /// INVALID_REQUEST: the server found a field rule broken.
    #[error("the server answered INVALID_REQUEST")]
    InvalidRequest,
    /// BAD_MESSAGE: the server could not read the message.
    #[error("the server answered BAD_MESSAGE")]
    BadMessage,
    /// LEDGER_FULL: the ledger holds its maximum of bookings.
    #[error("the ledger is full")]
    LedgerFull,
    /// SHUTTING_DOWN: the server is stopping and did not apply the request.
    #[error("the server is shutting down; the request was not applied")]
    ShuttingDown,
    /// No reply within the call's timeout (or no room in the queue to send
    /// the request). The request may still be applied later; retrying with
    /// a client-chosen booking id is safe.
    #[error("no reply within {timeout_ms} ms")]
    Timeout {
        /// The timeout.
        timeout_ms: u32,
    },
    /// The server's queue no longer exists: the server stopped. Also what
    /// [`Client::open`](crate::Client::open) returns when no queue has the
    /// key.
    #[error("the server's queue is gone: {0}")]
    QueueGone(#[source] SysvError),
    /// Any other queue failure.
    #[error("message queue error: {0}")]
    Transport(#[source] SysvError),
    /// A message on our reply tag that is not a v1 reply.
    #[error("malformed reply: {0}")]
    BadReply(#[source] Violation),
    /// An OK reply that lacks what an OK reply carries.
    #[error("the server answered {status} without the fields it implies")]
    IncompleteReply {
        /// The reply's status.
        status: Status,
    },
    /// A value the protocol cannot carry, refused before sending.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// Too many calls in flight in this process.
    #[error("too many calls in flight in this process (at most {max})")]
    TooManyCalls {
        /// The limit.
        max: u32,
    },
}

impl ClientError {
    /// The reply status this error reports, if it came from a reply.
    ///
    /// `Some` means the server answered and applied nothing; `None` means
    /// the call failed on this side or in transit, where the request may
    /// have been applied (a timeout) or not.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::{ClientError, Status};
    ///
    /// assert_eq!(ClientError::LedgerFull.status(), Some(Status::LedgerFull));
    /// assert_eq!(ClientError::Timeout { timeout_ms: 5 }.status(), None);
    /// assert_eq!(ClientError::InvalidArgument("event ids start at 1").status(), None);
    /// ```
    pub fn status(&self) -> Option<Status> {
        Some(match self {
            ClientError::SoldOut { .. } => Status::SoldOut,
            ClientError::UnknownEvent { .. } => Status::UnknownEvent,
            ClientError::UnknownBooking { .. } => Status::UnknownBooking,
            ClientError::BookingConflict { .. } => Status::BookingConflict,
            ClientError::BookingCancelled { .. } => Status::BookingCancelled,
            ClientError::HoldExpired { .. } => Status::HoldExpired,
            ClientError::InvalidRequest => Status::InvalidRequest,
            ClientError::BadMessage => Status::BadMessage,
            ClientError::LedgerFull => Status::LedgerFull,
            ClientError::ShuttingDown => Status::ShuttingDown,
            _ => return None,
        })
    }

    pub(crate) fn from_transport(error: SysvError) -> Self {
        match error {
            SysvError::QueueRemoved { .. } | SysvError::NotFound { .. } => {
                ClientError::QueueGone(error)
            }
            other => ClientError::Transport(other),
        }
    }
}
