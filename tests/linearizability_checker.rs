//! The linearizability checker's own tests (`support/linearizability.rs`).
//!
//! Hand-written histories it must accept, and the three kinds it must
//! reject (an oversell, a lost cancel, a stale read ordered after a write
//! that finished before it began), plus pending calls, server-assigned
//! ids, and the partitioning rules. Then histories of a simulated
//! linearizable server (thousands of calls, pending ones included), which
//! it must all accept, and the same with one reply made impossible, which
//! it must reject. Checking times are printed (`--nocapture`), not asserted.
//!
//! `GUICHET_LINCHECK_SEED` replays the random cases; `GUICHET_LINCHECK_SCALE`
//! multiplies their sizes.

mod support;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::num::NonZeroU32;

use guichet::{BookingId, ClientBookingId, EventId, Operation, Reply, RequestId, Status};

use support::history::{History, Op, Return};
use support::linearizability::{check_server_ids, Checker, Failure};
use support::model::Model;
use support::rng::{seed_from_env_or_clock, Rng};

const SERVER: u64 = 1 << 63;
const ROOMY: usize = 1 << 20;

// ---- building histories by hand -------------------------------------------

fn event(n: u32) -> EventId {
    EventId::new(n).unwrap()
}

fn query(e: u32) -> Operation {
    Operation::Query { event: event(e) }
}

fn reserve(e: u32, seats: u32, id: Option<u64>) -> Operation {
    Operation::Reserve {
        event: event(e),
        quantity: NonZeroU32::new(seats).unwrap(),
        booking: id.map(|id| ClientBookingId::new(id).unwrap()),
    }
}

fn cancel(id: u64) -> Operation {
    Operation::Cancel {
        booking: BookingId::new(id).unwrap(),
    }
}

/// A reply as the server fills it (request id 0: the checker ignores it).
fn reply(status: Status, booking: u64, e: u32, qty: u32, remaining: u32, capacity: u32) -> Reply {
    Reply {
        status,
        request_id: RequestId(0),
        booking: BookingId::new(booking),
        event: EventId::new(e),
        quantity: qty,
        remaining,
        capacity,
    }
}

/// QUERY answered OK.
fn seats(e: u32, remaining: u32, capacity: u32) -> Reply {
    reply(Status::Ok, 0, e, 0, remaining, capacity)
}

/// RESERVE or CANCEL answered OK.
fn booked(id: u64, e: u32, qty: u32, remaining: u32, capacity: u32) -> Reply {
    reply(Status::Ok, id, e, qty, remaining, capacity)
}

fn sold_out(e: u32, remaining: u32, capacity: u32) -> Reply {
    reply(Status::SoldOut, 0, e, 0, remaining, capacity)
}

/// A completed call of `thread` over `[invoke, ret]`.
fn call(thread: usize, invoke: u64, ret: u64, operation: Operation, reply: Reply) -> Op {
    Op {
        thread,
        invoke_ns: invoke,
        operation,
        ret: Return::Replied { at_ns: ret, reply },
    }
}

/// A call of `thread` invoked at `invoke` that never got a reply.
fn pending(thread: usize, invoke: u64, operation: Operation) -> Op {
    Op {
        thread,
        invoke_ns: invoke,
        operation,
        ret: Return::Pending,
    }
}

fn check(capacities: &[u32], ops: Vec<Op>) -> Result<(), Failure> {
    check_with(capacities, ROOMY, ops)
}

fn check_with(capacities: &[u32], max_bookings: usize, ops: Vec<Op>) -> Result<(), Failure> {
    Checker::new(capacities, max_bookings)
        .check(&History::from_ops(ops))
        .map(|_| ())
}

#[track_caller]
fn assert_linearizable(capacities: &[u32], ops: Vec<Op>) {
    if let Err(failure) = check(capacities, ops) {
        panic!("expected linearizable, got: {failure}");
    }
}

#[track_caller]
fn assert_not_linearizable(capacities: &[u32], ops: Vec<Op>) {
    match check(capacities, ops) {
        Err(Failure::NotLinearizable(v)) => eprintln!("rejected as expected:\n{v}"),
        other => panic!("expected NotLinearizable, got {other:?}"),
    }
}

// ---- accepted ---------------------------------------------------------------

