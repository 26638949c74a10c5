//! The server: a ledger behind a System V queue, in one of three dispatch
//! modes, with graceful shutdown.
//!
//! Embedding a live server in a test is one expression; it runs on a
//! private queue and removes it when dropped:
//!
//! ```
//! let server = guichet::Server::builder().event("Concert", 100).spawn()?;
//! let client = server.client();
//! let booked = client.reserve(1, 2)?;
//! assert_eq!(booked.remaining, 98);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Orphaned queues
//!
//! A server on a private queue records it (in `/tmp/guichet-<euid>`, see
//! [`registry_dir`]) before using it, and removes queue and record when it
//! stops or is dropped. A process killed before that (SIGKILL, or a signal
//! the test harness does not catch) leaves both behind; the next server to
//! start on the machine, under the same user, removes the queue, since its
//! owner is gone. `guichet reap` (or [`reap_orphans`]) does the same on
//! request and lists private queues that have no record. A live process's
//! queue, another user's queue and a keyed queue (such as `guichet serve`
//! creates) are never removed; see `docs/embedding.md`.
//!
//! # Limits
//!
//! - **Clients are known by their pid.** A reply tag carries its client's
//!   pid (`include/PROTOCOL.md`), and when the queue is full the server
//!   checks it with kill(2) (`sysv::process_alive`)
//!   to purge the replies of clients that died. A client in another PID
//!   namespace that shares the server's IPC namespace (a container run
//!   with `docker run --ipc=host` but without `--pid=host`) puts the pid
//!   of its own namespace in its tags, which in the server's names no
//!   process, or a stranger. A client that names none looks dead: while
//!   the queue is full its replies are purged at once, even one it is
//!   waiting for, and a reply to it that finds the queue full with
//!   nothing to purge is abandoned at once instead of waiting
//!   `reply_timeout_ms` for room. While the queue has room nothing
//!   changes. Run such clients in the server's PID namespace
//!   (`--pid=host`, or `--pid=container:NAME` beside a containerised
//!   server). No option turns the check off: without it, the replies of
//!   clients that really died would wait `stale_reply_ms`, like those of
//!   clients that stopped reading; one can be added if such deployments
//!   need it.
//! - **A flood of requests can make a pool or sequential server abandon
//!   replies.** One queue carries both directions, and in these modes the
//!   threads that receive are the ones that reply. If clients keep the
//!   queue full of requests while every worker holds a reply for a live
//!   client, each worker waits for room that only a receive would make,
//!   and nothing receives: the replies are abandoned after
//!   `reply_timeout_ms` (counted in [`Stats::replies_abandoned`]), then
//!   the workers receive again. Purging cannot help, since requests are
//!   never purged. Thread-per-request keeps receiving while its workers
//!   wait, up to `max_in_flight` of them (past that the same holds).
//!   Clients that wait for each reply before they send again (the client
//!   library's calls) cannot cause this while their calls in flight are
//!   fewer than the queue holds messages (409 of 40 bytes in Linux's
//!   default 16 KiB queue).

mod book;
mod classic;
mod config;
mod dispatch;
mod durability;
mod error;
mod handler;
mod holds;
mod lifecycle;
mod pacing;
mod registry;
mod reply;
mod start;
mod stats;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use config::{Dispatch, LimitError, Limits, ParseDispatchError};
pub use error::ServerError;
// guichet-testkit's fuzz checks drive the per-message core directly.
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub use handler::{handle_message, Applied, Handled};
pub use registry::{reap_orphans, registry_dir, Orphan, Reaped, RegistryError};
pub use stats::{ClassicStats, Stats};

use crate::client::Client;
use crate::journal::{Dir, Journal, JournalStats, Recovery};
use crate::ledger::Ledger;
use crate::sysv::{Key, MessageBuf, Mode, OwnedQueue, QueueId, RecvFlags};
use crate::wire::REQUEST_MTYPE;

use classic::ClassicServing;
use dispatch::{drain, Dispatcher};
use lifecycle::Lifecycle;

