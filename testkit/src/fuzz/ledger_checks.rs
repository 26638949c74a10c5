//! The `ledger` check: the ledger against the property tests' reference model.

use guichet::ledger::{BookingState, Ledger, ManualClock};
use guichet::{BookingId, RequestId};

use super::input::{steps, Setup, HOLD_MS};
use crate::model::Model;

/// A ledger and the reference model set up alike from the first bytes,
/// then every operation record after them applied to both (see [`super::input`]).
///
/// # Panics
///
/// If the ledger panics; if it answers an operation otherwise than the
/// model, or changes when the model does not (or the reverse); if it
/// differs, after any operation, from a replica fed only the reported
/// changes (`Ledger::replay`); if the invariants break; or if the events'
/// seats or the bookings drift from the model's.
pub fn ledger(data: &[u8]) {
    let (setup, body) = Setup::read(data);
    let clock = ManualClock::new(0);
    let (mut ledger, mut replica) = match (setup.ledger_on(&clock), setup.ledger_on(&clock)) {
        (Ok(ledger), Ok(replica)) => (ledger, replica),
        (Err(e), _) | (_, Err(e)) => panic!("{setup:?} is a valid set-up, yet: {e}"),
    };
    let mut model = Model::new(&setup.capacities, setup.max_bookings).with_hold_ms(HOLD_MS);
    for (pause_ms, op) in steps(body) {
        clock.advance_ms(pause_ms);
        model.advance_ms(pause_ms);
        let outcome = ledger.apply(&op);
        let (expected, model_changed) = model.apply(&op);
        assert_eq!(
            outcome.reply(RequestId(0)),
            expected,
            "{op:?} answered {outcome:?}"
        );
        match outcome.change() {
            Some(change) => {
                assert!(model_changed, "{op:?} changed the ledger, not the model");
                if let Err(e) = replica.replay(&change) {
                    panic!("replaying {change:?}: {e}");
                }
            }
            None => assert!(!model_changed, "{op:?} changed the model, not the ledger"),
        }
        // The replica saw only the reported change (if any), through
        // `Ledger::replay`: any other change, such as a booking changing its
        // event or quantity or coming back from cancelled, shows here.
        assert_eq!(
            swept(&ledger),
            swept(&replica),
            "{op:?} changed the ledger unreported"
        );
        if let Err(e) = ledger.check_invariants() {
            panic!("after {op:?}: {e}");
        }
        for event in ledger.events() {
            let id = event.id.get();
            assert_eq!(
                (Some(event.seats.remaining), Some(event.seats.capacity)),
                (model.remaining(id), model.capacity(id)),
                "seats of event {id} after {op:?}"
            );
        }
        assert_eq!(ledger.booking_count(), model.booking_count());
    }
    for b in model.bookings() {
        let held = BookingId::new(b.id).and_then(|id| ledger.booking(id));
        let Some(held) = held else {
            panic!("the ledger lost booking {:#x}", b.id);
        };
        assert_eq!(
            (
                held.event.get(),
                held.quantity.get(),
                held.state == BookingState::Cancelled,
                held.state == BookingState::Expired
            ),
            (b.event, b.quantity, b.cancelled, model.is_expired(b)),
            "booking {:#x}",
            b.id
        );
    }
}

/// A copy with every due hold expired: expiry is no reported change (it
/// follows from the time), so a replica equals the ledger once both swept.
pub(super) fn swept(ledger: &Ledger) -> Ledger {
    let mut ledger = ledger.clone();
    ledger.expire_due();
    ledger
}