#[test]
fn accepts_a_sequential_history() {
    assert_linearizable(
        &[2],
        vec![
            call(0, 0, 10, query(1), seats(1, 2, 2)),
            call(0, 20, 30, reserve(1, 2, Some(7)), booked(7, 1, 2, 0, 2)),
            call(1, 40, 50, reserve(1, 1, None), sold_out(1, 0, 2)),
            call(1, 60, 70, reserve(1, 2, Some(7)), booked(7, 1, 2, 0, 2)),
            call(0, 80, 90, cancel(7), booked(7, 1, 2, 2, 2)),
            call(0, 100, 110, cancel(7), booked(7, 1, 2, 2, 2)),
            call(
                1,
                120,
                130,
                reserve(1, 2, Some(7)),
                reply(Status::BookingCancelled, 7, 1, 0, 2, 2),
            ),
            call(
                1,
                140,
                150,
                reserve(1, 1, Some(7)),
                reply(Status::BookingConflict, 7, 1, 0, 2, 2),
            ),
            call(
                0,
                160,
                170,
                cancel(99),
                reply(Status::UnknownBooking, 99, 0, 0, 0, 0),
            ),
            call(
                0,
                180,
                190,
                query(9),
                reply(Status::UnknownEvent, 0, 9, 0, 0, 0),
            ),
        ],
    );
}

#[test]
fn accepts_overlapping_calls_in_an_order_other_than_invocation() {
    // Both reserves overlap; the one invoked second took the first seat.
    assert_linearizable(
        &[2],
        vec![
            call(0, 0, 100, reserve(1, 1, Some(1)), booked(1, 1, 1, 0, 2)),
            call(1, 10, 50, reserve(1, 1, Some(2)), booked(2, 1, 1, 1, 2)),
            // A read overlapping both may see either state, including the
            // one between them.
            call(2, 5, 90, query(1), seats(1, 1, 2)),
        ],
    );
}

#[test]
fn accepts_a_read_that_overlaps_the_write_it_misses() {
    assert_linearizable(
        &[2],
        vec![
            call(0, 0, 100, reserve(1, 1, Some(1)), booked(1, 1, 1, 1, 2)),
            call(1, 50, 150, query(1), seats(1, 2, 2)),
        ],
    );
}

// ---- the three kinds that must be rejected -----------------------------------

#[test]
fn rejects_an_oversell() {
    // Two overlapping reserves of the only seat, both answered OK.
    assert_not_linearizable(
        &[1],
        vec![
            call(0, 0, 100, reserve(1, 1, Some(1)), booked(1, 1, 1, 0, 1)),
            call(1, 10, 110, reserve(1, 1, Some(2)), booked(2, 1, 1, 0, 1)),
        ],
    );
    // The same with server-assigned ids and a query in between.
    assert_not_linearizable(
        &[3],
        vec![
            call(
                0,
                0,
                10,
                reserve(1, 2, None),
                booked(SERVER | 1, 1, 2, 1, 3),
            ),
            call(1, 20, 30, query(1), seats(1, 1, 3)),
            call(
                2,
                40,
                50,
                reserve(1, 2, None),
                booked(SERVER | 2, 1, 2, 0, 3),
            ),
        ],
    );
}

#[test]
fn rejects_a_lost_cancel() {
    // The cancel answered OK, yet a reserve that began after it finished
    // finds the seat still taken.
    assert_not_linearizable(
        &[1],
        vec![
            call(0, 0, 10, reserve(1, 1, Some(5)), booked(5, 1, 1, 0, 1)),
            call(0, 20, 30, cancel(5), booked(5, 1, 1, 1, 1)),
            call(1, 40, 50, reserve(1, 1, None), sold_out(1, 0, 1)),
        ],
    );
    // ...or the booking it cancelled is later answered as active.
    assert_not_linearizable(
        &[2],
        vec![
            call(0, 0, 10, reserve(1, 1, Some(5)), booked(5, 1, 1, 1, 2)),
            call(1, 20, 30, cancel(5), booked(5, 1, 1, 2, 2)),
            call(0, 40, 50, reserve(1, 1, Some(5)), booked(5, 1, 1, 1, 2)),
        ],
    );
}

#[test]
fn rejects_a_stale_read_after_a_write_that_finished_before_it_began() {
    assert_not_linearizable(
        &[2],
        vec![
            call(0, 0, 100, reserve(1, 1, Some(1)), booked(1, 1, 1, 1, 2)),
            call(1, 101, 150, query(1), seats(1, 2, 2)),
        ],
    );
}

