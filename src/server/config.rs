//! How a server is configured: dispatch mode, queue, limits.

use core::fmt;
use core::str::FromStr;

use crate::ledger::DEFAULT_MAX_BOOKINGS;

/// Most requests in flight a thread-per-request server allows by default.
pub(crate) const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// Upper bound on `max_in_flight`: each request in flight is a thread.
pub(crate) const MAX_IN_FLIGHT_LIMIT: usize = 4096;
/// Upper bound on the workers of [`Dispatch::Pool`].
pub(crate) const MAX_POOL_WORKERS: usize = 256;
/// How long a reply may wait for room in a full queue, by default.
pub const DEFAULT_REPLY_TIMEOUT_MS: u32 = 1_000;
/// How long a graceful shutdown may take, by default, before the queue is
/// removed under whatever is still running.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u32 = 5_000;
/// A reply unread this long is fair game for purging when the queue is full.
pub const DEFAULT_STALE_REPLY_MS: u32 = 10_000;
/// Stack of a per-request thread: the handler is shallow (decode, one
/// ledger call, encode, one msgsnd), so 2 MiB would only cost address space
/// and page-table work per spawn.
pub const DEFAULT_WORKER_STACK_BYTES: usize = 128 * 1024;
/// Smallest worker stack accepted.
pub const MIN_WORKER_STACK_BYTES: usize = 32 * 1024;
/// How long a receive loop polls for the next request before it blocks,
/// by default, in µs (see [`Limits::receive_spin_us`]).
pub(crate) const DEFAULT_RECEIVE_SPIN_US: u32 = 50;
/// Upper bound on `receive_spin_us`.
pub(crate) const MAX_RECEIVE_SPIN_US: u32 = 10_000;
/// Upper bound on every `*_ms` limit: one hour.
pub(crate) const MAX_TIMEOUT_MS: u32 = 3_600_000;
/// Most reply tags remembered for purging replies of dead or silent clients.
pub(crate) const MAX_TRACKED_REPLY_TAGS: usize = 65_536;

/// How requests are spread over threads.
///
/// All three serve the same protocol with the same ledger; they differ in
/// throughput and in how they behave under load, which is what
/// `guichet bench` compares. Displayed and parsed (for `--dispatch`) as
/// `thread-per-request`, `pool:N` and `sequential`.
///
/// # Examples
///
/// ```
/// use guichet::server::{Dispatch, Server};
///
/// let dispatch: Dispatch = "pool:2".parse()?;
/// assert_eq!(dispatch, Dispatch::Pool(2));
/// assert_eq!(dispatch.to_string(), "pool:2");
/// let server = Server::builder().event("Concert", 10).dispatch(dispatch).spawn()?;
/// assert_eq!(server.client().reserve(1, 2)?.remaining, 8);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Dispatch {
    /// The original C design: one receive loop hands each message, in a
    /// buffer it owns, to a newly spawned detached thread. At most
    /// `max_in_flight` threads at once; at the limit the loop stops
    /// receiving, so the queue itself pushes back on clients.
    #[default]
    ThreadPerRequest,
    /// `n` long-lived workers, each receiving from the queue itself: at most
    /// `n` requests being processed, whatever `max_in_flight` says. With a
    /// journal, a worker that has queued its reply for the commit thread
    /// goes back to receiving, so up to
    /// 8,192 more (a fixed bound) may be
    /// waiting for the disk.
    Pool(usize),
    /// One thread receives, applies and replies: the baseline.
    Sequential,
}

impl Dispatch {
    /// Receive loops this mode runs.
    pub(crate) fn receivers(self) -> usize {
        match self {
            Dispatch::Pool(n) => n,
            Dispatch::ThreadPerRequest | Dispatch::Sequential => 1,
        }
    }
}

impl fmt::Display for Dispatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dispatch::ThreadPerRequest => f.write_str("thread-per-request"),
            Dispatch::Pool(n) => write!(f, "pool:{n}"),
            Dispatch::Sequential => f.write_str("sequential"),
        }
    }
}

/// Why a dispatch mode did not parse.
///
/// Its message lists the accepted spellings, for a command line's error.
///
/// # Examples
///
/// ```
/// use guichet::server::{Dispatch, ParseDispatchError};
///
/// let err: ParseDispatchError = "pool:0".parse::<Dispatch>().unwrap_err();
/// assert!(err.to_string().starts_with("\"pool:0\" is not a dispatch mode"));
/// assert!("threads".parse::<Dispatch>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a dispatch mode: use thread-per-request, pool, pool:N (1 to {MAX_POOL_WORKERS}) or sequential")]
pub struct ParseDispatchError(String);

