//! The client: typed calls over a server's queue, with a timeout on each.
//!
//! Each typed call ([`Client::query`], [`Client::reserve`]…) turns a non-OK
//! status into a [`ClientError`], so `?` stops at a refusal;
//! [`Client::send`] returns the raw [`Reply`] whatever its status.
//!
//! # Examples
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
mod spin;

use std::cell::Cell;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

pub use error::ClientError;
use slots::MAX_CALLS_IN_FLIGHT;

use crate::codec::{decode_reply, Operation, Reply, Request};
use crate::ids::{BookingId, ClientBookingId, EventId};
use crate::status::Status;
use crate::sysv::wait::deadline_after;
use crate::sysv::{Key, MessageBuf, Queue, QueueId, RecvFlags, SysvError};
use crate::wire::{BODY_SIZE, REQUEST_MTYPE};

use slots::{next_request_id, Slot};

const DEFAULT_TIMEOUT_MS: u32 = 5_000;

thread_local! {
    /// The thread's reply buffer, kept between its calls: one allocation
    /// per thread rather than one per call.
    static REPLY_BUF: Cell<Option<MessageBuf>> = const { Cell::new(None) };
}

/// Seats of an event, as a QUERY answered them.
///
/// A snapshot: other clients may book or cancel the moment after.
///
/// # Examples
///
/// ```
/// let server = guichet::Server::builder().event("Concert", 10).spawn()?;
/// let seats = server.client().query(1)?;
/// assert_eq!((seats.event.get(), seats.remaining, seats.capacity), (1, 10, 10));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// `remaining` is the event's count right after this call, under the
/// server's lock: exact for that moment, unlike a separate QUERY.
///
/// # Examples
///
/// ```
/// let server = guichet::Server::builder().event("Concert", 10).spawn()?;
/// let client = server.client();
/// let booked = client.reserve(1, 3)?;
/// assert!(booked.booking.is_server_assigned());
/// assert_eq!((booked.quantity, booked.remaining, booked.capacity), (3, 7, 10));
/// let cancelled = client.cancel(booked.booking)?;
/// assert_eq!((cancelled.booking, cancelled.quantity), (booked.booking, 3));
/// assert_eq!(cancelled.remaining, 10);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// Holds no connection and no buffer: just the queue id and the timeout.
/// A call sends its request with msgsnd(2), then waits for the reply on its
/// own tag: a short poll when replies come fast, then a blocking msgrcv(2)
/// that the kernel wakes when the reply arrives, or a per-thread timer
/// signal at the call's deadline (SysV has no timed receive). How that
/// signal is kept safe inside any program, and what happens to replies
/// that come too late: `docs/client.md`.
///
/// # Examples
///
/// ```
/// let server = guichet::Server::builder().event("Concert", 100).spawn()?;
/// let client = server.client();
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(move || client.reserve(1, 1));
///     }
/// });
/// assert_eq!(client.query(1)?.remaining, 96);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Client {
    queue: Queue,
    timeout_ms: u32,
}

impl Client {
    /// Timeout of a call when none is set, in milliseconds. A call that
    /// times out may still be applied, so it errs on the long side; change
    /// it with [`Client::with_timeout_ms`].
    pub const DEFAULT_TIMEOUT_MS: u32 = DEFAULT_TIMEOUT_MS;
    /// Most calls in flight at once in a process (one per thread that has
    /// made a call and not ended); a call past it fails with
    /// [`ClientError::TooManyCalls`] rather than wait.
    pub const MAX_CALLS_IN_FLIGHT: u32 = MAX_CALLS_IN_FLIGHT;

    /// A client of the server whose queue has `key`.
    ///
    /// Resolves the key to the queue's id once, now: a server restarted
    /// under the same key serves a new queue, which this client does not
    /// follow (its calls fail with [`ClientError::QueueGone`]; open again).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::ftok;
    /// use guichet::{Client, ClientError, Server};
    ///
    /// let file = tempfile::NamedTempFile::new()?;
    /// // ftok(3) keys can collide: on a clash, try another project id.
    /// let (server, key) = (b'a'..=b'z')
    ///     .find_map(|proj| {
    ///         let key = ftok(file.path(), proj).ok()?;
    ///         let server = Server::builder().event("Concert", 10).key(key).spawn().ok()?;
    ///         Some((server, key))
    ///     })
    ///     .ok_or("every key is taken")?;
    /// let client = Client::open(key)?;
    /// assert_eq!(client.query(1)?.capacity, 10);
    /// drop(server); // removes the queue
    /// assert!(matches!(Client::open(key), Err(ClientError::QueueGone(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ClientError::QueueGone`] if no queue has the key (no server runs),
    /// [`ClientError::Transport`] for other msgget(2) failures (no
    /// permission, say) and for [`Key::PRIVATE`], which names no queue.
    pub fn open(key: Key) -> Result<Self, ClientError> {
        Queue::open(key)
            .map(Self::from_queue)
            .map_err(ClientError::from_transport)
    }

