//! State-machine test of `guichet::Ledger` against the naive reference model
//! in `support/model.rs`.
//!
//! Each case configures 1 to 4 events (tiny capacities mostly, `u32::MAX`
//! sometimes) and a `max_bookings` (small sometimes), then applies up to
//! 400 operations to both the ledger and the model. After every step:
//!
//! - the wire reply and whether anything changed agree with the model;
//! - `Ledger::check_invariants` holds;
//! - every event's seats and every booking agree with the model, the ledger
//!   holds no booking the model does not, and no booking changed its event
//!   or quantity or went from cancelled back to active;
//! - a replica that only ever saw the recorded `Change`s, through
//!   `Ledger::replay`, equals the ledger (both with their due holds
//!   expired: expiry is no recorded change, it follows from the time).
//!
//! Steps are operations (HOLD and CONFIRM included) or "time passes": the
//! ledger reads a [`ManualClock`] the test moves, the model its own clock
//! with its naive expiry (a scan of every booking). Holds last
//! [`HOLD_MS`], short enough that many expire mid-sequence.
//!
//! Cases: 1,000 by default, `PROPTEST_CASES` to change it. Failures are
//! persisted to `proptest-regressions/ledger_model.txt`.

mod support;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use guichet::ledger::{Booking, BookingState, Change, ManualClock, Origin};
use guichet::{BookingId, ClientBookingId, EventId, Ledger, Operation, Reply, RequestId, Status};
use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

use support::model::Model;
use support::LedgerConfig;

/// How long a hold lasts, in the ledger and the model: a few steps of
/// [`Step::Pass`].
const HOLD_MS: u64 = 20;

/// One step: an operation, or time passing (in milliseconds).
#[derive(Clone, Debug)]
enum Step {
    Op(Operation),
    Pass(u64),
}

/// The reference state: the model, and what it answered to the last step.
#[derive(Clone, Debug)]
struct Reference {
    config: LedgerConfig,
    model: Model,
    /// The model's reply to the last operation and whether it changed anything.
    last: Option<(Reply, bool)>,
}

struct LedgerMachine;

impl ReferenceStateMachine for LedgerMachine {
    type State = Reference;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Reference> {
        support::ledger_config()
            .prop_map(|config| Reference {
                model: config.model().with_hold_ms(HOLD_MS),
                config,
                last: None,
            })
            .boxed()
    }

