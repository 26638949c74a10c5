//! The safety net itself: ledgers corrupted on purpose, one way for each
//! invariant, must be named by [`Ledger::check_invariants`] (and by the
//! per-change `assert_balanced`); a ledger built through the API must pass.
//! The corruption goes through the private fields, which only this child
//! module reaches: no door in the public API.

use std::num::NonZeroU32;
use std::sync::Arc;

use super::*;
use crate::test_support::quietly;

fn seats(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("non-zero")
}

/// Two events, three bookings (two server-assigned, one cancelled, one
/// client-chosen), all through the API: 10 - 2 - 3 = 5 seats left on the
/// first, 4 - 1 = 3 on the second.
fn sample() -> (Ledger, EventId, EventId) {
    let mut ledger = Ledger::new([("A", 10), ("B", 4)], 5).expect("config");
    let (a, b) = (EventId::new(1).expect("1"), EventId::new(2).expect("2"));
    ledger.reserve(a, seats(2), None);
    let Outcome::Reserved { booking, .. } = ledger.reserve(a, seats(7), None) else {
        panic!("not reserved");
    };
    ledger.cancel(booking);
    ledger.reserve(a, seats(3), ClientBookingId::new(99));
    ledger.reserve(b, seats(1), None);
    assert_eq!(ledger.check_invariants(), Ok(()));
    (ledger, a, b)
}

fn broken(ledger: &Ledger) -> String {
    match ledger.check_invariants() {
        Ok(()) => panic!("a corrupt ledger passed the check: {ledger:?}"),
        Err(InvariantError(what)) => what,
    }
}

#[test]
fn more_bookings_than_the_maximum_are_named() {
    let (mut ledger, ..) = sample();
    ledger.max_bookings = ledger.bookings.len() - 1;
    assert!(broken(&ledger).contains("bookings exceed the maximum 3"));
    ledger.max_bookings = ledger.bookings.len();
    assert_eq!(ledger.check_invariants(), Ok(()));
}

#[test]
fn a_booking_of_an_unknown_event_is_named() {
    let (mut ledger, ..) = sample();
    let stray = BookingId::new(7).expect("7");
    let event = EventId::new(3).expect("3");
    let booking = Booking {
        event,
        quantity: seats(1),
        state: BookingState::Cancelled,
        origin: Origin::Reserve,
    };
    ledger.bookings.insert(stray, booking);
    let what = broken(&ledger);
    assert!(what.contains("booking 0x7 names unknown event 3"), "{what}");
}

#[test]
fn a_server_id_never_issued_is_named() {
    let (mut ledger, _, b) = sample();
    // Three ids issued: 3 is fine, 4 is not.
    assert_eq!(ledger.server_ids, 3);
    let last = BookingId::server(3).expect("3");
    assert!(ledger.bookings.contains_key(&last));
    let cancelled = Booking {
        event: b,
        quantity: seats(1),
        state: BookingState::Cancelled,
        origin: Origin::Reserve,
    };
    ledger
        .bookings
        .insert(BookingId::server(4).expect("4"), cancelled);
    assert!(broken(&ledger).contains("is beyond the 3 ids issued"));
    ledger.server_ids = 4;
    assert_eq!(ledger.check_invariants(), Ok(()));
}

#[test]
fn a_cached_count_off_alone_is_named() {
    // Remaining seats still add up with the active bookings: only the
    // cached count is wrong.
    let (mut ledger, ..) = sample();
    ledger.events[0].booked += 1;
    assert!(broken(&ledger).contains("cached 6"), "{}", broken(&ledger));
}

#[test]
fn remaining_seats_off_alone_are_named() {
    // The cached count matches the bookings: only the seats left are wrong.
    let (mut ledger, ..) = sample();
    ledger.events[1].remaining -= 1;
    assert!(broken(&ledger).contains("\"B\": remaining 2 + active booked 1"));
}

