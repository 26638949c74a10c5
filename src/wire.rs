//! Wire v1 byte layouts, exactly as `PROTOCOL.md` lays them out.
//!
//! These `#[repr(C)]` structs are the contract a C program reads (see
//! `include/guichet.h`): every size and offset is asserted at compile time,
//! and there is no implicit padding (zerocopy's `IntoBytes` derive refuses to
//! compile a struct that has any). They are raw: any bit pattern is a valid
//! value here, and only the [`codec`](crate::codec) turns them into checked
//! domain types. Use the codec unless you are writing a foreign-language
//! binding or a test of the layout itself.

use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `magic` of every v1 message: the bytes `"THCG"` read as a native `u32`.
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
pub const ANSWERABLE_PREFIX: usize = 24;

/// Operation code of a QUERY request.
pub const OP_QUERY: u16 = 1;
/// Operation code of a RESERVE request.
pub const OP_RESERVE: u16 = 2;
/// Operation code of a CANCEL request.
pub const OP_CANCEL: u16 = 3;

/// Server-assigned booking ids have this bit set; client-chosen ids must not.
pub const SERVER_BOOKING_BIT: u64 = 1 << 63;

/// A request body (the 40 bytes after `mtype`).
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