    fn transitions(state: &Reference) -> BoxedStrategy<Step> {
        let model = &state.model;
        let events = model.event_count();
        // Ids the state makes interesting: server ids actually issued, and
        // bookings already cancelled.
        let issued: Vec<u64> = model
            .bookings()
            .iter()
            .filter(|b| b.id & (1 << 63) != 0)
            .map(|b| b.id)
            .collect();
        let cancelled: Vec<u64> = model
            .bookings()
            .iter()
            .filter(|b| b.cancelled)
            .map(|b| b.id)
            .collect();
        let next = model.next_server_id();
        // Quantities equal to what an event has left, so exact fits (and,
        // with huge capacities, huge bookings) happen.
        let exact: Vec<u32> = (1..=events)
            .filter_map(|e| model.remaining(u32::try_from(e).ok()?))
            .filter(|&r| r > 0)
            .collect();

        let booking_id =
            |raw: u64| BookingId::new(raw).expect("ids in the reference state are non-zero");
        let mut cancel_targets: Vec<(u32, BoxedStrategy<BookingId>)> = vec![
            (3, support::client_id().prop_map(BookingId::from).boxed()),
            (1, (next..=next + 2).prop_map(booking_id).boxed()),
            (1, (1..=u64::MAX).prop_map(booking_id).boxed()),
        ];
        if !issued.is_empty() {
            cancel_targets.push((5, prop::sample::select(issued).prop_map(booking_id).boxed()));
        }
        if !cancelled.is_empty() {
            cancel_targets.push((
                2,
                prop::sample::select(cancelled).prop_map(booking_id).boxed(),
            ));
        }
        // Holds (live, expired or confirmed) as CANCEL and CONFIRM targets.
        let holds: Vec<u64> = model
            .bookings()
            .iter()
            .filter(|b| b.held)
            .map(|b| b.id)
            .collect();
        if !holds.is_empty() {
            cancel_targets.push((4, prop::sample::select(holds).prop_map(booking_id).boxed()));
        }
        let targets = prop::strategy::Union::new_weighted(cancel_targets);
        let cancel = targets
            .clone()
            .prop_map(|booking| Operation::Cancel { booking });
        let confirm = targets.prop_map(|booking| Operation::Confirm { booking });

        let mut quantities: Vec<(u32, BoxedStrategy<NonZeroU32>)> =
            vec![(8, support::quantity().boxed())];
        if !exact.is_empty() {
            quantities.push((
                1,
                prop::sample::select(exact)
                    .prop_map(|q| NonZeroU32::new(q).expect("filtered > 0"))
                    .boxed(),
            ));
        }
        let quantity = prop::strategy::Union::new_weighted(quantities);
        let booked = (
            support::event_id(events),
            quantity,
            proptest::option::weighted(0.5, support::client_id()),
        )
            .boxed();
        let hold = booked
            .clone()
            .prop_map(|(event, quantity, booking)| Operation::Hold {
                event,
                quantity,
                booking,
            });
        let reserve = booked.prop_map(|(event, quantity, booking)| Operation::Reserve {
            event,
            quantity,
            booking,
        });
        let query = support::event_id(events).prop_map(|event| Operation::Query { event });

        // Exact retries of client-chosen bookings: OK with nothing changed
        // while active, BOOKING_CANCELLED once cancelled.
        // (RESERVE and HOLD of each, so the crossed conflicts happen too.)
        let retries: Vec<Operation> = model
            .bookings()
            .iter()
            .filter(|b| b.id & (1 << 63) == 0)
            .flat_map(|b| {
                let event = EventId::new(b.event).expect("known event");
                let quantity = NonZeroU32::new(b.quantity).expect("quantity >= 1");
                let booking = ClientBookingId::new(b.id);
                [
                    Operation::Reserve {
                        event,
                        quantity,
                        booking,
                    },
                    Operation::Hold {
                        event,
                        quantity,
                        booking,
                    },
                ]
            })
            .collect();
        // Mostly short, sometimes past a whole hold.
        let pass =
            prop_oneof![3 => 1..=HOLD_MS / 4, 1 => HOLD_MS..=2 * HOLD_MS].prop_map(Step::Pass);
        let ops = if retries.is_empty() {
            prop_oneof![
                1 => query,
                4 => reserve,
                3 => cancel,
                4 => hold,
                3 => confirm,
            ]
            .boxed()
        } else {
            prop_oneof![
                1 => query,
                4 => reserve,
                3 => cancel,
                4 => hold,
                3 => confirm,
                3 => prop::sample::select(retries),
            ]
            .boxed()
        };
        prop_oneof![6 => ops.prop_map(Step::Op), 1 => pass].boxed()
    }

    fn apply(mut state: Reference, step: &Step) -> Reference {
        state.last = match step {
            Step::Op(operation) => Some(state.model.apply(operation)),
            Step::Pass(ms) => {
                state.model.advance_ms(*ms);
                None
            }
        };
        state
    }
}

/// The system under test, and what the checks need to remember about it.
struct System {
    /// The clock of `ledger` and `replica`, moved by [`Step::Pass`].
    clock: ManualClock,
    ledger: Ledger,
    /// Fed only the `Change`s the ledger reported, through `Ledger::replay`.
    replica: Ledger,
    /// Every change so far, for a replay onto a fresh ledger at the end.
    changes: Vec<Change>,
    config: LedgerConfig,
}

impl StateMachineTest for LedgerMachine {
    type SystemUnderTest = System;
    type Reference = LedgerMachine;

    fn init_test(reference: &Reference) -> System {
        let clock = ManualClock::new(0);
        System {
            ledger: timed(reference.config.ledger(), &clock),
            replica: timed(reference.config.ledger(), &clock),
            clock,
            changes: Vec::new(),
            config: reference.config.clone(),
        }
    }

