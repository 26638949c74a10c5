//! Classic requests and replies: checked types, and the codec between them
//! and the bodies msgsnd(2)/msgrcv(2) carry.

use zerocopy::{FromBytes, IntoBytes};

use super::layout::{
    ClassicRequestBody, MTYPE_LIST, MTYPE_LIST_REPLY, MTYPE_QUIT, MTYPE_RESERVE,
    MTYPE_RESERVE_REPLY, REPLY_BODY_SIZE, REQUEST_BODY_SIZE,
};
use super::text::ReplyText;

/// A classic request, as the server acts on it.
///
/// The fields a request does not use are not kept: a list or a quit's
/// body is never read (clients leave it uninitialised).
///
/// # Examples
///
/// ```
/// use guichet::classic::{decode_classic_request, ClassicRequest};
///
/// let reserve = ClassicRequest::Reserve { id_spec: 0, nb_places: 2 };
/// let (mtype, body) = reserve.encode();
/// assert_eq!(mtype, 2);
/// assert_eq!(decode_classic_request(mtype, &body), Ok(reserve));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ClassicRequest {
    /// mtype 1: every event with its remaining seats.
    List,
    /// mtype 2: book `nb_places` of event `id_spec` (0-based). Any values:
    /// the server answers the ones it refuses with a text.
    Reserve {
        /// The event, numbered from 0.
        id_spec: i32,
        /// Seats wanted.
        nb_places: i32,
    },
    /// mtype 5: the client is leaving. Counted, never obeyed.
    Quit,
}

impl ClassicRequest {
    /// The request's mtype.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::classic::ClassicRequest;
    ///
    /// assert_eq!(ClassicRequest::Quit.mtype(), 5);
    /// ```
    pub const fn mtype(&self) -> libc::c_long {
        match self {
            ClassicRequest::List => MTYPE_LIST,
            ClassicRequest::Reserve { .. } => MTYPE_RESERVE,
            ClassicRequest::Quit => MTYPE_QUIT,
        }
    }

    /// The mtype and 16-byte body a course client sends: `action` set to
    /// the mtype (as the course's client does), the unused fields and the
    /// padding zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::classic::ClassicRequest;
    ///
    /// let (mtype, body) = ClassicRequest::List.encode();
    /// assert_eq!((mtype, body), (1, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    /// ```
    pub fn encode(&self) -> (libc::c_long, [u8; REQUEST_BODY_SIZE]) {
        let (id_spec, nb_places) = match *self {
            ClassicRequest::Reserve { id_spec, nb_places } => (id_spec, nb_places),
            ClassicRequest::List | ClassicRequest::Quit => (0, 0),
        };
        let raw = ClassicRequestBody {
            // 1, 2 or 5: fits an i32.
            action: self.mtype() as i32,
            id_spec,
            nb_places,
            padding: [0; 4],
        };
        let mut body = [0u8; REQUEST_BODY_SIZE];
        body.copy_from_slice(raw.as_bytes());
        (self.mtype(), body)
    }
}

/// Why a classic message is dropped unanswered (CLASSIC.md: an answer would
/// land on some other client's fixed mtype).
///
/// # Examples
///
/// ```
/// use guichet::classic::{decode_classic_request, ClassicDrop};
///
/// assert_eq!(decode_classic_request(1, &[0; 15]), Err(ClassicDrop::Length { len: 15 }));
/// assert_eq!(decode_classic_request(3, &[0; 16]), Err(ClassicDrop::Mtype { mtype: 3 }));
/// assert_eq!(ClassicDrop::Length { len: 15 }.to_string(),
///            "classic request body is 15 bytes; it must be exactly 16");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ClassicDrop {
    /// The body is not exactly 16 bytes (checked first).
    #[error("classic request body is {len} bytes; it must be exactly {REQUEST_BODY_SIZE}")]
    Length {
        /// Bytes received (after `MSG_NOERROR` truncation).
        len: usize,
    },
    /// The mtype is not 1, 2 or 5.
    #[error("classic request mtype is {mtype}; only 1 (list), 2 (reserve) and 5 (quit) exist")]
    Mtype {
        /// The mtype received.
        mtype: libc::c_long,
    },
}

/// Decodes a classic request: its mtype and its body as msgrcv(2) returned
/// it (receive into a buffer larger than 16 bytes with `MSG_NOERROR`, so
/// that an over-long message arrives over-long and is dropped).
///
/// Total: any mtype and any bytes give a request or a [`ClassicDrop`].
/// `action` and the padding are ignored, and so is the whole body of a
/// list or a quit.
///
/// # Examples
///
/// ```
/// use guichet::classic::{decode_classic_request, ClassicRequest};
///
/// let mut body = [0xAAu8; 16]; // uninitialised stack memory, say
/// body[4..8].copy_from_slice(&1i32.to_ne_bytes());
/// body[8..12].copy_from_slice(&3i32.to_ne_bytes());
/// assert_eq!(
///     decode_classic_request(2, &body),
///     Ok(ClassicRequest::Reserve { id_spec: 1, nb_places: 3 })
/// );
/// assert_eq!(decode_classic_request(1, &body), Ok(ClassicRequest::List));
/// ```
///
/// # Errors
///
/// [`ClassicDrop::Length`] unless the body is exactly 16 bytes, then
/// [`ClassicDrop::Mtype`] for an mtype other than 1, 2 and 5.
pub fn decode_classic_request(
    mtype: libc::c_long,
    body: &[u8],
) -> Result<ClassicRequest, ClassicDrop> {
    let raw = ClassicRequestBody::read_from_bytes(body)
        .map_err(|_| ClassicDrop::Length { len: body.len() })?;
    match mtype {
        MTYPE_LIST => Ok(ClassicRequest::List),
        MTYPE_RESERVE => Ok(ClassicRequest::Reserve {
            id_spec: raw.id_spec,
            nb_places: raw.nb_places,
        }),
        MTYPE_QUIT => Ok(ClassicRequest::Quit),
        _ => Err(ClassicDrop::Mtype { mtype }),
    }
}

