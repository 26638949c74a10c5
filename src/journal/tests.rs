//! Deterministic tests of opening, replaying, failing and compacting; the
//! property tests are in `tests/journal_props.rs`.

use std::num::NonZeroU32;
use std::sync::Mutex;

use super::sim::{CrashMode, SimDisk};
use super::*;
use crate::codec::Operation;
use crate::ids::{BookingId, ClientBookingId, EventId};

fn config() -> JournalConfig {
    JournalConfig {
        events: Some(vec![("A".into(), 1_000_000), ("B".into(), 7)]),
        max_bookings: Some(100_000),
        compact_min_bytes: MIN_COMPACT_MIN_BYTES,
        // Small, so the simulated disk stays small, but the path is taken.
        preallocate_bytes: 512,
        ..JournalConfig::default()
    }
}

fn open(disk: &SimDisk) -> Result<Opened, JournalError> {
    Journal::open(Box::new(disk.clone()), "j", &config())
}

/// `n` operations from a fixed generator: reserves with fresh client ids
/// and with server ids, cancels of recent bookings (so seats churn and the
/// journal grows), retries and refusals.
fn ops(seed: u64, n: usize) -> Vec<Operation> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    let base = seed << 32;
    let mut client = 0u64;
    let mut server = 0u64;
    (0..n)
        .map(|_| {
            let r = next();
            let event = EventId::new(1 + (r % 2) as u32).unwrap();
            let quantity = NonZeroU32::new(1 + (next() % 3) as u32).unwrap();
            let recent = |last: u64, pick: u64| last.saturating_sub(pick % 10).max(1);
            match r % 6 {
                0 => {
                    server += 1;
                    Operation::Reserve {
                        event,
                        quantity,
                        booking: None,
                    }
                }
                1 | 2 => {
                    client += 1;
                    Operation::Reserve {
                        event,
                        quantity,
                        booking: ClientBookingId::new(base + client),
                    }
                }
                3 => Operation::Cancel {
                    booking: BookingId::server(recent(server, next())).unwrap(),
                },
                4 => Operation::Cancel {
                    booking: BookingId::new(base + recent(client, next())).unwrap(),
                },
                _ => Operation::Reserve {
                    event,
                    quantity,
                    booking: ClientBookingId::new(base + recent(client, next())),
                },
            }
        })
        .collect()
}

/// Applies each operation as the server does and waits for it.
fn run(journal: &Journal, ledger: &Mutex<Ledger>, ops: &[Operation]) -> Result<(), JournalError> {
    for op in ops {
        let lsn = {
            let mut ledger = ledger.lock().unwrap();
            match ledger.apply(op).change() {
                Some(change) => journal.append(&change)?,
                None => journal.appended(),
            }
        };
        journal.wait_durable(lsn)?;
    }
    Ok(())
}

#[test]
fn a_new_journal_survives_a_crash_right_after_it_is_created() {
    for seed in 0..50 {
        let disk = SimDisk::new();
        let opened = open(&disk).unwrap();
        assert!(opened.recovery.created);
        let after = disk.crash(seed, CrashMode::Scrambled);
        let reopened = open(&after).unwrap();
        assert!(!reopened.recovery.created, "seed {seed}");
        assert_eq!(reopened.ledger, opened.ledger);
    }
}

#[test]
fn reopening_replays_every_change_server_ids_included() {
    let disk = SimDisk::new();
    let opened = open(&disk).unwrap();
    let ledger = Mutex::new(opened.ledger);
    run(&opened.journal, &ledger, &ops(1, 300)).unwrap();
    let stats = opened.journal.stats();
    assert!(stats.changes_appended > 50, "{stats:?}");
    assert_eq!(stats.changes_synced, stats.changes_appended);
    opened.journal.close().unwrap();
    drop(opened.journal);
    let reopened = open(&disk).unwrap();
    let ledger = ledger.into_inner().unwrap();
    assert_eq!(reopened.ledger, ledger);
    assert_eq!(reopened.recovery.changes_replayed, stats.changes_appended);
    // The next server id is not one already issued.
    let mut replayed = reopened.ledger;
    let mut original = ledger;
    let reserve = Operation::Reserve {
        event: EventId::new(1).unwrap(),
        quantity: NonZeroU32::new(1).unwrap(),
        booking: None,
    };
    assert_eq!(replayed.apply(&reserve), original.apply(&reserve));
}