    fn apply(mut system: System, reference: &Reference, step: Step) -> System {
        let operation = match step {
            Step::Op(operation) => operation,
            Step::Pass(ms) => {
                system.clock.advance_ms(ms);
                return system;
            }
        };
        let (expected, expected_changed) = reference
            .last
            .expect("the reference applied this operation first");
        let before: HashMap<BookingId, Booking> = system.ledger.bookings().collect();
        let outcome = system.ledger.apply(&operation);
        // A booking's event and quantity never change; Active -> Cancelled only.
        for (id, was) in &before {
            let now = system
                .ledger
                .booking(*id)
                .unwrap_or_else(|| panic!("{operation:?} made booking {id} disappear"));
            assert_eq!((now.event, now.quantity), (was.event, was.quantity));
            let allowed = match was.state {
                BookingState::Held { .. } => true,
                BookingState::Active => {
                    matches!(now.state, BookingState::Active | BookingState::Cancelled)
                }
                settled => now.state == settled,
            };
            assert!(
                allowed && now.origin == was.origin,
                "{operation:?} took booking {id} from {was:?} to {now:?}"
            );
        }
        assert_eq!(
            outcome.reply(RequestId(0)),
            expected,
            "reply to {operation:?} (outcome {outcome:?})"
        );
        // The reply echoes whatever tag it is given.
        assert_eq!(
            outcome.reply(RequestId(u64::MAX)),
            Reply {
                request_id: RequestId(u64::MAX),
                ..expected
            }
        );
        let change = outcome.change();
        assert_eq!(
            change.is_some(),
            expected_changed,
            "whether {operation:?} changed the ledger (outcome {outcome:?})"
        );
        if let Some(change) = change {
            system
                .replica
                .replay(&change)
                .unwrap_or_else(|e| panic!("replaying {change:?}: {e}"));
            system.changes.push(change);
        }
        system
    }

    fn check_invariants(system: &System, reference: &Reference) {
        let ledger = &system.ledger;
        let model = &reference.model;
        if let Err(e) = ledger.check_invariants() {
            panic!("{e}");
        }

        assert_eq!(ledger.events().len(), model.event_count());
        for view in ledger.events() {
            let id = view.id.get();
            assert_eq!(
                (view.seats.remaining, view.seats.capacity),
                (
                    model.remaining(id).expect("known event"),
                    model.capacity(id).expect("known event"),
                ),
                "seats of event {id}"
            );
        }

        // Same set of bookings (the ids are unique on both sides), same contents.
        assert_eq!(ledger.booking_count(), model.booking_count());
        for b in model.bookings() {
            let id = BookingId::new(b.id).expect("non-zero id");
            let held = ledger
                .booking(id)
                .unwrap_or_else(|| panic!("ledger lost booking {id}"));
            let state = if b.cancelled {
                BookingState::Cancelled
            } else if model.is_expired(b) {
                BookingState::Expired
            } else if let Some(expires_at_ms) = b.expires_at_ms {
                BookingState::Held { expires_at_ms }
            } else {
                BookingState::Active
            };
            let origin = if b.held {
                Origin::Hold
            } else {
                Origin::Reserve
            };
            assert_eq!(
                (
                    held.event.get(),
                    held.quantity.get(),
                    held.state,
                    held.origin
                ),
                (b.event, b.quantity, state, origin),
                "booking {id}"
            );
        }

        assert_eq!(
            swept(&system.replica),
            swept(ledger),
            "replica fed the changes only"
        );
    }

    fn teardown(system: System, _reference: Reference) {
        let mut fresh = timed(system.config.ledger(), &system.clock);
        for change in &system.changes {
            fresh
                .replay(change)
                .unwrap_or_else(|e| panic!("replaying {change:?} onto a fresh ledger: {e}"));
        }
        assert_eq!(
            swept(&fresh),
            swept(&system.ledger),
            "fresh ledger replaying every change"
        );
    }
}

/// `ledger` on the test's clock, with holds of [`HOLD_MS`].
fn timed(ledger: Ledger, clock: &ManualClock) -> Ledger {
    ledger
        .with_clock(Arc::new(clock.clone()))
        .with_hold_ms(HOLD_MS)
        .expect("HOLD_MS is in range")
}

/// A copy with every due hold expired: what two ledgers that saw the same
/// changes at the same times must equal, whichever holds each swept.
fn swept(ledger: &Ledger) -> Ledger {
    let mut ledger = ledger.clone();
    ledger.expire_due();
    ledger
}

