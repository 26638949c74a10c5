//! Idempotency of RESERVE and HOLD with a client-chosen id, of CANCEL and
//! of CONFIRM, from any reachable ledger state (holds live, confirmed,
//! cancelled and expired included: the prefix lets time pass).
//!
//! A state is reached by applying a random prefix of operations (ids from
//! small pools, so the prefix itself reserves, cancels and retries the ids
//! the property then uses). Applying the request a second time must change
//! nothing and answer exactly what the first time answered.

mod support;

use std::sync::Arc;

use guichet::ledger::{Booking, BookingState, Clock, ManualClock};
use guichet::{BookingId, ClientBookingId, Ledger, Operation, RequestId, Status};
use proptest::prelude::*;
use proptest::sample::Index;

use support::LedgerConfig;

/// A configuration and a prefix of up to 200 operations for it.
fn reachable() -> impl Strategy<Value = (LedgerConfig, Vec<Operation>)> {
    support::ledger_config().prop_flat_map(|config| {
        let events = config.capacities.len();
        (
            Just(config),
            prop::collection::vec(support::operation(events), 0..200),
        )
    })
}

/// The ledger's bookings in id order (its own order is unspecified).
fn sorted_bookings(ledger: &Ledger) -> Vec<(BookingId, Booking)> {
    let mut held: Vec<_> = ledger.bookings().collect();
    held.sort_by_key(|(id, _)| *id);
    held
}

fn reach(config: &LedgerConfig, prefix: &[Operation]) -> Ledger {
    reach_timed(config, prefix, &[]).0
}

/// How long holds last in [`reach_timed`]'s ledgers.
const HOLD_MS: u64 = 10;

/// [`reach`] on a manual clock, `pauses[i]` ms passing before operation `i`
/// (none past the end of `pauses`); holds last [`HOLD_MS`].
fn reach_timed(
    config: &LedgerConfig,
    prefix: &[Operation],
    pauses: &[u64],
) -> (Ledger, ManualClock) {
    let clock = ManualClock::new(0);
    let mut ledger = config
        .ledger()
        .with_clock(Arc::new(clock.clone()))
        .with_hold_ms(HOLD_MS)
        .expect("in range");
    for (i, operation) in prefix.iter().enumerate() {
        clock.advance_ms(pauses.get(i).copied().unwrap_or(0));
        ledger.apply(operation);
    }
    (ledger, clock)
}

/// A prefix, and the time passing before each of its operations.
fn reachable_timed() -> impl Strategy<Value = (LedgerConfig, Vec<Operation>, Vec<u64>)> {
    reachable().prop_flat_map(|(config, prefix)| {
        let n = prefix.len();
        (
            Just(config),
            Just(prefix),
            prop::collection::vec(prop_oneof![3 => Just(0u64), 1 => 1..=HOLD_MS], n),
        )
    })
}

