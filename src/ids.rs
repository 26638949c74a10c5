//! Identifier newtypes: each one can only hold a value the protocol allows.

use core::fmt;
use core::num::{NonZeroU32, NonZeroU64};

use crate::wire::{MIN_REPLY_TO, SERVER_BOOKING_BIT};

/// An event, numbered 1, 2, 3… in the order the server configured them.
///
/// `event_id = 0` is never an event, so it is unrepresentable here: code
/// holding an `EventId` never has to ask whether it means "none", and
/// `Option<EventId>` (0 on the wire) is no larger than a `u32`.
///
/// # Examples
///
/// ```
/// use guichet::EventId;
///
/// assert_eq!(EventId::new(0), None);
/// let third = EventId::new(3).ok_or("event ids start at 1")?;
/// assert_eq!(third.get(), 3);
/// assert_eq!(third.to_string(), "event 3");
/// assert_eq!(size_of::<Option<EventId>>(), size_of::<u32>());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(NonZeroU32);

impl EventId {
    /// The id for `raw`, or `None` for 0, which the protocol reserves for
    /// "no event".
    ///
    /// Any other value is an id, whether or not a server has that many
    /// events: a server answers UNKNOWN_EVENT for those. `const`, so fixed
    /// ids can be checked at compile time.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::EventId;
    ///
    /// const CONCERT: Option<EventId> = EventId::new(1);
    /// assert_eq!(CONCERT.map(EventId::get), Some(1));
    /// assert!(EventId::new(0).is_none());
    /// assert!(EventId::new(u32::MAX).is_some());
    /// ```
    pub const fn new(raw: u32) -> Option<Self> {
        match NonZeroU32::new(raw) {
            Some(id) => Some(Self(id)),
            None => None,
        }
    }

    /// The wire value (`event_id`), never 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::EventId;
    ///
    /// let event = EventId::new(7).ok_or("event ids start at 1")?;
    /// assert_eq!(event.get(), 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
/// ([`ClientBookingId`]). Splitting the space by one bit is what lets both
/// coexist in one ledger without ever colliding. Displayed in hex, where
/// that bit shows.
///
/// # Examples
///
/// ```
/// use guichet::BookingId;
///
/// assert_eq!(BookingId::new(0), None);
/// let server = BookingId::server(1).ok_or("not a server id")?;
/// assert!(server.is_server_assigned());
/// assert_eq!(server.to_string(), "0x8000000000000001");
/// assert!(!BookingId::new(42).ok_or("0 is no booking")?.is_server_assigned());
/// assert_eq!(u64::from(server), 1 << 63 | 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BookingId(NonZeroU64);

impl BookingId {
    /// Any non-zero id (server-assigned or client-chosen); `None` for 0,
    /// which the protocol reserves for "no booking".
    ///
    /// This is the type a CANCEL names, since either side's ids can be
    /// cancelled; use [`ClientBookingId::new`] for an id to RESERVE with.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::BookingId;
    ///
    /// assert!(BookingId::new(0).is_none());
    /// assert!(BookingId::new(42).is_some());
    /// assert!(BookingId::new(1 << 63 | 42).is_some()); // a server's id is fine too
    /// ```
    pub const fn new(raw: u64) -> Option<Self> {
        match NonZeroU64::new(raw) {
            Some(id) => Some(Self(id)),
            None => None,
        }
    }

    /// The `n`th server-assigned id (`n >= 1`): bit 63 set over `n`.
    /// `None` if `n` is 0 or does not fit in 63 bits.
    ///
    /// The ledger numbers its own ids this way, so the `n` of an id tells
    /// how many the server had issued when it made it.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::BookingId;
    ///
    /// let first = BookingId::server(1).ok_or("not a server id")?;
    /// assert_eq!(first.get(), 0x8000_0000_0000_0001);
    /// assert!(BookingId::server(0).is_none());
    /// assert!(BookingId::server(1 << 63).is_none()); // would not fit in 63 bits
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn server(n: u64) -> Option<Self> {
        if n == 0 || n & SERVER_BOOKING_BIT != 0 {
            return None;
        }
        Self::new(n | SERVER_BOOKING_BIT)
    }