/// How often shutdown re-sends a wake-up while receive loops still run: a
/// wake-up can be taken by a loop that is already draining.
const WAKE_POLL: Duration = Duration::from_millis(5);
/// At shutdown, how long unread replies may sit untouched before the queue
/// is removed anyway (their clients are gone or not listening).
const LINGER_IDLE: Duration = Duration::from_millis(100);
/// How often lingering looks whether clients took their replies (nothing
/// wakes it when they do); meanwhile it waits in msgrcv(2) for requests.
const LINGER_POLL: Duration = Duration::from_millis(1);
/// After the queue is removed, how long requests still in flight (past the
/// deadline) get to see it and count their replies as abandoned, so that
/// the stats returned account for them. They wake within a few ms.
const AFTER_REMOVE_GRACE: Duration = Duration::from_millis(100);
/// How often shutdown looks whether the last workers have ended (they
/// have left `in_flight` already; nothing wakes it when they end).
const WORKER_EXIT_POLL: Duration = Duration::from_micros(100);

/// Builds a [`Server`]: events, queue, dispatch mode, limits.
///
/// ```
/// use guichet::server::{Dispatch, Server};
/// let server = Server::builder()
///     .event("Concert", 100)
///     .event("Opera", 20)
///     .dispatch(Dispatch::Pool(2))
///     .max_bookings(10_000)
///     .spawn()?;
/// assert_eq!(server.client().query(2)?.capacity, 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct Builder {
    events: Vec<(String, u32)>,
    key: Option<Key>,
    mode: Mode,
    dispatch: Dispatch,
    limits: Limits,
    /// Whether `max_bookings` was set (a journal's is checked against it only then).
    max_bookings_set: bool,
    journal: Option<JournalAt>,
    journal_compact_min_bytes: Option<u64>,
    journal_group_commit_delay_us: Option<u32>,
    journal_preallocate_bytes: Option<u64>,
    /// See [`Builder::hold_ms`] (in `holds.rs`).
    hold_ms: Option<u64>,
    /// See [`Builder::clock`] (in `holds.rs`).
    clock: Option<Arc<dyn crate::ledger::Clock>>,
    /// Serve the classic protocol on a queue under this key too.
    classic_key: Option<Key>,
}

/// Where the journal is: a path, or a [`Dir`] and a name.
#[derive(Clone)]
enum JournalAt {
    Path(PathBuf),
    /// Made only by `journal_in`, which needs feature `sim`.
    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    Dir(Arc<dyn Dir>, String),
}

impl std::fmt::Debug for JournalAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalAt::Path(path) => write!(f, "{}", path.display()),
            JournalAt::Dir(dir, name) => write!(f, "{name} in {}", dir.describe()),
        }
    }
}

impl Builder {
    /// [`Builder::journal_compact_min_bytes`] when not called: 64 MiB.
    pub const DEFAULT_JOURNAL_COMPACT_MIN_BYTES: u64 = crate::journal::DEFAULT_COMPACT_MIN_BYTES;
    /// [`Builder::journal_preallocate_bytes`] when not called: 1 MiB.
    pub const DEFAULT_JOURNAL_PREALLOCATE_BYTES: u64 = crate::journal::DEFAULT_PREALLOCATE_BYTES;
    /// [`Builder::journal_group_commit_delay_us`] when not called: 0.
    pub const DEFAULT_JOURNAL_GROUP_COMMIT_DELAY_US: u32 =
        crate::journal::DEFAULT_GROUP_COMMIT_DELAY_US;