#[test]
fn a_booking_lost_or_a_cancel_not_counted_is_named() {
    // Seats held by a booking that is gone.
    let (mut ledger, ..) = sample();
    let client = BookingId::new(99).expect("99");
    ledger.bookings.remove(&client);
    assert!(broken(&ledger).contains("active booked 2 (cached 5)"));
    // A booking marked cancelled whose seats never came back.
    let (mut ledger, ..) = sample();
    if let Some(b) = ledger.bookings.get_mut(&client) {
        b.state = BookingState::Cancelled;
    }
    assert!(broken(&ledger).contains("active booked 2"));
    // A cancelled booking revived without taking its seats.
    let (mut ledger, ..) = sample();
    for b in ledger.bookings.values_mut() {
        b.state = BookingState::Active;
    }
    assert!(broken(&ledger).contains("active booked 12"));
}

#[test]
fn a_reserved_booking_in_a_holds_state_is_named() {
    let (mut ledger, ..) = sample();
    let client = BookingId::new(99).expect("99");
    if let Some(b) = ledger.bookings.get_mut(&client) {
        b.state = BookingState::Expired;
    }
    let what = broken(&ledger);
    assert!(what.contains("reserved booking 0x63 is Expired"), "{what}");
}

#[test]
fn a_hold_missing_from_its_expiry_index_is_named() {
    let (mut ledger, ..) = sample();
    let client = BookingId::new(99).expect("99");
    if let Some(b) = ledger.bookings.get_mut(&client) {
        b.state = BookingState::Held {
            expires_at_ms: u64::MAX,
        };
        b.origin = Origin::Hold;
    }
    let what = broken(&ledger);
    assert!(
        what.contains("hold 0x63 is not indexed by its expiry"),
        "{what}"
    );
}

#[test]
fn a_change_on_an_unbalanced_event_fails_its_assertion() {
    let (mut ledger, a, _) = sample();
    ledger.events[0].remaining -= 1;
    let what = quietly(std::panic::AssertUnwindSafe(|| {
        ledger.reserve(a, seats(1), None);
    }))
    .expect_err("a change on an unbalanced event went through");
    let message = what.downcast_ref::<String>().map(String::as_str);
    assert!(
        message.is_some_and(|m| m.contains("ledger invariant broken for \"A\"")),
        "{message:?}"
    );
    // Cancelling checks it too.
    let (mut ledger, ..) = sample();
    ledger.events[0].remaining -= 1;
    let client = BookingId::new(99).expect("99");
    assert!(quietly(std::panic::AssertUnwindSafe(|| ledger.cancel(client))).is_err());
}

#[test]
fn replay_refuses_to_cancel_a_booking_twice_and_changes_nothing() {
    let (mut ledger, ..) = sample();
    let client = BookingId::new(99).expect("99");
    let change = Change::Cancelled { booking: client };
    assert_eq!(ledger.replay(&change), Ok(()));
    let before = ledger.clone();
    assert_eq!(
        ledger.replay(&change),
        Err(ReplayError::Refused {
            change,
            status: crate::Status::BookingCancelled
        })
    );
    assert_eq!(ledger, before);
    assert_eq!(ledger.check_invariants(), Ok(()));
}

#[test]
fn replay_refuses_to_cancel_an_expired_hold_and_changes_nothing() {
    // A journal whose CANCEL follows the hold's expiry does not match the
    // run it claims to record: the original answered HOLD_EXPIRED and
    // journalled nothing.
    let (mut ledger, _) = sample_with_holds();
    let change = Change::Cancelled {
        booking: hold_id(13),
    };
    let before = ledger.clone();
    assert_eq!(
        ledger.replay(&change),
        Err(ReplayError::Refused {
            change,
            status: crate::Status::HoldExpired
        })
    );
    assert_eq!(ledger, before);
}