/// What a classic reply answers: its mtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ReplyKind {
    /// mtype 10: a listing.
    Listing,
    /// mtype 11: a reservation's outcome.
    Reservation,
}

impl ReplyKind {
    /// The reply's mtype, 10 or 11.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::classic::ReplyKind;
    ///
    /// assert_eq!((ReplyKind::Listing.mtype(), ReplyKind::Reservation.mtype()), (10, 11));
    /// ```
    pub const fn mtype(self) -> libc::c_long {
        match self {
            ReplyKind::Listing => MTYPE_LIST_REPLY,
            ReplyKind::Reservation => MTYPE_RESERVE_REPLY,
        }
    }
}

/// A classic reply: its kind (so its mtype) and its text.
///
/// # Examples
///
/// ```
/// use guichet::classic::{decode_classic_reply, ClassicReply, ReplyKind, ReplyText};
///
/// let text = ReplyText::from_str_cut("ECHEC : ID Invalide.");
/// let reply = ClassicReply { kind: ReplyKind::Reservation, text };
/// let body = reply.encode();
/// assert_eq!(&body[..21], b"ECHEC : ID Invalide.\0");
/// assert_eq!(decode_classic_reply(11, &body), Ok(reply));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClassicReply {
    /// Listing (mtype 10) or reservation (mtype 11).
    pub kind: ReplyKind,
    /// The text.
    pub text: ReplyText,
}

impl ClassicReply {
    /// The 512-byte body: text, NUL, zeros.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::classic::{ClassicReply, ReplyKind, ReplyText};
    ///
    /// let reply = ClassicReply { kind: ReplyKind::Listing, text: ReplyText::new() };
    /// assert_eq!(reply.encode(), [0u8; 512]);
    /// ```
    pub fn encode(&self) -> [u8; REPLY_BODY_SIZE] {
        self.text.encode()
    }
}

/// Why bytes are not a reply guichet would send.
///
/// # Examples
///
/// ```
/// use guichet::classic::{decode_classic_reply, ReplyViolation};
///
/// assert_eq!(decode_classic_reply(10, &[b'x'; 512]), Err(ReplyViolation::NoNul));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ReplyViolation {
    /// The body is not exactly 512 bytes.
    #[error("classic reply body is {len} bytes; it must be exactly {REPLY_BODY_SIZE}")]
    Length {
        /// Bytes received.
        len: usize,
    },
    /// The mtype is not 10 or 11.
    #[error("classic reply mtype is {mtype}; replies are 10 (listing) or 11 (reservation)")]
    Mtype {
        /// The mtype received.
        mtype: libc::c_long,
    },
    /// No NUL ends the text.
    #[error("classic reply text has no terminating NUL")]
    NoNul,
    /// A byte after the NUL is not 0.
    #[error("classic reply byte {offset} after the text's NUL is {found:#04x}, not 0")]
    Fill {
        /// Its offset in the body.
        offset: usize,
        /// Its value.
        found: u8,
    },
    /// The text is not UTF-8.
    #[error("classic reply text is not UTF-8 (first bad byte at {offset})")]
    Utf8 {
        /// Where the first invalid byte is.
        offset: usize,
    },
}

/// Decodes a reply body as a client's msgrcv(2) returned it, checking what
/// guichet promises: 512 bytes, mtype 10 or 11, a UTF-8 text ended by a
/// NUL, and zeros after it.
///
/// # Examples
///
/// ```
/// use guichet::classic::{decode_classic_reply, ReplyViolation};
///
/// let mut body = [0u8; 512];
/// body[..2].copy_from_slice(b"OK");
/// assert_eq!(decode_classic_reply(11, &body)?.text.as_str(), "OK");
/// body[100] = 7; // stack garbage after the NUL, as the original sent
/// assert_eq!(decode_classic_reply(11, &body), Err(ReplyViolation::Fill { offset: 100, found: 7 }));
/// # Ok::<(), ReplyViolation>(())
/// ```
///
/// # Errors
///
/// The first [`ReplyViolation`] in the order length, mtype, NUL, fill, UTF-8.
pub fn decode_classic_reply(
    mtype: libc::c_long,
    body: &[u8],
) -> Result<ClassicReply, ReplyViolation> {
    if body.len() != REPLY_BODY_SIZE {
        return Err(ReplyViolation::Length { len: body.len() });
    }
    let kind = match mtype {
        MTYPE_LIST_REPLY => ReplyKind::Listing,
        MTYPE_RESERVE_REPLY => ReplyKind::Reservation,
        _ => return Err(ReplyViolation::Mtype { mtype }),
    };
    let nul = body
        .iter()
        .position(|&b| b == 0)
        .ok_or(ReplyViolation::NoNul)?;
    if let Some(offset) = body[nul..].iter().position(|&b| b != 0) {
        return Err(ReplyViolation::Fill {
            offset: nul + offset,
            found: body[nul + offset],
        });
    }
    let text = core::str::from_utf8(&body[..nul]).map_err(|e| ReplyViolation::Utf8 {
        offset: e.valid_up_to(),
    })?;
    // `nul` < 512, so the text is at most 511 bytes, has no NUL, and fits whole.
    Ok(ClassicReply {
        kind,
        text: ReplyText::from_str_cut(text),
    })
}
