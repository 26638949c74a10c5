//! Idempotency of RESERVE with a client-chosen id and of CANCEL, from any
//! reachable ledger state.
//!
//! A state is reached by applying a random prefix of operations (ids from
//! small pools, so the prefix itself reserves, cancels and retries the ids
//! the property then uses). Applying the request a second time must change
//! nothing and answer exactly what the first time answered.

mod support;

use guichet::ledger::Booking;
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
    let mut ledger = config.ledger();
    for operation in prefix {
        ledger.apply(operation);
    }
    ledger
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
    ) {
        let mut ledger = reach(&config, &prefix);
        // Sometimes a booking the prefix made, active or cancelled.
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
