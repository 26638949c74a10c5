//! PROTOCOL.md, section Holds, point by point, on the ledger with a clock
//! moved by hand: each test names the rule it checks.

use std::sync::Arc;

use guichet::ledger::{BookingState, ManualClock};
use guichet::{BookingId, Ledger, Operation, Reply, RequestId, Status};
use guichet_testkit::ids::{client, event, qty};

const HOLD_MS: u64 = 1_000;

/// A ledger of one event of `capacity` seats, with 1-second holds, and its clock.
fn ledger(capacity: u32, max_bookings: usize) -> (Ledger, ManualClock) {
    let clock = ManualClock::new(1_700_000_000_000);
    let ledger = Ledger::new([("E", capacity)], max_bookings)
        .unwrap()
        .with_clock(Arc::new(clock.clone()))
        .with_hold_ms(HOLD_MS)
        .unwrap();
    (ledger, clock)
}

fn hold(q: u32, id: Option<u64>) -> Operation {
    Operation::Hold {
        event: event(1),
        quantity: qty(q),
        booking: id.map(client),
    }
}

fn reserve(q: u32, id: Option<u64>) -> Operation {
    Operation::Reserve {
        event: event(1),
        quantity: qty(q),
        booking: id.map(client),
    }
}

fn booking(id: u64) -> BookingId {
    BookingId::new(id).unwrap()
}

fn apply(l: &mut Ledger, op: Operation) -> Reply {
    let reply = l.apply(&op).reply(RequestId(0));
    l.check_invariants().unwrap();
    reply
}

fn remaining(l: &Ledger) -> u32 {
    l.query(event(1)).reply(RequestId(0)).remaining
}

/// "HOLD books quantity seats of event_id, all or nothing, exactly as
/// RESERVE (same ids, same idempotency), but the booking is held: its seats
/// are taken (remaining drops)"; "A retried HOLD ... answers OK with the
/// same booking and does not extend it."
#[test]
fn hold_takes_seats_all_or_nothing_and_a_retry_extends_nothing() {
    let (mut l, clock) = ledger(5, 10);
    let r = apply(&mut l, hold(3, Some(7)));
    assert_eq!(
        (r.status, r.booking, r.quantity, r.remaining, r.capacity),
        (Status::Ok, Some(booking(7)), 3, 2, 5)
    );
    assert_eq!(apply(&mut l, hold(3, None)).status, Status::SoldOut);
    assert_eq!(remaining(&l), 2);
    let server = apply(&mut l, hold(1, None));
    assert!(server.booking.unwrap().is_server_assigned());
    clock.advance_ms(HOLD_MS - 1);
    let retry = apply(&mut l, hold(3, Some(7))); // the same booking, not extended
    assert_eq!(retry, Reply { remaining: 1, ..r });
    clock.advance_ms(1);
    assert_eq!(apply(&mut l, hold(3, Some(7))).status, Status::HoldExpired);
}

/// "CONFIRM makes a held booking that has not expired an ordinary booking,
/// for good ...: OK, with its event, quantity, remaining and capacity.
/// Confirming a booking that is already ordinary (confirmed before, or made
/// by RESERVE) changes nothing and answers OK."
#[test]
fn confirm_makes_a_hold_for_good_and_is_idempotent() {
    let (mut l, clock) = ledger(5, 10);
    apply(&mut l, hold(2, Some(7)));
    apply(&mut l, reserve(1, Some(8)));
    let c = apply(
        &mut l,
        Operation::Confirm {
            booking: booking(7),
        },
    );
    assert_eq!(
        (
            c.status,
            c.booking,
            c.event,
            c.quantity,
            c.remaining,
            c.capacity
        ),
        (Status::Ok, Some(booking(7)), Some(event(1)), 2, 2, 5)
    );
    clock.advance_ms(10 * HOLD_MS);
    assert_eq!(
        apply(
            &mut l,
            Operation::Confirm {
                booking: booking(7)
            }
        ),
        c
    );
    assert_eq!(remaining(&l), 2);
    let r = l.apply(&Operation::Confirm {
        booking: booking(8),
    });
    assert_eq!((r.status(), r.change()), (Status::Ok, None));
    assert_eq!(
        l.booking(booking(7)).map(|b| b.state),
        Some(BookingState::Active)
    );
}

/// "CANCEL of a held booking gives its seats back at once (OK, with its
/// quantity), like any CANCEL."
#[test]
fn cancel_of_a_hold_gives_its_seats_back() {
    let (mut l, _clock) = ledger(5, 10);
    apply(&mut l, hold(4, Some(7)));
    let c = apply(
        &mut l,
        Operation::Cancel {
            booking: booking(7),
        },
    );
    assert_eq!((c.status, c.quantity, c.remaining), (Status::Ok, 4, 5));
    assert_eq!(
        apply(
            &mut l,
            Operation::Cancel {
                booking: booking(7)
            }
        ),
        c
    );
}