#[test]
fn a_wide_window_of_concurrent_reads_is_searched_without_trying_their_subsets() {
    // 30 queries overlap a reserve, some seeing it and some not; a read
    // after everything is stale. Trying subsets of the queries would take
    // 2^30 configurations before the violation is proved; reads that fit
    // are linearized at once, so a small budget suffices.
    let mut ops = vec![call(
        0,
        0,
        1000,
        reserve(1, 1, Some(1)),
        booked(1, 1, 1, 1, 2),
    )];
    for q in 0..30u64 {
        let remaining = if q % 2 == 0 { 2 } else { 1 };
        ops.push(call(
            1 + q as usize,
            10 + q,
            990,
            query(1),
            seats(1, remaining, 2),
        ));
    }
    ops.push(call(99, 2000, 2010, query(1), seats(1, 2, 2)));
    let checked = Checker::new(&[2], ROOMY)
        .max_states(1_000)
        .check(&History::from_ops(ops));
    assert!(
        matches!(checked, Err(Failure::NotLinearizable(_))),
        "{checked:?}"
    );
}

// ---- pending calls ------------------------------------------------------------

#[test]
fn a_pending_call_may_take_effect_or_not() {
    let base = || pending(0, 0, reserve(1, 1, Some(7)));
    // Took effect: a later read sees the seat gone.
    assert_linearizable(
        &[1],
        vec![base(), call(1, 500, 510, query(1), seats(1, 0, 1))],
    );
    // Did not (yet): a later read sees it free.
    assert_linearizable(
        &[1],
        vec![base(), call(1, 500, 510, query(1), seats(1, 1, 1))],
    );
    // Both, in real-time order: it took effect between the two reads.
    assert_linearizable(
        &[1],
        vec![
            base(),
            call(1, 500, 510, query(1), seats(1, 1, 1)),
            call(1, 600, 610, query(1), seats(1, 0, 1)),
        ],
    );
    // A retry with the same id resolves it either way.
    assert_linearizable(
        &[1],
        vec![
            base(),
            call(0, 300, 400, reserve(1, 1, Some(7)), booked(7, 1, 1, 0, 1)),
            call(1, 500, 510, query(1), seats(1, 0, 1)),
        ],
    );
}

#[test]
fn a_pending_call_takes_effect_only_after_its_invocation() {
    assert_not_linearizable(
        &[1],
        vec![
            call(1, 0, 10, query(1), seats(1, 0, 1)),
            pending(0, 20, reserve(1, 1, Some(7))),
        ],
    );
}

#[test]
fn a_pending_call_takes_effect_at_most_once() {
    // One pending reserve of 1 seat cannot take 2.
    assert_not_linearizable(
        &[2],
        vec![
            pending(0, 0, reserve(1, 1, None)),
            call(1, 500, 510, query(1), seats(1, 0, 2)),
        ],
    );
    // Its effect cannot be undone by itself either: after a read that sees
    // it, another read that does not is a stale read.
    assert_not_linearizable(
        &[2],
        vec![
            pending(0, 0, cancel(3)),
            call(1, 10, 20, reserve(1, 2, Some(3)), booked(3, 1, 2, 0, 2)),
            call(1, 30, 40, query(1), seats(1, 2, 2)),
            call(1, 50, 60, query(1), seats(1, 0, 2)),
        ],
    );
}

// ---- server-assigned ids -----------------------------------------------------

#[test]
fn server_ids_are_opaque_names_across_events() {
    // Two events; the server numbered their bookings in one sequence, in an
    // order the per-event check cannot see (the calls overlap).
    assert_linearizable(
        &[1, 1],
        vec![
            call(
                0,
                0,
                100,
                reserve(1, 1, None),
                booked(SERVER | 2, 1, 1, 0, 1),
            ),
            call(
                1,
                10,
                90,
                reserve(2, 1, None),
                booked(SERVER | 1, 2, 1, 0, 1),
            ),
            call(
                0,
                200,
                210,
                cancel(SERVER | 1),
                booked(SERVER | 1, 2, 1, 1, 1),
            ),
            call(
                1,
                220,
                230,
                cancel(SERVER | 2),
                booked(SERVER | 2, 1, 1, 1, 1),
            ),
            call(0, 240, 250, query(2), seats(2, 1, 1)),
        ],
    );
    // A cancel answered about the wrong event is caught.
    assert_not_linearizable(
        &[1, 1],
        vec![
            call(
                0,
                0,
                100,
                reserve(1, 1, None),
                booked(SERVER | 1, 1, 1, 0, 1),
            ),
            call(
                1,
                200,
                210,
                cancel(SERVER | 1),
                booked(SERVER | 1, 2, 1, 1, 1),
            ),
        ],
    );
}

