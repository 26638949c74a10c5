use core::num::NonZeroU32;

use zerocopy::{FromBytes, IntoBytes};

use crate::ids::{BookingId, ClientBookingId, EventId, ReplyTo, RequestId};
use crate::wire::{RequestBody, ANSWERABLE_PREFIX, BODY_SIZE, MAGIC, VERSION};

use super::error::DecodeError;
use super::op::Op;
use super::read_at;
use super::violation::{Field, Violation};

/// What a request asks for. Only values the protocol allows are representable.
///
/// Each variant holds exactly the fields its op uses, as checked types: a
/// QUERY cannot carry a quantity, a RESERVE cannot ask for 0 seats or name
/// a server-assigned id. The ledger takes these directly
/// ([`Ledger::apply`](crate::Ledger::apply)).
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use guichet::wire::Op;
/// use guichet::{ClientBookingId, EventId, Operation};
///
/// let retry_safe = Operation::Reserve {
///     event: EventId::new(1).ok_or("no event 0")?,
///     quantity: NonZeroU32::new(2).ok_or("no seats")?,
///     booking: ClientBookingId::new(42),
/// };
/// assert_eq!(retry_safe.op(), Op::Reserve);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
// The derive upholds every invariant: the fields are checked types whose own
// `Arbitrary` impls only make valid values (`NonZeroU32`'s never yields 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Operation {
    /// Read `event`'s remaining seats and capacity.
    Query {
        /// The event.
        event: EventId,
    },
    /// Book `quantity` seats of `event`, all or nothing.
    Reserve {
        /// The event.
        event: EventId,
        /// Seats, at least 1.
        quantity: NonZeroU32,
        /// `None`: the server picks an id. `Some`: a client-chosen id
        /// that makes the request idempotent.
        booking: Option<ClientBookingId>,
    },
    /// Return every seat of `booking` to its event.
    Cancel {
        /// The booking, server-assigned or client-chosen.
        booking: BookingId,
    },
    /// Hold `quantity` seats of `event`, all or nothing, until confirmed,
    /// cancelled or expired; ids and idempotency as [`Operation::Reserve`].
    Hold {
        /// The event.
        event: EventId,
        /// Seats, at least 1.
        quantity: NonZeroU32,
        /// `None`: the server picks an id. `Some`: a client-chosen id
        /// that makes the request idempotent.
        booking: Option<ClientBookingId>,
    },
    /// Make the held `booking` an ordinary booking, for good.
    Confirm {
        /// The booking, server-assigned or client-chosen.
        booking: BookingId,
    },
}

impl Operation {
    /// The operation code.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::wire::Op;
    /// use guichet::{BookingId, Operation};
    ///
    /// let cancel = Operation::Cancel { booking: BookingId::new(7).ok_or("0 is no booking")? };
    /// assert_eq!(cancel.op(), Op::Cancel);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn op(&self) -> Op {
        match self {
            Operation::Query { .. } => Op::Query,
            Operation::Reserve { .. } => Op::Reserve,
            Operation::Cancel { .. } => Op::Cancel,
            Operation::Hold { .. } => Op::Hold,
            Operation::Confirm { .. } => Op::Confirm,
        }
    }
}

/// A decoded request: where to reply, the tag to echo, and the operation.
///
/// # Examples
///
/// ```
/// use guichet::{decode_request, EventId, Operation, ReplyTo, Request, RequestId};
///
/// let request = Request {
///     reply_to: ReplyTo::new(2).unwrap(),
///     request_id: RequestId(7),
///     operation: Operation::Query { event: EventId::new(1).unwrap() },
/// };
/// let body = request.encode();
/// assert_eq!(body.len(), 40);
/// assert_eq!(decode_request(&body), Ok(request));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Request {
    /// `mtype` of the reply.
    pub reply_to: ReplyTo,
    /// Opaque tag echoed in the reply.
    pub request_id: RequestId,
    /// What is asked.
    pub operation: Operation,
}

