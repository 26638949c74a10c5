//! Counters the server keeps while it runs; read as a [`Stats`] snapshot.
//!
//! Statistics, not synchronisation: a snapshot taken while the server runs
//! may lag a reply the client already has (the count follows the send).
//! The [`Stats`] that [`Server::shutdown`](crate::Server::shutdown) returns
//! counts everything.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::status::Status;

/// A snapshot of a server's counters.
///
/// From [`Server::stats`](crate::Server::stats) while it runs, or from
/// [`Server::shutdown`](crate::Server::shutdown) (or `wait`) once every
/// request has been answered, when the figures are final.
///
/// # Examples
///
/// ```
/// use guichet::Status;
///
/// let server = guichet::Server::builder().event("Concert", 10).spawn()?;
/// let client = server.client();
/// client.reserve(1, 2)?;
/// assert!(client.query(9).is_err()); // UNKNOWN_EVENT
/// let stats = server.shutdown()?;
/// assert_eq!((stats.received, stats.replies_sent(), stats.dropped), (2, 2, 0));
/// assert_eq!(stats.replies(Status::UnknownEvent), 1);
/// assert_eq!(stats.journal, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages received from the queue (wake-ups for shutdown excluded).
    pub received: u64,
    /// Replies sent, by status code ([`Status::code`] indexes it).
    pub replies_by_status: [u64; Status::ALL.len()],
    /// Malformed messages dropped without a reply (unanswerable).
    pub dropped: u64,
    /// Replies removed from the queue unread: their client was found dead,
    /// or had stopped reading (`stale_reply_ms`), or their tag was among
    /// the longest unanswered when the tag table reached its limit.
    pub replies_purged: u64,
    /// Replies given up on: after the reply timeout (the queue stayed
    /// full), at once when the queue was full, nothing could be purged and
    /// the reply's client was dead, or because the queue was removed under
    /// them (a shutdown past its deadline, or someone else's removal).
    pub replies_abandoned: u64,
    /// Replies that waited in the commit queue for an `fdatasync` (with a
    /// journal: changes, and reads that saw a change still pending).
    pub replies_deferred: u64,
    /// Replies never sent because the change they depend on was not
    /// confirmed durable: the journal failed (its fdatasync or write), or
    /// the shutdown's deadline passed first. Their requests may or may not
    /// have taken effect; a client that used its own booking id learns
    /// which by retrying.
    pub replies_withheld: u64,
    /// Most requests in flight at once, in thread-per-request mode (each a
    /// thread); always 0 in the other modes, which do not count them.
    pub peak_in_flight: u64,
    /// Worker threads that could not be spawned; their requests were
    /// processed inline by the receive loop instead.
    pub spawn_failures: u64,
    /// Receive errors the loop survived (other than the queue's removal).
    pub receive_errors: u64,
    /// Times the commit thread waited, between two group commits, for the
    /// clients it had just answered to send their next change (with a
    /// journal; see `server::pacing`).
    pub commit_waits: u64,
    /// Those waits that ended at their deadline rather than with every
    /// awaited client back.
    pub commit_wait_timeouts: u64,
    /// Time spent in those waits, ns.
    pub commit_wait_ns: u64,
    /// The journal's counters (fsyncs, changes per fsync…), if it has one.
    pub journal: Option<crate::journal::JournalStats>,
    /// The classic protocol's counters, if the server serves it
    /// ([`Builder::classic_key`](super::Builder::classic_key)).
    pub classic: Option<ClassicStats>,
}

impl Stats {
    /// Replies sent with `status`.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::server::Stats;
    /// use guichet::Status;
    ///
    /// let mut stats = Stats::default();
    /// stats.replies_by_status[usize::from(Status::SoldOut.code())] = 3;
    /// assert_eq!(stats.replies(Status::SoldOut), 3);
    /// assert_eq!(stats.replies(Status::Ok), 0);
    /// ```
    pub fn replies(&self, status: Status) -> u64 {
        self.replies_by_status[usize::from(status.code())]
    }

    /// Replies sent, all statuses: at most [`Stats::received`], since a
    /// message dropped, a reply abandoned or a request still in flight has
    /// none.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::server::Stats;
    ///
    /// let stats = Stats { replies_by_status: [5, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0], ..Stats::default() };
    /// assert_eq!(stats.replies_sent(), 8);
    /// ```
    pub fn replies_sent(&self) -> u64 {
        self.replies_by_status.iter().sum()
    }
}

