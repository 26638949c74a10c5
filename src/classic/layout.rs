//! The classic protocol's byte layouts (`CLASSIC.md`), as `#[repr(C)]`
//! structs whose sizes and offsets are asserted at compile time.
//!
//! Raw, like [`crate::wire`]: any bit pattern is a value here, and only
//! [`decode_classic_request`](super::decode_classic_request) and
//! [`decode_classic_reply`](super::decode_classic_reply) turn bytes into
//! checked values. `include/guichet_classic.h` declares the same layouts
//! for C, and `tests/c_interop.rs` compares the two.

use core::mem::{offset_of, size_of};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The key the course's clients open (`msgget(12345, 0666)`), `0x3039`.
///
/// Only the operator passes it (`guichet serve --classic-key 12345`):
/// tests never use it, since a SysV key is global to the machine.
///
/// # Examples
///
/// ```
/// assert_eq!(guichet::classic::COURSE_KEY, 0x3039);
/// ```
pub const COURSE_KEY: i32 = 12345;

/// `mtype` of a listing request.
pub const MTYPE_LIST: libc::c_long = 1;
/// `mtype` of a reservation request.
pub const MTYPE_RESERVE: libc::c_long = 2;
/// `mtype` of a client's "quit" (consumed and counted, never obeyed).
pub const MTYPE_QUIT: libc::c_long = 5;
/// `mtype` of the reply to a listing.
pub const MTYPE_LIST_REPLY: libc::c_long = 10;
/// `mtype` of the reply to a reservation.
pub const MTYPE_RESERVE_REPLY: libc::c_long = 11;
/// `msgtyp` the server receives with: the lowest type up to 9 first, so
/// replies (10, 11) are never read back as requests.
pub const RECEIVE_MSGTYP: libc::c_long = -9;

/// `msgsz` of a request: the three `int`s and 4 bytes of padding after
/// `mtype` (`sizeof` the C struct is 24, minus the 8-byte `long`).
pub const REQUEST_BODY_SIZE: usize = 16;
/// `msgsz` of a reply: `char texte[512]`.
pub const REPLY_BODY_SIZE: usize = 512;
/// The longest reply text: one byte of the body is kept for the NUL.
pub const MAX_TEXT_BYTES: usize = REPLY_BODY_SIZE - 1;

/// A request body: the 16 bytes after `mtype`.
///
/// # Examples
///
/// ```
/// use guichet::classic::{ClassicRequestBody, REQUEST_BODY_SIZE};
/// use zerocopy::IntoBytes;
///
/// let body = ClassicRequestBody { action: 2, id_spec: 0, nb_places: 3, padding: [0; 4] };
/// assert_eq!(body.as_bytes().len(), REQUEST_BODY_SIZE);
/// assert_eq!(body.as_bytes()[8..12], 3i32.to_ne_bytes());
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ClassicRequestBody {
    /// Ignored: the `mtype` decides what is asked.
    pub action: i32,
    /// The event, numbered from 0 (guichet's event `id_spec + 1`).
    pub id_spec: i32,
    /// Seats wanted.
    pub nb_places: i32,
    /// The C struct's tail padding, never initialised by clients: ignored.
    pub padding: [u8; 4],
}

/// A whole request message as a course client passes it to msgsnd(2):
/// `{ long mtype; int action; int id_spec; int nb_places; }`, sizeof 24.
///
/// # Examples
///
/// ```
/// use guichet::classic::{ClassicRequestMessage, MTYPE_LIST};
/// use zerocopy::IntoBytes;
///
/// let message = ClassicRequestMessage { mtype: MTYPE_LIST, ..Default::default() };
/// assert_eq!(message.as_bytes().len(), 24);
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ClassicRequestMessage {
    /// 1 (list), 2 (reserve) or 5 (quit).
    pub mtype: libc::c_long,
    /// The 16-byte body.
    pub body: ClassicRequestBody,
}

/// A reply body: `char texte[512]`, a NUL-terminated UTF-8 text followed
/// by zeros.
///
/// # Examples
///
/// ```
/// use guichet::classic::{ClassicReplyBody, REPLY_BODY_SIZE};
/// use zerocopy::IntoBytes;
///
/// assert_eq!(ClassicReplyBody::default().as_bytes(), &[0u8; REPLY_BODY_SIZE][..]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ClassicReplyBody {
    /// The text, NUL-terminated, zero-filled after the NUL.
    pub texte: [u8; REPLY_BODY_SIZE],
}

impl Default for ClassicReplyBody {
    fn default() -> Self {
        Self {
            texte: [0; REPLY_BODY_SIZE],
        }
    }
}

/// A whole reply message: `{ long mtype; char texte[512]; }`, sizeof 520.
///
/// # Examples
///
/// ```
/// use guichet::classic::ClassicReplyMessage;
///
/// assert_eq!(size_of::<ClassicReplyMessage>(), 520);
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct ClassicReplyMessage {
    /// 10 (listing) or 11 (reservation).
    pub mtype: libc::c_long,
    /// The 512-byte body.
    pub body: ClassicReplyBody,
}

// The layout is the course's protocol: a change must not compile. Offsets
// count from the start of the message, mtype included, as CLASSIC.md's C
// structs do.
const _: () = {
    assert!(size_of::<libc::c_long>() == 8);
    assert!(size_of::<ClassicRequestBody>() == REQUEST_BODY_SIZE);
    assert!(size_of::<ClassicRequestMessage>() == 24);
    assert!(offset_of!(ClassicRequestMessage, mtype) == 0);
    assert!(offset_of!(ClassicRequestMessage, body) == 8);
    assert!(offset_of!(ClassicRequestBody, action) + 8 == 8);
    assert!(offset_of!(ClassicRequestBody, id_spec) + 8 == 12);
    assert!(offset_of!(ClassicRequestBody, nb_places) + 8 == 16);
    assert!(offset_of!(ClassicRequestBody, padding) + 8 == 20);

    assert!(size_of::<ClassicReplyBody>() == REPLY_BODY_SIZE);
    assert!(size_of::<ClassicReplyMessage>() == 520);
    assert!(offset_of!(ClassicReplyMessage, mtype) == 0);
    assert!(offset_of!(ClassicReplyMessage, body) == 8);
    assert!(offset_of!(ClassicReplyBody, texte) + 8 == 8);

    // Replies are never read back as requests by `msgtyp = -9`.
    assert!(-RECEIVE_MSGTYP < MTYPE_LIST_REPLY && -RECEIVE_MSGTYP < MTYPE_RESERVE_REPLY);
};
