//! The load driver: N client threads, each making synchronous round trips
//! through a real [`Client`] for a fixed time, with a latency histogram
//! (or, for the comparison with the C clients, only counting them).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use guichet::client::{Client, ClientError};
use guichet::journal::JournalStats;
use guichet::sysv::QueueId;
use guichet::wire::{Operation, Reply};
use guichet::EventId;
use guichet::Status;

use super::{BenchError, Histogram};

/// Most client threads one measurement runs.
pub const MAX_CLIENTS: usize = 256;
/// Longest warm-up or measurement of one cell.
pub const MAX_PHASE_MS: u32 = 60_000;

/// The one event every bench server holds.
const EVENT: EventId = match EventId::new(1) {
    Some(event) => event,
    None => panic!("1 is an event id"),
};

/// What each client asks, over and over.
///
/// RESERVE exercises the write path (and, on a durable target, the
/// journal); QUERY the read path, which changes nothing; HOLD then CONFIRM
/// a checkout: two changes, two round trips, per operation.
///
/// # Examples
///
/// ```
/// use guichet_bench::Workload;
/// use guichet::wire::Op;
///
/// let workload: Workload = "reserve".parse()?;
/// assert_eq!(workload, Workload::Reserve);
/// assert_eq!(workload.operation().op(), Op::Reserve);
/// assert_eq!(Workload::ALL.map(Workload::name), ["reserve", "query", "hold-confirm"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// RESERVE 1 seat of event 1 (a new booking each time; the bench gives
    /// the event a capacity that never runs out).
    Reserve,
    /// QUERY event 1.
    Query,
    /// HOLD 1 seat of event 1, then CONFIRM that hold: one operation, two
    /// round trips (its latency covers both).
    HoldConfirm,
}

impl Workload {
    /// Every workload, in the order the bench runs them.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Workload;
    ///
    /// assert_eq!(Workload::ALL, [Workload::Reserve, Workload::Query, Workload::HoldConfirm]);
    /// ```
    pub const ALL: [Workload; 3] = [Workload::Reserve, Workload::Query, Workload::HoldConfirm];

    /// The request it sends (first, for [`Workload::HoldConfirm`]): always
    /// to event 1, 1 seat, the server picking the booking id (every bench
    /// target holds just that one event).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Workload;
    /// use guichet::{EventId, Operation};
    ///
    /// let event = EventId::new(1).ok_or("no event 0")?;
    /// assert_eq!(Workload::Query.operation(), Operation::Query { event });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn operation(self) -> Operation {
        match self {
            Workload::Reserve => Operation::Reserve {
                event: EVENT,
                quantity: NonZeroU32::MIN,
                booking: None,
            },
            Workload::Query => Operation::Query { event: EVENT },
            Workload::HoldConfirm => Operation::Hold {
                event: EVENT,
                quantity: NonZeroU32::MIN,
                booking: None,
            },
        }
    }

    /// Its name on the command line and in reports.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Workload;
    ///
    /// assert_eq!(Workload::Query.name(), "query");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Workload::Reserve => "reserve",
            Workload::Query => "query",
            Workload::HoldConfirm => "hold-confirm",
        }
    }
}

impl std::str::FromStr for Workload {
    type Err = BenchError;

    /// The workload of that [name](Workload::name): `reserve`, `query` or
    /// `hold-confirm`.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Workload;
    ///
    /// assert_eq!("query".parse::<Workload>()?, Workload::Query);
    /// assert!("QUERY".parse::<Workload>().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`BenchError::Config`] for any other string (names are lower-case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| {
                BenchError::Config(format!(
                    "{s:?} is not a workload: reserve, query or hold-confirm"
                ))
            })
    }
}

/// How hard and how long to drive one target.
///
/// # Examples
///
/// ```
/// use guichet_bench::Load;
///
/// // A smoke test rather than a measurement: one client, no warm-up, 20 ms.
/// let load = Load { clients: 1, warmup_ms: 0, duration_ms: 20, timeout_ms: 1_000 };
/// assert!(load.warmup_ms + load.duration_ms < load.timeout_ms);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load {
    /// Client threads, 1 to [`MAX_CLIENTS`].
    pub clients: usize,
    /// How long round trips are made, but not measured, first, so caches,
    /// the allocator and the scheduler settle; 0 to [`MAX_PHASE_MS`].
    pub warmup_ms: u32,
    /// The measured time; 1 to [`MAX_PHASE_MS`].
    pub duration_ms: u32,
    /// Each call's timeout; a call that times out counts as an error. 1 to
    /// [`MAX_PHASE_MS`].
    pub timeout_ms: u32,
}

