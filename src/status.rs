//! Reply status codes.

use core::fmt;

/// The status of a reply, as PROTOCOL.md numbers them. Nothing changed
/// unless the status is [`Status::Ok`].
///
/// An enum rather than a bare code so that a decoded reply can only hold a
/// status v1 defines; [`from_code`](Status::from_code) is the one door in.
/// Displayed as the protocol's upper-case name.
///
/// # Examples
///
/// ```
/// use guichet::Status;
///
/// assert_eq!(Status::from_code(1), Some(Status::SoldOut));
/// assert_eq!(Status::SoldOut.code(), 1);
/// assert_eq!(Status::SoldOut.to_string(), "SOLD_OUT");
/// assert_eq!(Status::from_code(11), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[repr(u16)]
pub enum Status {
    /// Done.
    Ok = 0,
    /// Fewer than `quantity` seats remain.
    SoldOut = 1,
    /// No event has this id.
    UnknownEvent = 2,
    /// No booking has this id.
    UnknownBooking = 3,
    /// The id names a booking of another event or quantity.
    BookingConflict = 4,
    /// The id names a booking that was cancelled.
    BookingCancelled = 5,
    /// A well-formed message breaks a field rule.
    InvalidRequest = 6,
    /// Wrong length, magic, version or op.
    BadMessage = 7,
    /// The ledger holds its configured maximum of bookings.
    LedgerFull = 8,
    /// The server is stopping and did not apply the request.
    ShuttingDown = 9,
    /// The id names a hold that expired before it was confirmed.
    HoldExpired = 10,
}

impl Status {
    /// Every status, in code order: `ALL[code]` has that code, so the array
    /// doubles as a table indexed by code (as the server's per-status
    /// counters are).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::Status;
    ///
    /// for (code, status) in Status::ALL.into_iter().enumerate() {
    ///     assert_eq!(usize::from(status.code()), code);
    /// }
    /// assert_eq!(Status::ALL.len(), 11);
    /// ```
    pub const ALL: [Status; 11] = [
        Status::Ok,
        Status::SoldOut,
        Status::UnknownEvent,
        Status::UnknownBooking,
        Status::BookingConflict,
        Status::BookingCancelled,
        Status::InvalidRequest,
        Status::BadMessage,
        Status::LedgerFull,
        Status::ShuttingDown,
        Status::HoldExpired,
    ];

    /// The wire code (`status` of a reply body).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::Status;
    ///
    /// assert_eq!(Status::Ok.code(), 0);
    /// assert_eq!(Status::ShuttingDown.code(), 9);
    /// ```
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The status for a wire code, or `None` for a code v1 does not define.
    ///
    /// A reply decoder must not guess at unknown codes: [`decode_reply`]
    /// turns `None` here into [`Violation::Status`].
    ///
    /// [`decode_reply`]: crate::decode_reply
    /// [`Violation::Status`]: crate::Violation::Status
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::Status;
    ///
    /// assert_eq!(Status::from_code(8), Some(Status::LedgerFull));
    /// assert_eq!(Status::from_code(11), None);
    /// assert_eq!(Status::from_code(u16::MAX), None);
    /// ```
    pub const fn from_code(code: u16) -> Option<Self> {
        if (code as usize) < Self::ALL.len() {
            Some(Self::ALL[code as usize])
        } else {
            None
        }
    }

    /// The protocol's upper-case name, e.g. `SOLD_OUT`: PROTOCOL.md's
    /// spelling (and `include/guichet.h`'s, after `GUICHET_STATUS_`), so
    /// logs and docs agree. `const` and `'static`, unlike `to_string`.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::Status;
    ///
    /// assert_eq!(Status::BookingCancelled.name(), "BOOKING_CANCELLED");
    /// assert_eq!(Status::Ok.name(), Status::Ok.to_string());
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::SoldOut => "SOLD_OUT",
            Status::UnknownEvent => "UNKNOWN_EVENT",
            Status::UnknownBooking => "UNKNOWN_BOOKING",
            Status::BookingConflict => "BOOKING_CONFLICT",
            Status::BookingCancelled => "BOOKING_CANCELLED",
            Status::InvalidRequest => "INVALID_REQUEST",
            Status::BadMessage => "BAD_MESSAGE",
            Status::LedgerFull => "LEDGER_FULL",
            Status::ShuttingDown => "SHUTTING_DOWN",
            Status::HoldExpired => "HOLD_EXPIRED",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