    /// A client of the queue with this id (how private queues are reached).
    ///
    /// Nothing is checked now: a dead id shows as [`ClientError::QueueGone`]
    /// on the first call (an id of some other live queue, as a timeout or
    /// [`ClientError::Transport`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::QueueId;
    /// use guichet::{Client, ClientError, Server};
    ///
    /// let server = Server::builder().event("Concert", 10).spawn()?;
    /// // A private queue has no key: its id is handed over instead.
    /// let id: QueueId = server.queue_id().to_string().parse()?;
    /// let client = Client::from_id(id);
    /// assert_eq!(client.query(1)?.capacity, 10);
    /// drop(server);
    /// assert!(matches!(client.query(1), Err(ClientError::QueueGone(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_id(id: QueueId) -> Self {
        Self::from_queue(Queue::from_id(id))
    }

    /// A client of `queue`, with [`Client::DEFAULT_TIMEOUT_MS`].
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::Queue;
    /// use guichet::{Client, Server};
    ///
    /// let server = Server::builder().event("Concert", 10).spawn()?;
    /// let client = Client::from_queue(Queue::from_id(server.queue_id()));
    /// assert_eq!(client.query(1)?.remaining, 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_queue(queue: Queue) -> Self {
        Self {
            queue,
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    /// The same client with another timeout per call (send and reply).
    ///
    /// The timeout covers the whole call: waiting for room in a full queue
    /// to send, then for the reply. 0 makes one attempt at each and fails
    /// with [`ClientError::Timeout`] unless the reply is already there,
    /// which in practice it never is.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{Mode, OwnedQueue};
    /// use guichet::{Client, ClientError};
    ///
    /// let queue = OwnedQueue::create_private(Mode::DEFAULT)?; // nobody serves it
    /// let client = Client::from_queue(queue.queue()).with_timeout_ms(20);
    /// assert!(matches!(client.query(1), Err(ClientError::Timeout { timeout_ms: 20 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_timeout_ms(self, timeout_ms: u32) -> Self {
        Self { timeout_ms, ..self }
    }

    /// The timeout per call, in milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::QueueId;
    /// use guichet::Client;
    ///
    /// let client = Client::from_id(QueueId::new(0)?);
    /// assert_eq!(client.timeout_ms(), Client::DEFAULT_TIMEOUT_MS);
    /// assert_eq!(client.with_timeout_ms(250).timeout_ms(), 250);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn timeout_ms(&self) -> u32 {
        self.timeout_ms
    }

    /// QUERY: the seats of `event`. Changes nothing, so always safe to retry.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ClientError;
    ///
    /// let server = guichet::Server::builder().event("Concert", 10).spawn()?;
    /// let client = server.client();
    /// assert_eq!(client.query(1)?.remaining, 10);
    /// assert!(matches!(client.query(2), Err(ClientError::UnknownEvent { event: 2 })));
    /// assert!(matches!(client.query(0), Err(ClientError::InvalidArgument(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ClientError::UnknownEvent`]; [`ClientError::InvalidArgument`] for
    /// event 0, before anything is sent; [`ClientError::ShuttingDown`];
    /// [`ClientError::Timeout`], [`ClientError::QueueGone`],
    /// [`ClientError::Transport`], [`ClientError::BadReply`] or
    /// [`ClientError::TooManyCalls`] as for [`Client::send`].
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
    /// # Examples
    ///
    /// ```
    /// use guichet::ClientError;
    ///
    /// let server = guichet::Server::builder().event("Concert", 3).spawn()?;
    /// let client = server.client();
    /// assert_eq!(client.reserve(1, 2)?.remaining, 1);
    /// // All or nothing: 2 asked, 1 left, none booked.
    /// let refused = client.reserve(1, 2);
    /// assert!(matches!(refused, Err(ClientError::SoldOut { remaining: 1, capacity: 3, .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ClientError::SoldOut`], [`ClientError::UnknownEvent`],
    /// [`ClientError::LedgerFull`]; [`ClientError::InvalidArgument`] for
    /// event or quantity 0, before anything is sent;
    /// [`ClientError::ShuttingDown`]; [`ClientError::Timeout`], [`ClientError::QueueGone`],
    /// [`ClientError::Transport`], [`ClientError::BadReply`] or
    /// [`ClientError::TooManyCalls`] as for [`Client::send`].
    pub fn reserve(&self, event: u32, quantity: u32) -> Result<Receipt, ClientError> {
        self.reserve_as(event, quantity, None)
    }

    /// RESERVE with a client-chosen booking id (non-zero, bit 63 clear):
    /// idempotent, so safe to retry after a timeout.
    ///
    /// A retry with the same id, event and quantity books nothing more and
    /// answers the same booking. Ids are the client's to keep unique: the
    /// server cannot tell a retry from another reservation that reused an
    /// id.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ClientError;
    ///
    /// let server = guichet::Server::builder().event("Concert", 10).spawn()?;
    /// let client = server.client();
    /// let first = client.reserve_with_id(1, 2, 42)?;
    /// let retry = client.reserve_with_id(1, 2, 42)?;
    /// assert_eq!((retry.booking, retry.remaining), (first.booking, 8));
    /// let other = client.reserve_with_id(1, 3, 42);
    /// assert!(matches!(other, Err(ClientError::BookingConflict { .. })));
    /// let server_half = client.reserve_with_id(1, 2, 1 << 63);
    /// assert!(matches!(server_half, Err(ClientError::InvalidArgument(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Those of [`Client::reserve`]; [`ClientError::InvalidArgument`] for
    /// `booking` 0 or with bit 63 set; and, when the id is taken,
    /// [`ClientError::BookingConflict`] (another event or quantity) or
    /// [`ClientError::BookingCancelled`] (that booking was cancelled).
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

    /// CANCEL a booking; cancelling it again answers OK again, with the same
    /// booking and quantity, so a CANCEL is always safe to retry.
    ///
    /// Takes the id as a [`BookingId`] or a raw `u64`.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ClientError;
    ///
    /// let server = guichet::Server::builder().event("Concert", 10).spawn()?;
    /// let client = server.client();
    /// let booked = client.reserve(1, 2)?;
    /// let first = client.cancel(booked.booking)?;
    /// let again = client.cancel(booked.booking)?;
    /// assert_eq!(first, again);
    /// assert_eq!((again.quantity, again.remaining), (2, 10));
    /// assert!(matches!(client.cancel(12_345u64), Err(ClientError::UnknownBooking { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ClientError::UnknownBooking`]; [`ClientError::InvalidArgument`]
    /// for id 0, before anything is sent; [`ClientError::ShuttingDown`];
    /// [`ClientError::Timeout`], [`ClientError::QueueGone`],
    /// [`ClientError::Transport`], [`ClientError::BadReply`] or
    /// [`ClientError::TooManyCalls`] as for [`Client::send`].
    pub fn cancel(&self, booking: impl Into<u64>) -> Result<Receipt, ClientError> {
        let booking = BookingId::new(booking.into()).ok_or(ClientError::InvalidArgument(
            "booking id 0 names no booking",
        ))?;
        let reply = self.call(Operation::Cancel { booking })?;
        receipt(&reply)
    }

    /// Sends one request and returns the server's reply, whatever its status.
    ///
    /// Waits for the client's timeout in all, from the call's start: never
    /// less, and on an unloaded machine at most about 0.1 ms more. Replies
    /// left on this call's tag by an earlier call that timed out are
    /// recognised by their `request_id`, taken off the queue and discarded.
    ///
    /// For callers that want every status as data (a load generator, a
    /// protocol test) rather than as an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::{EventId, Operation, Status};
    ///
    /// let server = guichet::Server::builder().event("Concert", 10).spawn()?;
    /// let unknown = Operation::Query { event: EventId::new(2).ok_or("no event 0")? };
    /// let reply = server.client().send(unknown)?;
    /// assert_eq!(reply.status, Status::UnknownEvent); // a reply, not an error
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`ClientError::Timeout`]: no room in the queue to send, or no
    ///   reply, within the timeout;
    /// - [`ClientError::QueueGone`]: the queue was removed (the server
    ///   stopped); [`ClientError::Transport`]: any other msgsnd(2) or
    ///   msgrcv(2) failure;
    /// - [`ClientError::BadReply`]: the message on this call's tag is not a
    ///   v1 reply;
    /// - [`ClientError::TooManyCalls`]: [`Client::MAX_CALLS_IN_FLIGHT`] calls of this
    ///   process are already waiting;
    /// - [`ClientError::InvalidArgument`]: this process's pid does not fit a
    ///   reply tag (never on Linux, whose pids are below 2²²).
    ///
    /// A non-OK status is *not* an error here; the typed calls turn it into
    /// one.
    pub fn send(&self, operation: Operation) -> Result<Reply, ClientError> {
        // One deadline for the whole call, taken before anything else.
        let started = Instant::now();
        let deadline = deadline_after(started, self.timeout_ms);
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
        let mut buf = REPLY_BUF
            .try_with(Cell::take)
            .ok()
            .flatten()
            .map_or_else(|| MessageBuf::with_body_capacity(BODY_SIZE + 1), Ok)
            .map_err(ClientError::Transport)?;
        let result = self.exchange(&request, deadline, &mut buf);
        // Kept for the thread's next call (unless the thread is ending).
        let _ = REPLY_BUF.try_with(|cell| cell.set(Some(buf)));
        if result.is_ok() {
            spin::record(started.elapsed());
        }
        result
    }

    /// Sends `request` and waits by `deadline` for its reply, in `buf`.
    fn exchange(
        &self,
        request: &Request,
        deadline: Instant,
        buf: &mut MessageBuf,
    ) -> Result<Reply, ClientError> {
        let timed_out = |error| match error {
            SysvError::TimedOut { .. } => ClientError::Timeout {
                timeout_ms: self.timeout_ms,
            },
            other => ClientError::from_transport(other),
        };
        self.queue
            .send_until(REQUEST_MTYPE, &request.encode(), deadline, Duration::ZERO)
            .map_err(timed_out)?;
        let spin = spin::budget();
        let reply_to = request.reply_to.get();
        loop {
            let received = self
                .queue
                .recv_until(reply_to, buf, RecvFlags::NOERROR, deadline, spin);
            // Its reply may still come: the next call on this tag (this
            // thread's next call: it keeps its slot) takes it, below.
            received.map_err(timed_out)?;
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

    /// HOLD `quantity` seats of `event` for the server's hold duration
    /// (`serve --hold-ms`), with `booking` as a client-chosen id (0: the
    /// server picks one). A retry with the same id, event and quantity
    /// answers with the same booking and does not extend it.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ClientError;
    ///
    /// let server = guichet::Server::builder().event("Concert", 10).spawn()?;
    /// let client = server.client();
    /// let held = client.hold(1, 2, 42)?;
    /// assert_eq!((held.quantity, held.remaining), (2, 8));
    /// assert_eq!(client.hold(1, 2, 42)?, held); // a retry
    /// let confirmed = client.confirm(held.booking)?;
    /// assert_eq!((confirmed.quantity, confirmed.remaining), (2, 8));
    /// assert!(matches!(client.reserve_with_id(1, 2, 42), Err(ClientError::BookingConflict { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Those of [`Client::reserve_with_id`] (a RESERVE's id named by a HOLD
    /// is a [`ClientError::BookingConflict`]), and
    /// [`ClientError::HoldExpired`] when the id names a hold that expired.
    pub fn hold(&self, event: u32, quantity: u32, booking: u64) -> Result<Receipt, ClientError> {
        let booking = match booking {
            0 => None,
            id => Some(ClientBookingId::new(id).ok_or(ClientError::InvalidArgument(
                "a client-chosen booking id must have bit 63 clear",
            ))?),
        };
        let event = event_id(event)?;
        let quantity = NonZeroU32::new(quantity)
            .ok_or(ClientError::InvalidArgument("a hold needs at least 1 seat"))?;
        let reply = self.call(Operation::Hold {
            event,
            quantity,
            booking,
        })?;
        receipt(&reply)
    }

    /// CONFIRM a hold: its seats are booked for good. Confirming again (or
    /// confirming a RESERVE's booking) answers OK, so a CONFIRM is safe to
    /// retry.
    ///
    /// # Examples
    ///
    /// ```
    /// let server = guichet::Server::builder().event("Concert", 10).spawn()?;
    /// let client = server.client();
    /// let held = client.hold(1, 3, 0)?;
    /// assert_eq!(client.confirm(held.booking)?, client.confirm(held.booking)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ClientError::HoldExpired`] (too late: the seats went back),
    /// [`ClientError::BookingCancelled`], [`ClientError::UnknownBooking`];
    /// [`ClientError::InvalidArgument`] for id 0; and the transport errors
    /// of [`Client::send`].
    pub fn confirm(&self, booking: impl Into<u64>) -> Result<Receipt, ClientError> {
        let booking = BookingId::new(booking.into()).ok_or(ClientError::InvalidArgument(
            "booking id 0 names no booking",
        ))?;
        let reply = self.call(Operation::Confirm { booking })?;
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
        Operation::Reserve { event, booking, .. } | Operation::Hold { event, booking, .. } => {
            (Some(event), booking.map(BookingId::from))
        }
        Operation::Cancel { booking } | Operation::Confirm { booking } => (None, Some(booking)),
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
        Status::HoldExpired => ClientError::HoldExpired { booking: booking? },
        Status::InvalidRequest => ClientError::InvalidRequest,
        Status::BadMessage => ClientError::BadMessage,
        Status::LedgerFull => ClientError::LedgerFull,
        Status::ShuttingDown => ClientError::ShuttingDown,
    })
}
