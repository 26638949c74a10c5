//! The physical floor: an echo server that does only what any server of
//! this protocol must do per request.
//!
//! Per message it receives the 40-byte body as the servers' receive loops
//! do (polling for up to their default `receive_spin_us`, then one
//! blocking msgrcv(2)), reads
//! `reply_to` and `request_id` from it, writes them into a fixed OK reply,
//! and makes one msgsnd(2). No decoding beyond those two fields, no ledger,
//! no lock, no allocation, no counters. Its replies are valid wire v1 replies
//! (status OK, the request's `request_id`), so the very same
//! [`Client`](guichet::Client) drives it and the server modes, and both pay the
//! same client-side costs.

use std::path::Path;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use guichet::journal::JournalStats;
use guichet::server::Limits;
use guichet::sysv::{MessageBuf, Mode, OwnedQueue, Queue, QueueId, SysvError};
use guichet::wire::Reply;
use guichet::wire::{BODY_SIZE, REQUEST_MTYPE};
use guichet::RequestId;
use guichet::Status;

use super::durable_floor::{durable_echo_loop, preallocated_file, Counters};
use super::BenchError;

/// Bytes 8..16 of a request body: `reply_to`; 16..24: `request_id`.
const REPLY_TO: std::ops::Range<usize> = 8..16;
const REQUEST_ID: std::ops::Range<usize> = 16..24;
/// Bytes 8..16 of a reply body: `request_id`.
pub(crate) const REPLY_REQUEST_ID: std::ops::Range<usize> = 8..16;

/// A running echo floor on a private queue; dropping it removes the queue,
/// which ends its loops, and joins them.
///
/// It answers every request OK without looking at it, so only round-trip
/// figures mean anything: a QUERY "answered" here says nothing about seats.
///
/// # Examples
///
/// ```
/// use guichet_bench::EchoFloor;
/// use guichet::{Client, Operation, EventId, Status};
///
/// let floor = EchoFloor::spawn(1)?;
/// let client = Client::from_id(floor.queue_id());
/// let reply = client.send(Operation::Query { event: EventId::new(1).unwrap() })?;
/// assert_eq!(reply.status, Status::Ok);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EchoFloor {
    id: QueueId,
    queue: Option<OwnedQueue>,
    loops: Vec<JoinHandle<()>>,
    /// A durable floor's counters (see [`EchoFloor::spawn_durable`]).
    durable: Option<Arc<Counters>>,
}

impl std::fmt::Debug for EchoFloor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoFloor")
            .field("queue_id", &self.id)
            .field("loops", &self.loops.len())
            .field("durable", &self.durable.is_some())
            .finish()
    }
}

/// Most echo loops one floor runs.
pub const MAX_FLOOR_LOOPS: usize = 64;

impl EchoFloor {
    /// Creates a private queue and starts `loops` echo loops on it (1 to
    /// [`MAX_FLOOR_LOOPS`]).
    ///
    /// Several loops measure what parallel receivers gain on this machine,
    /// as [`Dispatch::Pool`](guichet::server::Dispatch::Pool) workers do.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::{BenchError, EchoFloor};
    ///
    /// let floor = EchoFloor::spawn(2)?;
    /// drop(floor); // the queue is removed, the loops end and are joined
    /// assert!(matches!(EchoFloor::spawn(0), Err(BenchError::Config(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`BenchError::Config`] for a bad `loops`; [`BenchError::Sysv`] if the
    /// queue cannot be created; [`BenchError::Spawn`] if a thread cannot
    /// start (the queue is then removed).
    pub fn spawn(loops: usize) -> Result<EchoFloor, BenchError> {
        if !(1..=MAX_FLOOR_LOOPS).contains(&loops) {
            return Err(BenchError::Config(format!(
                "echo floor loops must be 1 to {MAX_FLOOR_LOOPS}, not {loops}"
            )));
        }
        let queue = OwnedQueue::create_private(Mode::DEFAULT).map_err(BenchError::Sysv)?;
        let template = Arc::new(Reply::bare(Status::Ok, RequestId(0)).encode());
        let q = queue.queue();
        let mut floor = EchoFloor {
            id: queue.id(),
            loops: Vec::with_capacity(loops),
            queue: Some(queue),
            durable: None,
        };
        for index in 0..loops {
            let template = Arc::clone(&template);
            let handle = thread::Builder::new()
                .name(format!("echo-floor-{index}"))
                .spawn(move || echo_loop(q, &template))
                .map_err(BenchError::Spawn)?;
            floor.loops.push(handle);
        }
        Ok(floor)
    }

