//! Domain types for requests and replies, and the codec between them and
//! wire v1 bodies.
//!
//! Decoding takes the body exactly as `msgrcv(2)` returns it (the bytes
//! after `mtype`, of whatever length arrived) and yields either a checked
//! value or a typed error naming the rule that broke. Encoding is total and
//! canonical: whatever decodes re-encodes to the same bytes.

mod error;
mod reply;
mod request;

pub use error::{Answer, DecodeError, Field, Violation};
pub use reply::{decode_reply, Reply};
pub use request::{decode_request, Op, Operation, Request};

use zerocopy::FromBytes;

/// Reads a native-endian integer at `offset`, if the body reaches that far.
/// Used on bodies of the wrong length, where only a prefix can be trusted.
fn read_at<T: FromBytes>(body: &[u8], offset: usize) -> Option<T> {
    let tail = body.get(offset..)?;
    T::read_from_prefix(tail).ok().map(|(value, _)| value)
}