prop_state_machine! {
    #![proptest_config(support::proptest_config(1000, "proptest-regressions/ledger_model.txt"))]

    /// Up to 400 random operations per case against the reference model.
    #[test]
    fn ledger_matches_reference_model(sequential 1..400 => LedgerMachine);
}

/// The generator is only as good as what it reaches: with a fixed seed, the
/// sequences it makes must drive the model through every status the ledger
/// can answer, and through both kinds of OK for RESERVE and CANCEL
/// (changed and idempotent retry), often enough to matter (0.5% of the steps each).
#[test]
fn generator_reaches_every_ledger_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = LedgerMachine::sequential_strategy(1..400);
    let mut counts: HashMap<(Status, &'static str, bool), usize> = HashMap::new();
    let mut steps = 0usize;
    for _ in 0..200 {
        let (initial, operations, _) = strategy
            .new_tree(&mut runner)
            .expect("strategy generates")
            .current();
        let mut model = initial.model;
        for step in &operations {
            let operation = match step {
                Step::Op(operation) => operation,
                Step::Pass(ms) => {
                    model.advance_ms(*ms);
                    continue;
                }
            };
            let (reply, changed) = model.apply(operation);
            let name = match operation {
                Operation::Query { .. } => "QUERY",
                Operation::Reserve { booking: None, .. } => "RESERVE(server id)",
                Operation::Reserve { .. } => "RESERVE(client id)",
                Operation::Cancel { booking } if booking.is_server_assigned() => {
                    "CANCEL(server id)"
                }
                Operation::Cancel { .. } => "CANCEL(client id)",
                Operation::Hold { booking: None, .. } => "HOLD(server id)",
                Operation::Hold { .. } => "HOLD(client id)",
                Operation::Confirm { .. } => "CONFIRM",
            };
            *counts.entry((reply.status, name, changed)).or_default() += 1;
            steps += 1;
        }
    }
    let expected = [
        (Status::Ok, "QUERY", false),
        (Status::UnknownEvent, "QUERY", false),
        (Status::Ok, "RESERVE(server id)", true),
        (Status::Ok, "RESERVE(client id)", true),
        (Status::Ok, "RESERVE(client id)", false),
        (Status::SoldOut, "RESERVE(server id)", false),
        (Status::SoldOut, "RESERVE(client id)", false),
        (Status::UnknownEvent, "RESERVE(server id)", false),
        (Status::UnknownEvent, "RESERVE(client id)", false),
        (Status::LedgerFull, "RESERVE(server id)", false),
        (Status::LedgerFull, "RESERVE(client id)", false),
        (Status::BookingConflict, "RESERVE(client id)", false),
        (Status::BookingCancelled, "RESERVE(client id)", false),
        (Status::Ok, "CANCEL(server id)", true),
        (Status::Ok, "CANCEL(server id)", false),
        (Status::Ok, "CANCEL(client id)", true),
        (Status::Ok, "CANCEL(client id)", false),
        (Status::UnknownBooking, "CANCEL(server id)", false),
        (Status::UnknownBooking, "CANCEL(client id)", false),
        (Status::HoldExpired, "CANCEL(server id)", false),
        (Status::HoldExpired, "CANCEL(client id)", false),
        (Status::Ok, "HOLD(server id)", true),
        (Status::Ok, "HOLD(client id)", true),
        (Status::Ok, "HOLD(client id)", false),
        (Status::SoldOut, "HOLD(server id)", false),
        (Status::LedgerFull, "HOLD(client id)", false),
        (Status::BookingConflict, "HOLD(client id)", false),
        (Status::BookingConflict, "RESERVE(client id)", false),
        (Status::BookingCancelled, "HOLD(client id)", false),
        (Status::HoldExpired, "HOLD(client id)", false),
        (Status::Ok, "CONFIRM", true),
        (Status::Ok, "CONFIRM", false),
        (Status::HoldExpired, "CONFIRM", false),
        (Status::BookingCancelled, "CONFIRM", false),
        (Status::UnknownBooking, "CONFIRM", false),
    ];
    for key in expected {
        let seen = counts.get(&key).copied().unwrap_or(0);
        assert!(
            seen * 200 >= steps,
            "{key:?} happened {seen} times in {steps} steps (under 0.5%): {counts:#?}"
        );
    }
}