    /// The wire value (`booking_id`), never 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::BookingId;
    ///
    /// assert_eq!(BookingId::new(42).map(BookingId::get), Some(42));
    /// ```
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// Whether the server picked this id (bit 63 set).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::BookingId;
    ///
    /// assert_eq!(BookingId::server(5).map(BookingId::is_server_assigned), Some(true));
    /// assert_eq!(BookingId::new(5).map(BookingId::is_server_assigned), Some(false));
    /// ```
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
/// # Examples
///
/// ```
/// use guichet::{BookingId, ClientBookingId};
///
/// let mine = ClientBookingId::new(42).ok_or("not a client id")?;
/// assert_eq!(BookingId::from(mine), mine.booking_id());
/// assert!(ClientBookingId::new(1 << 63).is_none());
/// assert!(ClientBookingId::new(0).is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientBookingId(BookingId);

impl ClientBookingId {
    /// The id for `raw`, or `None` for 0 or an id with bit 63 set.
    ///
    /// A client wanting retries to be safe picks ids unique to itself (a
    /// random 63-bit value, say) and reuses one id for every retry of the
    /// same reservation.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ClientBookingId;
    ///
    /// assert!(ClientBookingId::new(1).is_some());
    /// assert!(ClientBookingId::new(u64::MAX >> 1).is_some()); // the largest
    /// assert!(ClientBookingId::new(1 << 63 | 1).is_none()); // the server's half
    /// assert!(ClientBookingId::new(0).is_none());
    /// ```
    pub const fn new(raw: u64) -> Option<Self> {
        if raw & SERVER_BOOKING_BIT != 0 {
            return None;
        }
        match BookingId::new(raw) {
            Some(id) => Some(Self(id)),
            None => None,
        }
    }

    /// The wire value (`booking_id` of the RESERVE).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ClientBookingId;
    ///
    /// assert_eq!(ClientBookingId::new(42).map(ClientBookingId::get), Some(42));
    /// ```
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// The same id as a plain [`BookingId`], as replies and CANCEL name it.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::{BookingId, ClientBookingId};
    ///
    /// let mine = ClientBookingId::new(42).ok_or("not a client id")?;
    /// assert_eq!(mine.booking_id(), BookingId::new(42).ok_or("0 is no booking")?);
    /// assert!(!mine.booking_id().is_server_assigned());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
/// msgsnd(2) refuses an `mtype` below 1, and 1 is the request type: a
/// reply sent with it would be received by the server as a request. By
/// convention `(pid << 32) | slot`; a plain pid below 2³² means that pid.
/// The server reads the pid only to recognise replies left for clients
/// that died, so it can purge them.
///
/// # Examples
///
/// ```
/// use guichet::ReplyTo;
///
/// assert_eq!(ReplyTo::new(1), None);
/// let tag = ReplyTo::for_slot(4242, 7).ok_or("pid must be positive")?;
/// assert_eq!(tag.pid(), 4242);
/// assert_eq!(tag.to_string(), "0x109200000007");
/// assert_eq!(ReplyTo::new(4242).map(ReplyTo::pid), Some(4242));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplyTo(i64);

impl ReplyTo {
    /// The tag for `raw`, or `None` below 2 ([`MIN_REPLY_TO`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ReplyTo;
    ///
    /// assert!(ReplyTo::new(2).is_some());
    /// assert!(ReplyTo::new(1).is_none()); // the request mtype
    /// assert!(ReplyTo::new(-5).is_none());
    /// ```
    pub const fn new(raw: i64) -> Option<Self> {
        if raw < MIN_REPLY_TO {
            return None;
        }
        Some(Self(raw))
    }

    /// `(pid << 32) | slot`, or `None` if `pid` is not positive.
    ///
    /// One process can then wait for many replies at once, one slot per
    /// call in flight, each received by its own msgrcv(2) `msgtyp`.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ReplyTo;
    ///
    /// let pid = i32::try_from(std::process::id())?;
    /// let a = ReplyTo::for_slot(pid, 1).ok_or("pid must be positive")?;
    /// let b = ReplyTo::for_slot(pid, 2).ok_or("pid must be positive")?;
    /// assert_ne!(a, b);
    /// assert_eq!((a.pid(), b.pid()), (i64::from(pid), i64::from(pid)));
    /// assert!(ReplyTo::for_slot(0, 1).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn for_slot(pid: i32, slot: u32) -> Option<Self> {
        if pid <= 0 {
            return None;
        }
        Self::new(((pid as i64) << 32) | slot as i64)
    }

    /// The wire value, which is also the reply's `mtype`.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ReplyTo;
    ///
    /// assert_eq!(ReplyTo::for_slot(1, 2).map(ReplyTo::get), Some(1 << 32 | 2));
    /// ```
    pub const fn get(self) -> i64 {
        self.0
    }

    /// The process the reply is for: the upper 32 bits, or the whole value
    /// for a plain pid below 2³².
    ///
    /// Only a convention: a tag is not checked against any process, so this
    /// is a pid only if the client followed it.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::ReplyTo;
    ///
    /// assert_eq!(ReplyTo::for_slot(4242, 9).map(ReplyTo::pid), Some(4242));
    /// assert_eq!(ReplyTo::new(4242).map(ReplyTo::pid), Some(4242));
    /// ```
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
///
/// The server never interprets it; a client uses it to tell the reply to
/// this call from a late reply to an earlier call that timed out on the
/// same [`ReplyTo`].
///
/// # Examples
///
/// ```
/// use guichet::{Reply, RequestId, Status};
///
/// let tag = RequestId(0xfeed);
/// assert_eq!(Reply::bare(Status::Ok, tag).request_id, tag);
/// assert_eq!(tag.to_string(), "65261");
/// assert_eq!(RequestId::default(), RequestId(0));
/// ```
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