    /// Adds an event; events are numbered 1, 2, 3… in the order added.
    ///
    /// ```
    /// let server = guichet::Server::builder().event("Concert", 100).event("Opera", 20).spawn()?;
    /// assert_eq!(server.client().query(2)?.capacity, 20);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn event(mut self, name: impl Into<String>, capacity: u32) -> Self {
        self.events.push((name.into(), capacity));
        self
    }

    /// Serves a new queue created under `key` (`IPC_CREAT | IPC_EXCL`,
    /// msgget(2)) instead of a private one, so that other processes can
    /// find it. A second server on the same key is refused with
    /// [`ServerError::QueueExists`] at [`Builder::spawn`].
    ///
    /// ```
    /// use guichet::sysv::ftok;
    /// use guichet::{Client, Server};
    /// let file = tempfile::NamedTempFile::new()?;
    /// let key = ftok(file.path(), b'g')?;
    /// let server = Server::builder().event("Concert", 10).key(key).spawn()?;
    /// assert_eq!(Client::open(key)?.query(1)?.remaining, 10);
    /// assert!(Server::builder().event("Concert", 10).key(key).spawn().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key(mut self, key: Key) -> Self {
        self.key = Some(key);
        self
    }

    /// Also serves the classic protocol (`CLASSIC.md`, `docs/classic.md`)
    /// on a second queue created under `key`, exclusively as for
    /// [`Builder::key`] ([`ServerError::ClassicQueueExists`] if one
    /// exists), with the same mode, over the same ledger. Off by default;
    /// the course's clients use key 12345. [`Key::PRIVATE`] makes a
    /// private classic queue, reached through [`Server::classic_queue_id`].
    ///
    /// ```
    /// use guichet::classic::{decode_classic_reply, ClassicRequest};
    /// use guichet::sysv::{Key, MessageBuf, Queue};
    ///
    /// let server = guichet::Server::builder()
    ///     .event("Concert", 10)
    ///     .classic_key(Key::PRIVATE)
    ///     .spawn()?;
    /// let classic = Queue::from_id(server.classic_queue_id().ok_or("classic is on")?);
    /// let (mtype, body) = ClassicRequest::Reserve { id_spec: 0, nb_places: 3 }.encode();
    /// classic.send(mtype, &body, None)?;
    /// let mut reply = MessageBuf::with_body_capacity(512)?;
    /// classic.recv(11, &mut reply, None)?;
    /// let text = decode_classic_reply(11, reply.body())?.text;
    /// assert_eq!(text.as_str(), "OK ! 3 places réservées pour Concert.");
    /// // The same ledger as wire v1:
    /// assert_eq!(server.client().query(1)?.remaining, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn classic_key(mut self, key: Key) -> Self {
        self.classic_key = Some(key);
        self
    }

    /// Permissions of the queue the server creates; `0o600` by default
    /// (only the owner's processes may send and receive). The journal's
    /// files, if any, are created with the same read and write bits.
    ///
    /// ```
    /// use guichet::sysv::{Mode, Queue};
    /// let server = guichet::Server::builder().event("E", 1).mode(Mode::new(0o660)?).spawn()?;
    /// assert_eq!(Queue::from_id(server.queue_id()).stat()?.mode.bits(), 0o660);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The dispatch mode; [`Dispatch::ThreadPerRequest`] by default.
    ///
    /// ```
    /// use guichet::server::{Dispatch, Server};
    /// let server = Server::builder().event("E", 5).dispatch(Dispatch::Pool(2)).spawn()?;
    /// assert_eq!(server.dispatch(), Dispatch::Pool(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dispatch(mut self, dispatch: Dispatch) -> Self {
        self.dispatch = dispatch;
        self
    }

    /// Every limit at once.
    ///
    /// Its `max_bookings` counts as set (and, with a journal, must match
    /// the journal's) only if it differs from the builder's current one:
    /// `Limits { reply_timeout_ms: 500, ..Limits::default() }` changes the
    /// reply timeout and leaves an existing journal's `max_bookings` alone.
    /// To insist on the default, call [`Builder::max_bookings`].
    ///
    /// ```
    /// use guichet::server::{Limits, Server};
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("journal");
    /// let server = Server::builder().event("A", 5).max_bookings(7).journal(&path).spawn()?;
    /// server.shutdown()?;
    /// // Other limits on an existing journal: its max_bookings stays.
    /// let server = Server::builder()
    ///     .limits(Limits { reply_timeout_ms: 500, ..Limits::default() })
    ///     .journal(&path)
    ///     .spawn()?;
    /// assert_eq!(server.with_ledger(|l| l.max_bookings())?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn limits(mut self, limits: Limits) -> Self {
        // Struct-update syntax fills max_bookings with the default whether
        // or not the caller meant it: only a different value is a choice.
        if limits.max_bookings != self.limits.max_bookings {
            self.max_bookings_set = true;
        }
        self.limits = limits;
        self
    }

    /// Requests in flight at once in [`Dispatch::ThreadPerRequest`]
    /// (256 by default; at most
    /// [`Limits::MAX_IN_FLIGHT`](crate::server::Limits::MAX_IN_FLIGHT), checked by [`Builder::spawn`]).
    ///
    /// ```
    /// let server = guichet::Server::builder().event("E", 50).max_in_flight(4).spawn()?;
    /// let client = server.client();
    /// for _ in 0..10 {
    ///     client.reserve(1, 1)?;
    /// }
    /// assert!(server.stats().peak_in_flight <= 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.limits.max_in_flight = max_in_flight;
        self
    }

    /// Bookings the ledger holds (cancelled ones included) before
    /// answering LEDGER_FULL.
    ///
    /// ```
    /// use guichet::ClientError;
    /// let server = guichet::Server::builder().event("E", 50).max_bookings(1).spawn()?;
    /// server.client().reserve(1, 1)?;
    /// assert!(matches!(server.client().reserve(1, 1), Err(ClientError::LedgerFull)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_bookings(mut self, max_bookings: usize) -> Self {
        self.limits.max_bookings = max_bookings;
        self.max_bookings_set = true;
        self
    }

    /// Journals every change to the file at `path`, and answers OK only
    /// once the change is on disk (see [`crate::journal`]). If the file
    /// exists, the ledger is replayed from it, and its events and
    /// `max_bookings` are the journal's: events or `max_bookings` set on
    /// the builder must then match them. If not, a new journal is created
    /// with the builder's.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("journal");
    /// let server = guichet::Server::builder().event("Concert", 10).journal(&path).spawn()?;
    /// server.client().reserve_with_id(1, 3, 42)?;
    /// server.shutdown()?;
    ///
    /// // Events come from the journal; the booking is still there.
    /// let server = guichet::Server::builder().journal(&path).spawn()?;
    /// assert_eq!(server.client().query(1)?.remaining, 7);
    /// assert_eq!(server.journal_recovery().map(|r| r.changes_replayed), Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn journal(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal = Some(JournalAt::Path(path.into()));
        self
    }

    /// Like [`Builder::journal`], with the journal `name` in `dir`: for
    /// tests on a simulated disk (`SimDisk`, feature `sim`).
    #[cfg(feature = "sim")]
    pub fn journal_in(mut self, dir: impl Dir + 'static, name: impl Into<String>) -> Self {
        self.journal = Some(JournalAt::Dir(Arc::new(dir), name.into()));
        self
    }

    /// Journal size under which it is never compacted (64 MiB by default,
    /// 1 KiB to 1 TiB); past it, the journal is compacted once it reaches
    /// twice the size of its last snapshot.
    pub fn journal_compact_min_bytes(mut self, bytes: u64) -> Self {
        self.journal_compact_min_bytes = Some(bytes);
        self
    }

    /// Zeros written ahead of the journal's end, so that most fsyncs
    /// overwrite data in place and need no metadata update; 1 MiB by
    /// default, at most 64 MiB ([`ServerError::Limit`] at `spawn` past it).
    pub fn journal_preallocate_bytes(mut self, bytes: u64) -> Self {
        self.journal_preallocate_bytes = Some(bytes);
        self
    }

    /// How long a group commit waits, when the last batch held more than
    /// one change, for the clients it just answered to send their next one
    /// (like PostgreSQL's `commit_delay`); 0 (the default) never waits, at
    /// most 10,000.
    pub fn journal_group_commit_delay_us(mut self, delay_us: u32) -> Self {
        self.journal_group_commit_delay_us = Some(delay_us);
        self
    }

    /// How long a reply waits for room in a full queue before it is
    /// abandoned and counted in [`Stats::replies_abandoned`].
    ///
    /// ```
    /// let server = guichet::Server::builder().event("E", 1).reply_timeout_ms(200).spawn()?;
    /// assert_eq!(server.stats().replies_abandoned, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reply_timeout_ms(mut self, reply_timeout_ms: u32) -> Self {
        self.limits.reply_timeout_ms = reply_timeout_ms;
        self
    }

    /// How long a graceful shutdown may take before the queue is removed
    /// under whatever still runs.
    ///
    /// ```
    /// let server = guichet::Server::builder().event("E", 1).shutdown_timeout_ms(500).spawn()?;
    /// server.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_timeout_ms(mut self, shutdown_timeout_ms: u32) -> Self {
        self.limits.shutdown_timeout_ms = shutdown_timeout_ms;
        self
    }

    /// Creates the queue and starts serving it.
    ///
    /// # Errors
    ///
    /// - [`ServerError::Ledger`] / [`ServerError::Limit`]: bad configuration;
    /// - [`ServerError::QueueExists`]: a queue already has the key;
    /// - [`ServerError::ClassicQueueExists`]: a queue already has the classic key;
    /// - [`ServerError::CreateQueue`]: msgget(2) failed otherwise;
    /// - [`ServerError::Spawn`]: a receive thread could not start;
    /// - [`ServerError::Journal`]: the journal could not be opened or
    ///   replayed, or disagrees with the configuration.
    pub fn spawn(mut self) -> Result<Server, ServerError> {
        self.limits.check(self.dispatch)?;
        let (hold_ms, clock) = (self.hold_ms, self.clock.clone());
        holds::check(hold_ms)?;
        // The queue first: if it cannot be had (a key already taken), no
        // journal file is created for nothing; if the journal then fails,
        // dropping `owned` removes the queue. A refused start leaves nothing.
        // Before it, a fixture killed before it could remove its queue left
        // it to the next server that starts: this one.
        registry::reap_on_start();
        let owned = self.create_queue()?;
        // Before the queue is used, so that a kill from now on leaves a
        // record of it (dropped, the record is removed, as the queue is).
        // Without one (an unusable registry) the server runs all the same;
        // its queue is then never reaped.
        let record = match self.key {
            None => registry::Record::write(owned.id()).ok(),
            Some(_) => None,
        };
        // A classic key taken refuses the start like the wire v1 key, and
        // dropping `owned` removes the wire v1 queue. (Keyed, the classic
        // queue is never recorded: it is not a fixture's.)
        let classic_queue = self.create_classic_queue()?;
        let (ledger, journal) = self.open_ledger()?;
        let ledger = holds::timed(ledger, hold_ms, clock)?;
        let receivers = self.dispatch.receivers();
        let core = Dispatcher::new(owned.queue(), &self.limits, receivers, ledger, journal);
        let mut server = Server {
            core: Arc::new(core),
            queue: Some(owned),
            record,
            key: self.key.unwrap_or(Key::PRIVATE),
            dispatch: self.dispatch,
            shutdown_timeout_ms: self.limits.shutdown_timeout_ms,
            receivers: Vec::with_capacity(receivers),
            sweeper: None,
            committer: None,
            classic: None,
        };
        server.start_threads(classic_queue)?;
        Ok(server)
    }
}