/// The classic protocol's counters, in [`Stats::classic`].
///
/// # Examples
///
/// ```
/// use guichet::classic::ClassicRequest;
/// use guichet::sysv::{MessageBuf, Queue};
///
/// let server = guichet::Server::builder()
///     .event("Concert", 10)
///     .classic_key(guichet::sysv::Key::PRIVATE)
///     .spawn()?;
/// let queue = Queue::from_id(server.classic_queue_id().ok_or("no classic queue")?);
/// let (mtype, body) = ClassicRequest::Quit.encode();
/// queue.send(mtype, &body, None)?;
/// queue.send(3, &body, None)?; // no such request: dropped
/// let (mtype, body) = ClassicRequest::List.encode();
/// queue.send(mtype, &body, None)?;
/// let mut reply = MessageBuf::with_body_capacity(512)?;
/// queue.recv(10, &mut reply, None)?; // answered in order: the others are done
/// let stats = server.shutdown()?.classic.ok_or("classic is on")?;
/// assert_eq!((stats.received, stats.quits_ignored, stats.dropped), (3, 1, 1));
/// assert_eq!(stats.listings_sent, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassicStats {
    /// Messages received from the classic queue (shutdown's wake-ups excluded).
    pub received: u64,
    /// Listings sent (mtype 10).
    pub listings_sent: u64,
    /// Reservation texts sent (mtype 11), OK and ECHEC alike.
    pub reservations_sent: u64,
    /// Malformed messages dropped unanswered: a body not 16 bytes, or an
    /// mtype other than 1, 2 and 5.
    pub dropped: u64,
    /// "Quit" messages (mtype 5) consumed and not obeyed.
    pub quits_ignored: u64,
    /// Unread replies removed to make room in a queue that stayed full.
    pub replies_discarded: u64,
    /// Replies given up on: no room within the reply timeout and nothing of
    /// their mtype to discard, or the queue removed under them.
    pub replies_abandoned: u64,
    /// Replies not sent because the journal failed: their change (or what
    /// a listing showed) may not be durable, so neither OK nor ECHEC is true.
    pub replies_withheld: u64,
    /// Receive errors survived (other than the queue's removal).
    pub receive_errors: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    received: AtomicU64,
    replies_by_status: [AtomicU64; Status::ALL.len()],
    dropped: AtomicU64,
    replies_purged: AtomicU64,
    replies_abandoned: AtomicU64,
    replies_deferred: AtomicU64,
    replies_withheld: AtomicU64,
    peak_in_flight: AtomicU64,
    spawn_failures: AtomicU64,
    receive_errors: AtomicU64,
    commit_waits: AtomicU64,
    commit_wait_timeouts: AtomicU64,
    commit_wait_ns: AtomicU64,
}

// Counters are statistics, not synchronisation: Relaxed is enough, and a
// snapshot taken while the server runs is a consistent-enough view.
impl Counters {
    pub(crate) fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn replied(&self, status: Status) {
        self.replies_by_status[usize::from(status.code())].fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn purged(&self, n: u64) {
        self.replies_purged.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn abandoned(&self) {
        self.replies_abandoned.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn deferred(&self) {
        self.replies_deferred.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn withheld(&self, n: u64) {
        self.replies_withheld.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn in_flight(&self, now: u64) {
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
    }
    pub(crate) fn spawn_failed(&self) {
        self.spawn_failures.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn receive_error(&self) {
        self.receive_errors.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn commit_waited(&self, took: std::time::Duration) {
        self.commit_waits.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.commit_wait_ns.fetch_add(ns, Ordering::Relaxed);
    }
    pub(crate) fn commit_wait_timed_out(&self) {
        self.commit_wait_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            received: load(&self.received),
            replies_by_status: self.replies_by_status.each_ref().map(load),
            dropped: load(&self.dropped),
            replies_purged: load(&self.replies_purged),
            replies_abandoned: load(&self.replies_abandoned),
            replies_deferred: load(&self.replies_deferred),
            replies_withheld: load(&self.replies_withheld),
            peak_in_flight: load(&self.peak_in_flight),
            spawn_failures: load(&self.spawn_failures),
            receive_errors: load(&self.receive_errors),
            commit_waits: load(&self.commit_waits),
            commit_wait_timeouts: load(&self.commit_wait_timeouts),
            commit_wait_ns: load(&self.commit_wait_ns),
            journal: None,
            classic: None,
        }
    }
}
