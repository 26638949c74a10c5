//! The clients of the stress tests: threads making mixed calls against one
//! server and recording them (`support/history.rs`).
//!
//! Each thread draws its calls from a seeded [`Rng`]: QUERYs (sometimes of
//! an event that does not exist), RESERVEs of 1 or 2 seats with a
//! server-assigned id or a client-chosen one from a small pool per event
//! (so threads retry, conflict with and cancel each other's ids), and
//! CANCELs of ids the thread was given, of pool ids, or of ids nobody
//! reserved. Some idempotent calls (RESERVE with a client id, CANCEL) are
//! *abandoned*: sent through a client whose timeout is 0 ms, which sends
//! the request, polls for the reply a few times without sleeping, and
//! gives up unless it is already there, leaving the call pending (its
//! reply arrives later and is discarded by the next call on that reply
//! tag); a pending call is then retried through the patient client until
//! answered, as a real client recovers from a timeout. How many abandoned
//! calls end up pending depends on the dispatch mode and the machine.
//!
//! After the threads are done, the main thread QUERYs every event, so the
//! history ends with the final seat counts.

use std::thread;

use guichet::{BookingId, Client, ClientBookingId, EventId, Operation, Reply, Status};

use crate::support::history::{Clock, History, ThreadLog};
use crate::support::rng::Rng;

/// How long the patient client waits for a reply: a liveness bound on a
/// shared, noisy machine, not a speed requirement.
pub const PATIENT_MS: u32 = 20_000;
/// How long the impatient client waits: not at all, so that abandoned
/// calls are pending whatever the machine's speed.
pub const IMPATIENT_MS: u32 = 0;

/// What the clients do.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The server's events (event 1 first).
    pub capacities: Vec<u32>,
    /// Client threads.
    pub threads: usize,
    /// Calls each thread makes (retries of abandoned calls come on top).
    pub calls_per_thread: usize,
    /// Share of idempotent calls abandoned, per mille.
    pub abandon_per_mille: u64,
    /// Whether RESERVEs without an id (server-assigned) are made.
    pub server_ids: bool,
    /// Client-chosen ids per event: small, so threads collide on them.
    pub id_pool: u64,
    /// Seed of thread `t`'s generator: `seed + t`.
    pub seed: u64,
}

/// A recorded run.
#[derive(Debug)]
pub struct Run {
    /// Every call, the final QUERYs included.
    pub history: History,
    /// Calls sent through the impatient client.
    pub abandoned: usize,
    /// Of those, how many timed out and were retried.
    pub retried: usize,
    /// The clock the history was timed by.
    pub clock: Clock,
}

/// A client-chosen id of event `e`: `e << 16 | k`, so that an id names one
/// event only (the checker keeps events apart; see its partitioning).
fn pool_id(e: u32, k: u64) -> u64 {
    (u64::from(e) << 16) | k
}

/// Ids no RESERVE of this workload ever names.
const NEVER_RESERVED: u64 = 1 << 40;

/// Runs `workload` against the server `patient` and `impatient` reach
/// (the same server, with timeouts [`PATIENT_MS`] and [`IMPATIENT_MS`]).
///
/// # Panics
///
/// If a patient call gets no reply (the server is stuck) or fails in the
/// transport: the test fails.
pub fn run(workload: &Workload, patient: Client, impatient: Client) -> Run {
    let clock = Clock::start();
    let results: Vec<(ThreadLog, usize, usize)> = thread::scope(|s| {
        let handles: Vec<_> = (0..workload.threads)
            .map(|t| s.spawn(move || client_thread(workload, clock, t, patient, impatient)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a client thread failed"))
            .collect()
    });
    let abandoned = results.iter().map(|r| r.1).sum();
    let retried = results.iter().map(|r| r.2).sum();
    let mut logs: Vec<ThreadLog> = results.into_iter().map(|r| r.0).collect();
    let mut last = ThreadLog::new(clock, workload.threads);
    for e in 1..=workload.capacities.len() as u32 {
        let event = EventId::new(e).expect("events start at 1");
        patient_call(&mut last, &patient, Operation::Query { event });
    }
    logs.push(last);
    Run {
        history: History::merge(logs),
        abandoned,
        retried,
        clock,
    }
}

/// One client thread: returns its log, the calls it abandoned, and how
/// many of those it had to retry.
fn client_thread(
    workload: &Workload,
    clock: Clock,
    t: usize,
    patient: Client,
    impatient: Client,
) -> (ThreadLog, usize, usize) {
    let mut log = ThreadLog::new(clock, t);
    let mut rng = Rng::new(workload.seed.wrapping_add(t as u64));
    // Ids this thread got from OK replies, to cancel later.
    let mut mine: Vec<u64> = Vec::new();
    let (mut abandoned, mut retried) = (0, 0);
    for _ in 0..workload.calls_per_thread {
        let operation = pick(workload, &mut rng, &mine);
        let idempotent = !matches!(
            operation,
            Operation::Query { .. } | Operation::Reserve { booking: None, .. }
        );
        let reply = if idempotent && rng.chance(workload.abandon_per_mille) {
            abandoned += 1;
            match log.call(&impatient, operation) {
                Ok(Some(reply)) => reply,
                Ok(None) => {
                    retried += 1;
                    patient_call(&mut log, &patient, operation)
                }
                Err(error) => panic!("thread {t}: {operation:?}: {error}"),
            }
        } else {
            patient_call(&mut log, &patient, operation)
        };
        if reply.status == Status::Ok {
            if let (Operation::Reserve { .. }, Some(id)) = (operation, reply.booking) {
                mine.push(id.get());
            }
        }
    }
    (log, abandoned, retried)
}

/// Makes a call through the patient client; it must be answered.
fn patient_call(log: &mut ThreadLog, client: &Client, operation: Operation) -> Reply {
    match log.call(client, operation) {
        Ok(Some(reply)) => reply,
        Ok(None) => panic!("{operation:?}: no reply within {PATIENT_MS} ms: the server is stuck"),
        Err(error) => panic!("{operation:?}: {error}"),
    }
}

fn pick(workload: &Workload, rng: &mut Rng, mine: &[u64]) -> Operation {
    let events = workload.capacities.len() as u64;
    let e = rng.range(1, events) as u32;
    let event = EventId::new(e).expect("events start at 1");
    let seats = |n: u64| std::num::NonZeroU32::new(n as u32).expect("1 or 2 seats");
    let booking = |raw: u64| BookingId::new(raw).expect("non-zero id");
    let k = rng.range(1, workload.id_pool);
    match rng.below(100) {
        0..=1 => Operation::Query {
            event: EventId::new(e + events as u32).expect("non-zero"),
        },
        2..=19 => Operation::Query { event },
        20..=49 if workload.server_ids => Operation::Reserve {
            event,
            quantity: seats(rng.range(1, 2)),
            booking: None,
        },
        20..=74 => Operation::Reserve {
            event,
            // Mostly one quantity per id, so retries match; sometimes the
            // other, so some are BOOKING_CONFLICT.
            quantity: seats(if rng.chance(100) {
                2 - k % 2
            } else {
                1 + k % 2
            }),
            booking: ClientBookingId::new(pool_id(e, k)),
        },
        75..=89 if !mine.is_empty() => Operation::Cancel {
            booking: booking(*rng.pick(mine)),
        },
        75..=96 => Operation::Cancel {
            booking: booking(pool_id(e, k)),
        },
        _ => Operation::Cancel {
            booking: booking(NEVER_RESERVED | rng.below(1 << 16)),
        },
    }
}