impl Load {
    pub(crate) fn check(&self) -> Result<(), BenchError> {
        if !(1..=MAX_CLIENTS).contains(&self.clients) {
            return Err(BenchError::Config(format!(
                "clients must be 1 to {MAX_CLIENTS}, not {}",
                self.clients
            )));
        }
        if self.warmup_ms > MAX_PHASE_MS || !(1..=MAX_PHASE_MS).contains(&self.duration_ms) {
            return Err(BenchError::Config(format!(
                "warm-up must be 0 to {MAX_PHASE_MS} ms and duration 1 to {MAX_PHASE_MS} ms"
            )));
        }
        if !(1..=MAX_PHASE_MS).contains(&self.timeout_ms) {
            return Err(BenchError::Config(format!(
                "timeout must be 1 to {MAX_PHASE_MS} ms"
            )));
        }
        Ok(())
    }
}

/// What one measurement saw.
///
/// Raw counts: [`Row`](super::Row) turns a cell's rounds of these into the
/// figures a report prints.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use guichet_bench::{Histogram, Measurement};
///
/// let m = Measurement {
///     ops: 500,
///     errors: 0,
///     elapsed: Duration::from_millis(250),
///     latency_ns: Histogram::new(),
///     journal: None,
/// };
/// assert_eq!(m.ops_per_s(), 2_000.0);
/// ```
#[derive(Clone, Debug)]
pub struct Measurement {
    /// Round trips answered OK within the measured time.
    pub ops: u64,
    /// Calls that failed (timeout, transport) or were not answered OK.
    pub errors: u64,
    /// The measured time.
    pub elapsed: Duration,
    /// Latency of each OK round trip, in nanoseconds, as the client saw it
    /// (from before the send to after the reply was decoded).
    pub latency_ns: Histogram,
    /// What the server's journal did in the measured time (`None` for a
    /// target without one).
    pub journal: Option<Synced>,
}

/// A journal's group commits over some time: changes made durable and the
/// `fdatasync`s that did it.
///
/// Their ratio is how well group commit amortises the disk: at 1 change
/// per `fdatasync` every RESERVE pays a full sync.
///
/// # Examples
///
/// ```
/// use guichet_bench::Synced;
///
/// let mut total = Synced { changes: 40, fsyncs: 10, sync_ns: 1_000_000 };
/// total += Synced { changes: 20, fsyncs: 10, sync_ns: 3_000_000 };
/// assert_eq!(total, Synced { changes: 60, fsyncs: 20, sync_ns: 4_000_000 });
/// assert_eq!(total.mean_sync_ns(), Some(200_000));
/// assert_eq!(total.changes_per_fsync(), Some(3.0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Synced {
    /// Changes written and synced.
    pub changes: u64,
    /// Group-commit `fdatasync`s.
    pub fsyncs: u64,
    /// Time spent in their writes and `fdatasync`s, ns.
    pub sync_ns: u64,
}

impl Synced {
    /// What happened between two readings of the same journal's counters.
    ///
    /// Saturates rather than underflows, should `before` be the later
    /// reading.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Synced;
    /// use guichet::journal::JournalStats;
    ///
    /// let before = JournalStats { changes_synced: 100, fsyncs: 40, ..JournalStats::default() };
    /// let after = JournalStats { changes_synced: 160, fsyncs: 50, ..JournalStats::default() };
    /// assert_eq!(
    ///     Synced::between(&before, &after),
    ///     Synced { changes: 60, fsyncs: 10, sync_ns: 0 }
    /// );
    /// assert_eq!(Synced::between(&after, &before), Synced::default());
    /// ```
    #[must_use]
    pub fn between(before: &JournalStats, after: &JournalStats) -> Synced {
        Synced {
            changes: after.changes_synced.saturating_sub(before.changes_synced),
            fsyncs: after.fsyncs.saturating_sub(before.fsyncs),
            sync_ns: after.sync_ns.saturating_sub(before.sync_ns),
        }
    }

    /// Mean write + `fdatasync` of those group commits, ns: what one cost
    /// under the load of the cell (`None` without any).
    #[must_use]
    pub fn mean_sync_ns(&self) -> Option<u64> {
        self.sync_ns.checked_div(self.fsyncs)
    }