#[test]
fn server_ids_must_form_one_sequence_in_real_time() {
    let ids = |ops: Vec<Op>| check_server_ids(&History::from_ops(ops));
    let r = |t, i, n, e| {
        call(
            t,
            i,
            i + 10,
            reserve(e, 1, None),
            booked(SERVER | n, e, 1, 0, 5),
        )
    };
    assert_eq!(
        ids(vec![r(0, 0, 1, 1), r(1, 5, 2, 2), r(0, 20, 3, 1)]).ok(),
        Some(3)
    );
    // Duplicate.
    assert!(matches!(
        ids(vec![r(0, 0, 1, 1), r(1, 20, 1, 2)]),
        Err(Failure::ServerIds(_))
    ));
    // Against real time: the later call got the smaller id.
    assert!(matches!(
        ids(vec![r(0, 0, 2, 1), r(1, 20, 1, 2)]),
        Err(Failure::ServerIds(_))
    ));
    // A gap needs a pending RESERVE to explain it.
    assert!(matches!(
        ids(vec![r(0, 0, 1, 1), r(1, 20, 3, 2)]),
        Err(Failure::ServerIds(_))
    ));
    assert_eq!(
        ids(vec![
            r(0, 0, 1, 1),
            pending(2, 5, reserve(1, 1, None)),
            r(1, 20, 3, 2)
        ])
        .ok(),
        Some(2)
    );
    // An OK without a server id.
    assert!(matches!(
        ids(vec![call(
            0,
            0,
            10,
            reserve(1, 1, None),
            booked(4, 1, 1, 0, 1)
        )]),
        Err(Failure::ServerIds(_))
    ));
    // And the full check runs it.
    assert!(matches!(
        check(&[5, 5], vec![r(0, 0, 1, 1), r(1, 20, 1, 2)]),
        Err(Failure::ServerIds(_))
    ));
}

#[test]
fn a_cancel_of_a_server_id_no_reply_issued_is_refused_only_when_ambiguous() {
    let stray = call(
        1,
        50,
        60,
        cancel(SERVER | 9),
        reply(Status::UnknownBooking, SERVER | 9, 0, 0, 0, 0),
    );
    // With no RESERVE pending, nobody can have created it.
    assert_linearizable(&[1], vec![stray]);
    assert!(matches!(
        check(&[1], vec![pending(0, 0, reserve(1, 1, None)), stray]),
        Err(Failure::Unsupported(_))
    ));
}

// ---- partitioning -------------------------------------------------------------

#[test]
fn a_client_id_used_on_two_events_links_them() {
    // Id 5 exists on event 1 when the RESERVE on event 2 begins: the only
    // right answer is BOOKING_CONFLICT naming event 1 and its seats. Checked
    // per event without the link, the OK below would pass.
    let first = call(0, 0, 10, reserve(1, 1, Some(5)), booked(5, 1, 1, 2, 3));
    assert_linearizable(
        &[3, 3],
        vec![
            first,
            call(
                1,
                20,
                30,
                reserve(2, 1, Some(5)),
                reply(Status::BookingConflict, 5, 1, 0, 2, 3),
            ),
        ],
    );
    assert_not_linearizable(
        &[3, 3],
        vec![
            first,
            call(1, 20, 30, reserve(2, 1, Some(5)), booked(5, 2, 1, 2, 3)),
        ],
    );
}

#[test]
fn ledger_full_is_checked_across_events() {
    // max_bookings 1: the booking on event 1 fills the ledger for event 2.
    let ops = vec![
        call(
            0,
            0,
            10,
            reserve(1, 1, None),
            booked(SERVER | 1, 1, 1, 4, 5),
        ),
        call(
            1,
            20,
            30,
            reserve(2, 1, None),
            reply(Status::LedgerFull, 0, 2, 0, 5, 5),
        ),
    ];
    assert!(check_with(&[5, 5], 1, ops.clone()).is_ok());
    // With room for both, LEDGER_FULL is wrong.
    assert!(matches!(
        check_with(&[5, 5], 2, ops),
        Err(Failure::NotLinearizable(_))
    ));
}

#[test]
fn a_cancel_no_reserve_named_must_answer_unknown_booking() {
    assert_not_linearizable(
        &[1],
        vec![call(0, 0, 10, cancel(42), booked(42, 1, 1, 1, 1))],
    );
}

// ---- histories of a simulated linearizable server ------------------------------