impl Request {
    /// The raw wire body, with the fields the operation does not use set to
    /// 0, as PROTOCOL.md requires.
    ///
    /// For a test or a binding that needs to break a rule on purpose: edit
    /// the raw body, then send its bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::{wire::Op, EventId, Operation, ReplyTo, Request, RequestId};
    ///
    /// let request = Request {
    ///     reply_to: ReplyTo::new(3).ok_or("reply_to below 2")?,
    ///     request_id: RequestId(11),
    ///     operation: Operation::Query { event: EventId::new(2).ok_or("no event 0")? },
    /// };
    /// let raw = request.to_wire();
    /// assert_eq!((raw.op, raw.reply_to, raw.request_id), (Op::Query.code(), 3, 11));
    /// assert_eq!((raw.booking_id, raw.event_id, raw.quantity), (0, 2, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_wire(&self) -> RequestBody {
        let (booking_id, event_id, quantity) = match self.operation {
            Operation::Query { event } => (0, event.get(), 0),
            Operation::Reserve {
                event,
                quantity,
                booking,
            }
            | Operation::Hold {
                event,
                quantity,
                booking,
            } => (
                booking.map_or(0, ClientBookingId::get),
                event.get(),
                quantity.get(),
            ),
            Operation::Cancel { booking } | Operation::Confirm { booking } => (booking.get(), 0, 0),
        };
        RequestBody {
            magic: MAGIC,
            version: VERSION,
            op: self.operation.op().code(),
            reply_to: self.reply_to.get(),
            request_id: self.request_id.0,
            booking_id,
            event_id,
            quantity,
        }
    }

    /// The 40-byte body to pass to `msgsnd(2)` after `mtype` 1.
    ///
    /// Total and canonical: [`decode_request`] gives the same request back.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::{decode_request, BookingId, Operation, ReplyTo, Request, RequestId};
    ///
    /// let booking = BookingId::server(1).ok_or("not a server id")?;
    /// let request = Request {
    ///     reply_to: ReplyTo::for_slot(1234, 1).ok_or("pid must be positive")?,
    ///     request_id: RequestId(5),
    ///     operation: Operation::Cancel { booking },
    /// };
    /// assert_eq!(decode_request(&request.encode())?, request);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self) -> [u8; BODY_SIZE] {
        let mut body = [0u8; BODY_SIZE];
        // Sizes are equal by the compile-time asserts in `wire`.
        body.copy_from_slice(self.to_wire().as_bytes());
        body
    }
}

/// Decodes a request body: the bytes after `mtype`, as `msgrcv(2)` returned them.
///
/// Checks, in order: exact length, magic, version, op, `reply_to >= 2`, then
/// the per-op field rules of PROTOCOL.md (required fields non-zero, unused
/// fields zero, bit 63 clear on a client-chosen booking id).
///
/// Give it the whole body received: a server receives with `MSG_NOERROR`
/// into a buffer larger than 40 bytes, so an over-long message arrives as
/// over-long and is refused, rather than truncated into a valid one.
///
/// # Examples
///
/// ```
/// use guichet::{decode_request, Status};
///
/// let mut body = [0u8; 40];
/// body[0..4].copy_from_slice(&0x4743_4854u32.to_ne_bytes()); // magic
/// body[4..6].copy_from_slice(&1u16.to_ne_bytes());           // version
/// body[6..8].copy_from_slice(&9u16.to_ne_bytes());           // op 9: unknown
/// body[8..16].copy_from_slice(&5i64.to_ne_bytes());          // reply_to
/// let err = decode_request(&body).unwrap_err();
/// assert_eq!(err.answer().unwrap().status, Status::BadMessage);
/// ```
///
/// # Errors
///
/// A [`DecodeError`] naming the first rule broken ([`DecodeError::violation`];
/// any [`Violation`] but [`Violation::Status`], which only replies have)
/// and, through [`DecodeError::answer`], whether the server may answer it.
pub fn decode_request(body: &[u8]) -> Result<Request, DecodeError> {
    let Ok(raw) = RequestBody::read_from_bytes(body) else {
        return Err(DecodeError::new(
            Violation::Length { len: body.len() },
            answerable_tag(body),
        ));
    };
    if raw.magic != MAGIC {
        return Err(DecodeError::new(
            Violation::Magic { found: raw.magic },
            None,
        ));
    }
    let tag = ReplyTo::new(raw.reply_to).map(|reply_to| (reply_to, RequestId(raw.request_id)));
    if raw.version != VERSION {
        return Err(DecodeError::new(
            Violation::Version { found: raw.version },
            tag,
        ));
    }
    let Some(op) = Op::from_code(raw.op) else {
        return Err(DecodeError::new(Violation::Op { found: raw.op }, tag));
    };
    let Some((reply_to, request_id)) = tag else {
        return Err(DecodeError::new(
            Violation::ReplyTo {
                found: raw.reply_to,
            },
            None,
        ));
    };
    let operation = decode_operation(op, &raw).map_err(|v| DecodeError::new(v, tag))?;
    Ok(Request {
        reply_to,
        request_id,
        operation,
    })
}

