//! Wire v1, exactly as `PROTOCOL.md` lays it out: the byte layouts, and the
//! codec that turns any bytes into a checked [`Request`] or [`Reply`], or a
//! typed [`DecodeError`].
//!
//! The `#[repr(C)]` structs are the contract a C program reads (see
//! `include/guichet.h`): every size and offset is asserted at compile time,
//! and there is no implicit padding (zerocopy's `IntoBytes` derive refuses to
//! compile a struct that has any). They are raw: any bit pattern is a valid
//! value here, and only the codec ([`decode_request`], [`decode_reply`], the
//! `encode` methods) turns them into checked domain types. Use the codec unless you are writing a foreign-language
//! binding or a test of the layout itself.
//!
//! # Examples
//!
//! A QUERY built field by field, as a foreign binding would, then checked
//! by the codec. msgsnd(2)'s `msgsz` counts the body only, never `mtype`:
//!
//! ```
//! use guichet::wire::{
//!     Op, RequestBody, RequestMessage, BODY_SIZE, MAGIC, MESSAGE_SIZE, REQUEST_MTYPE,
//!     VERSION,
//! };
//! use guichet::{decode_request, EventId, Operation};
//! use zerocopy::IntoBytes;
//!
//! let message = RequestMessage {
//!     mtype: REQUEST_MTYPE,
//!     body: RequestBody {
//!         magic: MAGIC,
//!         version: VERSION,
//!         op: Op::Query.code(),
//!         reply_to: 2,
//!         request_id: 7,
//!         event_id: 1,
//!         ..RequestBody::default()
//!     },
//! };
//! let bytes = message.as_bytes();
//! assert_eq!((bytes.len(), bytes.len() - BODY_SIZE), (MESSAGE_SIZE, 8));
//! let request = decode_request(&bytes[8..])?;
//! let event = EventId::new(1).ok_or("no event 0")?;
//! assert_eq!(request.operation, Operation::Query { event });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub use crate::codec::{
    decode_reply, decode_request, Answer, DecodeError, Field, Op, Operation, Reply, Request,
    Violation,
};

/// `magic` of every v1 message, `0x47434854`: the bytes `"THCG"` read as
/// a little-endian `u32`.
///
/// Byte order on the wire is the host's (PROTOCOL.md), so a hex dump shows
/// `THCG` on little-endian hosts (x86-64, AArch64) and `GCHT` on big-endian
/// ones; the value compared is the same.
///
/// # Examples
///
/// ```
/// use guichet::wire::MAGIC;
///
/// assert_eq!(MAGIC, u32::from_le_bytes(*b"THCG"));
/// let stored = if cfg!(target_endian = "little") { *b"THCG" } else { *b"GCHT" };
/// assert_eq!(MAGIC.to_ne_bytes(), stored);
/// ```
pub const MAGIC: u32 = 0x4743_4854;
/// `version` of every message this crate speaks.
pub const VERSION: u16 = 1;
/// `mtype` of every request; the server receives with `msgtyp = 1`.
pub const REQUEST_MTYPE: libc::c_long = 1;
/// Smallest `reply_to` a client may name: 1 is the request type, and
/// `mtype` must be positive (msgsnd(2)).
pub const MIN_REPLY_TO: i64 = 2;
/// `msgsz` of every valid message in both directions: the body, `mtype` excluded.
pub const BODY_SIZE: usize = 40;
/// Size of a whole message, `mtype` included.
pub const MESSAGE_SIZE: usize = size_of::<libc::c_long>() + BODY_SIZE;
/// A malformed message is answerable only if its body reaches this far:
/// through `request_id`, so the reply can be tagged and addressed.
///
/// # Examples
///
/// A body cut short is answered BAD_MESSAGE if it holds a right magic, a
/// usable `reply_to` and the `request_id`, and dropped one byte shorter:
///
/// ```
/// use guichet::wire::{ANSWERABLE_PREFIX, MAGIC};
/// use guichet::{decode_request, RequestId, Status};
///
/// let mut body = [0u8; ANSWERABLE_PREFIX];
/// body[0..4].copy_from_slice(&MAGIC.to_ne_bytes());
/// body[8..16].copy_from_slice(&5i64.to_ne_bytes()); // reply_to
/// body[16..24].copy_from_slice(&9u64.to_ne_bytes()); // request_id
/// let answer = decode_request(&body).unwrap_err().answer().ok_or("dropped")?;
/// assert_eq!((answer.status, answer.request_id), (Status::BadMessage, RequestId(9)));
/// assert!(decode_request(&body[..ANSWERABLE_PREFIX - 1]).unwrap_err().answer().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const ANSWERABLE_PREFIX: usize = 24;