/// Holds in every state, on a clock driven by hand (holds of 100 ms), at
/// 1_200 ms. Event "H" (20 seats): 10 reserved (1 seat), 11 held then
/// confirmed (1), 12 held then cancelled (2), 13 held at 1_000 and expired
/// by the sweep of a later HOLD (3), 14 held at 1_100 and due since 1_200
/// but not swept yet (4), 15 held at 1_150, live until 1_250 (5). Event "B"
/// (5 seats): 21 held at 1_150 (1).
///
/// Stored, "H" has 11 seats booked (10, 11, 14, 15) and 9 remaining; as of
/// now 14 is expired, so 13 remain and 7 are booked.
fn sample_with_holds() -> (Ledger, ManualClock) {
    let clock = ManualClock::new(1_000);
    let mut ledger = Ledger::new([("H", 20), ("B", 5)], 20)
        .expect("config")
        .with_clock(Arc::new(clock.clone()))
        .with_hold_ms(100)
        .expect("hold_ms");
    let (h, b) = (EventId::new(1).expect("1"), EventId::new(2).expect("2"));
    let id = |n: u64| BookingId::new(n).expect("non-zero");
    let client = ClientBookingId::new;
    ledger.reserve(h, seats(1), client(10));
    ledger.hold(h, seats(1), client(11));
    ledger.confirm(id(11));
    ledger.hold(h, seats(2), client(12));
    ledger.cancel(id(12));
    ledger.hold(h, seats(3), client(13));
    clock.advance_ms(100);
    ledger.hold(h, seats(4), client(14));
    clock.advance_ms(50);
    ledger.hold(h, seats(5), client(15));
    ledger.hold(b, seats(1), client(21));
    clock.advance_ms(50);
    let state = |n| ledger.bookings[&id(n)].state;
    assert_eq!(state(13), BookingState::Expired, "swept by the HOLD of 14");
    assert_eq!(
        state(14),
        BookingState::Held {
            expires_at_ms: 1_200
        }
    );
    assert_eq!(
        ledger.booking(id(14)).map(|b| b.state),
        Some(BookingState::Expired)
    );
    assert_eq!(
        (ledger.events[0].remaining, ledger.events[0].booked),
        (9, 11)
    );
    assert_eq!(ledger.events[0].seats_at(1_200).remaining, 13);
    assert_eq!(ledger.check_invariants(), Ok(()));
    (ledger, clock)
}

fn hold_id(n: u64) -> BookingId {
    BookingId::new(n).expect("non-zero")
}

#[test]
fn holds_in_every_state_pass_the_check_whatever_the_time() {
    let (mut ledger, clock) = sample_with_holds();
    // Every hold due, none swept: still consistent as of now.
    clock.advance_ms(1_000);
    assert_eq!(ledger.check_invariants(), Ok(()));
    assert_eq!(ledger.expire_due(), 3);
    assert_eq!(ledger.check_invariants(), Ok(()));
}

#[test]
fn a_stale_entry_in_the_expiry_index_is_named_before_it_is_due() {
    // The expired 13 indexed again, due later: nothing adds up wrong yet,
    // but its sweep would give its seats back a second time.
    let (mut ledger, _) = sample_with_holds();
    ledger.events[0]
        .holds
        .insert((1_300, hold_id(13)), seats(3));
    let what = broken(&ledger);
    assert!(
        what.contains("event \"H\" indexes 3 holds but has 2 held bookings"),
        "{what}"
    );
    // An entry naming no booking at all: its sweep would panic.
    let (mut ledger, _) = sample_with_holds();
    ledger.events[1]
        .holds
        .insert((5_000, hold_id(77)), seats(1));
    let what = broken(&ledger);
    assert!(
        what.contains("event \"B\" indexes 2 holds but has 1 held bookings"),
        "{what}"
    );
}

#[test]
fn a_stale_entry_in_the_expiry_index_is_named_once_due() {
    // The expired 13 indexed again with its own, passed, deadline: a
    // request now would count its 3 seats back a second time.
    let (mut ledger, _) = sample_with_holds();
    ledger.events[0]
        .holds
        .insert((1_100, hold_id(13)), seats(3));
    let what = broken(&ledger);
    assert!(
        what.contains(
            "event \"H\" now: remaining 16 + seats neither cancelled nor expired 7 != capacity 20"
        ),
        "{what}"
    );
}

#[test]
fn a_due_hold_expired_with_its_index_entry_left_is_named_as_of_now() {
    // 14 marked expired and its seats given back, as a sweep does, but
    // left in the index: as of now its seats count twice.
    let (mut ledger, _) = sample_with_holds();
    if let Some(b) = ledger.bookings.get_mut(&hold_id(14)) {
        b.state = BookingState::Expired;
    }
    ledger.events[0].booked -= 4;
    ledger.events[0].remaining += 4;
    let what = broken(&ledger);
    assert!(what.contains("event \"H\" now: remaining 17 + "), "{what}");
}