    /// Mean changes per `fdatasync` (`None` without any, rather than a
    /// division by zero).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Synced;
    ///
    /// assert_eq!(Synced { changes: 9, fsyncs: 3, sync_ns: 0 }.changes_per_fsync(), Some(3.0));
    /// assert_eq!(Synced::default().changes_per_fsync(), None);
    /// ```
    #[must_use]
    pub fn changes_per_fsync(&self) -> Option<f64> {
        (self.fsyncs > 0).then(|| self.changes as f64 / self.fsyncs as f64)
    }
}

impl std::ops::AddAssign for Synced {
    fn add_assign(&mut self, other: Synced) {
        self.changes += other.changes;
        self.fsyncs += other.fsyncs;
        self.sync_ns += other.sync_ns;
    }
}

impl Measurement {
    /// OK round trips per second over the measured time (0 for an empty
    /// time).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use guichet_bench::{Histogram, Measurement};
    ///
    /// let m = Measurement {
    ///     ops: 30,
    ///     errors: 2,
    ///     elapsed: Duration::from_millis(10),
    ///     latency_ns: Histogram::new(),
    ///     journal: None,
    /// };
    /// assert_eq!(m.ops_per_s(), 3_000.0); // errors do not count
    /// ```
    #[must_use]
    pub fn ops_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }
}

struct Phases {
    measure_from: Instant,
    end: Instant,
}

/// Drives the server on `queue` with `load.clients` threads doing
/// `workload` round trips: a warm-up, then `duration_ms` measured.
///
/// Each thread makes one call at a time through a real
/// [`Client`], as an application would. A target that does
/// not answer is not an error here: its calls time out and are counted in
/// [`Measurement::errors`].
///
/// # Examples
///
/// ```
/// use guichet_bench::{drive, EchoFloor, Load, Workload};
///
/// let floor = EchoFloor::spawn(1)?;
/// let load = Load { clients: 1, warmup_ms: 0, duration_ms: 20, timeout_ms: 1_000 };
/// let m = drive(floor.queue_id(), Workload::Query, load)?;
/// assert_eq!(m.latency_ns.count(), m.ops);
/// assert!(m.journal.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`BenchError::Config`] for a load out of its limits (see [`Load`]);
/// [`BenchError::Spawn`] if a client thread cannot start (those started
/// are stopped first).
pub fn drive(queue: QueueId, workload: Workload, load: Load) -> Result<Measurement, BenchError> {
    drive_sampled(queue, workload, load, &|| None)
}

/// [`drive`], reading the server's journal counters with `journal` when the
/// measured time starts and when it ends, for [`Measurement::journal`].
pub(crate) fn drive_sampled(
    queue: QueueId,
    workload: Workload,
    load: Load,
    journal: &dyn Fn() -> Option<JournalStats>,
) -> Result<Measurement, BenchError> {
    load.check()?;
    let client = Client::from_id(queue).with_timeout_ms(load.timeout_ms);
    // Threads block on this lock until every one has started and the phase
    // times are set (`None` means a spawn failed: stop at once).
    let phases: RwLock<Option<Phases>> = RwLock::new(None);
    let gate = phases.write().unwrap_or_else(PoisonError::into_inner);
    let (results, synced, window) = thread::scope(|scope| {
        let mut handles = Vec::with_capacity(load.clients);
        let mut spawn_error = None;
        for index in 0..load.clients {
            let phases = &phases;
            let spawned = thread::Builder::new()
                .name(format!("bench-client-{index}"))
                .spawn_scoped(scope, move || client_loop(client, workload, phases));
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    spawn_error = Some(error);
                    break;
                }
            }
        }
        let mut gate = gate;
        let mut window = None;
        if spawn_error.is_none() {
            let measure_from = Instant::now() + Duration::from_millis(load.warmup_ms.into());
            let end = measure_from + Duration::from_millis(load.duration_ms.into());
            *gate = Some(Phases { measure_from, end });
            window = Some((measure_from, end));
        }
        drop(gate);
        // The journal's counters at the edges of the measured time, read
        // while the clients run.
        let synced = window.and_then(|(measure_from, end)| {
            sleep_until(measure_from);
            let before = journal()?;
            sleep_until(end);
            let after = journal()?;
            Some(Synced::between(&before, &after))
        });
        let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        match spawn_error {
            Some(error) => Err(BenchError::Spawn(error)),
            None => Ok((results, synced, window)),
        }
    })?;
    let mut total = Measurement {
        ops: 0,
        errors: 0,
        elapsed: Duration::from_millis(load.duration_ms.into()),
        latency_ns: Histogram::new(),
        journal: synced,
    };
    for result in results {
        match result {
            Ok((errors, latency, last_end)) => {
                total.ops += latency.count();
                total.errors += errors;
                total.latency_ns.merge(&latency);
                if let Some((measure_from, _)) = window {
                    total.elapsed = total.elapsed.max(last_end - measure_from);
                }
            }
            // A client thread panicked: count it as an error, not a result.
            Err(_) => total.errors += 1,
        }
    }
    Ok(total)
}

