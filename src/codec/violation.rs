//! The rules a body can break, each named with the field that broke it.

use core::fmt;

use crate::status::Status;
use crate::wire::{BODY_SIZE, MAGIC, VERSION};

use super::op::Op;

/// A request or reply field named in a [`Violation`].
///
/// Displayed with its wire name, as PROTOCOL.md spells it.
///
/// # Examples
///
/// ```
/// use guichet::wire::{Field, Op};
/// use guichet::{decode_request, EventId, Operation, ReplyTo, Request, RequestId, Violation};
/// use zerocopy::IntoBytes;
///
/// let query = Request {
///     reply_to: ReplyTo::new(2).ok_or("reply_to below 2")?,
///     request_id: RequestId(1),
///     operation: Operation::Query { event: EventId::new(1).ok_or("no event 0")? },
/// };
/// let mut raw = query.to_wire();
/// raw.quantity = 3; // a QUERY has no quantity
/// let err = decode_request(raw.as_bytes()).unwrap_err();
/// let expected = Violation::NotZero { op: Op::Query, field: Field::Quantity, found: 3 };
/// assert_eq!(*err.violation(), expected);
/// assert_eq!(Field::Quantity.to_string(), "quantity");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `booking_id`.
    BookingId,
    /// `event_id`.
    EventId,
    /// `quantity`.
    Quantity,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::BookingId => "booking_id",
            Field::EventId => "event_id",
            Field::Quantity => "quantity",
        })
    }
}

/// The one rule of PROTOCOL.md a message broke, with the value it broke it with.
///
/// When a message breaks several, the decoder reports the first in the
/// order the spec lists them: length, magic, version, op (or status),
/// `reply_to`, then the fields in wire order. One fixed order makes the
/// answer to a given message deterministic, whichever implementation
/// decodes it.
///
/// # Examples
///
/// ```
/// use guichet::{decode_reply, Status, Violation};
///
/// // Wrong length is checked first, whatever else is wrong.
/// let err = decode_reply(&[0xff; 12]).unwrap_err();
/// assert_eq!(err, Violation::Length { len: 12 });
/// assert_eq!(err.to_string(), "body is 12 bytes; wire v1 bodies are exactly 40");
/// assert_eq!(err.status(), Status::BadMessage);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Violation {
    /// The body is not exactly 40 bytes.
    #[error("body is {len} bytes; wire v1 bodies are exactly {BODY_SIZE}")]
    Length {
        /// Bytes received (after `MSG_NOERROR` truncation).
        len: usize,
    },
    /// `magic` is not [`MAGIC`].
    #[error("magic is {found:#010x}; wire v1 uses {MAGIC:#010x}")]
    Magic {
        /// The magic received.
        found: u32,
    },
    /// `version` is not [`VERSION`].
    #[error("version is {found}; this side speaks version {VERSION}")]
    Version {
        /// The version received.
        found: u16,
    },
    /// `op` is not 1, 2 or 3.
    #[error("op is {found}; v1 defines 1 (QUERY), 2 (RESERVE) and 3 (CANCEL)")]
    Op {
        /// The op received.
        found: u16,
    },
    /// A reply's `status` is not one v1 defines.
    #[error("status is {found}; v1 defines 0 to 9")]
    Status {
        /// The status received.
        found: u16,
    },
    /// `reply_to` is below 2.
    #[error("reply_to is {found}; it must be at least 2")]
    ReplyTo {
        /// The `reply_to` received.
        found: i64,
    },
    /// A field the operation requires is 0.
    #[error("{op} needs {field} set, found 0")]
    Missing {
        /// The operation.
        op: Op,
        /// The field that is 0.
        field: Field,
    },
    /// A field the operation does not use is not 0.
    #[error("{op} needs {field} 0, found {found}")]
    NotZero {
        /// The operation.
        op: Op,
        /// The field that is set.
        field: Field,
        /// Its value.
        found: u64,
    },
    /// A client-chosen booking id has bit 63 set, which marks server ids.
    #[error(
        "client-chosen booking_id {found:#x} has bit 63 set, which only server-assigned ids have"
    )]
    ServerBookingBit {
        /// The booking id received.
        found: u64,
    },
}

impl Violation {
    /// The status a server answers this violation with, if it can answer:
    /// BAD_MESSAGE for framing (length, magic, version, op, status),
    /// INVALID_REQUEST for a field rule.
    ///
    /// Whether it can answer is not this function's to say: a wrong magic
    /// or a `reply_to` below 2 leaves no trustworthy address, so
    /// [`DecodeError::answer`](super::DecodeError::answer) is `None` for those whatever this returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::{Status, Violation};
    ///
    /// assert_eq!(Violation::Version { found: 2 }.status(), Status::BadMessage);
    /// assert_eq!(Violation::ServerBookingBit { found: 1 << 63 }.status(), Status::InvalidRequest);
    /// ```
    pub const fn status(&self) -> Status {
        match self {
            Violation::Length { .. }
            | Violation::Magic { .. }
            | Violation::Version { .. }
            | Violation::Op { .. }
            | Violation::Status { .. } => Status::BadMessage,
            Violation::ReplyTo { .. }
            | Violation::Missing { .. }
            | Violation::NotZero { .. }
            | Violation::ServerBookingBit { .. } => Status::InvalidRequest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Field, Op, Violation};

    /// Server logs and client errors name fields as PROTOCOL.md does; the
    /// doc example covers one field, and doc tests are not what
    /// `cargo mutants` runs here.
    #[test]
    fn fields_show_as_the_protocol_names_them() {
        let shown: Vec<String> = [Field::BookingId, Field::EventId, Field::Quantity]
            .iter()
            .map(Field::to_string)
            .collect();
        assert_eq!(shown, ["booking_id", "event_id", "quantity"]);
        let missing = Violation::Missing {
            op: Op::Cancel,
            field: Field::BookingId,
        };
        assert_eq!(missing.to_string(), "CANCEL needs booking_id set, found 0");
    }
}