impl FromStr for Dispatch {
    type Err = ParseDispatchError;

    /// `thread-per-request`, `sequential`, `pool` (one worker per CPU, at
    /// most [`Limits::MAX_POOL_WORKERS`](crate::server::Limits::MAX_POOL_WORKERS)) or `pool:N` (1 to [`Limits::MAX_POOL_WORKERS`](crate::server::Limits::MAX_POOL_WORKERS)).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::server::Dispatch;
    ///
    /// assert_eq!("sequential".parse::<Dispatch>()?, Dispatch::Sequential);
    /// assert!(matches!("pool".parse::<Dispatch>()?, Dispatch::Pool(n) if n >= 1));
    /// assert!("pool:257".parse::<Dispatch>().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ParseDispatchError`] for any other string, `pool:0` and `pool:N`
    /// over [`Limits::MAX_POOL_WORKERS`](crate::server::Limits::MAX_POOL_WORKERS) included.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseDispatchError(s.to_owned());
        match s {
            "thread-per-request" => Ok(Dispatch::ThreadPerRequest),
            "sequential" => Ok(Dispatch::Sequential),
            "pool" => Ok(Dispatch::Pool(
                std::thread::available_parallelism()
                    .map_or(2, usize::from)
                    .min(MAX_POOL_WORKERS),
            )),
            _ => {
                let n: usize = s
                    .strip_prefix("pool:")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(bad)?;
                if (1..=MAX_POOL_WORKERS).contains(&n) {
                    Ok(Dispatch::Pool(n))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

/// Every bound a server keeps. Units are in the names.
///
/// The bounds a server can be tuned with; the fixed ones and the largest
/// values accepted are associated constants
/// ([`Limits::MAX_POOL_WORKERS`], [`Limits::TRACKED_REPLY_TAGS`], …).
/// [`Builder::spawn`](crate::server::Builder::spawn) checks every field, in
/// every mode, and refuses to start with one out of its range
/// ([`LimitError`]).
///
/// # Examples
///
/// ```
/// use guichet::server::{Limits, Server};
///
/// let limits = Limits { max_in_flight: 8, max_bookings: 1_000, ..Limits::default() };
/// let server = Server::builder().event("Concert", 10).limits(limits).spawn()?;
/// assert_eq!(server.with_ledger(|ledger| ledger.max_bookings())?, 1_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Requests in flight at once in [`Dispatch::ThreadPerRequest`], each a
    /// thread; 1 to [`Limits::MAX_IN_FLIGHT`](crate::server::Limits::MAX_IN_FLIGHT). The other modes check it but
    /// do not use it: their receive loops (`n` workers, or one) bound what
    /// is in flight. With a journal, a request whose reply waits for the
    /// disk has left flight: a fixed 8,192
    /// bounds those.
    pub max_in_flight: usize,
    /// Bookings the ledger holds, cancelled ones included; 1 to
    /// [`Ledger::MAX_BOOKINGS_LIMIT`](crate::ledger::Ledger::MAX_BOOKINGS_LIMIT).
    pub max_bookings: usize,
    /// How long a reply waits for room in a full queue before it is
    /// abandoned (and counted); 1 to [`Limits::MAX_TIMEOUT_MS`](crate::server::Limits::MAX_TIMEOUT_MS).
    pub reply_timeout_ms: u32,
    /// How long a graceful shutdown may take; 1 to [`Limits::MAX_TIMEOUT_MS`](crate::server::Limits::MAX_TIMEOUT_MS).
    pub shutdown_timeout_ms: u32,
    /// When the queue is full, replies to a tag that was last sent one this
    /// long ago are purged even if their client still lives (it stopped
    /// reading); 1 to [`Limits::MAX_TIMEOUT_MS`](crate::server::Limits::MAX_TIMEOUT_MS).
    pub stale_reply_ms: u32,
    /// Stack size of a per-request thread; 32 KiB to 64 MiB.
    pub worker_stack_bytes: usize,
    /// How long a wire v1 receive loop polls the queue for the next
    /// request (msgrcv(2) with `IPC_NOWAIT`, yielding the CPU between
    /// attempts) before it blocks, in µs; 0 (always block) to
    /// [`Limits::MAX_RECEIVE_SPIN_US`], 50 by default. A blocked loop is
    /// woken by the client's msgsnd(2); on the 2-vCPU test VM polling made
    /// one client's calls 3 to 4 times as fast, so a wake-up cost it about
    /// 10 µs a request. At most as many loops poll at once as the machine
    /// has CPUs; the others block. The classic protocol's loop always
    /// blocks. Measurements: `docs/benchmarks.md`.
    pub receive_spin_us: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_bookings: DEFAULT_MAX_BOOKINGS,
            reply_timeout_ms: DEFAULT_REPLY_TIMEOUT_MS,
            shutdown_timeout_ms: DEFAULT_SHUTDOWN_TIMEOUT_MS,
            stale_reply_ms: DEFAULT_STALE_REPLY_MS,
            worker_stack_bytes: DEFAULT_WORKER_STACK_BYTES,
            receive_spin_us: DEFAULT_RECEIVE_SPIN_US,
        }
    }
}

/// A limit out of its range.
///
/// Names the limit and the range it must be in, so the message alone says
/// how to fix it.
///
/// # Examples
///
/// ```
/// use guichet::server::{LimitError, Limits, Server, ServerError};
///
/// let refused = Server::builder().event("Concert", 10).max_in_flight(0).spawn();
/// let Err(ServerError::Limit(err)) = refused else {
///     return Err("max_in_flight 0 accepted".into());
/// };
/// let max = Limits::MAX_IN_FLIGHT as u64;
/// assert_eq!(err, LimitError { name: "max_in_flight", value: 0, min: 1, max });
/// assert_eq!(err.to_string(), format!("max_in_flight is 0; it must be 1 to {max}"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name} is {value}; it must be {min} to {max}")]
pub struct LimitError {
    /// The limit.
    pub name: &'static str,
    /// The value given.
    pub value: u64,
    /// Smallest allowed.
    pub min: u64,
    /// Largest allowed.
    pub max: u64,
}

impl LimitError {
    /// `Ok` if `value` is in `min..=max`, else the error naming `name`.
    pub(crate) fn check(name: &'static str, value: u64, min: u64, max: u64) -> Result<(), Self> {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(LimitError {
                name,
                value,
                min,
                max,
            })
        }
    }
}

