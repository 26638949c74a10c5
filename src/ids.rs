//! Identifier newtypes: each one can only hold a value the protocol allows.

use core::fmt;
use core::num::{NonZeroU32, NonZeroU64};

use crate::wire::{MIN_REPLY_TO, SERVER_BOOKING_BIT};

/// An event, numbered 1, 2, 3… in the order the server configured them.
///
/// `event_id = 0` is never an event, so it is unrepresentable here.
///
/// ```
/// use guichet::EventId;
/// assert_eq!(EventId::new(0), None);
/// assert_eq!(EventId::new(3).map(EventId::get), Some(3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(NonZeroU32);

impl EventId {
    /// The id for `raw`, or `None` for 0.
    pub const fn new(raw: u32) -> Option<Self> {
        match NonZeroU32::new(raw) {
            Some(id) => Some(Self(id)),
            None => None,
        }
    }

    /// The wire value.
    pub const fn get(self) -> u32 {
        self.0.get()
    }

    /// Zero-based position in the server's event list.
    pub(crate) fn index(self) -> usize {
        // u32 always fits usize on the 64-bit targets we compile for.
        (self.get() - 1) as usize
    }
}

/// Every non-zero `u32` is a valid event id.
impl From<NonZeroU32> for EventId {
    fn from(id: NonZeroU32) -> Self {
        Self(id)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {}", self.0)
    }
}

/// A booking id: never 0.
///
/// Ids the server picks have bit 63 set ([`BookingId::is_server_assigned`]);
/// ids a client picks to make a RESERVE idempotent have it clear
/// ([`ClientBookingId`]).
///
/// ```
/// use guichet::BookingId;
/// assert_eq!(BookingId::new(0), None);
/// assert!(BookingId::new(1 << 63).unwrap().is_server_assigned());
/// assert!(!BookingId::new(42).unwrap().is_server_assigned());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BookingId(NonZeroU64);

impl BookingId {
    /// Any non-zero id (server-assigned or client-chosen).
    pub const fn new(raw: u64) -> Option<Self> {
        match NonZeroU64::new(raw) {
            Some(id) => Some(Self(id)),
            None => None,
        }
    }

    /// The `n`th server-assigned id (`n >= 1`): bit 63 set over `n`.
    /// `None` if `n` is 0 or does not fit in 63 bits.
    pub const fn server(n: u64) -> Option<Self> {
        if n == 0 || n & SERVER_BOOKING_BIT != 0 {
            return None;
        }
        Self::new(n | SERVER_BOOKING_BIT)
    }

    /// The wire value.
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// Whether the server picked this id (bit 63 set).
    pub const fn is_server_assigned(self) -> bool {
        self.get() & SERVER_BOOKING_BIT != 0
    }
}

/// Every non-zero `u64` is a valid booking id (bit 63 tells whose).
impl From<NonZeroU64> for BookingId {
    fn from(id: NonZeroU64) -> Self {
        Self(id)
    }
}

impl From<BookingId> for u64 {
    fn from(id: BookingId) -> Self {
        id.get()
    }
}

impl fmt::Display for BookingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A booking id a client picks to make a RESERVE idempotent: non-zero, bit 63 clear.
///
/// A separate type so that no RESERVE can name an id from the server's half
/// of the id space, where it could collide with an id the server assigns later.
///
/// ```
/// use guichet::ClientBookingId;
/// assert!(ClientBookingId::new(42).is_some());
/// assert!(ClientBookingId::new(1 << 63).is_none());
/// assert!(ClientBookingId::new(0).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientBookingId(BookingId);

impl ClientBookingId {
    /// The id for `raw`, or `None` for 0 or an id with bit 63 set.
    pub const fn new(raw: u64) -> Option<Self> {
        if raw & SERVER_BOOKING_BIT != 0 {
            return None;
        }
        match BookingId::new(raw) {
            Some(id) => Some(Self(id)),
            None => None,
        }
    }

    /// The wire value.
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// The same id as a plain [`BookingId`].
    pub const fn booking_id(self) -> BookingId {
        self.0
    }
}

impl From<ClientBookingId> for BookingId {
    fn from(id: ClientBookingId) -> Self {
        id.0
    }
}

impl fmt::Display for ClientBookingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The `mtype` a reply is sent with: always `>= 2`.
///
/// By convention `(pid << 32) | slot`; a plain pid below 2³² means that pid.
///
/// ```
/// use guichet::ReplyTo;
/// assert_eq!(ReplyTo::new(1), None);
/// let tag = ReplyTo::for_slot(4242, 7).unwrap();
/// assert_eq!(tag.pid(), 4242);
/// assert_eq!(ReplyTo::new(4242).unwrap().pid(), 4242);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplyTo(i64);

impl ReplyTo {
    /// The tag for `raw`, or `None` below 2.
    pub const fn new(raw: i64) -> Option<Self> {
        if raw < MIN_REPLY_TO {
            return None;
        }
        Some(Self(raw))
    }

    /// `(pid << 32) | slot`, or `None` if `pid` is not positive.
    pub const fn for_slot(pid: i32, slot: u32) -> Option<Self> {
        if pid <= 0 {
            return None;
        }
        Self::new(((pid as i64) << 32) | slot as i64)
    }

    /// The wire value, which is also the reply's `mtype`.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// The process the reply is for: the upper 32 bits, or the whole value
    /// for a plain pid below 2³².
    pub const fn pid(self) -> i64 {
        if self.0 >> 32 == 0 {
            self.0
        } else {
            self.0 >> 32
        }
    }
}

impl fmt::Display for ReplyTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// An opaque tag the client picks and the reply echoes unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `Arbitrary` for the ids, by hand so that every value generated is one the
/// constructors accept (non-zero event, bit 63 clear on a client id,
/// `reply_to >= 2`): a derive would build them from raw fields and break
/// those invariants.
#[cfg(feature = "arbitrary")]
mod arbitrary_impls {
    use arbitrary::{Arbitrary, Error, Result, Unstructured};

    use super::{BookingId, ClientBookingId, EventId, ReplyTo, RequestId, SERVER_BOOKING_BIT};

    impl<'a> Arbitrary<'a> for EventId {
        fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
            Self::new(u.int_in_range(1..=u32::MAX)?).ok_or(Error::IncorrectFormat)
        }

        fn size_hint(depth: usize) -> (usize, Option<usize>) {
            u32::size_hint(depth)
        }
    }

    impl<'a> Arbitrary<'a> for BookingId {
        fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
            Self::new(u.int_in_range(1..=u64::MAX)?).ok_or(Error::IncorrectFormat)
        }

        fn size_hint(depth: usize) -> (usize, Option<usize>) {
            u64::size_hint(depth)
        }
    }

    impl<'a> Arbitrary<'a> for ClientBookingId {
        fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
            Self::new(u.int_in_range(1..=SERVER_BOOKING_BIT - 1)?).ok_or(Error::IncorrectFormat)
        }

        fn size_hint(depth: usize) -> (usize, Option<usize>) {
            u64::size_hint(depth)
        }
    }

    impl<'a> Arbitrary<'a> for ReplyTo {
        fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
            Self::new(u.int_in_range(super::MIN_REPLY_TO..=i64::MAX)?).ok_or(Error::IncorrectFormat)
        }

        fn size_hint(depth: usize) -> (usize, Option<usize>) {
            i64::size_hint(depth)
        }
    }

    impl<'a> Arbitrary<'a> for RequestId {
        fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
            u64::arbitrary(u).map(Self)
        }

        fn size_hint(depth: usize) -> (usize, Option<usize>) {
            u64::size_hint(depth)
        }
    }
}
