//! The classic protocol: the course's original clients, served unchanged
//! (`CLASSIC.md`; the operator's guide is `docs/classic.md`).
//!
//! A course client sends a 16-byte request with a fixed mtype (1 list,
//! 2 reserve, 5 quit) and waits for a 512-byte French text on mtype 10 or
//! 11. This module is that protocol's codec, typed like wire v1's:
//!
//! - [`ClassicRequestMessage`], [`ClassicReplyMessage`]: the `#[repr(C)]`
//!   layouts, sizes and offsets asserted at compile time
//!   (`include/guichet_classic.h` for C);
//! - [`decode_classic_request`]: any mtype and bytes to a
//!   [`ClassicRequest`] or a typed [`ClassicDrop`];
//! - [`ClassicReply`], [`ReplyText`]: a reply and its text, which can never
//!   pass 511 bytes, encoded into a zero-filled 512-byte body.
//!
//! The server side is [`Builder::classic_key`](crate::server::Builder::classic_key).
//!
//! # Examples
//!
//! A course client's reservation, decoded, and an answer:
//!
//! ```
//! use guichet::classic::{decode_classic_reply, decode_classic_request, ClassicReply};
//! use guichet::classic::{ClassicRequest, ReplyKind, ReplyText};
//!
//! let (mtype, body) = ClassicRequest::Reserve { id_spec: 0, nb_places: 2 }.encode();
//! let ClassicRequest::Reserve { nb_places, .. } = decode_classic_request(mtype, &body)? else {
//!     return Err("not a reservation".into());
//! };
//! let text = ReplyText::from_str_cut(&format!("OK ! {nb_places} places réservées pour Concert."));
//! let reply = ClassicReply { kind: ReplyKind::Reservation, text };
//! let sent = reply.encode();
//! assert_eq!(decode_classic_reply(11, &sent)?.text.as_str(), "OK ! 2 places réservées pour Concert.");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod codec;
pub(crate) mod layout;
pub(crate) mod text;

pub use codec::{
    decode_classic_reply, decode_classic_request, ClassicDrop, ClassicReply, ClassicRequest,
    ReplyKind, ReplyViolation,
};
pub use layout::{
    ClassicReplyBody, ClassicReplyMessage, ClassicRequestBody, ClassicRequestMessage, COURSE_KEY,
    MTYPE_LIST, MTYPE_LIST_REPLY, MTYPE_QUIT, MTYPE_RESERVE, MTYPE_RESERVE_REPLY, REPLY_BODY_SIZE,
    REQUEST_BODY_SIZE,
};
pub use text::ReplyText;
// The server's side: what it answers. Tests and fuzz checks reach it
// through `__testkit`.
pub(crate) use layout::RECEIVE_MSGTYP;
pub(crate) use text::{listing_text, ReserveText};