fn sleep_until(deadline: Instant) {
    thread::sleep(deadline.saturating_duration_since(Instant::now()));
}

/// One client: round trips until the end, measuring those that start
/// after the warm-up. Returns the errors, the latencies and when its last
/// measured call ended (the phase's end if earlier).
fn client_loop(
    client: Client,
    workload: Workload,
    phases: &RwLock<Option<Phases>>,
) -> (u64, Histogram, Instant) {
    let operation = workload.operation();
    let mut latency = Histogram::new();
    let mut errors = 0;
    let (measure_from, end) = match &*phases.read().unwrap_or_else(PoisonError::into_inner) {
        Some(p) => (p.measure_from, p.end),
        None => return (errors, latency, Instant::now()),
    };
    // At least one measured call per client, however late it starts: on a
    // loaded machine one round trip can outlast the whole phase, and a cell
    // of zero calls would say nothing. The span measured grows to match.
    let mut last_end = end;
    loop {
        let start = Instant::now();
        if start >= end && (latency.count() > 0 || errors > 0) {
            return (errors, latency, last_end);
        }
        let result = one_operation(&client, workload, operation);
        if start < measure_from {
            continue;
        }
        last_end = last_end.max(Instant::now());
        match result {
            Ok(reply) if reply.status == Status::Ok => {
                let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                latency.record(ns);
            }
            _ => errors += 1,
        }
    }
}

/// One operation of `workload` (`operation` is its first call).
fn one_operation(
    client: &Client,
    workload: Workload,
    operation: Operation,
) -> Result<Reply, ClientError> {
    let result = client.send(operation);
    if let (Workload::HoldConfirm, Ok(held)) = (workload, &result) {
        // The checkout's second half: confirm the hold just made.
        if let (Status::Ok, Some(booking)) = (held.status, held.booking) {
            return client.send(Operation::Confirm { booking });
        }
    }
    result
}

/// Drives the server on `queue` as `bench/c/client.c` does, for the
/// comparison with the C clients: `load.clients` threads, each making one
/// operation at a time until the end, reading the clock once per
/// operation and keeping no latency. Returns the operations that started
/// in the measured time and were answered OK, and the others. As in
/// [`drive`], a client that starts so late that its first operation
/// begins after the end still makes that one and counts it (a loaded
/// machine would otherwise give a cell of nothing).
///
/// [`drive`]'s bookkeeping (two more clock reads and a histogram entry
/// per operation) would be counted against the library's client
/// otherwise: a client polling for its reply spends it on every round
/// trip.
pub(crate) fn count_operations(
    queue: QueueId,
    workload: Workload,
    load: Load,
) -> Result<(u64, u64), BenchError> {
    load.check()?;
    let client = Client::from_id(queue).with_timeout_ms(load.timeout_ms);
    let measure_from = Instant::now() + Duration::from_millis(load.warmup_ms.into());
    let end = measure_from + Duration::from_millis(load.duration_ms.into());
    // Set when a client thread cannot start: the others stop at once.
    let stop = AtomicBool::new(false);
    let counting = || {
        let operation = workload.operation();
        let (mut ok, mut failed) = (0u64, 0u64);
        loop {
            let start = Instant::now();
            if (start >= end && ok + failed > 0) || stop.load(Ordering::Relaxed) {
                return (ok, failed);
            }
            match one_operation(&client, workload, operation) {
                _ if start < measure_from => {}
                Ok(reply) if reply.status == Status::Ok => ok += 1,
                _ => failed += 1,
            }
        }
    };
    thread::scope(|scope| {
        let mut handles = Vec::with_capacity(load.clients);
        let mut spawn_error = None;
        for index in 0..load.clients {
            let spawned = thread::Builder::new()
                .name(format!("bench-client-{index}"))
                .spawn_scoped(scope, counting);
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    stop.store(true, Ordering::Relaxed);
                    spawn_error = Some(error);
                    break;
                }
            }
        }
        let (mut ok, mut failed) = (0, 0);
        for handle in handles {
            // A client thread that panicked counts as an error.
            let (o, f) = handle.join().unwrap_or((0, 1));
            ok += o;
            failed += f;
        }
        spawn_error.map_or(Ok((ok, failed)), |error| Err(BenchError::Spawn(error)))
    })
}