impl Limits {
    /// Largest `max_in_flight`: each request in flight is a thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::server::Limits;
    ///
    /// assert!(Limits::default().max_in_flight <= Limits::MAX_IN_FLIGHT);
    /// ```
    pub const MAX_IN_FLIGHT: usize = MAX_IN_FLIGHT_LIMIT;
    /// Most workers of [`Dispatch::Pool`].
    pub const MAX_POOL_WORKERS: usize = MAX_POOL_WORKERS;
    /// Largest value of every `*_ms` limit: one hour.
    pub const MAX_TIMEOUT_MS: u32 = MAX_TIMEOUT_MS;
    /// Most reply tags the server remembers for purging the replies of
    /// dead or silent clients (a fixed bound, not configurable).
    pub const TRACKED_REPLY_TAGS: usize = MAX_TRACKED_REPLY_TAGS;
    /// Largest `receive_spin_us`: 10 ms.
    pub const MAX_RECEIVE_SPIN_US: u32 = MAX_RECEIVE_SPIN_US;

    pub(crate) fn check(&self, dispatch: Dispatch) -> Result<(), LimitError> {
        let within = LimitError::check;
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        within(
            "max_in_flight",
            wide(self.max_in_flight),
            1,
            wide(MAX_IN_FLIGHT_LIMIT),
        )?;
        within(
            "reply_timeout_ms",
            self.reply_timeout_ms.into(),
            1,
            MAX_TIMEOUT_MS.into(),
        )?;
        within(
            "shutdown_timeout_ms",
            self.shutdown_timeout_ms.into(),
            1,
            MAX_TIMEOUT_MS.into(),
        )?;
        within(
            "stale_reply_ms",
            self.stale_reply_ms.into(),
            1,
            MAX_TIMEOUT_MS.into(),
        )?;
        within(
            "worker_stack_bytes",
            wide(self.worker_stack_bytes),
            wide(MIN_WORKER_STACK_BYTES),
            64 << 20,
        )?;
        within(
            "receive_spin_us",
            self.receive_spin_us.into(),
            0,
            MAX_RECEIVE_SPIN_US.into(),
        )?;
        if let Dispatch::Pool(n) = dispatch {
            within("pool workers", wide(n), 1, wide(MAX_POOL_WORKERS))?;
        }
        Ok(())
    }
}
