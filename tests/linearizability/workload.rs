//! The clients of the stress tests: threads making mixed calls against one
//! server and recording them (`support/history.rs`).
//!
//! Each thread draws its calls from a seeded [`Rng`]: QUERYs (sometimes of
//! an event that does not exist), RESERVEs of 1 or 2 seats with a
//! server-assigned id or a client-chosen one from a small pool per event
//! (so threads retry, conflict with and cancel each other's ids), and
//! CANCELs of ids the thread was given, of pool ids, or of ids nobody
//! reserved.
//!
//! Some idempotent calls (RESERVE with a client id, CANCEL) are
//! *abandoned*, as by a client that timed out: the request is sent on a
//! reply tag of the thread's own without waiting, and the same call is
//! retried through the patient client until answered. The abandoned call's
//! late reply is read after later calls and recorded then: the call is
//! complete, with an interval that ends when its reply was read (sound
//! however late: the server applied it in between). The exception is an
//! abandoned call that its retry *settled* — the retry found its booking
//! existing, or cancelled it — after which it cannot change anything: such
//! a call is left pending on purpose, its late reply read and dropped, as a
//! client that gave up would. So real histories hold pending calls, but
//! only ones that cannot stay undecided for long: a pending call whose
//! effect stays open (a RESERVE whose retry was SOLD_OUT, say) can take
//! effect at any later point, and a few dozen of those make the checker's
//! search blow up.
//!
//! With [`Workload::holds`], a quarter of the calls are HOLDs (each of a
//! fresh id, or a server-assigned one: the checker needs one HOLD per id to
//! time its expiry; never abandoned) and CONFIRMs of the thread's holds.
//!
//! Every request must be answered: a thread waits for the late replies of
//! all its abandoned calls before it ends. After the threads are done, the
//! main thread QUERYs every event.

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use guichet::sysv::{MessageBuf, Queue, SysvError};
use guichet::wire::{BODY_SIZE, REQUEST_MTYPE};
use guichet::{
    decode_reply, BookingId, Client, ClientBookingId, EventId, Operation, Reply, ReplyTo, Request,
    RequestId, Status,
};

use crate::support::history::{Clock, History, ThreadLog};
use crate::support::rng::Rng;

/// How long a call may wait for its reply: a liveness bound on a shared,
/// noisy machine, not a speed requirement.
pub const PATIENT_MS: u32 = 20_000;

/// Reply tags of abandoned calls are `(pid << 32) | (ABANDON_SLOT + thread)`:
/// above every slot the client library hands out, so no call of a
/// [`Client`] ever reads their replies.
const ABANDON_SLOT: u32 = 1 << 20;

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
    /// Whether HOLDs and CONFIRMs are made.
    pub holds: bool,
}

/// Fresh ids of HOLDs: `HOLD_IDS | thread << 24 | n`, one HOLD each.
const HOLD_IDS: u64 = 1 << 41;

