//! The safety net itself: ledgers corrupted on purpose, one way for each
//! invariant, must be named by [`Ledger::check_invariants`] (and by the
//! per-change `assert_balanced`); a ledger built through the API must pass.
//! The corruption goes through the private fields, which only this child
//! module reaches: no door in the public API.

use std::num::NonZeroU32;

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