/// A running server. Dropping it shuts it down and removes its queue.
///
/// See the [module docs](self) for a one-line test fixture.
pub struct Server {
    core: Arc<Dispatcher>,
    /// `None` once shut down.
    queue: Option<OwnedQueue>,
    /// The registry's record of a private queue; dropped (removed) with it.
    record: Option<registry::Record>,
    key: Key,
    dispatch: Dispatch,
    shutdown_timeout_ms: u32,
    receivers: Vec<JoinHandle<()>>,
    /// Purges unread replies from a queue too full for requests.
    sweeper: Option<JoinHandle<()>>,
    /// With a journal: syncs changes and sends the replies waiting for them.
    committer: Option<JoinHandle<()>>,
    /// The classic protocol's queue and threads, if served.
    classic: Option<ClassicServing>,
}

/// Asks a server to stop from another thread (a signal handler's thread,
/// say); the thread in [`Server::wait`] then completes the shutdown.
#[derive(Clone)]
pub struct StopHandle(Arc<Lifecycle>);

impl StopHandle {
    /// Requests a graceful shutdown. Returns at once.
    ///
    /// ```
    /// let server = guichet::Server::builder().event("E", 1).spawn()?;
    /// let stop = server.stop_handle();
    /// std::thread::spawn(move || stop.stop());
    /// server.wait()?; // returns once the other thread asked
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(&self) {
        self.0.request_stop();
    }
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StopHandle")
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("key", &self.key)
            .field("queue_id", &self.queue_id())
            .field("dispatch", &self.dispatch)
            .field("running", &self.queue.is_some())
            .finish()
    }
}