proptest! {
    #![proptest_config(support::proptest_config(1000, "proptest-regressions/ledger_idempotency.txt"))]

    /// RESERVE with a client-chosen id, twice, is RESERVE once.
    #[test]
    fn reserve_with_client_id_twice_is_once(
        (config, prefix) in reachable(),
        event in support::event_id(4),
        quantity in support::quantity(),
        id in support::client_id(),
        existing in proptest::option::of(any::<Index>()),
    ) {
        let mut ledger = reach(&config, &prefix);
        // Sometimes the exact parameters of a client booking the prefix made,
        // so that retries of active and of cancelled bookings are frequent.
        let held: Vec<(BookingId, Booking)> = sorted_bookings(&ledger)
            .into_iter()
            .filter(|(id, _)| !id.is_server_assigned())
            .collect();
        let (event, quantity, id) = match existing {
            Some(index) if !held.is_empty() => {
                let (id, b) = held[index.index(held.len())];
                let id = ClientBookingId::new(id.get()).expect("client id");
                (b.event, b.quantity, id)
            }
            _ => (event, quantity, id),
        };
        let operation = Operation::Reserve { event, quantity, booking: Some(id) };
        let first = ledger.apply(&operation);
        let once = ledger.clone();
        let second = ledger.apply(&operation);
        prop_assert_eq!(&ledger, &once, "the retry changed the ledger");
        prop_assert_eq!(second.change(), None);
        prop_assert_eq!(second.reply(RequestId(1)), first.reply(RequestId(1)));
        if first.status() == Status::Ok {
            let booking = ledger.booking(BookingId::from(id));
            prop_assert!(booking.is_some_and(|b| b.event == event && b.quantity == quantity));
        }
        ledger.check_invariants().map_err(|e| TestCaseError::fail(e.to_string()))?;
    }

    /// HOLD with a client-chosen id, twice, is HOLD once, whatever state
    /// the id is in (live, confirmed, cancelled, expired, a RESERVE's); and
    /// a retry does not extend the hold.
    #[test]
    fn hold_with_client_id_twice_is_once_and_extends_nothing(
        (config, prefix, pauses) in reachable_timed(),
        event in support::event_id(4),
        quantity in support::quantity(),
        id in support::client_id(),
        existing in proptest::option::of(any::<Index>()),
        later in 0..HOLD_MS,
    ) {
        let (mut ledger, clock) = reach_timed(&config, &prefix, &pauses);
        let held: Vec<(BookingId, Booking)> = sorted_bookings(&ledger)
            .into_iter()
            .filter(|(id, _)| !id.is_server_assigned())
            .collect();
        let (event, quantity, id) = match existing {
            Some(index) if !held.is_empty() => {
                let (id, b) = held[index.index(held.len())];
                (b.event, b.quantity, ClientBookingId::new(id.get()).expect("client id"))
            }
            _ => (event, quantity, id),
        };
        let operation = Operation::Hold { event, quantity, booking: Some(id) };
        let first = ledger.apply(&operation);
        let once = ledger.clone();
        let second = ledger.apply(&operation);
        prop_assert_eq!(&ledger, &once, "the retry changed the ledger");
        prop_assert_eq!(second.change(), None);
        prop_assert_eq!(second.reply(RequestId(1)), first.reply(RequestId(1)));
        // Retried later, it keeps its first expiry.
        let before = ledger.booking(BookingId::from(id)).map(|b| b.state);
        clock.advance_ms(later);
        let third = ledger.apply(&operation);
        if before.is_some() {
            // (Else the seats an expiry gave back may let it book now.)
            prop_assert_eq!(third.change(), None);
        }
        let after = ledger.booking(BookingId::from(id)).map(|b| b.state);
        if let Some(BookingState::Held { expires_at_ms }) = before {
            if expires_at_ms > clock.now_ms() {
                prop_assert_eq!(after, before, "a retried HOLD moved its expiry");
            } else {
                prop_assert_eq!(after, Some(BookingState::Expired));
                // Unless another event or quantity makes it a conflict first.
                let b = ledger.booking(BookingId::from(id)).expect("kept");
                if (b.event, b.quantity) == (event, quantity) {
                    prop_assert_eq!(third.status(), Status::HoldExpired);
                }
            }
        }
        ledger.check_invariants().map_err(|e| TestCaseError::fail(e.to_string()))?;
    }

    /// CONFIRM twice is CONFIRM once: the second answers what the first did.
    #[test]
    fn confirm_twice_is_once(
        (config, prefix, pauses) in reachable_timed(),
        booking in prop_oneof![
            support::client_id().prop_map(BookingId::from),
            support::small_server_id(),
        ],
        existing in proptest::option::of(any::<Index>()),
    ) {
        let (mut ledger, _clock) = reach_timed(&config, &prefix, &pauses);
        let held = sorted_bookings(&ledger);
        let booking = match existing {
            Some(index) if !held.is_empty() => held[index.index(held.len())].0,
            _ => booking,
        };
        let operation = Operation::Confirm { booking };
        let first = ledger.apply(&operation);
        let once = ledger.clone();
        let second = ledger.apply(&operation);
        prop_assert_eq!(&ledger, &once, "the second CONFIRM changed the ledger");
        prop_assert_eq!(second.change(), None);
        prop_assert_eq!(second.reply(RequestId(1)), first.reply(RequestId(1)));
        if first.status() == Status::Ok {
            let state = ledger.booking(booking).map(|b| b.state);
            prop_assert_eq!(state, Some(BookingState::Active));
        }
        ledger.check_invariants().map_err(|e| TestCaseError::fail(e.to_string()))?;
    }

    /// CANCEL twice is CANCEL once; if the first answered OK, the second
    /// answers OK with the same quantity.
    #[test]
    fn cancel_twice_is_once(
        (config, prefix) in reachable(),
        booking in prop_oneof![
            support::client_id().prop_map(BookingId::from),
            support::small_server_id(),
        ],
        existing in proptest::option::of(any::<Index>()),
        pauses in prop::collection::vec(0..=HOLD_MS, 0..200),
    ) {
        let (mut ledger, _clock) = reach_timed(&config, &prefix, &pauses);
        // Sometimes a booking the prefix made, active, held, cancelled or expired.
        let held = sorted_bookings(&ledger);
        let booking = match existing {
            Some(index) if !held.is_empty() => held[index.index(held.len())].0,
            _ => booking,
        };
        let operation = Operation::Cancel { booking };
        let first = ledger.apply(&operation);
        let once = ledger.clone();
        let second = ledger.apply(&operation);
        prop_assert_eq!(&ledger, &once, "the second CANCEL changed the ledger");
        prop_assert_eq!(second.change(), None);
        let (first, second) = (first.reply(RequestId(1)), second.reply(RequestId(1)));
        if first.status == Status::Ok {
            prop_assert_eq!(second.status, Status::Ok);
            prop_assert_eq!(second.quantity, first.quantity);
            prop_assert!(first.quantity >= 1);
        }
        // Nothing changed in between, so the whole reply is the same.
        prop_assert_eq!(second, first);
        ledger.check_invariants().map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}