    /// Creates a private queue and starts one durable echo loop on it, its
    /// file in `dir`: the `floor+journal` target. Each request is answered
    /// once a write and an `fdatasync` of that file cover it; one
    /// fdatasync covers every request that came while the last one ran.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::EchoFloor;
    /// use guichet::Client;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let floor = EchoFloor::spawn_durable(dir.path())?;
    /// Client::from_id(floor.queue_id()).query(1)?;
    /// let stats = floor.journal_stats().expect("a durable floor counts its fsyncs");
    /// assert_eq!((stats.fsyncs, stats.changes_synced), (1, 1));
    /// drop(floor); // its file goes with it
    /// assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`BenchError::Io`] if the file cannot be created, filled or synced;
    /// [`BenchError::Sysv`] if the queue cannot be created;
    /// [`BenchError::Spawn`] if the thread cannot start (the queue is then
    /// removed).
    pub fn spawn_durable(dir: &Path) -> Result<EchoFloor, BenchError> {
        let file = preallocated_file(dir).map_err(BenchError::Io)?;
        let queue = OwnedQueue::create_private(Mode::DEFAULT).map_err(BenchError::Sysv)?;
        let template = Reply::bare(Status::Ok, RequestId(0)).encode();
        let counters = Arc::new(Counters::default());
        let q = queue.queue();
        let mut floor = EchoFloor {
            id: queue.id(),
            loops: Vec::with_capacity(1),
            queue: Some(queue),
            durable: Some(Arc::clone(&counters)),
        };
        let handle = thread::Builder::new()
            .name("durable-floor".into())
            // The file is removed when the loop ends (the queue removed).
            .spawn(move || durable_echo_loop(q, &template, file.as_file(), &counters))
            .map_err(BenchError::Spawn)?;
        floor.loops.push(handle);
        Ok(floor)
    }

    /// A durable floor's fsync counters, as a journal's; `None` for an echo
    /// floor. See [`EchoFloor::spawn_durable`].
    #[must_use]
    pub fn journal_stats(&self) -> Option<JournalStats> {
        self.durable.as_ref().map(|counters| counters.stats())
    }

    /// Stops the floor (as dropping it does) and returns the write or
    /// fdatasync failure that ended a durable floor's loop, if one did.
    pub(crate) fn stop(mut self) -> Option<std::io::Error> {
        let counters = self.durable.take();
        drop(self);
        counters.and_then(|counters| counters.take_failure())
    }

    /// The queue clients send to; private, so this id is the only way in.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::EchoFloor;
    /// use guichet::Client;
    ///
    /// let floor = EchoFloor::spawn(1)?;
    /// let echoed = Client::from_id(floor.queue_id()).query(7)?; // any event: it is an echo
    /// assert_eq!((echoed.remaining, echoed.capacity), (0, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn queue_id(&self) -> QueueId {
        self.id
    }
}

/// Receive, copy two fields, send: until the queue is removed.
fn echo_loop(queue: Queue, template: &[u8; BODY_SIZE]) {
    let Ok(mut buf) = MessageBuf::truncating(BODY_SIZE) else {
        return;
    };
    let mut reply = *template;
    loop {
        match receive(queue, &mut buf) {
            Ok(()) => {}
            // The queue was removed (or is unusable): the floor is over.
            Err(_) => return,
        }
        let Some((to, id)) = reply_to(buf.body()) else {
            continue;
        };
        reply[REPLY_REQUEST_ID].copy_from_slice(&id);
        // A full queue or a bad tag loses this reply; the client times out
        // and the driver counts an error. Nothing to do here.
        let _ = queue.send(to, &reply, Some(Instant::now()));
    }
}

/// A request's `reply_to` tag and its `request_id` bytes; `None` for a
/// body too short to hold them.
pub(crate) fn reply_to(body: &[u8]) -> Option<(i64, [u8; 8])> {
    let to = body.get(REPLY_TO)?.try_into().ok()?;
    let id = body.get(REQUEST_ID)?.try_into().ok()?;
    Some((i64::from_ne_bytes(to), id))
}

/// Receives as the servers' receive loops do: polls for up to
/// [`Limits::receive_spin_us`](guichet::server::Limits::receive_spin_us)
/// (its default), yielding between attempts, then blocks. Unlike theirs,
/// every loop polls: with `floor:N` above the CPU count they take turns. A floor that
/// always blocked paid a wake-up per request that the servers do not.
pub(crate) fn receive(queue: Queue, buf: &mut MessageBuf) -> Result<(), SysvError> {
    let spin = Duration::from_micros(Limits::default().receive_spin_us.into());
    let started = Instant::now();
    loop {
        // A deadline of now: one attempt with IPC_NOWAIT.
        match queue.recv(REQUEST_MTYPE, buf, Some(Instant::now())) {
            Ok(_) => return Ok(()),
            Err(SysvError::TimedOut { .. }) if started.elapsed() < spin => thread::yield_now(),
            Err(SysvError::TimedOut { .. }) => break,
            Err(error) => return Err(error),
        }
    }
    queue.recv(REQUEST_MTYPE, buf, None).map(|_| ())
}

impl Drop for EchoFloor {
    fn drop(&mut self) {
        // Removing the queue wakes every loop blocked in msgrcv(2) with EIDRM.
        drop(self.queue.take());
        for handle in self.loops.drain(..) {
            let _ = handle.join();
        }
    }
}