/// A simulated run: `threads` clients each make `calls` calls against an
/// atomic server (the model), each taking effect at a random point inside
/// its interval. Some calls are left pending: they take effect later, at
/// a random point, or never. Clients cancel ids they saw issued, reuse a
/// small pool of client ids per event, and sometimes one of another event.
struct Simulation {
    capacities: Vec<u32>,
    max_bookings: usize,
    threads: usize,
    calls: usize,
    pending_per_mille: u64,
    /// RESERVEs naming a client id of another event (which links them).
    cross_event_per_mille: u64,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// A linearization point: apply call `op` to the model.
    Apply(usize),
    /// Thread `t` is free to invoke its next call.
    Invoke(usize),
}

impl Simulation {
    fn run(&self, seed: u64) -> History {
        let mut rng = Rng::new(seed);
        let mut model = Model::new(&self.capacities, self.max_bookings);
        let events = self.capacities.len() as u64;
        let mut ops: Vec<Op> = Vec::new();
        // When each call returns; `None` for a pending one.
        let mut return_at: Vec<Option<u64>> = Vec::new();
        let mut made = vec![0usize; self.threads];
        // Ids some client has learned from a reply that has returned.
        let mut known: Vec<u64> = Vec::new();
        let mut queue: BinaryHeap<Reverse<(u64, Step)>> = (0..self.threads)
            .map(|t| Reverse((rng.below(50), Step::Invoke(t))))
            .collect();
        // Returns scheduled but not yet reached, per thread: (at, op).
        let mut returning: Vec<Option<(u64, usize)>> = vec![None; self.threads];
        while let Some(Reverse((now, step))) = queue.pop() {
            // Deliver returns due by now first, so `known` is real-time.
            for slot in returning.iter_mut() {
                if let Some((at, i)) = *slot {
                    if at < now {
                        if let Some(b) = ops[i]
                            .reply()
                            .filter(|r| r.status == Status::Ok)
                            .and_then(|r| r.booking)
                        {
                            known.push(b.get());
                        }
                        *slot = None;
                    }
                }
            }
            match step {
                Step::Apply(i) => {
                    let (reply, _) = model.apply(&ops[i].operation);
                    if let Some(at_ns) = return_at[i] {
                        ops[i].ret = Return::Replied { at_ns, reply };
                    }
                }
                Step::Invoke(t) => {
                    if made[t] == self.calls {
                        continue;
                    }
                    made[t] += 1;
                    let operation = self.pick(&mut rng, events, &known);
                    let duration = rng.range(1, 200);
                    let i = ops.len();
                    let is_pending = rng.chance(self.pending_per_mille);
                    ops.push(Op {
                        thread: t,
                        invoke_ns: now,
                        operation,
                        ret: Return::Pending,
                    });
                    if is_pending {
                        return_at.push(None);
                        if rng.chance(500) {
                            // Takes effect some time later, maybe much later.
                            let at = now + rng.range(0, 10 * duration);
                            queue.push(Reverse((at, Step::Apply(i))));
                        }
                    } else {
                        return_at.push(Some(now + duration));
                        queue.push(Reverse((now + rng.range(0, duration), Step::Apply(i))));
                        returning[t] = Some((now + duration, i));
                    }
                    // The thread's next call: after the return, or after a
                    // timeout for a pending one.
                    queue.push(Reverse((
                        now + duration + 1 + rng.below(20),
                        Step::Invoke(t),
                    )));
                }
            }
        }
        History::from_ops(ops)
    }

    fn pick(&self, rng: &mut Rng, events: u64, known: &[u64]) -> Operation {
        let e = rng.range(1, events) as u32;
        let seats = rng.range(1, 2) as u32;
        let pool_id = |rng: &mut Rng, e: u32| (u64::from(e) << 8) | rng.range(1, 12);
        if rng.chance(self.cross_event_per_mille) {
            let other = rng.range(1, events) as u32;
            return reserve(e, seats, Some(pool_id(rng, other)));
        }
        match rng.below(100) {
            0..=19 => query(e),
            20..=49 => reserve(e, seats, None),
            50..=71 => reserve(e, seats, Some(pool_id(rng, e))),
            72..=73 => query(rng.range(1, events + 1) as u32), // sometimes unknown
            74..=89 if !known.is_empty() => cancel(*rng.pick(known)),
            74..=94 => cancel(pool_id(rng, e)),
            _ => cancel((1 << 40) | rng.below(1000)), // never reserved
        }
    }
}