impl Server {
    /// A builder with no events, a private queue, thread-per-request
    /// dispatch and default limits.
    ///
    /// ```
    /// let server = guichet::Server::builder().event("Concert", 100).spawn()?;
    /// assert_eq!(server.client().query(1)?.remaining, 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The queue's key ([`Key::PRIVATE`] for a private queue).
    ///
    /// ```
    /// use guichet::sysv::Key;
    /// let server = guichet::Server::builder().event("E", 1).spawn()?;
    /// assert_eq!(server.key(), Key::PRIVATE);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key(&self) -> Key {
        self.key
    }

    /// The queue's id, which is how clients reach a private queue (from
    /// this process, or from a child it tells the id to).
    ///
    /// ```
    /// use guichet::Client;
    /// let server = guichet::Server::builder().event("E", 3).spawn()?;
    /// assert_eq!(Client::from_id(server.queue_id()).query(1)?.remaining, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn queue_id(&self) -> QueueId {
        self.core.queue().id()
    }

    /// The classic queue's key, if the server serves the classic protocol.
    ///
    /// ```
    /// let server = guichet::Server::builder().event("E", 1).spawn()?;
    /// assert_eq!(server.classic_key(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn classic_key(&self) -> Option<Key> {
        self.classic.as_ref().map(ClassicServing::key)
    }

    /// The classic queue's id, if the server serves the classic protocol.
    ///
    /// ```
    /// use guichet::sysv::{Key, Queue};
    /// let server = guichet::Server::builder().event("E", 1).classic_key(Key::PRIVATE).spawn()?;
    /// let id = server.classic_queue_id().ok_or("classic is on")?;
    /// assert_ne!(id, server.queue_id());
    /// server.shutdown()?;
    /// assert!(Queue::from_id(id).stat().is_err()); // removed at shutdown
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn classic_queue_id(&self) -> Option<QueueId> {
        self.classic.as_ref().map(ClassicServing::queue_id)
    }

    /// The dispatch mode.
    ///
    /// ```
    /// use guichet::server::Dispatch;
    /// let server = guichet::Server::builder().event("E", 1).spawn()?;
    /// assert_eq!(server.dispatch(), Dispatch::ThreadPerRequest);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dispatch(&self) -> Dispatch {
        self.dispatch
    }

    /// A client of this server, with the default timeout.
    ///
    /// ```
    /// let server = guichet::Server::builder().event("E", 2).spawn()?;
    /// let receipt = server.client().reserve(1, 2)?;
    /// assert_eq!(receipt.remaining, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn client(&self) -> Client {
        Client::from_queue(self.core.queue())
    }

    /// The counters so far.
    ///
    /// ```
    /// use guichet::Status;
    /// let server = guichet::Server::builder().event("E", 2).spawn()?;
    /// server.client().query(1)?;
    /// let stats = server.shutdown()?; // counts are final once it returns
    /// assert_eq!(stats.replies(Status::Ok), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Stats {
        Stats {
            journal: self.journal_stats(),
            classic: self.classic.as_ref().map(ClassicServing::stats),
            ..self.core.replier.counters.snapshot()
        }
    }

    /// The journal's counters, if the server has one.
    pub fn journal_stats(&self) -> Option<JournalStats> {
        self.journal().map(|j| j.stats())
    }

    /// What opening the journal found and did (a torn tail cut off, changes
    /// replayed…), if the server has one.
    pub fn journal_recovery(&self) -> Option<Recovery> {
        self.journal().map(|j| j.recovery().clone())
    }

    fn journal(&self) -> Option<&Arc<Journal>> {
        self.core.durability.as_ref().map(|d| d.journal())
    }

    /// Runs `f` on the ledger under its lock (for tests and audits: it
    /// holds up every request while it runs).
    ///
    /// ```
    /// let server = guichet::Server::builder().event("E", 2).spawn()?;
    /// server.client().reserve(1, 1)?;
    /// assert_eq!(server.with_ledger(|l| l.booking_count())?, 1);
    /// server.with_ledger(|l| l.check_invariants())??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ServerError::LedgerPoisoned`] if a thread panicked holding the ledger.
    pub fn with_ledger<R>(&self, f: impl FnOnce(&Ledger) -> R) -> Result<R, ServerError> {
        self.core.book.with_ledger(f)
    }

    /// A handle that requests a shutdown from another thread; see
    /// [`StopHandle::stop`].
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.core.lifecycle))
    }

    /// Serves until a stop is requested through a [`StopHandle`] or the
    /// server fails, then shuts down as [`Server::shutdown`] does.
    ///
    /// # Errors
    ///
    /// The failure that stopped the server, such as
    /// [`ServerError::QueueRemoved`] when someone else removed the queue:
    ///
    /// ```
    /// use guichet::server::ServerError;
    /// use guichet::sysv::Queue;
    /// let server = guichet::Server::builder().event("E", 1).spawn()?;
    /// Queue::from_id(server.queue_id()).remove()?; // as `ipcrm` would
    /// assert!(matches!(server.wait(), Err(ServerError::QueueRemoved(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(mut self) -> Result<Stats, ServerError> {
        self.core.lifecycle.wait_for_stop();
        self.finish()
    }

    /// Shuts down gracefully, within `shutdown_timeout_ms`: stops receiving,
    /// lets requests in flight finish and reply, answers requests still
    /// queued with SHUTTING_DOWN, then removes the queue.
    ///
    /// # Errors
    ///
    /// A failure that had stopped the server earlier, or
    /// [`ServerError::RemoveQueue`].
    ///
    /// ```
    /// use guichet::sysv::Queue;
    /// let server = guichet::Server::builder().event("E", 1).spawn()?;
    /// let id = server.queue_id();
    /// server.shutdown()?;
    /// assert!(Queue::from_id(id).stat().is_err()); // the queue is gone
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(mut self) -> Result<Stats, ServerError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<Stats, ServerError> {
        let Some(owned) = self.queue.take() else {
            return Ok(self.stats());
        };
        let core = Arc::clone(&self.core);
        let life = &core.lifecycle;
        life.request_stop();
        let deadline = Instant::now() + Duration::from_millis(self.shutdown_timeout_ms.into());
        life.set_stop_deadline(deadline);
        if let Some(sweeper) = &self.sweeper {
            sweeper.thread().unpark();
        }
        // Receive loops blocked in msgrcv(2) see the stop only when a
        // message arrives: send wake-ups until every loop has returned.
        while life.receivers_running(WAKE_POLL) > 0 && Instant::now() < deadline {
            core.wake_one();
        }
        // Before the journal closes: a classic OK is durable before it is sent.
        let classic_removed = self
            .classic
            .as_mut()
            .map_or(Ok(()), |classic| classic.stop(&core, deadline));
        life.wait_idle(deadline);
        // Replies waiting for the disk go out once it has synced their
        // changes, by the deadline; after it they are dropped and counted
        // (never sent unconfirmed).
        if let (Some(durability), Some(_)) = (&core.durability, &self.committer) {
            durability.stop_by(deadline);
        }
        linger(&core, deadline);
        // Removing the queue also wakes anything still blocked in it, and
        // destroys whatever replies are still unread.
        let removed = owned.remove();
        self.record = None;
        life.wait_idle(Instant::now() + AFTER_REMOVE_GRACE);
        self.join_threads();
        // Workers have left `in_flight` but may not have let go of the
        // state yet: wait, briefly, so that the journal (and its lock) is
        // free when this returns.
        let settle_by = deadline.max(Instant::now() + AFTER_REMOVE_GRACE);
        while Arc::strong_count(&core.workers) > 1 && Instant::now() < settle_by {
            thread::sleep(WORKER_EXIT_POLL);
        }
        // Waits, until the deadline, for a compaction in progress and for
        // whatever is left to be synced.
        let journal_closed = self
            .journal()
            .map_or(Ok(()), |j| j.close_by(deadline.max(Instant::now())));
        if let Some(failure) = life.take_failure() {
            return Err(failure);
        }
        removed.map_err(ServerError::RemoveQueue)?;
        classic_removed?;
        journal_closed?;
        Ok(self.stats())
    }

    /// Joins the threads that have returned. A receive loop leading a group
    /// commit, or the commit thread, may be stuck in an fdatasync past the
    /// deadline: it is left to finish on its own rather than hold the
    /// shutdown (it sends nothing that is not durable). When every loop has
    /// returned, all are joined: they are ending, and what they hold (the
    /// journal and its lock) is released before `finish` returns.
    fn join_threads(&mut self) {
        let all_returned = self.core.lifecycle.receivers_running(Duration::ZERO) == 0;
        for handle in self.receivers.drain(..).chain(self.sweeper.take()) {
            if all_returned || handle.is_finished() {
                let _ = handle.join();
            }
        }
        if let Some(handle) = self.committer.take() {
            if self.core.durability.as_ref().is_some_and(|d| d.is_done()) {
                let _ = handle.join();
            }
        }
    }
}

