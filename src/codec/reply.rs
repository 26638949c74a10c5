use zerocopy::{FromBytes, IntoBytes};

use crate::ids::{BookingId, EventId, RequestId};
use crate::status::Status;
use crate::wire::{ReplyBody, BODY_SIZE, MAGIC, VERSION};

use super::error::Violation;

/// A reply body, decoded.
///
/// Field meanings follow PROTOCOL.md: `booking` and `event` name what the
/// reply is about (absent when nothing is); `quantity` is the booking's seats
/// for a RESERVE or CANCEL answered OK, else 0; `remaining` and `capacity`
/// are filled whenever the event is known.
///
/// ```
/// use guichet::{decode_reply, Reply, RequestId, Status};
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

    /// The raw wire body.
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
    pub fn encode(&self) -> [u8; BODY_SIZE] {
        let mut body = [0u8; BODY_SIZE];
        body.copy_from_slice(self.to_wire().as_bytes());
        body
    }
}

/// Decodes a reply body, as a client's `msgrcv(2)` returned it.
///
/// ```
/// use guichet::{decode_reply, Violation};
/// assert_eq!(decode_reply(&[0u8; 41]), Err(Violation::Length { len: 41 }));
/// ```
///
/// # Errors
///
/// The first [`Violation`] among length, magic, version and status.
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