fn scale() -> usize {
    std::env::var("GUICHET_LINCHECK_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

#[test]
fn histories_of_a_simulated_linearizable_server_are_accepted() {
    let seed = seed_from_env_or_clock("GUICHET_LINCHECK_SEED");
    eprintln!("seed {seed} (GUICHET_LINCHECK_SEED={seed} replays it)");
    let mut rng = Rng::new(seed);
    let (mut ops, mut pending, mut states) = (0, 0, 0);
    for case in 0..200 * scale() {
        let sim = Simulation {
            capacities: (0..rng.range(1, 3))
                .map(|_| rng.range(0, 4) as u32)
                .collect(),
            // Sometimes small enough for LEDGER_FULL (one part then).
            max_bookings: if rng.chance(200) {
                rng.range(1, 20) as usize
            } else {
                ROOMY
            },
            threads: rng.range(1, 8) as usize,
            calls: rng.range(1, 25) as usize,
            pending_per_mille: rng.range(0, 100),
            cross_event_per_mille: rng.range(0, 50),
        };
        let case_seed = rng.next_u64();
        let history = sim.run(case_seed);
        match Checker::new(&sim.capacities, sim.max_bookings).check(&history) {
            Ok(report) => {
                ops += report.ops;
                pending += report.pending;
                states += report.states;
            }
            Err(failure) => panic!(
                "case {case} (seed {case_seed}, capacities {:?}, max_bookings {}): a \
                 linearizable history was refused: {failure}\n{history:#?}",
                sim.capacities, sim.max_bookings
            ),
        }
    }
    eprintln!("accepted {ops} calls ({pending} pending), {states} states explored");
}

#[test]
fn histories_of_thousands_of_calls_check_quickly_and_corruption_is_caught() {
    let seed = seed_from_env_or_clock("GUICHET_LINCHECK_SEED");
    eprintln!("seed {seed} (GUICHET_LINCHECK_SEED={seed} replays it)");
    let mut rng = Rng::new(seed);
    for (threads, calls) in [(8, 250 * scale()), (16, 625 * scale())] {
        let sim = Simulation {
            capacities: vec![3, 5, 8],
            max_bookings: ROOMY,
            threads,
            calls,
            pending_per_mille: 10,
            cross_event_per_mille: 0,
        };
        let history = sim.run(rng.next_u64());
        let checker = Checker::new(&sim.capacities, sim.max_bookings);
        match checker.check(&history) {
            Ok(report) => eprintln!("{threads} threads: {report}"),
            Err(failure) => panic!("a linearizable history was refused: {failure}"),
        }
        // One completed QUERY, a tenth of the way in, now claims more seats
        // than the event has: no order explains that. (Early, because to
        // prove a violation the search must exhaust every configuration
        // before it.)
        let mut corrupt = history.clone();
        let skip = corrupt.len() / 10;
        let target = corrupt
            .ops
            .iter_mut()
            .skip(skip)
            .find(|op| {
                matches!(op.operation, Operation::Query { event } if event.get() <= 3)
                    && matches!(op.ret, Return::Replied { reply, .. } if reply.status == Status::Ok)
            })
            .expect("some completed query");
        if let Return::Replied { reply, .. } = &mut target.ret {
            reply.remaining = reply.capacity + 1;
        }
        let started = std::time::Instant::now();
        match checker.check(&corrupt) {
            Err(Failure::NotLinearizable(v)) => eprintln!(
                "{threads} threads: corruption caught in {:.1} ms:\n{v}",
                started.elapsed().as_secs_f64() * 1e3
            ),
            other => panic!("corrupted history not rejected: {other:?}"),
        }
    }
}

// ---- holds and their expiry ---------------------------------------------------

/// The hold duration of the hand-written hold histories, in ms (of 1,000,000 ns).
const HOLD_MS: u64 = 10;
const MS: u64 = 1_000_000;

fn hold(e: u32, seats: u32, id: Option<u64>) -> Operation {
    Operation::Hold {
        event: event(e),
        quantity: NonZeroU32::new(seats).unwrap(),
        booking: id.map(|id| ClientBookingId::new(id).unwrap()),
    }
}

fn confirm(id: u64) -> Operation {
    Operation::Confirm {
        booking: BookingId::new(id).unwrap(),
    }
}

fn expired(id: u64, e: u32, remaining: u32, capacity: u32) -> Reply {
    reply(Status::HoldExpired, id, e, 0, remaining, capacity)
}

fn check_holds(capacities: &[u32], ops: Vec<Op>) -> Result<(), Failure> {
    Checker::new(capacities, ROOMY)
        .hold_ms(HOLD_MS)
        .check(&History::from_ops(ops))
        .map(|_| ())
}

/// A hold at `[0, 10]` ns of 2 seats of 3, id 5, then `rest`.
fn after_a_hold(rest: Vec<Op>) -> Vec<Op> {
    let mut ops = vec![call(0, 0, 10, hold(1, 2, Some(5)), booked(5, 1, 2, 1, 3))];
    ops.extend(rest);
    ops
}

#[test]
fn accepts_holds_confirmed_in_time_and_expired_after_their_deadline() {
    let late = 2 * HOLD_MS * MS + 10 * EXPIRY_SLACK;
    for ops in [
        // Confirmed in time: for good, even long after.
        after_a_hold(vec![
            call(0, 20, 30, confirm(5), booked(5, 1, 2, 1, 3)),
            call(0, late, late + 10, query(1), seats(1, 1, 3)),
            call(0, late + 20, late + 30, confirm(5), booked(5, 1, 2, 1, 3)),
        ]),
        // Not confirmed: the seats are back for whatever starts after.
        after_a_hold(vec![
            call(0, late, late + 10, query(1), seats(1, 3, 3)),
            call(0, late + 20, late + 30, confirm(5), expired(5, 1, 3, 3)),
            call(0, late + 40, late + 50, cancel(5), expired(5, 1, 3, 3)),
            call(
                0,
                late + 60,
                late + 70,
                hold(1, 2, Some(6)),
                booked(6, 1, 2, 1, 3),
            ),
        ]),
        // A call overlapping the deadline may see either side of it.
        after_a_hold(vec![
            call(
                1,
                HOLD_MS * MS - 10,
                HOLD_MS * MS + 10,
                query(1),
                seats(1, 1, 3),
            ),
            call(
                2,
                HOLD_MS * MS - 10,
                HOLD_MS * MS + 10,
                query(1),
                seats(1, 3, 3),
            ),
        ]),
    ] {
        if let Err(failure) = check_holds(&[3], ops) {
            panic!("expected linearizable, got: {failure}");
        }
    }
}

/// Must be rejected: an OK to a CONFIRM that starts after the deadline,
/// and a QUERY after the deadline that misses the expiry.
#[test]
fn rejects_a_hold_confirmed_after_its_expiry_and_a_read_missing_an_expiry() {
    let late = 2 * HOLD_MS * MS + 10 * EXPIRY_SLACK;
    for ops in [
        after_a_hold(vec![call(
            0,
            late,
            late + 10,
            confirm(5),
            booked(5, 1, 2, 1, 3),
        )]),
        after_a_hold(vec![call(0, late, late + 10, query(1), seats(1, 1, 3))]),
        // Nor may the seats come back before the hold could have expired.
        after_a_hold(vec![call(0, 20, 30, query(1), seats(1, 3, 3))]),
    ] {
        match check_holds(&[3], ops) {
            Err(Failure::NotLinearizable(v)) => eprintln!("rejected as expected:\n{v}"),
            other => panic!("expected NotLinearizable, got {other:?}"),
        }
    }
}

/// Without a hold duration the checker never expires a hold, and it
/// refuses to guess which of two HOLDs of one id made it when it must.
#[test]
fn expiries_need_one_hold_per_id() {
    let ops = after_a_hold(vec![call(
        0,
        20,
        30,
        hold(1, 2, Some(5)),
        booked(5, 1, 2, 1, 3),
    )]);
    assert_linearizable(&[3], ops.clone());
    assert!(matches!(
        check_holds(&[3], ops),
        Err(Failure::Unsupported(_))
    ));
}

/// Slack the checker allows around a deadline (2 ms), in ns.
const EXPIRY_SLACK: u64 = 2 * MS;

// ---- classic calls ----------------------------------------------------------

use support::history::{ClassicCall, ClassicOp, ClassicSeen};

fn classic_reserve(e: u32, seats: u32) -> ClassicCall {
    ClassicCall::Reserve {
        event: event(e),
        quantity: NonZeroU32::new(seats).unwrap(),
    }
}

fn classic(
    thread: usize,
    invoke: u64,
    ret: u64,
    call: ClassicCall,
    seen: ClassicSeen,
) -> ClassicOp {
    ClassicOp {
        thread,
        invoke_ns: invoke,
        call,
        ret: Some((ret, seen)),
    }
}

fn check_classic(capacities: &[u32], ops: Vec<Op>, classic: Vec<ClassicOp>) -> Result<(), Failure> {
    let mut history = History::from_ops(ops);
    history.classic = classic;
    Checker::new(capacities, ROOMY).check(&history).map(|_| ())
}

#[test]
fn classic_calls_that_fit_one_order_are_accepted() {
    // A classic booking of 2, a wire booking of 1 after it, a listing
    // between them that sees the classic one only, and a pending listing.
    let ops = vec![
        call(
            1,
            30,
            40,
            reserve(1, 1, None),
            booked(SERVER | 2, 1, 1, 2, 5),
        ),
        call(1, 50, 60, query(1), seats(1, 2, 5)),
    ];
    let classic_ops = vec![
        classic(
            2,
            0,
            10,
            classic_reserve(1, 2),
            ClassicSeen::Booked { seats: 2 },
        ),
        classic(
            3,
            15,
            35,
            ClassicCall::List,
            ClassicSeen::Listing(vec![3, 4]),
        ),
        ClassicOp {
            thread: 3,
            invoke_ns: 36,
            call: ClassicCall::List,
            ret: None,
        },
        classic(
            2,
            11,
            20,
            classic_reserve(1, 4),
            ClassicSeen::SoldOut { remaining: 3 },
        ),
        classic(2, 21, 25, classic_reserve(3, 1), ClassicSeen::InvalidId),
    ];
    if let Err(failure) = check_classic(&[5, 4], ops, classic_ops) {
        panic!("expected linearizable, got: {failure}");
    }
}

#[test]
fn classic_histories_no_order_explains_are_rejected() {
    // A seat sold twice: 2 by classic, 2 by wire, of 3, both done.
    let oversell = check_classic(
        &[3],
        vec![call(
            1,
            0,
            10,
            reserve(1, 2, None),
            booked(SERVER | 2, 1, 2, 1, 3),
        )],
        vec![classic(
            2,
            0,
            10,
            classic_reserve(1, 2),
            ClassicSeen::Booked { seats: 2 },
        )],
    );
    assert!(
        matches!(oversell, Err(Failure::NotLinearizable(_))),
        "{oversell:?}"
    );
    // A listing invoked after a booking returned, that misses it.
    let stale = check_classic(
        &[5, 4],
        vec![call(
            1,
            0,
            10,
            reserve(1, 2, None),
            booked(SERVER | 1, 1, 2, 3, 5),
        )],
        vec![classic(
            2,
            20,
            30,
            ClassicCall::List,
            ClassicSeen::Listing(vec![5, 4]),
        )],
    );
    assert!(
        matches!(stale, Err(Failure::NotLinearizable(_))),
        "{stale:?}"
    );
    // A listing that reads two events at two moments: event 1 after a
    // booking that began after the booking of event 2 had finished, and
    // event 2 before that one. QUERYs one at a time could explain it (event
    // 2 read early, event 1 late); one snapshot cannot.
    let torn = check_classic(
        &[5, 4],
        vec![
            call(
                1,
                0,
                10,
                reserve(2, 1, None),
                booked(SERVER | 1, 2, 1, 3, 4),
            ),
            call(
                1,
                20,
                30,
                reserve(1, 1, None),
                booked(SERVER | 2, 1, 1, 4, 5),
            ),
        ],
        vec![classic(
            2,
            5,
            40,
            ClassicCall::List,
            ClassicSeen::Listing(vec![4, 4]),
        )],
    );
    assert!(matches!(torn, Err(Failure::NotLinearizable(_))), "{torn:?}");
    // A refusal whose remaining seats no order gives.
    let wrong = check_classic(
        &[3],
        vec![],
        vec![classic(
            2,
            0,
            10,
            classic_reserve(1, 5),
            ClassicSeen::SoldOut { remaining: 2 },
        )],
    );
    assert!(
        matches!(wrong, Err(Failure::NotLinearizable(_))),
        "{wrong:?}"
    );
}

#[test]
fn classic_bookings_explain_the_server_ids_wire_clients_do_not_see() {
    // The wire client got id n=2: n=1 went to the classic booking.
    let ops = vec![call(
        1,
        20,
        30,
        reserve(1, 1, None),
        booked(SERVER | 2, 1, 1, 2, 5),
    )];
    let with = check_classic(
        &[5],
        ops.clone(),
        vec![classic(
            2,
            0,
            10,
            classic_reserve(1, 2),
            ClassicSeen::Booked { seats: 2 },
        )],
    );
    assert!(with.is_ok(), "{with:?}");
    // Without it, n=1 was skipped for nothing.
    let without = check_classic(&[5], ops.clone(), vec![]);
    assert!(matches!(without, Err(Failure::ServerIds(_))), "{without:?}");
    // A refused classic call takes no id.
    let refused = check_classic(
        &[5],
        ops,
        vec![classic(
            2,
            0,
            10,
            classic_reserve(1, 9),
            ClassicSeen::SoldOut { remaining: 5 },
        )],
    );
    assert!(matches!(refused, Err(Failure::ServerIds(_))), "{refused:?}");
}
