//! Verification under concurrency: many clients against the real server,
//! over real queues, in every dispatch mode; the recorded history must be
//! linearizable with respect to the sequential reference model, and the
//! ledger left behind must hold its invariants and agree with the history.
//!
//! Then the checker's teeth: a test double of the server with a
//! concurrency bug (stale reads, or a lock released before the write) must
//! be caught, within a bounded number of runs; the same double without its
//! bug must pass.
//!
//! Sizes: 16 client threads × 400 calls per mode by default (a few seconds
//! in all). `GUICHET_LINCHECK_SCALE=N` multiplies the calls per thread,
//! `GUICHET_LINCHECK_THREADS=N` sets the threads,
//! `GUICHET_LINCHECK_ABANDON=N` the idempotent calls abandoned and retried
//! (per mille, 30 by default; see `linearizability/workload.rs`),
//! `GUICHET_LINCHECK_SEED` replays the clients' choices (not the
//! scheduling). Run with `--nocapture` to see history sizes and checking
//! times.

mod support;

#[path = "linearizability/fake_server.rs"]
mod fake_server;
#[path = "linearizability/workload.rs"]
mod workload;

use std::collections::HashSet;

use guichet::ledger::BookingState;
use guichet::server::{Dispatch, Server};
use guichet::sysv::Queue;
use guichet::{Ledger, Operation, Reply, RequestId, Status};

use fake_server::{Bug, FakeServer};
use support::history::{History, Op, Return};
use support::linearizability::{Checker, Failure};
use support::rng::seed_from_env_or_clock;
use workload::Workload;

/// Small capacities: the threads spend the run fighting over the last seats.
const CAPACITIES: [u32; 3] = [2, 3, 6];

