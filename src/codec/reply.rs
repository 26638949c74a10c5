use zerocopy::{FromBytes, IntoBytes};

use crate::ids::{BookingId, EventId, RequestId};
use crate::status::Status;
use crate::wire::{ReplyBody, BODY_SIZE, MAGIC, VERSION};

use super::violation::Violation;

/// A reply body, decoded.
///
/// Field meanings follow PROTOCOL.md: `booking` and `event` name what the
/// reply is about (absent when nothing is); `quantity` is the booking's seats
/// for a RESERVE or CANCEL answered OK, else 0; `remaining` and `capacity`
/// are filled whenever the event is known.
///
/// Ids of 0 on the wire decode to `None` rather than to a sentinel, so
/// "no booking" cannot be mistaken for a booking.
///
/// # Examples
///
/// ```
/// use guichet::{decode_reply, Reply, RequestId, Status};
///
/// let reply = Reply::bare(Status::BadMessage, RequestId(9));
/// assert_eq!(decode_reply(&reply.encode()), Ok(reply));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Reply {
    /// What happened.
    pub status: Status,
    /// The request's tag, unchanged.
    pub request_id: RequestId,
    /// The booking concerned.
    pub booking: Option<BookingId>,
    /// The event concerned.
    pub event: Option<EventId>,
    /// The booking's seats (RESERVE or CANCEL answered OK), else 0.
    pub quantity: u32,
    /// Seats left for `event` after the request.
    pub remaining: u32,
    /// Seats `event` has in all.
    pub capacity: u32,
}

impl Reply {
    /// A reply that carries only a status and the request's tag.
    ///
    /// What a server sends when it knows nothing more to say: a malformed
    /// request, or SHUTTING_DOWN.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::{Reply, RequestId, Status};
    ///
    /// let reply = Reply::bare(Status::ShuttingDown, RequestId(8));
    /// assert_eq!((reply.booking, reply.event), (None, None));
    /// assert_eq!((reply.quantity, reply.remaining, reply.capacity), (0, 0, 0));
    /// ```
    pub const fn bare(status: Status, request_id: RequestId) -> Self {
        Self {
            status,
            request_id,
            booking: None,
            event: None,
            quantity: 0,
            remaining: 0,
            capacity: 0,
        }
    }

    /// The raw wire body: `None` ids become 0, and `magic` and `version`
    /// are this side's.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::wire::{MAGIC, VERSION};
    /// use guichet::{Reply, RequestId, Status};
    ///
    /// let raw = Reply::bare(Status::UnknownBooking, RequestId(2)).to_wire();
    /// assert_eq!((raw.magic, raw.version, raw.status), (MAGIC, VERSION, 3));
    /// assert_eq!((raw.booking_id, raw.event_id), (0, 0));
    /// ```
    pub fn to_wire(&self) -> ReplyBody {
        ReplyBody {
            magic: MAGIC,
            version: VERSION,
            status: self.status.code(),
            request_id: self.request_id.0,
            booking_id: self.booking.map_or(0, BookingId::get),
            event_id: self.event.map_or(0, EventId::get),
            quantity: self.quantity,
            remaining: self.remaining,
            capacity: self.capacity,
        }
    }

    /// The 40-byte body to pass to `msgsnd(2)` after `mtype = reply_to`.
    ///
    /// Total and canonical: [`decode_reply`] gives the same reply back.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::{decode_reply, EventId, Reply, RequestId, Status};
    ///
    /// let reply = Reply {
    ///     event: EventId::new(1),
    ///     remaining: 0,
    ///     capacity: 50,
    ///     ..Reply::bare(Status::SoldOut, RequestId(6))
    /// };
    /// let body = reply.encode();
    /// assert_eq!(body.len(), 40);
    /// assert_eq!(decode_reply(&body)?, reply);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self) -> [u8; BODY_SIZE] {
        let mut body = [0u8; BODY_SIZE];
        body.copy_from_slice(self.to_wire().as_bytes());
        body
    }
}

/// Decodes a reply body, as a client's `msgrcv(2)` returned it.
///
/// Give it the whole body received, not a 40-byte prefix: a client that
/// receives with `MSG_NOERROR` into a buffer one byte larger than a body
/// (as [`Client`](crate::Client) does) sees an over-long reply as 41 bytes
/// and gets [`Violation::Length`], instead of a silently truncated reply.
/// The fields past the framing are not checked against any request: that
/// is the caller's business (a `Client` matches `request_id`).
///
/// # Examples
///
/// ```
/// use guichet::{decode_reply, Reply, RequestId, Status, Violation};
///
/// let reply = decode_reply(&Reply::bare(Status::Ok, RequestId(1)).encode())?;
/// assert_eq!(reply.status, Status::Ok);
/// assert_eq!(decode_reply(&[0u8; 41]), Err(Violation::Length { len: 41 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// The first [`Violation`] among length, magic, version and status, in
/// that order: [`Violation::Length`] unless `body` is exactly 40 bytes,
/// [`Violation::Magic`], [`Violation::Version`], or [`Violation::Status`]
/// for a code v1 does not define. No other variant is returned.
pub fn decode_reply(body: &[u8]) -> Result<Reply, Violation> {
    let raw =
        ReplyBody::read_from_bytes(body).map_err(|_| Violation::Length { len: body.len() })?;
    if raw.magic != MAGIC {
        return Err(Violation::Magic { found: raw.magic });
    }
    if raw.version != VERSION {
        return Err(Violation::Version { found: raw.version });
    }
    let status = Status::from_code(raw.status).ok_or(Violation::Status { found: raw.status })?;
    Ok(Reply {
        status,
        request_id: RequestId(raw.request_id),
        booking: BookingId::new(raw.booking_id),
        event: EventId::new(raw.event_id),
        quantity: raw.quantity,
        remaining: raw.remaining,
        capacity: raw.capacity,
    })
}