/// The reply tag of a body of the wrong length, if the spec lets us answer it.
fn answerable_tag(body: &[u8]) -> Option<(ReplyTo, RequestId)> {
    if body.len() < ANSWERABLE_PREFIX || read_at::<u32>(body, 0)? != MAGIC {
        return None;
    }
    let reply_to = ReplyTo::new(read_at::<i64>(body, 8)?)?;
    Some((reply_to, RequestId(read_at::<u64>(body, 16)?)))
}

fn decode_operation(op: Op, raw: &RequestBody) -> Result<Operation, Violation> {
    let must_be_zero = |field: Field, found: u64| {
        if found == 0 {
            Ok(())
        } else {
            Err(Violation::NotZero { op, field, found })
        }
    };
    let event = || {
        EventId::new(raw.event_id).ok_or(Violation::Missing {
            op,
            field: Field::EventId,
        })
    };
    match op {
        // Each arm checks the fields in wire order (booking_id, event_id,
        // quantity), as `Violation` documents.
        Op::Query => {
            must_be_zero(Field::BookingId, raw.booking_id)?;
            let event = event()?;
            must_be_zero(Field::Quantity, raw.quantity.into())?;
            Ok(Operation::Query { event })
        }
        Op::Reserve | Op::Hold => {
            let booking = match raw.booking_id {
                0 => None,
                id => Some(
                    ClientBookingId::new(id).ok_or(Violation::ServerBookingBit { found: id })?,
                ),
            };
            let event = event()?;
            let quantity = NonZeroU32::new(raw.quantity).ok_or(Violation::Missing {
                op,
                field: Field::Quantity,
            })?;
            Ok(if op == Op::Hold {
                Operation::Hold {
                    event,
                    quantity,
                    booking,
                }
            } else {
                Operation::Reserve {
                    event,
                    quantity,
                    booking,
                }
            })
        }
        Op::Cancel | Op::Confirm => {
            let booking = BookingId::new(raw.booking_id).ok_or(Violation::Missing {
                op,
                field: Field::BookingId,
            })?;
            must_be_zero(Field::EventId, raw.event_id.into())?;
            must_be_zero(Field::Quantity, raw.quantity.into())?;
            Ok(if op == Op::Confirm {
                Operation::Confirm { booking }
            } else {
                Operation::Cancel { booking }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Op;

    #[test]
    fn ops_show_as_the_protocol_names_them() {
        let shown: Vec<String> = [Op::Query, Op::Reserve, Op::Cancel]
            .iter()
            .map(Op::to_string)
            .collect();
        assert_eq!(shown, ["QUERY", "RESERVE", "CANCEL"]);
    }
}
