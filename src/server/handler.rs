//! What the server does with one message body, without any queue: decode,
//! apply, and say what to send. The dispatch modes, the fuzz target
//! `handle` and the tests all go through [`handle_message`].

use crate::codec::{decode_request, DecodeError, Operation, Reply};
use crate::ids::ReplyTo;
use crate::journal::Lsn;
use crate::ledger::Outcome;
use crate::status::Status;

/// What applying one operation gave: its outcome, and with a journal the
/// log position its reply must wait for (`None`: send it at once).
///
/// A bare [`Outcome`] converts into one that waits for nothing, so a
/// caller without a journal returns `ledger.apply(op)` as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The ledger's outcome.
    pub outcome: Outcome,
    /// The change that must be durable before the reply is sent: the
    /// request's own, or the last one appended when it read the ledger.
    pub wait_for: Option<Lsn>,
}

impl From<Outcome> for Applied {
    fn from(outcome: Outcome) -> Self {
        Self {
            outcome,
            wait_for: None,
        }
    }
}

/// What to do after handling one message.
///
/// A value rather than an action, so that the queue work (and its
/// failures) stays with the caller and this part can be tested and fuzzed
/// without one.
///
/// # Examples
///
/// ```
/// use guichet::server::{handle_message, Handled};
/// use guichet::{EventId, Ledger, Operation, ReplyTo, Request, RequestId, Status};
///
/// let mut ledger = Ledger::new([("Concert", 10)], 100)?;
/// let request = Request {
///     reply_to: ReplyTo::new(7).ok_or("reply_to below 2")?,
///     request_id: RequestId(1),
///     operation: Operation::Query { event: EventId::new(1).ok_or("no event 0")? },
/// };
/// let handled = handle_message(&request.encode(), false, |op| Ok::<_, ()>(ledger.apply(op)));
/// let Ok(Handled::Reply { to, reply, outcome, wait_for }) = handled else {
///     return Err("no reply".into());
/// };
/// assert_eq!((to, reply.status, reply.remaining), (request.reply_to, Status::Ok, 10));
/// assert!(outcome.is_some());
/// assert_eq!(wait_for, None); // no journal: nothing to wait for
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Send `reply` with `mtype = to`.
    Reply {
        /// The request's `reply_to`.
        to: ReplyTo,
        /// The reply.
        reply: Reply,
        /// The ledger's outcome, when the request reached the ledger.
        outcome: Option<Outcome>,
        /// The log position the reply must wait for before it is sent:
        /// `None` to send it at once (see [`Applied::wait_for`]).
        wait_for: Option<Lsn>,
    },
    /// Send nothing: the message is malformed past answering (PROTOCOL.md,
    /// *Malformed messages*); count it.
    Drop(DecodeError),
}

impl Handled {
    /// The status of the reply, or `None` for a dropped message.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::server::handle_message;
    /// use guichet::{EventId, Ledger, Operation, ReplyTo, Request, RequestId, Status};
    ///
    /// let mut ledger = Ledger::new([("Concert", 10)], 100)?;
    /// let mut apply = |op: &_| Ok::<_, ()>(ledger.apply(op));
    /// // Zero magic: nothing says where to answer.
    /// let dropped = handle_message(&[0u8; 40], false, &mut apply);
    /// assert_eq!(dropped.map(|h| h.status()), Ok(None));
    ///
    /// let query = Request {
    ///     reply_to: ReplyTo::new(2).ok_or("reply_to below 2")?,
    ///     request_id: RequestId(1),
    ///     operation: Operation::Query { event: EventId::new(1).ok_or("no event 0")? },
    /// };
    /// let stopping = handle_message(&query.encode(), true, &mut apply);
    /// assert_eq!(stopping.map(|h| h.status()), Ok(Some(Status::ShuttingDown)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(any(test, feature = "testkit"))]
    pub fn status(&self) -> Option<Status> {
        match self {
            Handled::Reply { reply, .. } => Some(reply.status),
            Handled::Drop(_) => None,
        }
    }
}

/// Handles one request body as `msgrcv(2)` returned it.
///
/// Decodes `body`; a malformed message becomes BAD_MESSAGE or
/// INVALID_REQUEST when it is answerable and [`Handled::Drop`] when it is
/// not. A well-formed request is answered SHUTTING_DOWN without touching the
/// ledger when `shutting_down` is set, and otherwise passed to `apply`, which
/// is where the caller takes its lock: decoding and encoding stay outside it.
/// `apply` returns an [`Outcome`], or an [`Applied`] that also says which
/// log position the reply must wait for: the result carries everything
/// the reply needs.
///
/// `body` is the whole body received, of any length: the server receives
/// with `MSG_NOERROR` into a buffer larger than 40 bytes (msgrcv(2)), so an
/// over-long message reaches here over-long and is refused.
///
/// # Examples
///
/// ```
/// use guichet::server::{handle_message, Handled};
/// use guichet::{Ledger, Operation, ReplyTo, Request, RequestId, EventId, Status};
///
/// let mut ledger = Ledger::new([("Concert", 10)], 100)?;
/// let request = Request {
///     reply_to: ReplyTo::new(7).unwrap(),
///     request_id: RequestId(1),
///     operation: Operation::Query { event: EventId::new(1).unwrap() },
/// };
/// let handled = handle_message(&request.encode(), false, |op| Ok::<_, ()>(ledger.apply(op)));
/// assert_eq!(handled.unwrap().status(), Some(Status::Ok));
/// assert!(matches!(
///     handle_message(&[1, 2, 3], false, |op| Ok::<_, ()>(ledger.apply(op))),
///     Ok(Handled::Drop(_))
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// Whatever `apply` returns (the server's own failures, such as a
/// poisoned ledger lock); input never makes this fail.
pub fn handle_message<A: Into<Applied>, E>(
    body: &[u8],
    shutting_down: bool,
    apply: impl FnOnce(&Operation) -> Result<A, E>,
) -> Result<Handled, E> {
    let request = match decode_request(body) {
        Ok(request) => request,
        Err(error) => {
            return Ok(match error.answer() {
                Some(answer) => Handled::Reply {
                    to: answer.reply_to,
                    reply: answer.reply(),
                    outcome: None,
                    wait_for: None,
                },
                None => Handled::Drop(error),
            })
        }
    };
    if shutting_down {
        return Ok(Handled::Reply {
            to: request.reply_to,
            reply: Reply::bare(Status::ShuttingDown, request.request_id),
            outcome: None,
            wait_for: None,
        });
    }
    let Applied { outcome, wait_for } = apply(&request.operation)?.into();
    Ok(Handled::Reply {
        to: request.reply_to,
        reply: outcome.reply(request.request_id),
        outcome: Some(outcome),
        wait_for,
    })
}