/// "Once its time has passed, a hold has expired for every request that
/// follows, QUERY included: its seats are back in remaining whether or not
/// anything swept it yet. CONFIRM, CANCEL, or a retried HOLD of an expired
/// hold change nothing and answer HOLD_EXPIRED (with the event's remaining
/// and capacity). An expired hold's id stays known, like a cancelled one."
#[test]
fn expiry_holds_for_every_later_request_and_the_id_stays_known() {
    let (mut l, clock) = ledger(5, 10);
    apply(&mut l, hold(4, Some(7)));
    clock.advance_ms(HOLD_MS);
    // The first request after the deadline is a read: nothing swept yet.
    assert_eq!(remaining(&l), 5);
    assert_eq!(l.events().next().unwrap().seats.remaining, 5);
    for op in [
        Operation::Confirm {
            booking: booking(7),
        },
        Operation::Cancel {
            booking: booking(7),
        },
        hold(4, Some(7)),
    ] {
        let outcome = l.apply(&op);
        assert_eq!(outcome.change(), None, "{op:?}");
        let r = outcome.reply(RequestId(0));
        assert_eq!(
            (
                r.status,
                r.booking,
                r.event,
                r.quantity,
                r.remaining,
                r.capacity
            ),
            (
                Status::HoldExpired,
                Some(booking(7)),
                Some(event(1)),
                0,
                5,
                5
            ),
            "{op:?}"
        );
    }
    assert_eq!(
        l.booking(booking(7)).map(|b| b.state),
        Some(BookingState::Expired)
    );
}

/// "A RESERVE or HOLD whose id names an existing booking is checked in this
/// order: made by the other operation (HOLD against RESERVE), or of another
/// event or quantity: BOOKING_CONFLICT; cancelled: BOOKING_CANCELLED;
/// expired: HOLD_EXPIRED; else OK, unchanged."
#[test]
fn the_refusals_of_a_reserve_or_hold_win_in_the_order_of_the_spec() {
    let (mut l, clock) = ledger(9, 10);
    apply(&mut l, hold(2, Some(1))); // to expire
    apply(&mut l, hold(2, Some(2))); // to cancel
    apply(&mut l, reserve(2, Some(3))); // to cancel
    apply(
        &mut l,
        Operation::Cancel {
            booking: booking(2),
        },
    );
    apply(
        &mut l,
        Operation::Cancel {
            booking: booking(3),
        },
    );
    clock.advance_ms(HOLD_MS);
    let status = |l: &mut Ledger, op| apply(l, op).status;
    // The other operation wins over everything, cancelled or expired.
    assert_eq!(status(&mut l, reserve(2, Some(1))), Status::BookingConflict);
    assert_eq!(status(&mut l, reserve(2, Some(2))), Status::BookingConflict);
    assert_eq!(status(&mut l, hold(2, Some(3))), Status::BookingConflict);
    // So does another quantity.
    assert_eq!(status(&mut l, hold(1, Some(1))), Status::BookingConflict);
    assert_eq!(status(&mut l, hold(1, Some(2))), Status::BookingConflict);
    // Then cancelled, then expired.
    assert_eq!(status(&mut l, hold(2, Some(2))), Status::BookingCancelled);
    assert_eq!(
        status(&mut l, reserve(2, Some(3))),
        Status::BookingCancelled
    );
    assert_eq!(status(&mut l, hold(2, Some(1))), Status::HoldExpired);
}

/// "A CONFIRM: cancelled: BOOKING_CANCELLED; expired: HOLD_EXPIRED. A
/// CANCEL: expired: HOLD_EXPIRED; already cancelled: OK, as before."
#[test]
fn the_refusals_of_a_confirm_or_cancel() {
    let (mut l, clock) = ledger(9, 10);
    apply(&mut l, hold(2, Some(1)));
    apply(&mut l, hold(2, Some(2)));
    apply(
        &mut l,
        Operation::Cancel {
            booking: booking(2),
        },
    );
    clock.advance_ms(HOLD_MS);
    let confirm = |id| Operation::Confirm {
        booking: booking(id),
    };
    assert_eq!(apply(&mut l, confirm(2)).status, Status::BookingCancelled);
    assert_eq!(apply(&mut l, confirm(1)).status, Status::HoldExpired);
    assert_eq!(apply(&mut l, confirm(99)).status, Status::UnknownBooking);
    let cancel = |id| Operation::Cancel {
        booking: booking(id),
    };
    assert_eq!(apply(&mut l, cancel(1)).status, Status::HoldExpired);
    let again = apply(&mut l, cancel(2));
    assert_eq!((again.status, again.quantity), (Status::Ok, 2));
}

/// "Held bookings count towards the server's maximum of bookings" (and
/// expired ones, whose ids stay known, too).
#[test]
fn held_and_expired_bookings_count_towards_the_maximum() {
    let (mut l, clock) = ledger(9, 2);
    apply(&mut l, hold(1, None));
    apply(&mut l, hold(1, Some(5)));
    assert_eq!(apply(&mut l, reserve(1, None)).status, Status::LedgerFull);
    clock.advance_ms(HOLD_MS);
    assert_eq!(apply(&mut l, hold(1, None)).status, Status::LedgerFull);
    assert_eq!(l.booking_count(), 2);
}

/// The invariant, `remaining + seats of bookings neither cancelled nor
/// expired == capacity`, at every moment a client can observe, including
/// the moment of a deadline nothing swept.
#[test]
fn the_invariant_holds_at_every_deadline() {
    let (mut l, clock) = ledger(10, 100);
    for i in 0..10u64 {
        apply(&mut l, hold(1, Some(i + 1)));
        clock.advance_ms(HOLD_MS / 10);
    }
    for _ in 0..12 {
        l.check_invariants().unwrap();
        let live: u32 = l
            .bookings()
            .filter(|(_, b)| matches!(b.state, BookingState::Held { .. } | BookingState::Active))
            .map(|(_, b)| b.quantity.get())
            .sum();
        assert_eq!(remaining(&l) + live, 10);
        clock.advance_ms(HOLD_MS / 10);
    }
    assert_eq!(remaining(&l), 10);
}