/// A recorded run.
#[derive(Debug)]
pub struct Run {
    /// Every call, the final QUERYs included.
    pub history: History,
    /// Calls abandoned (each also retried).
    pub abandoned: usize,
    /// Of those, how many were left pending.
    pub left_pending: usize,
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

/// Runs `workload` against the server of `queue`.
///
/// # Panics
///
/// If a call gets no reply within [`PATIENT_MS`] (the server is stuck) or
/// fails in the transport: the test fails.
pub fn run(workload: &Workload, queue: Queue) -> Run {
    let clock = Clock::start();
    let patient = Client::from_queue(queue).with_timeout_ms(PATIENT_MS);
    let results: Vec<(ThreadLog, usize, usize)> = thread::scope(|s| {
        let handles: Vec<_> = (0..workload.threads)
            .map(|t| s.spawn(move || client_thread(workload, clock, t, patient, queue)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a client thread failed"))
            .collect()
    });
    let abandoned = results.iter().map(|r| r.1).sum();
    let left_pending = results.iter().map(|r| r.2).sum();
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
        left_pending,
        clock,
    }
}

/// One client thread: returns its log, the calls it abandoned, and how
/// many of those it left pending.
fn client_thread(
    workload: &Workload,
    clock: Clock,
    t: usize,
    patient: Client,
    queue: Queue,
) -> (ThreadLog, usize, usize) {
    let mut log = ThreadLog::new(clock, t);
    let mut rng = Rng::new(workload.seed.wrapping_add(t as u64));
    let mut abandoned = Abandoned::new(queue, t);
    // Ids this thread got from OK replies, to cancel later.
    let mut mine: Vec<u64> = Vec::new();
    let mut my_holds: Vec<u64> = Vec::new();
    for n in 0..workload.calls_per_thread {
        let operation = if workload.holds && rng.below(4) == 0 {
            pick_hold(workload, &mut rng, (t as u64) << 24 | n as u64, &my_holds)
        } else {
            pick(workload, &mut rng, &mine)
        };
        let idempotent = !matches!(
            operation,
            Operation::Query { .. }
                | Operation::Reserve { booking: None, .. }
                | Operation::Hold { .. }
        );
        let reply = if idempotent && rng.chance(workload.abandon_per_mille) {
            let request = abandoned.send(&mut log, operation);
            let reply = patient_call(&mut log, &patient, operation);
            if settles(&operation, &reply) {
                abandoned.give_up(request);
            }
            reply
        } else {
            patient_call(&mut log, &patient, operation)
        };
        abandoned.poll(&mut log);
        if reply.status == Status::Ok {
            match (operation, reply.booking) {
                (Operation::Reserve { .. }, Some(id)) => mine.push(id.get()),
                (Operation::Hold { .. }, Some(id)) => my_holds.push(id.get()),
                _ => {}
            }
        }
    }
    abandoned.drain(&mut log);
    (log, abandoned.sent, abandoned.left_pending)
}

/// Whether `reply`, to a retry of `operation`, leaves an earlier copy of
/// it nothing to change: the booking exists (RESERVE answered OK,
/// BOOKING_CONFLICT or BOOKING_CANCELLED) or is cancelled (CANCEL OK).
fn settles(operation: &Operation, reply: &Reply) -> bool {
    match operation {
        Operation::Reserve { .. } | Operation::Hold { .. } => matches!(
            reply.status,
            Status::Ok | Status::BookingConflict | Status::BookingCancelled | Status::HoldExpired
        ),
        Operation::Cancel { .. } | Operation::Confirm { .. } => {
            matches!(reply.status, Status::Ok | Status::HoldExpired)
        }
        Operation::Query { .. } => false,
    }
}

/// Makes a call through the patient client; it must be answered.
fn patient_call(log: &mut ThreadLog, client: &Client, operation: Operation) -> Reply {
    match log.call(client, operation) {
        Ok(Some(reply)) => reply,
        Ok(None) => panic!("{operation:?}: no reply within {PATIENT_MS} ms: the server is stuck"),
        Err(error) => panic!("{operation:?}: {error}"),
    }
}

/// The calls one thread abandoned, on its own reply tag.
struct Abandoned {
    queue: Queue,
    tag: ReplyTo,
    buf: MessageBuf,
    last_request: u64,
    /// Request id of each call whose reply has not been read: the log
    /// entry to complete with it, or `None` if the call is left pending.
    waiting: HashMap<u64, Option<usize>>,
    sent: usize,
    left_pending: usize,
}

impl Abandoned {
    fn new(queue: Queue, thread: usize) -> Self {
        let pid = i32::try_from(std::process::id()).expect("pid fits a pid_t");
        let slot = ABANDON_SLOT + u32::try_from(thread).expect("few threads");
        Self {
            queue,
            tag: ReplyTo::for_slot(pid, slot).expect("a valid reply tag"),
            buf: MessageBuf::truncating(BODY_SIZE + 1).expect("a receive buffer"),
            last_request: 0,
            waiting: HashMap::new(),
            sent: 0,
            left_pending: 0,
        }
    }

    /// Sends `operation` without waiting, recorded as pending until its
    /// reply is read. Returns its request id.
    fn send(&mut self, log: &mut ThreadLog, operation: Operation) -> u64 {
        self.last_request += 1;
        let request = Request {
            reply_to: self.tag,
            request_id: RequestId(self.last_request),
            operation,
        };
        let index = log.sent(log.clock().now_ns(), operation);
        self.sent += 1;
        match self
            .queue
            .send(REQUEST_MTYPE, &request.encode(), Some(Instant::now()))
        {
            Ok(()) => {
                self.waiting.insert(self.last_request, Some(index));
            }
            // The queue is full: the call never reached the server, and
            // stays pending (which allows it to have had no effect).
            Err(SysvError::TimedOut { .. }) => self.left_pending += 1,
            Err(error) => panic!("{operation:?}: {error}"),
        }
        self.last_request
    }

    /// Leaves call `request` pending: its reply will be read and dropped.
    fn give_up(&mut self, request: u64) {
        if let Some(entry) = self.waiting.get_mut(&request) {
            if entry.take().is_some() {
                self.left_pending += 1;
            }
        }
    }

    /// Reads the replies that have arrived, without waiting.
    fn poll(&mut self, log: &mut ThreadLog) {
        loop {
            let now = Some(Instant::now());
            match self.queue.recv(self.tag.get(), &mut self.buf, now) {
                Ok(_) => self.record(log),
                Err(SysvError::TimedOut { .. }) => return,
                Err(error) => panic!("reading late replies: {error}"),
            }
        }
    }

    /// Reads every reply still due; each must come within [`PATIENT_MS`].
    fn drain(&mut self, log: &mut ThreadLog) {
        let deadline = Instant::now() + Duration::from_millis(PATIENT_MS.into());
        while !self.waiting.is_empty() {
            match self
                .queue
                .recv(self.tag.get(), &mut self.buf, Some(deadline))
            {
                Ok(_) => self.record(log),
                Err(error) => panic!(
                    "{} abandoned calls got no reply within {PATIENT_MS} ms: {error}",
                    self.waiting.len()
                ),
            }
        }
    }

    fn record(&mut self, log: &mut ThreadLog) {
        let reply = decode_reply(self.buf.body()).expect("a v1 reply");
        match self.waiting.remove(&reply.request_id.0) {
            Some(Some(index)) => log.replied(index, reply),
            Some(None) => {} // left pending: the client gave up on it
            None => panic!("a reply to no call of this thread: {reply:?}"),
        }
    }
}

/// A HOLD of a fresh id (`HOLD_IDS | n`) or a server-assigned one, a
/// CONFIRM or a CANCEL of one of `holds`, or a CONFIRM of an id never held.
fn pick_hold(workload: &Workload, rng: &mut Rng, n: u64, holds: &[u64]) -> Operation {
    let events = workload.capacities.len() as u64;
    let event = EventId::new(rng.range(1, events) as u32).expect("events start at 1");
    let quantity = std::num::NonZeroU32::new(rng.range(1, 2) as u32).expect("1 or 2 seats");
    let booking = |raw: u64| BookingId::new(raw).expect("non-zero id");
    match rng.below(10) {
        0..=2 => Operation::Hold {
            event,
            quantity,
            booking: ClientBookingId::new(HOLD_IDS | n),
        },
        3..=4 if workload.server_ids => Operation::Hold {
            event,
            quantity,
            booking: None,
        },
        5..=7 if !holds.is_empty() => Operation::Confirm {
            booking: booking(*rng.pick(holds)),
        },
        8 if !holds.is_empty() => Operation::Cancel {
            booking: booking(*rng.pick(holds)),
        },
        _ => Operation::Confirm {
            booking: booking(NEVER_RESERVED | rng.below(1 << 16)),
        },
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