/// Operation code of a QUERY request.
pub(crate) const OP_QUERY: u16 = 1;
/// Operation code of a RESERVE request.
pub(crate) const OP_RESERVE: u16 = 2;
/// Operation code of a CANCEL request.
pub(crate) const OP_CANCEL: u16 = 3;
/// Operation code of a HOLD request: RESERVE's fields, seats held until
/// confirmed, cancelled or expired (PROTOCOL.md, Holds).
pub(crate) const OP_HOLD: u16 = 4;
/// Operation code of a CONFIRM request: CANCEL's fields; makes a live hold
/// an ordinary booking.
pub(crate) const OP_CONFIRM: u16 = 5;

/// Server-assigned booking ids have this bit set; client-chosen ids must not.
///
/// Two halves of one id space, so that a client can pick ids (for
/// idempotent RESERVEs) without asking the server, and neither side can
/// take an id the other will use. See [`BookingId`](crate::BookingId).
pub const SERVER_BOOKING_BIT: u64 = 1 << 63;

/// A request body (the 40 bytes after `mtype`).
///
/// Fields unused by an op must be 0 (PROTOCOL.md, *Operations*); nothing
/// here enforces it, [`decode_request`] does.
///
/// # Examples
///
/// ```
/// use guichet::wire::{Op, RequestBody};
/// use guichet::{BookingId, Operation, ReplyTo, Request, RequestId};
///
/// let request = Request {
///     reply_to: ReplyTo::new(2).ok_or("reply_to below 2")?,
///     request_id: RequestId(1),
///     operation: Operation::Cancel { booking: BookingId::new(42).ok_or("0 is no booking")? },
/// };
/// let raw: RequestBody = request.to_wire();
/// assert_eq!((raw.op, raw.booking_id, raw.event_id, raw.quantity), (Op::Cancel.code(), 42, 0, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct RequestBody {
    /// [`MAGIC`].
    pub magic: u32,
    /// [`VERSION`].
    pub version: u16,
    /// One of the `OP_*` codes.
    pub op: u16,
    /// `mtype` the reply is sent with; `>= 2`.
    pub reply_to: i64,
    /// Opaque; echoed in the reply.
    pub request_id: u64,
    /// Booking concerned (CANCEL), or 0 / a client-chosen id (RESERVE).
    pub booking_id: u64,
    /// Event concerned (QUERY, RESERVE).
    pub event_id: u32,
    /// Seats to book (RESERVE).
    pub quantity: u32,
}

/// A reply body (the 40 bytes after `mtype`).
///
/// Any bit pattern is a value here, so it can be read from whatever bytes
/// arrived; [`decode_reply`] then checks it.
///
/// # Examples
///
/// ```
/// use guichet::wire::ReplyBody;
/// use guichet::{Reply, RequestId, Status};
/// use zerocopy::FromBytes;
///
/// let bytes = Reply::bare(Status::SoldOut, RequestId(3)).encode();
/// let raw = ReplyBody::read_from_bytes(&bytes[..]).map_err(|_| "not 40 bytes")?;
/// assert_eq!((raw.status, raw.request_id, raw.event_id), (1, 3, 0));
/// assert!(ReplyBody::read_from_bytes(&bytes[..39]).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ReplyBody {
    /// [`MAGIC`].
    pub magic: u32,
    /// [`VERSION`].
    pub version: u16,
    /// A [`Status`](crate::Status) code.
    pub status: u16,
    /// The request's `request_id`, unchanged.
    pub request_id: u64,
    /// The booking concerned, else 0.
    pub booking_id: u64,
    /// The event concerned, else 0.
    pub event_id: u32,
    /// Seats of the booking for a RESERVE or CANCEL answered OK, else 0.
    pub quantity: u32,
    /// Seats left for `event_id` after the request.
    pub remaining: u32,
    /// Seats `event_id` has in all.
    pub capacity: u32,
}

