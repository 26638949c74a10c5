//! A request that does not decode: which rule it broke, and whether and
//! how the server may still answer it.

use crate::ids::{ReplyTo, RequestId};
use crate::status::Status;

use super::reply::Reply;
use super::violation::Violation;

/// Where and how to answer a malformed request.
///
/// Only a [`DecodeError`] makes one, and only when PROTOCOL.md lets the
/// server answer: see [`DecodeError::answer`].
///
/// # Examples
///
/// ```
/// use guichet::{decode_request, EventId, Operation, ReplyTo, Request, RequestId, Status};
/// use zerocopy::IntoBytes;
///
/// let query = Request {
///     reply_to: ReplyTo::new(9).ok_or("reply_to below 2")?,
///     request_id: RequestId(4),
///     operation: Operation::Query { event: EventId::new(1).ok_or("no event 0")? },
/// };
/// let mut raw = query.to_wire();
/// raw.version = 2; // from a newer client
/// let answer = decode_request(raw.as_bytes()).unwrap_err().answer().ok_or("dropped")?;
/// assert_eq!(answer.reply_to, query.reply_to);
/// assert_eq!((answer.status, answer.request_id), (Status::BadMessage, RequestId(4)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Answer {
    /// The `mtype` to reply with.
    pub reply_to: ReplyTo,
    /// The tag to echo.
    pub request_id: RequestId,
    /// BAD_MESSAGE or INVALID_REQUEST.
    pub status: Status,
}

impl Answer {
    /// The reply a server sends: the status and the tag, every other field 0.
    ///
    /// Nothing else of a malformed message is trusted enough to echo.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::wire::Answer;
    /// use guichet::{ReplyTo, RequestId, Status};
    ///
    /// let answer = Answer {
    ///     reply_to: ReplyTo::new(2).ok_or("reply_to below 2")?,
    ///     request_id: RequestId(4),
    ///     status: Status::InvalidRequest,
    /// };
    /// let reply = answer.reply();
    /// assert_eq!((reply.status, reply.request_id), (Status::InvalidRequest, RequestId(4)));
    /// assert_eq!((reply.booking, reply.event, reply.capacity), (None, None, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn reply(&self) -> Reply {
        Reply::bare(self.status, self.request_id)
    }
}

/// Why a request body did not decode, and whether it can be answered.
///
/// Per PROTOCOL.md's *Malformed messages*, a server answers a malformed
/// message only when its body reaches through `request_id`, its magic is
/// right and its `reply_to` is at least 2; everything else is dropped (and
/// counted). [`DecodeError::answer`] tells which.
///
/// # Examples
///
/// ```
/// use guichet::{decode_request, Status};
///
/// let err = decode_request(&[0u8; 3]).unwrap_err();
/// assert!(err.answer().is_none()); // too short to say where to reply
/// assert_eq!(err.violation().status(), Status::BadMessage);
/// assert_eq!(err.to_string(), "body is 3 bytes; wire v1 bodies are exactly 40 (dropped)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{violation} ({})", match .answer { Some(a) => a.status.name(), None => "dropped" })]
pub struct DecodeError {
    violation: Violation,
    answer: Option<Answer>,
}

impl DecodeError {
    pub(super) fn new(violation: Violation, tag: Option<(ReplyTo, RequestId)>) -> Self {
        let answer = tag.map(|(reply_to, request_id)| Answer {
            reply_to,
            request_id,
            status: violation.status(),
        });
        Self { violation, answer }
    }

    /// The rule that broke.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::{decode_request, Violation};
    ///
    /// let err = decode_request(&[0u8; 40]).unwrap_err();
    /// assert_eq!(*err.violation(), Violation::Magic { found: 0 });
    /// ```
    pub const fn violation(&self) -> &Violation {
        &self.violation
    }

    /// Where to send BAD_MESSAGE or INVALID_REQUEST, or `None` if the
    /// message must be dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::{decode_request, EventId, Operation, ReplyTo, Request, RequestId, Status};
    /// use zerocopy::IntoBytes;
    ///
    /// let query = Request {
    ///     reply_to: ReplyTo::new(2).ok_or("reply_to below 2")?,
    ///     request_id: RequestId(1),
    ///     operation: Operation::Query { event: EventId::new(1).ok_or("no event 0")? },
    /// };
    /// let mut raw = query.to_wire();
    /// raw.event_id = 0; // a QUERY needs an event: answerable
    /// let err = decode_request(raw.as_bytes()).unwrap_err();
    /// assert_eq!(err.answer().map(|a| a.status), Some(Status::InvalidRequest));
    /// raw.reply_to = 1; // and now nowhere to answer it
    /// assert!(decode_request(raw.as_bytes()).unwrap_err().answer().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn answer(&self) -> Option<Answer> {
        self.answer
    }
}
