//! Domain types for requests and replies, and the codec between them and
//! wire v1 bodies.
//!
//! Decoding takes the body exactly as `msgrcv(2)` returns it (the bytes
//! after `mtype`, of whatever length arrived) and yields either a checked
//! value or a typed error naming the rule that broke. Encoding is total and
//! canonical: whatever decodes re-encodes to the same bytes.
//!
//! # Examples
//!
//! A RESERVE as a client encodes it and a server decodes it, and the
//! reply back:
//!
//! ```
//! use std::num::NonZeroU32;
//! use guichet::{decode_reply, decode_request, EventId, Ledger, Operation};
//! use guichet::{ReplyTo, Request, RequestId, Status};
//!
//! let request = Request {
//!     reply_to: ReplyTo::new(2).ok_or("reply_to below 2")?,
//!     request_id: RequestId(1),
//!     operation: Operation::Reserve {
//!         event: EventId::new(1).ok_or("no event 0")?,
//!         quantity: NonZeroU32::new(2).ok_or("no seats")?,
//!         booking: None,
//!     },
//! };
//! let received = decode_request(&request.encode())?;
//! assert_eq!(received, request);
//!
//! let mut ledger = Ledger::new([("Concert", 10)], 100)?;
//! let reply = ledger.apply(&received.operation).reply(received.request_id);
//! let answered = decode_reply(&reply.encode())?;
//! assert_eq!((answered.status, answered.remaining), (Status::Ok, 8));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod op;
mod reply;
mod request;
mod violation;

pub use error::{Answer, DecodeError};
pub use op::Op;
pub use reply::{decode_reply, Reply};
pub use request::{decode_request, Operation, Request};
pub use violation::{Field, Violation};

use zerocopy::FromBytes;

/// Reads a native-endian integer at `offset`, if the body reaches that far.
/// Used on bodies of the wrong length, where only a prefix can be trusted.
fn read_at<T: FromBytes>(body: &[u8], offset: usize) -> Option<T> {
    let tail = body.get(offset..)?;
    T::read_from_prefix(tail).ok().map(|(value, _)| value)
}