#[test]
fn a_configuration_that_disagrees_is_refused_and_none_takes_the_journals() {
    let disk = SimDisk::new();
    drop(open(&disk).unwrap());
    let mut other = config();
    other.events = Some(vec![("A".into(), 51), ("B".into(), 7)]);
    let err = Journal::open(Box::new(disk.clone()), "j", &other).unwrap_err();
    assert!(matches!(err, JournalError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("A=1000000"), "{err}");
    let mut other = config();
    other.max_bookings = Some(999);
    let err = Journal::open(Box::new(disk.clone()), "j", &other).unwrap_err();
    assert!(matches!(err, JournalError::Mismatch { .. }), "{err}");
    let taken = Journal::open(Box::new(disk.clone()), "j", &JournalConfig::default()).unwrap();
    assert_eq!(taken.ledger.events().len(), 2);
    assert_eq!(taken.ledger.max_bookings(), 100_000);
}

#[test]
fn a_journal_open_elsewhere_is_locked() {
    let disk = SimDisk::new();
    let first = open(&disk).unwrap();
    assert!(matches!(open(&disk), Err(JournalError::Locked { .. })));
    drop(first);
    open(&disk).unwrap();
}

#[test]
fn a_file_that_is_not_a_journal_is_refused_and_left_alone() {
    for junk in [&b""[..], b"hello, world\n", &[0u8; 100], &[0xff; 40]] {
        let disk = SimDisk::new();
        disk.put("j", junk);
        let err = open(&disk).unwrap_err();
        assert!(matches!(err, JournalError::NotAJournal { .. }), "{err}");
        assert_eq!(disk.contents("j").unwrap(), junk);
    }
}

/// A journal with `n` changes from [`ops`], its bytes, and the offsets
/// where each change record starts.
fn journal_bytes(n_ops: usize) -> (Vec<u8>, Vec<u64>, Ledger) {
    let disk = SimDisk::new();
    let opened = open(&disk).unwrap();
    let ledger = Mutex::new(opened.ledger);
    let mut offsets = Vec::new();
    for op in ops(3, n_ops) {
        offsets.push(opened.journal.stats().file_bytes);
        run(&opened.journal, &ledger, &[op]).unwrap();
        if opened.journal.stats().file_bytes == *offsets.last().unwrap() {
            offsets.pop();
        }
    }
    // Without the preallocated zeros.
    let mut bytes = disk.contents("j").unwrap();
    bytes.truncate(opened.journal.stats().file_bytes as usize);
    (bytes, offsets, ledger.into_inner().unwrap())
}

#[test]
fn preallocated_zeros_are_the_end_not_a_torn_tail() {
    let disk = SimDisk::new();
    let opened = open(&disk).unwrap();
    let ledger = Mutex::new(opened.ledger);
    run(&opened.journal, &ledger, &ops(11, 100)).unwrap();
    let logical = opened.journal.stats().file_bytes;
    drop(opened.journal);
    let physical = disk.contents("j").unwrap().len() as u64;
    assert!(physical > logical, "{physical} <= {logical}");
    let reopened = open(&disk).unwrap();
    assert_eq!(reopened.recovery.torn_tail, None);
    assert_eq!(reopened.journal.stats().file_bytes, logical);
    assert_eq!(reopened.ledger, ledger.into_inner().unwrap());
    // A partial record in the zeros is torn, and cut off with them.
    let mut bytes = disk.contents("j").unwrap();
    bytes[logical as usize] = 17;
    drop(reopened);
    disk.put("j", &bytes);
    let torn = open(&disk).unwrap().recovery.torn_tail.unwrap();
    assert_eq!((torn.offset, torn.bytes), (logical, physical - logical));
    assert_eq!(disk.contents("j").unwrap().len() as u64, logical);
}

#[test]
fn a_torn_tail_is_cut_off_and_reported() {
    let (bytes, offsets, _) = journal_bytes(40);
    let last = *offsets.last().unwrap();
    let disk = SimDisk::new();
    disk.put("j", &bytes[..bytes.len() - 3]);
    let opened = open(&disk).unwrap();
    assert_eq!(
        opened.recovery.torn_tail,
        Some(TornTail {
            offset: last,
            bytes: bytes.len() as u64 - 3 - last
        })
    );
    assert_eq!(opened.recovery.changes_replayed, offsets.len() as u64 - 1);
    assert_eq!(disk.contents("j").unwrap(), &bytes[..last as usize]);
}

#[test]
fn damage_in_the_middle_is_refused_with_its_offset_and_nothing_changes() {
    let (bytes, offsets, _) = journal_bytes(40);
    let victim = offsets[offsets.len() / 2];
    let mut bad = bytes.clone();
    bad[victim as usize + 20] ^= 0x40;
    let disk = SimDisk::new();
    disk.put("j", &bad);
    match open(&disk).unwrap_err() {
        JournalError::Corrupt { offset, reason, .. } => {
            assert_eq!(offset, victim, "{reason}");
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(disk.contents("j").unwrap(), bad);
}

#[test]
fn a_failed_fsync_fails_the_journal_for_good() {
    let disk = SimDisk::new();
    let opened = open(&disk).unwrap();
    let (journal, ledger) = (opened.journal, Mutex::new(opened.ledger));
    run(&journal, &ledger, &ops(4, 10)).unwrap();
    let durable = journal.durable();
    disk.fail_sync_after(1);
    let err = run(&journal, &ledger, &ops(5, 50)).unwrap_err();
    assert!(matches!(err, JournalError::Failed(_)), "{err}");
    assert!(err.to_string().contains("fdatasync"), "{err}");
    assert!(journal.is_failed());
    let syncs = disk.syncs();
    // Nothing is acknowledged any more, not even what was durable, and
    // nothing is retried.
    assert!(journal.wait_durable(durable).is_err());
    let change = crate::ledger::Change::Cancelled {
        booking: BookingId::new(1).unwrap(),
    };
    assert!(journal.append(&change).is_err());
    assert!(journal.close().is_err());
    assert_eq!(disk.syncs(), syncs);
}

#[test]
fn a_failed_write_fails_the_journal_and_the_half_record_is_a_torn_tail() {
    let disk = SimDisk::new();
    let opened = open(&disk).unwrap();
    let (journal, ledger) = (opened.journal, Mutex::new(opened.ledger));
    run(&journal, &ledger, &ops(4, 10)).unwrap();
    let durable_ledger = ledger.lock().unwrap().clone();
    disk.fail_write_after(1);
    assert!(run(&journal, &ledger, &ops(6, 50)).is_err());
    drop(journal);
    let reopened = open(&disk).unwrap();
    assert!(reopened.recovery.torn_tail.is_some());
    assert_eq!(reopened.ledger, durable_ledger);
}

#[test]
fn compaction_shrinks_the_journal_and_keeps_the_ledger() {
    let disk = SimDisk::new();
    let opened = open(&disk).unwrap();
    let (journal, ledger) = (opened.journal, Mutex::new(opened.ledger));
    run(&journal, &ledger, &ops(7, 2000)).unwrap();
    let before = journal.stats().file_bytes;
    assert!(journal.compact(&ledger).unwrap());
    let after = journal.stats().file_bytes;
    assert!(after < before / 2, "{before} -> {after}");
    run(&journal, &ledger, &ops(8, 100)).unwrap();
    journal.close().unwrap();
    drop(journal);
    let reopened = open(&disk).unwrap();
    assert!(reopened.recovery.snapshot_bookings > 0);
    assert_eq!(reopened.ledger, ledger.into_inner().unwrap());
}

#[test]
fn compaction_is_triggered_by_size_and_bounds_the_journal() {
    let disk = SimDisk::new();
    let opened = open(&disk).unwrap();
    let journal = std::sync::Arc::new(opened.journal);
    let ledger = Mutex::new(opened.ledger);
    let chunk_ops = 50;
    for chunk in ops(9, 20_000).chunks(chunk_ops) {
        run(&journal, &ledger, chunk).unwrap();
        if journal.compact_if_due(&ledger).unwrap() {
            journal.close().unwrap(); // waits for the compaction
        }
        // Within the limit: twice the snapshot of the live state (or the
        // minimum), plus a chunk appended since the last check.
        let snapshot = compact::encode_image(&ledger.lock().unwrap()).bytes.len() as u64;
        let limit = MIN_COMPACT_MIN_BYTES.max(COMPACT_GROWTH_FACTOR * snapshot);
        let size = journal.stats().file_bytes;
        assert!(size <= limit + 33 * chunk_ops as u64, "{size} > {limit}");
    }
    journal.close().unwrap();
    let stats = journal.stats();
    assert!(stats.compactions >= 3, "{stats:?}");
    assert_eq!(stats.compactions_failed, 0);
    drop(journal);
    assert_eq!(open(&disk).unwrap().ledger, ledger.into_inner().unwrap());
}

/// Fails the `n`th sync or write of a compaction, then crashes the disk:
/// whatever step it stopped at, the journal reopens whole.
#[test]
fn a_compaction_stopped_at_any_step_leaves_a_whole_journal() {
    for fail_at in 1..=4u64 {
        for fail_write in [false, true] {
            for seed in 0..20 {
                let disk = SimDisk::new();
                let opened = open(&disk).unwrap();
                let (journal, ledger) = (opened.journal, Mutex::new(opened.ledger));
                run(&journal, &ledger, &ops(10, 300)).unwrap();
                let durable = ledger.lock().unwrap().clone();
                if fail_write {
                    disk.fail_write_after(fail_at);
                } else {
                    disk.fail_sync_after(fail_at);
                }
                let result = journal.compact(&ledger);
                let mode = if seed % 2 == 0 {
                    CrashMode::Ordered
                } else {
                    CrashMode::Scrambled
                };
                let after = disk.crash(seed, mode);
                drop(journal);
                let reopened = open(&after).unwrap_or_else(|e| {
                    panic!("fail {fail_at} write {fail_write} seed {seed}: {result:?}: {e}")
                });
                assert_eq!(reopened.ledger, durable, "fail {fail_at} seed {seed}");
            }
        }
    }
}

#[test]
fn a_stale_compaction_file_is_removed_at_start() {
    let disk = SimDisk::new();
    drop(open(&disk).unwrap());
    disk.put("j.compact", b"half a snapshot");
    let opened = open(&disk).unwrap();
    assert!(opened.recovery.stale_compaction_removed);
    assert!(!disk.names().contains(&"j.compact".to_owned()));
}

#[test]
fn many_threads_share_fsyncs() {
    for delay_us in [0, 300] {
        threads_share_fsyncs(delay_us);
    }
}

fn threads_share_fsyncs(delay_us: u32) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("journal");
    let config = JournalConfig {
        group_commit_delay_us: delay_us,
        ..config()
    };
    let opened = Journal::open_path(&path, &config).unwrap();
    let (journal, ledger) = (opened.journal, Mutex::new(opened.ledger));
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (journal, ledger) = (&journal, &ledger);
            s.spawn(move || {
                for i in 0..25u64 {
                    let op = Operation::Reserve {
                        event: EventId::new(1 + (i % 2) as u32).unwrap(),
                        quantity: NonZeroU32::new(1).unwrap(),
                        booking: ClientBookingId::new(1 + t * 1000 + i),
                    };
                    run(journal, ledger, &[op]).unwrap();
                }
            });
        }
    });
    let stats = journal.stats();
    // 8 × 13 of event 1, and event 2 sold out at 7.
    assert_eq!(stats.changes_synced, 8 * 13 + 7, "{stats:?}");
    assert!(stats.fsyncs <= stats.changes_synced);
    journal.close().unwrap();
    drop(journal);
    let reopened = Journal::open_path(&path, &JournalConfig::default()).unwrap();
    assert_eq!(reopened.ledger, ledger.into_inner().unwrap());
}
