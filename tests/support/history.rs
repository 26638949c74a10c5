//! Recorded histories of concurrent clients, for the linearizability checker
//! in `linearizability.rs`.
//!
//! Each client thread keeps its own [`ThreadLog`]: for every call, the time
//! just before the request was sent (`invoke_ns`), the operation, and either
//! the time just after the reply arrived with the reply itself, or
//! [`Return::Pending`] when no reply came (the call timed out). Times are
//! nanoseconds on one monotonic clock ([`Clock`], `std::time::Instant`)
//! shared by every thread, so an operation that returned before another was
//! invoked really did finish first. The logs are merged into a [`History`]
//! once the threads are done; recording takes no lock, so it adds no
//! synchronisation between the clients that could hide a race.

use std::time::Instant;

use std::num::NonZeroU32;

use guichet::{Client, ClientError, EventId, Operation, Reply, Status};

/// One monotonic clock for every thread of a recording.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// Nanoseconds since [`Clock::start`].
    pub fn now_ns(&self) -> u64 {
        // u64 nanoseconds last 584 years.
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Return {
    /// The reply arrived; `at_ns` was read just after it did.
    Replied {
        /// When, on the recording's [`Clock`].
        at_ns: u64,
        /// The reply, as received.
        reply: Reply,
    },
    /// No reply: the request may take effect at any moment after its
    /// invocation, or never (it may still be queued, or was never sent).
    Pending,
}

/// One call as a client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    /// The client thread that made it (calls of one thread never overlap).
    pub thread: usize,
    /// Read just before the request was sent.
    pub invoke_ns: u64,
    /// What was asked.
    pub operation: Operation,
    /// What came back.
    pub ret: Return,
}

impl Op {
    /// When the reply arrived, or `None` for a pending call.
    pub fn return_ns(&self) -> Option<u64> {
        match self.ret {
            Return::Replied { at_ns, .. } => Some(at_ns),
            Return::Pending => None,
        }
    }

    /// The reply, or `None` for a pending call.
    pub fn reply(&self) -> Option<&Reply> {
        match &self.ret {
            Return::Replied { reply, .. } => Some(reply),
            Return::Pending => None,
        }
    }
}

/// What a classic client asked (CLASSIC.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassicCall {
    /// mtype 1: every event's remaining seats, in one snapshot.
    List,
    /// mtype 2 with a positive `nb_places`: a RESERVE of `event` with a
    /// server-assigned id (`id_spec` is `event - 1`).
    Reserve {
        /// The event (`id_spec + 1`).
        event: EventId,
        /// Seats (`nb_places`).
        quantity: NonZeroU32,
    },
}

/// What a classic reply said, read off its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClassicSeen {
    /// A listing: each event's remaining seats, event 1 first.
    Listing(Vec<u32>),
    /// "OK ! N places réservées pour …".
    Booked {
        /// N.
        seats: u32,
    },
    /// "ECHEC : Pas assez de places (Reste: N)."
    SoldOut {
        /// N.
        remaining: u32,
    },
    /// "ECHEC : ID Invalide."
    InvalidId,
    /// "ECHEC : Serveur indisponible." (the ledger is full).
    Unavailable,
}

impl ClassicSeen {
    /// Whether a reservation's text says what the wire v1 `reply` would.
    /// A text carries no booking id: a booking's id is not compared.
    pub fn matches(&self, reply: &Reply) -> bool {
        match *self {
            ClassicSeen::Listing(_) => false,
            ClassicSeen::Booked { seats } => reply.status == Status::Ok && reply.quantity == seats,
            ClassicSeen::SoldOut { remaining } => {
                reply.status == Status::SoldOut && reply.remaining == remaining
            }
            ClassicSeen::InvalidId => reply.status == Status::UnknownEvent,
            ClassicSeen::Unavailable => reply.status == Status::LedgerFull,
        }
    }
}

/// One call of a classic client, as it saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassicOp {
    /// The client thread (calls of one thread never overlap).
    pub thread: usize,
    /// Read just before the request was sent.
    pub invoke_ns: u64,
    /// What was asked.
    pub call: ClassicCall,
    /// When the reply arrived and what it said; `None` if none came.
    pub ret: Option<(u64, ClassicSeen)>,
}

/// Every call made against one server since it started, in no particular
/// order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// The calls.
    pub ops: Vec<Op>,
    /// The classic protocol's calls, checked with the others.
    pub classic: Vec<ClassicOp>,
}

impl History {
    /// A history of these calls.
    pub fn from_ops(ops: Vec<Op>) -> Self {
        Self {
            ops,
            classic: Vec::new(),
        }
    }

    /// The logs of every thread, merged.
    pub fn merge(logs: impl IntoIterator<Item = ThreadLog>) -> Self {
        let mut ops: Vec<Op> = logs.into_iter().flat_map(|log| log.ops).collect();
        ops.sort_by_key(|op| (op.invoke_ns, op.thread));
        Self::from_ops(ops)
    }

    /// Calls recorded.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no call was recorded.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Calls that got no reply.
    pub fn pending(&self) -> usize {
        self.ops
            .iter()
            .filter(|op| op.ret == Return::Pending)
            .count()
    }
}

/// The calls of one client thread.
#[derive(Debug)]
pub struct ThreadLog {
    clock: Clock,
    thread: usize,
    ops: Vec<Op>,
}

impl ThreadLog {
    /// An empty log for thread `thread`, timed by `clock`.
    pub fn new(clock: Clock, thread: usize) -> Self {
        Self {
            clock,
            thread,
            ops: Vec::new(),
        }
    }

    /// Sends `operation` through `client` and records the call.
    ///
    /// Returns the reply (whatever its status), or `None` if the call timed
    /// out, which is recorded as [`Return::Pending`].
    ///
    /// # Errors
    ///
    /// Any other [`ClientError`]: the call is then recorded as pending too
    /// (whether the server saw it is unknown), and the caller should treat
    /// the error as a test failure.
    pub fn call(
        &mut self,
        client: &Client,
        operation: Operation,
    ) -> Result<Option<Reply>, ClientError> {
        let invoke_ns = self.clock.now_ns();
        let result = client.send(operation);
        let at_ns = self.clock.now_ns();
        let (ret, result) = match result {
            Ok(reply) => (Return::Replied { at_ns, reply }, Ok(Some(reply))),
            Err(ClientError::Timeout { .. }) => (Return::Pending, Ok(None)),
            Err(other) => (Return::Pending, Err(other)),
        };
        self.ops.push(Op {
            thread: self.thread,
            invoke_ns,
            operation,
            ret,
        });
        result
    }

    /// Records a call sent by other means than [`ThreadLog::call`], just
    /// before it was sent, as pending. Returns its index, for
    /// [`ThreadLog::replied`].
    pub fn sent(&mut self, invoke_ns: u64, operation: Operation) -> usize {
        self.ops.push(Op {
            thread: self.thread,
            invoke_ns,
            operation,
            ret: Return::Pending,
        });
        self.ops.len() - 1
    }

    /// Records that the reply to pending call `index` has just arrived.
    ///
    /// Sound however late it comes: the server applied the call between
    /// sending it and now.
    pub fn replied(&mut self, index: usize, reply: Reply) {
        let at_ns = self.clock.now_ns();
        self.ops[index].ret = Return::Replied { at_ns, reply };
    }

    /// The clock this log is timed by.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Calls recorded so far.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no call was recorded.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}
