//! Holds in the journal: journalled with their wall-clock expiry, expired
//! at replay once it has passed, kept live with their expiry by a rewrite
//! (compaction), and replayable when later changes used an expired hold's seats.

use std::num::NonZeroU32;
use std::sync::Arc;

use super::sim::SimDisk;
use super::*;
use crate::codec::Operation;
use crate::ids::{BookingId, ClientBookingId, EventId};
use crate::ledger::Ledger;
use crate::ledger::{unix_now_ms, BookingState, Clock, ManualClock, Origin, Outcome};
use crate::Status;

const HOUR_MS: u64 = 3_600_000;

fn config() -> JournalConfig {
    JournalConfig {
        events: Some(vec![("A".into(), 10), ("B".into(), 7)]),
        max_bookings: Some(100),
        ..JournalConfig::default()
    }
}

fn open(disk: &SimDisk) -> Opened {
    Journal::open(Box::new(disk.clone()), "j", &config()).expect("opens")
}

fn id(n: u64) -> BookingId {
    BookingId::new(n).expect("non-zero")
}

fn hold(event: u32, quantity: u32, booking: u64) -> Operation {
    Operation::Hold {
        event: EventId::new(event).expect("non-zero"),
        quantity: NonZeroU32::new(quantity).expect("non-zero"),
        booking: ClientBookingId::new(booking),
    }
}

/// Applies `op` and makes its change durable, as the server does before an OK.
fn apply(journal: &Journal, ledger: &mut Ledger, op: Operation) -> Outcome {
    let outcome = ledger.apply(&op);
    if let Some(change) = outcome.change() {
        let lsn = journal.append(&change).expect("append");
        journal.wait_durable(lsn).expect("durable");
    }
    outcome
}

#[test]
fn holds_survive_a_restart_and_those_due_by_then_are_expired() {
    let disk = SimDisk::new();
    let opened = open(&disk);
    let journal = opened.journal;
    // The server's clock an hour behind the wall clock: its holds of 30
    // minutes are live for it, and past by the time it restarts.
    let clock = ManualClock::new(unix_now_ms() - HOUR_MS);
    let mut ledger = opened
        .ledger
        .with_clock(Arc::new(clock.clone()))
        .with_hold_ms(HOUR_MS / 2)
        .unwrap();
    let held_then = clock.now_ms();
    assert_eq!(
        apply(&journal, &mut ledger, hold(1, 2, 1)).status(),
        Status::Ok
    ); // due at restart
    apply(&journal, &mut ledger, hold(1, 1, 3));
    apply(&journal, &mut ledger, Operation::Confirm { booking: id(3) }); // for good
    apply(&journal, &mut ledger, hold(2, 4, 4));
    apply(&journal, &mut ledger, Operation::Cancel { booking: id(4) });
    let mut ledger = ledger.with_hold_ms(2 * HOUR_MS).unwrap();
    apply(&journal, &mut ledger, hold(2, 3, 2)); // live after the restart
    assert_eq!(
        ledger
            .events()
            .map(|e| e.seats.remaining)
            .collect::<Vec<_>>(),
        [7, 4]
    );
    journal.close().unwrap();
    drop(journal);

    let reopened = open(&disk);
    assert_eq!(reopened.recovery.changes_replayed, 6);
    let state = |l: &Ledger, n| l.booking(id(n)).map(|b| (b.state, b.origin));
    for ledger in [&reopened.ledger, &open_again(&disk, reopened.journal)] {
        assert_eq!(
            state(ledger, 1),
            Some((BookingState::Expired, Origin::Hold))
        );
        let live = BookingState::Held {
            expires_at_ms: held_then + 2 * HOUR_MS,
        };
        assert_eq!(state(ledger, 2), Some((live, Origin::Hold)));
        assert_eq!(state(ledger, 3), Some((BookingState::Active, Origin::Hold)));
        assert_eq!(
            state(ledger, 4),
            Some((BookingState::Cancelled, Origin::Hold))
        );
        let remaining: Vec<u32> = ledger.events().map(|e| e.seats.remaining).collect();
        assert_eq!(remaining, [9, 4]);
        ledger.check_invariants().unwrap();
    }
    let mut ledger = reopened_ledger(&disk);
    assert_eq!(ledger.confirm(id(1)).status(), Status::HoldExpired);
    assert_eq!(ledger.confirm(id(2)).status(), Status::Ok);
}

/// Closes `journal` and opens the file again: the first open rewrote the
/// replayed changes as a snapshot, so this reads holds from a snapshot.
fn open_again(disk: &SimDisk, journal: Journal) -> Ledger {
    journal.close().unwrap();
    drop(journal);
    let opened = open(disk);
    assert_eq!(opened.recovery.changes_replayed, 0);
    assert!(opened.recovery.snapshot_bookings >= 4);
    opened.ledger
}