/// A whole request message as `msgsnd(2)` reads it: `mtype` then the body.
///
/// The layout of `struct guichet_request` in `include/guichet.h`: a C
/// client passes a pointer to it and `msgsz = BODY_SIZE`.
///
/// # Examples
///
/// ```
/// use guichet::wire::{RequestMessage, MESSAGE_SIZE, REQUEST_MTYPE};
/// use zerocopy::IntoBytes;
///
/// let message = RequestMessage { mtype: REQUEST_MTYPE, ..RequestMessage::default() };
/// assert_eq!(message.as_bytes().len(), MESSAGE_SIZE);
/// assert_eq!(message.as_bytes()[..8], REQUEST_MTYPE.to_ne_bytes());
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct RequestMessage {
    /// Always [`REQUEST_MTYPE`].
    pub mtype: libc::c_long,
    /// The 40-byte body.
    pub body: RequestBody,
}

/// A whole reply message as `msgsnd(2)` reads it: `mtype` then the body.
///
/// The layout of `struct guichet_reply` in `include/guichet.h`, and of
/// the buffer a client's msgrcv(2) fills.
///
/// # Examples
///
/// ```
/// use guichet::wire::{ReplyMessage, MESSAGE_SIZE};
/// use guichet::{decode_reply, Reply, RequestId, Status};
/// use zerocopy::{FromBytes, IntoBytes};
///
/// let body = Reply::bare(Status::Ok, RequestId(1)).to_wire();
/// let sent = ReplyMessage { mtype: 5, body };
/// let received = ReplyMessage::read_from_bytes(sent.as_bytes()).map_err(|_| "not 48 bytes")?;
/// assert_eq!(received.mtype, 5);
/// assert_eq!(decode_reply(received.body.as_bytes())?.status, Status::Ok);
/// assert_eq!(size_of::<ReplyMessage>(), MESSAGE_SIZE);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ReplyMessage {
    /// The request's `reply_to`.
    pub mtype: libc::c_long,
    /// The 40-byte body.
    pub body: ReplyBody,
}

// The layout is the protocol: a change here is a wire break, so it must not
// compile. Offsets below count from the start of the message, as PROTOCOL.md does.
const _: () = {
    assert!(size_of::<libc::c_long>() == 8);
    assert!(size_of::<RequestBody>() == BODY_SIZE);
    assert!(size_of::<ReplyBody>() == BODY_SIZE);
    assert!(size_of::<RequestMessage>() == MESSAGE_SIZE);
    assert!(size_of::<ReplyMessage>() == MESSAGE_SIZE);
    assert!(MESSAGE_SIZE == 48);

    assert!(offset_of!(RequestMessage, mtype) == 0);
    assert!(offset_of!(RequestMessage, body) == 8);
    assert!(offset_of!(RequestBody, magic) + 8 == 8);
    assert!(offset_of!(RequestBody, version) + 8 == 12);
    assert!(offset_of!(RequestBody, op) + 8 == 14);
    assert!(offset_of!(RequestBody, reply_to) + 8 == 16);
    assert!(offset_of!(RequestBody, request_id) + 8 == 24);
    assert!(offset_of!(RequestBody, booking_id) + 8 == 32);
    assert!(offset_of!(RequestBody, event_id) + 8 == 40);
    assert!(offset_of!(RequestBody, quantity) + 8 == 44);

    assert!(offset_of!(ReplyMessage, mtype) == 0);
    assert!(offset_of!(ReplyMessage, body) == 8);
    assert!(offset_of!(ReplyBody, magic) + 8 == 8);
    assert!(offset_of!(ReplyBody, version) + 8 == 12);
    assert!(offset_of!(ReplyBody, status) + 8 == 14);
    assert!(offset_of!(ReplyBody, request_id) + 8 == 16);
    assert!(offset_of!(ReplyBody, booking_id) + 8 == 24);
    assert!(offset_of!(ReplyBody, event_id) + 8 == 32);
    assert!(offset_of!(ReplyBody, quantity) + 8 == 36);
    assert!(offset_of!(ReplyBody, remaining) + 8 == 40);
    assert!(offset_of!(ReplyBody, capacity) + 8 == 44);

    // Both bodies put the reply tag in the answerable prefix.
    assert!(offset_of!(RequestBody, request_id) + 8 == ANSWERABLE_PREFIX);
};