/// Before the queue is removed, which destroys unread replies: answers
/// requests that keep arriving with SHUTTING_DOWN and waits while clients
/// are still taking their replies, until nobody has read one for
/// [`LINGER_IDLE`] or the shutdown deadline passes.
fn linger(shared: &Dispatcher, deadline: Instant) {
    let mut last_count = u64::MAX;
    let mut last_progress = Instant::now();
    let mut in_hand = None;
    loop {
        drain(shared, in_hand.take());
        let Ok(stat) = shared.queue().stat() else {
            return;
        };
        let now = Instant::now();
        if stat.messages == 0 || now >= deadline {
            return;
        }
        if stat.messages < last_count {
            last_count = stat.messages;
            last_progress = now;
        } else if now.duration_since(last_progress) >= LINGER_IDLE {
            return;
        }
        // Blocked in msgrcv(2) rather than asleep: a request that comes
        // meanwhile is answered at once.
        in_hand = next_request(shared, deadline.min(now + LINGER_POLL));
    }
}

/// The next request (or wake-up), if one comes by `until`.
fn next_request(shared: &Dispatcher, until: Instant) -> Option<MessageBuf> {
    let mut buf = MessageBuf::with_body_capacity(dispatch::RECEIVE_BODY_BYTES).ok()?;
    shared
        .queue()
        .recv_until(
            REQUEST_MTYPE,
            &mut buf,
            RecvFlags::NOERROR,
            until,
            Duration::ZERO,
        )
        .ok()?;
    Some(buf)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