fn reopened_ledger(disk: &SimDisk) -> Ledger {
    open(disk).ledger
}

/// Expiry is not journalled: a RESERVE that took the seats of an expired
/// hold must replay all the same.
#[test]
fn a_reservation_of_an_expired_holds_seats_replays() {
    let disk = SimDisk::new();
    let opened = open(&disk);
    let journal = opened.journal;
    let clock = ManualClock::new(unix_now_ms());
    let mut ledger = opened
        .ledger
        .with_clock(Arc::new(clock.clone()))
        .with_hold_ms(HOUR_MS)
        .unwrap();
    apply(&journal, &mut ledger, hold(2, 7, 1));
    apply(&journal, &mut ledger, hold(2, 7, 2)); // SOLD_OUT: held
    clock.advance_ms(HOUR_MS);
    let reserve = Operation::Reserve {
        event: EventId::new(2).unwrap(),
        quantity: NonZeroU32::new(7).unwrap(),
        booking: None,
    };
    assert_eq!(apply(&journal, &mut ledger, reserve).status(), Status::Ok);
    journal.close().unwrap();
    drop(journal);
    let reopened = open(&disk);
    assert_eq!(reopened.recovery.changes_replayed, 2);
    let hold = reopened.ledger.booking(id(1)).map(|b| b.state);
    assert_eq!(hold, Some(BookingState::Expired));
    assert_eq!(
        reopened.ledger.events().nth(1).map(|e| e.seats.remaining),
        Some(0)
    );
    reopened.ledger.check_invariants().unwrap();
}

/// A format-2 journal (kind-4 snapshot, batches of RESERVE and CANCEL)
/// still opens, and is rewritten in this build's format.
#[test]
fn a_format_2_journal_is_still_read() {
    let header = record::Header {
        format_version: 2,
        max_bookings: 100,
        snapshot_records: 1,
        events: vec![("A".into(), 10), ("B".into(), 7)],
    };
    let booking = crate::ledger::Booking {
        event: EventId::new(1).unwrap(),
        quantity: NonZeroU32::new(3).unwrap(),
        state: BookingState::Active,
        origin: Origin::Reserve,
    };
    let mut bytes = Vec::new();
    record::encode_header_as(&mut bytes, &header, 2);
    record::encode_snapshot(&mut bytes, 1, &[(id(9), booking)]);
    assert_eq!(bytes[bytes.len() - 17 - 4 - 1], 4, "a kind-4 snapshot");
    let cancelled = crate::ledger::Change::Cancelled { booking: id(9) };
    record::encode_batch(&mut bytes, 2, &[cancelled]);
    let disk = SimDisk::new();
    disk.put("j", &bytes);
    let opened = Journal::open(Box::new(disk.clone()), "j", &JournalConfig::default()).unwrap();
    assert_eq!(opened.recovery.changes_replayed, 1);
    assert!(opened.recovery.rewritten);
    let state = opened.ledger.booking(id(9)).map(|b| b.state);
    assert_eq!(state, Some(BookingState::Cancelled));
}

/// Regression: a compaction encodes a copy of the ledger after releasing
/// its lock. A hold confirmed in time after the copy, whose deadline then
/// passes before the copy is encoded, must not be written as expired: the
/// CONFIRM after the snapshot would not replay.
#[test]
fn a_snapshot_written_after_a_deadline_still_takes_the_confirm_made_in_time() {
    let clock = ManualClock::new(unix_now_ms());
    let mut ledger = Ledger::new([("A", 10)], 100)
        .unwrap()
        .with_clock(Arc::new(clock.clone()))
        .with_hold_ms(HOUR_MS)
        .unwrap();
    ledger.apply(&hold(1, 2, 1));
    let copy = ledger.clone();
    let confirmed = ledger.apply(&Operation::Confirm { booking: id(1) });
    let change = confirmed.change().expect("confirmed now");
    clock.advance_ms(HOUR_MS); // the copy's hold is due when it is encoded
    let image = compact::encode_image(&copy);
    let mut bytes = image.bytes;
    record::encode_batch(&mut bytes, image.next_seq, &[change]);
    let disk = SimDisk::new();
    disk.put("j", &bytes);
    let config = JournalConfig::default();
    let opened = Journal::open(Box::new(disk.clone()), "j", &config).expect("replays");
    let state = opened.ledger.booking(id(1)).map(|b| b.state);
    assert_eq!(state, Some(BookingState::Active));
}
