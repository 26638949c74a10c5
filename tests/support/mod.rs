//! Code shared by the property suites.
#![allow(dead_code)]

pub mod history;
pub mod linearizability;

#[allow(unused_imports)] // each suite uses some of them
pub use guichet_testkit::{model, rng};

use std::num::NonZeroU32;

use guichet::{BookingId, ClientBookingId, EventId, Ledger, Operation};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// A ledger configuration: event capacities (event 1 first) and `max_bookings`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerConfig {
    /// Capacity of event `n` at index `n - 1`.
    pub capacities: Vec<u32>,
    /// Most bookings the ledger holds, cancelled ones included.
    pub max_bookings: usize,
}

impl LedgerConfig {
    /// A fresh ledger with this configuration (events named `e1`, `e2`…).
    pub fn ledger(&self) -> Ledger {
        let events = self
            .capacities
            .iter()
            .enumerate()
            .map(|(i, &capacity)| (format!("e{}", i + 1), capacity));
        Ledger::new(events, self.max_bookings).expect("test configurations are valid")
    }

    /// A fresh reference model with this configuration.
    pub fn model(&self) -> model::Model {
        model::Model::new(&self.capacities, self.max_bookings)
    }
}

/// A capacity: mostly tiny (0..=6, so SOLD_OUT is frequent), sometimes at or
/// near `u32::MAX` (so the ledger's checked arithmetic is exercised).
pub fn capacity() -> impl Strategy<Value = u32> {
    prop_oneof![
        12 => 0..=6u32,
        1 => Just(u32::MAX),
        1 => (u32::MAX - 6)..=u32::MAX,
        1 => any::<u32>(),
    ]
}

/// 1 to 4 events and a `max_bookings` that is sometimes small enough for
/// LEDGER_FULL to happen.
pub fn ledger_config() -> impl Strategy<Value = LedgerConfig> {
    let max_bookings = prop_oneof![
        2 => 1..=8usize,
        1 => 9..=64usize,
        1 => Just(guichet::Ledger::DEFAULT_MAX_BOOKINGS),
    ];
    (prop::collection::vec(capacity(), 1..=4), max_bookings).prop_map(
        |(capacities, max_bookings)| LedgerConfig {
            capacities,
            max_bookings,
        },
    )
}

/// The proptest configuration of the suites: `default_cases` cases unless
/// `PROPTEST_CASES` says otherwise (read here, because an explicit `cases`
/// would override proptest's own reading of it), failures persisted under
/// the top-level `proptest-regressions/` as `file`.
pub fn proptest_config(default_cases: u32, file: &'static str) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        ..Config::default()
    }
}

/// An event id that may or may not exist in a ledger of up to 4 events.
pub fn event_id(events: usize) -> impl Strategy<Value = EventId> {
    let known = u32::try_from(events.max(1)).expect("few events");
    prop_oneof![
        10 => 1..=known,
        1 => Just(known + 1),
        1 => Just(u32::MAX),
        1 => 1..=u32::MAX,
    ]
    .prop_map(|raw| EventId::new(raw).expect("non-zero"))
}

/// A quantity: mostly small, sometimes huge.
pub fn quantity() -> impl Strategy<Value = NonZeroU32> {
    prop_oneof![
        12 => 1..=3u32,
        3 => 4..=7u32,
        1 => Just(u32::MAX),
        1 => 1..=u32::MAX,
    ]
    .prop_map(|raw| NonZeroU32::new(raw).expect("non-zero"))
}

/// A client-chosen id from a small pool (so ids collide), or rarely the
/// largest one or any one.
pub fn client_id() -> impl Strategy<Value = ClientBookingId> {
    prop_oneof![
        12 => 1..=6u64,
        1 => Just((1u64 << 63) - 1),
        1 => 1..(1u64 << 63),
    ]
    .prop_map(|raw| ClientBookingId::new(raw).expect("bit 63 clear, non-zero"))
}

/// A server id `(1 << 63) | n` with a small `n`: issued or not, depending on
/// the state.
pub fn small_server_id() -> impl Strategy<Value = BookingId> {
    (1..=12u64).prop_map(|n| BookingId::server(n).expect("small n"))
}

/// Any operation, independent of the state: ids from small pools so that
/// sequences of them collide, cancel and retry one another.
pub fn operation(events: usize) -> impl Strategy<Value = Operation> {
    let cancel_target = prop_oneof![
        2 => client_id().prop_map(BookingId::from),
        2 => small_server_id(),
        1 => (1..=u64::MAX).prop_map(|raw| BookingId::new(raw).expect("non-zero")),
    ];
    prop_oneof![
        1 => event_id(events).prop_map(|event| Operation::Query { event }),
        4 => (event_id(events), quantity(), proptest::option::of(client_id())).prop_map(
            |(event, quantity, booking)| Operation::Reserve {
                event,
                quantity,
                booking,
            }
        ),
        2 => cancel_target.clone().prop_map(|booking| Operation::Cancel { booking }),
        2 => (event_id(events), quantity(), proptest::option::of(client_id())).prop_map(
            |(event, quantity, booking)| Operation::Hold {
                event,
                quantity,
                booking,
            }
        ),
        1 => cancel_target.prop_map(|booking| Operation::Confirm { booking }),
    ]
}