#[test]
fn an_expired_hold_still_holding_its_seats_is_named() {
    // 14 marked expired, its seats never given back.
    let (mut ledger, _) = sample_with_holds();
    if let Some(b) = ledger.bookings.get_mut(&hold_id(14)) {
        b.state = BookingState::Expired;
    }
    let what = broken(&ledger);
    assert!(
        what.contains("\"H\": remaining 9 + active booked 7 (cached 11)"),
        "{what}"
    );
}

#[test]
fn a_live_hold_cancelled_or_confirmed_but_left_in_the_index_is_named() {
    // Cancelled, seats back, still indexed: its sweep would give them back
    // again.
    let (mut ledger, _) = sample_with_holds();
    if let Some(b) = ledger.bookings.get_mut(&hold_id(15)) {
        b.state = BookingState::Cancelled;
    }
    ledger.events[0].booked -= 5;
    ledger.events[0].remaining += 5;
    let what = broken(&ledger);
    assert!(what.contains("indexes 2 holds but has 1 held"), "{what}");
    // Confirmed, still indexed: its sweep would expire a paid booking.
    let (mut ledger, _) = sample_with_holds();
    if let Some(b) = ledger.bookings.get_mut(&hold_id(15)) {
        b.state = BookingState::Active;
    }
    let what = broken(&ledger);
    assert!(what.contains("indexes 2 holds but has 1 held"), "{what}");
}

#[test]
fn a_held_booking_out_of_the_index_is_named() {
    // A sweep that expired 14 in the index and the seats but not the
    // booking: a request would call it expired, a CANCEL would panic.
    let (mut ledger, _) = sample_with_holds();
    let popped = ledger.events[0].holds.pop_first();
    assert_eq!(popped, Some(((1_200, hold_id(14)), seats(4))));
    ledger.events[0].booked -= 4;
    ledger.events[0].remaining += 4;
    let what = broken(&ledger);
    assert!(
        what.contains("hold 0xe is not indexed by its expiry"),
        "{what}"
    );
}

#[test]
fn a_hold_indexed_under_another_deadline_quantity_or_event_is_named() {
    let expect_unindexed = |ledger: &Ledger, id: &str| {
        let what = broken(ledger);
        let named = format!("hold {id} is not indexed by its expiry");
        assert!(what.contains(&named), "{what}");
    };
    // Indexed as due at 1_200, held until 1_250: expired early by a sweep.
    let (mut ledger, _) = sample_with_holds();
    let quantity = ledger.events[0].holds.remove(&(1_250, hold_id(15)));
    ledger.events[0]
        .holds
        .insert((1_200, hold_id(15)), quantity.expect("indexed"));
    expect_unindexed(&ledger, "0xf");
    // The booking's deadline moved, not the index's.
    let (mut ledger, _) = sample_with_holds();
    if let Some(b) = ledger.bookings.get_mut(&hold_id(15)) {
        b.state = BookingState::Held {
            expires_at_ms: 1_100,
        };
    }
    expect_unindexed(&ledger, "0xf");
    // Indexed with another quantity: its expiry would return 4 seats of 5.
    let (mut ledger, _) = sample_with_holds();
    ledger.events[0]
        .holds
        .insert((1_250, hold_id(15)), seats(4));
    expect_unindexed(&ledger, "0xf");
    // Indexed in the other event: its expiry would free the wrong seats.
    let (mut ledger, _) = sample_with_holds();
    let quantity = ledger.events[1].holds.remove(&(1_250, hold_id(21)));
    ledger.events[0]
        .holds
        .insert((1_250, hold_id(21)), quantity.expect("indexed"));
    expect_unindexed(&ledger, "0x15");
}

#[test]
fn events_out_of_their_order_are_named() {
    // Events are found by position: id n must be at n - 1.
    let (mut ledger, ..) = sample();
    ledger.events.swap(0, 1);
    let what = broken(&ledger);
    assert!(
        what.contains("event \"B\" at position 0 has id 2"),
        "{what}"
    );
}