fn env_usize(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn stress_workload() -> Workload {
    Workload {
        capacities: CAPACITIES.to_vec(),
        threads: env_usize("GUICHET_LINCHECK_THREADS", 16),
        calls_per_thread: 400 * env_usize("GUICHET_LINCHECK_SCALE", 1),
        abandon_per_mille: env_usize("GUICHET_LINCHECK_ABANDON", 30) as u64,
        server_ids: true,
        id_pool: 16,
        seed: seed_from_env_or_clock("GUICHET_LINCHECK_SEED"),
        holds: false,
    }
}

fn stress(dispatch: Dispatch) {
    stress_with(dispatch, stress_workload(), None);
}

/// Runs `workload` against a server with holds of `hold_ms` (if set) and
/// checks the history (with each hold's expiry as an event, if set).
fn stress_with(dispatch: Dispatch, workload: Workload, hold_ms: Option<u64>) {
    let mut builder = Server::builder().dispatch(dispatch);
    for (i, &capacity) in workload.capacities.iter().enumerate() {
        builder = builder.event(format!("e{}", i + 1), capacity);
    }
    if let Some(hold_ms) = hold_ms {
        builder = builder.hold_ms(hold_ms);
    }
    let server = builder.spawn().unwrap();
    let started = std::time::Instant::now();
    let mut run = workload::run(&workload, Queue::from_id(server.queue_id()));
    let recorded = started.elapsed();
    // The replies are read under the lock: the copy's clock runs on after.
    let (ledger, replies, at_ns) = server
        .with_ledger(|ledger| {
            let replies: Vec<Reply> = ledger
                .events()
                .map(|e| ledger.query(e.id).reply(RequestId(0)))
                .collect();
            (ledger.clone(), replies, run.clock.now_ns())
        })
        .unwrap();
    read_under_lock(&mut run.history, &replies, at_ns, workload.threads + 1);
    let mut checker = Checker::new(&workload.capacities, Ledger::DEFAULT_MAX_BOOKINGS);
    if let Some(hold_ms) = hold_ms {
        checker = checker.hold_ms(hold_ms);
    }
    let checked = checker.check(&run.history);
    let report = match checked {
        Ok(report) => report,
        Err(failure) => panic!(
            "{dispatch} (seed {}): the server's history is not linearizable:\n{failure}",
            workload.seed
        ),
    };
    eprintln!(
        "{dispatch}: {} threads, seed {}: recorded in {:.0} ms ({} abandoned, {} left \
         pending); {}; {}",
        workload.threads,
        workload.seed,
        recorded.as_secs_f64() * 1e3,
        run.abandoned,
        run.left_pending,
        statuses(&run.history),
        report
    );
    audit(&ledger, &run.history);
    server.shutdown().unwrap();
}

/// Adds to `history` one QUERY per event answered from `ledger`, a copy of
/// the server's ledger taken under its lock at `at_ns`, as calls of thread
/// `thread` that took no time: the checker then verifies that the state
/// the server ended in is one the history explains.
///
/// (Comparing the copy with the clients' final QUERYs directly would be a
/// race: an abandoned RESERVE whose retry was answered SOLD_OUT may still
/// be applied late, between those QUERYs and the copy, which is allowed.)
fn read_under_lock(history: &mut History, replies: &[Reply], at_ns: u64, thread: usize) {
    for reply in replies {
        history.ops.push(Op {
            thread,
            invoke_ns: at_ns,
            operation: Operation::Query {
                event: reply.event.expect("a QUERY of a known event names it"),
            },
            ret: Return::Replied {
                at_ns,
                reply: *reply,
            },
        });
    }
}

/// Counts of each reply status, for the log: shows the run had contention.
fn statuses(history: &History) -> String {
    let mut counts = [0usize; Status::ALL.len()];
    for op in &history.ops {
        if let Some(reply) = op.reply() {
            counts[usize::from(reply.status.code())] += 1;
        }
    }
    Status::ALL
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{} {n}", s.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ledger the run left behind: its invariants hold, and every booking
/// agrees with the replies (its seats are checked by the checker, through
/// [`read_under_lock`]).
fn audit(ledger: &Ledger, history: &History) {
    ledger.check_invariants().unwrap();
    let mut issued = HashSet::new();
    let mut named = HashSet::new();
    for op in &history.ops {
        if let Operation::Reserve {
            booking: Some(id), ..
        }
        | Operation::Hold {
            booking: Some(id), ..
        } = op.operation
        {
            named.insert(id.get());
        }
        let Some(reply) = op.reply().filter(|r| r.status == Status::Ok) else {
            continue;
        };
        match op.operation {
            Operation::Query { .. } => {}
            Operation::Reserve { .. } => {
                let id = reply.booking.expect("OK RESERVE names its booking");
                issued.insert(id.get());
                let booking = ledger.booking(id).expect("an OK booking is in the ledger");
                assert_eq!(Some(booking.event), reply.event, "{op:?}");
                assert_eq!(booking.quantity.get(), reply.quantity, "{op:?}");
            }
            Operation::Cancel { booking } => {
                let held = ledger
                    .booking(booking)
                    .expect("a cancelled booking is kept");
                assert_eq!(held.state, BookingState::Cancelled, "{op:?}");
            }
            Operation::Hold { .. } => {
                let id = reply.booking.expect("OK HOLD names its booking");
                issued.insert(id.get());
                let booking = ledger.booking(id).expect("an OK hold is in the ledger");
                assert_eq!(booking.quantity.get(), reply.quantity, "{op:?}");
            }
            Operation::Confirm { booking } => {
                // For good: cancelled since, perhaps, never expired.
                let held = ledger.booking(booking).expect("a confirmed hold is kept");
                assert!(
                    matches!(held.state, BookingState::Active | BookingState::Cancelled),
                    "{op:?}: {held:?}"
                );
            }
        }
    }
    // Every booking is one a reply issued, or one a pending (abandoned)
    // RESERVE with a client id created without anyone hearing of it.
    let pending_server = history
        .ops
        .iter()
        .filter(|op| {
            op.ret == Return::Pending
                && matches!(
                    op.operation,
                    Operation::Reserve { booking: None, .. }
                        | Operation::Hold { booking: None, .. }
                )
        })
        .count();
    let mut unexplained_server = 0;
    for (id, _) in ledger.bookings() {
        if id.is_server_assigned() {
            unexplained_server += usize::from(!issued.contains(&id.get()));
        } else {
            assert!(named.contains(&id.get()), "booking {id} nobody asked for");
        }
    }
    assert!(unexplained_server <= pending_server);
}

/// Holds of 5 ms in a run of hundreds: many expire mid-run, between and
/// during the calls that confirm them, cancel them or read their seats.
#[test]
fn histories_with_holds_expiring_mid_run_are_linearizable() {
    for dispatch in [Dispatch::Pool(4), Dispatch::ThreadPerRequest] {
        let workload = Workload {
            holds: true,
            ..stress_workload()
        };
        stress_with(dispatch, workload, Some(5));
    }
}

#[test]
fn thread_per_request_histories_are_linearizable() {
    stress(Dispatch::ThreadPerRequest);
}

#[test]
fn pool_histories_are_linearizable() {
    stress(Dispatch::Pool(4));
}

#[test]
fn sequential_histories_are_linearizable() {
    stress(Dispatch::Sequential);
}

// ---- the checker's teeth ------------------------------------------------------

/// Runs of the double before giving up on catching its bug.
const ATTEMPTS: usize = 10;

/// A short run without abandoned calls (so that a violation is found by an
/// exhaustive search that stays small) and with client ids only (so that
/// a lost update shows in the seats and bookings, not only in duplicate
/// server ids, which are checked separately).
fn teeth_workload() -> Workload {
    Workload {
        capacities: vec![2, 3],
        threads: 8,
        calls_per_thread: 100,
        abandon_per_mille: 0,
        server_ids: false,
        id_pool: 1_000,
        seed: seed_from_env_or_clock("GUICHET_LINCHECK_SEED"),
        holds: false,
    }
}

/// Runs the double with `bug` until the checker reports a violation, at
/// most [`ATTEMPTS`] times. Returns the attempt that caught it.
fn catch(bug: Bug) -> Option<usize> {
    let workload = teeth_workload();
    let checker = Checker::new(&workload.capacities, Ledger::DEFAULT_MAX_BOOKINGS);
    for attempt in 1..=ATTEMPTS {
        let fake = FakeServer::spawn(&workload.capacities, 4, bug);
        let run = workload::run(&workload, fake.queue());
        drop(fake);
        match checker.check(&run.history) {
            Ok(report) => eprintln!("{bug:?}, attempt {attempt}: not caught: {report}"),
            Err(Failure::NotLinearizable(violation)) => {
                eprintln!(
                    "{bug:?}, attempt {attempt} (seed {}), {} calls: caught\n{violation}",
                    workload.seed,
                    run.history.len()
                );
                return Some(attempt);
            }
            Err(other) => panic!("{bug:?}: expected a linearizability violation, got: {other}"),
        }
    }
    None
}

#[test]
fn the_checker_catches_a_server_that_answers_queries_from_a_stale_snapshot() {
    assert!(
        catch(Bug::StaleQueries).is_some(),
        "stale reads went unnoticed in {ATTEMPTS} runs"
    );
}

#[test]
fn the_checker_catches_a_server_that_writes_after_releasing_its_lock() {
    assert!(
        catch(Bug::EarlyUnlock).is_some(),
        "lost updates went unnoticed in {ATTEMPTS} runs"
    );
}

#[test]
fn the_double_without_its_bug_passes() {
    // The control: what the teeth tests catch is the bug, not the double.
    let workload = teeth_workload();
    let checker = Checker::new(&workload.capacities, Ledger::DEFAULT_MAX_BOOKINGS);
    for _ in 0..3 {
        let fake = FakeServer::spawn(&workload.capacities, 4, Bug::None);
        let mut run = workload::run(&workload, fake.queue());
        // No call was abandoned and every client is done: the double is
        // idle, so a copy of its ledger is its final state.
        let ledger = fake.ledger();
        let replies: Vec<Reply> = ledger
            .events()
            .map(|e| ledger.query(e.id).reply(RequestId(0)))
            .collect();
        read_under_lock(
            &mut run.history,
            &replies,
            run.clock.now_ns(),
            workload.threads + 1,
        );
        drop(fake);
        match checker.check(&run.history) {
            Ok(report) => eprintln!("no bug: {report}"),
            Err(failure) => panic!("the correct double failed the check: {failure}"),
        }
        audit(&ledger, &run.history);
    }
}
