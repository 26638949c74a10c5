//! Deterministic tests of opening, replaying, failing and compacting; the
//! property tests are in `tests/journal_props.rs`.

use std::num::NonZeroU32;
use std::sync::Mutex;

use super::sim::{CrashMode, SimDisk};
use super::*;
use crate::codec::Operation;
use crate::ids::{BookingId, ClientBookingId, EventId};
use crate::ledger::Ledger;

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
    let bytes = disk.contents("j").unwrap();
    let physical = bytes.len() as u64;
    assert!(physical > logical, "{physical} <= {logical}");
    let reopened = open(&disk).unwrap();
    assert_eq!(reopened.recovery.torn_tail, None);
    assert_eq!(reopened.ledger, ledger.into_inner().unwrap());
    // A partial record in the zeros is torn, and goes with them.
    let mut bad = bytes;
    bad[logical as usize] = 17;
    let disk = SimDisk::new();
    disk.put("j", &bad);
    let reopened = open(&disk).unwrap();
    let torn = reopened.recovery.torn_tail.unwrap();
    assert_eq!((torn.offset, torn.bytes), (logical, physical - logical));
    assert!(reopened.recovery.rewritten);
    drop(reopened.journal);
    assert_eq!(open(&disk).unwrap().recovery.torn_tail, None);
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
    assert!(opened.recovery.rewritten);
    // The journal is now the replayed ledger's snapshot, tail gone.
    drop(opened.journal);
    let again = open(&disk).unwrap();
    assert_eq!(again.recovery.torn_tail, None);
    assert_eq!(again.recovery.changes_replayed, 0);
    assert!(
        !again.recovery.rewritten,
        "a bare snapshot is kept as it is"
    );
    assert_eq!(again.ledger, opened.ledger);
}

/// Regression (review): a last record whose checksum matches but whose
/// payload does not decode is refused, not cut off as a torn tail: no
/// crash writes one, and it may hold acknowledged changes.
#[test]
fn an_undecodable_last_record_with_a_valid_checksum_is_refused_not_truncated() {
    let (mut bytes, offsets, _) = journal_bytes(40);
    let last = *offsets.last().unwrap();
    let seq = record::parse_frame(&bytes[last as usize..]).unwrap().seq;
    let end = bytes.len() as u64;
    // Kind 99 exists in no format.
    record::encode_raw(&mut bytes, seq + 1, &[99, 1, 2, 3]);
    let disk = SimDisk::new();
    disk.put("j", &bytes);
    let err = open(&disk).map(|_| ()).unwrap_err();
    match &err {
        JournalError::Corrupt { offset, reason, .. } => {
            assert_eq!(*offset, end, "{err}");
            assert!(reason.contains("does not decode"), "{err}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    assert_eq!(disk.contents("j").unwrap(), bytes, "nothing changed");
}

/// Regression (review): everything replayed is durable before `open`
/// returns, even a batch read back from the page cache after its fdatasync
/// failed and marked it clean (a later fdatasync alone would not write it).
#[test]
fn what_open_replayed_survives_a_power_cut_right_after() {
    for seed in 0..20 {
        let disk = SimDisk::new();
        let opened = open(&disk).unwrap();
        let (journal, ledger) = (opened.journal, Mutex::new(opened.ledger));
        run(&journal, &ledger, &ops(12, 20)).unwrap();
        disk.fail_sync_losing_writes_after(1);
        assert!(run(&journal, &ledger, &ops(13, 20)).is_err());
        drop(journal);
        let reopened = open(&disk).unwrap();
        let after = disk.crash(seed, CrashMode::Ordered);
        assert_eq!(open(&after).unwrap().ledger, reopened.ledger, "seed {seed}");
    }
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
        err @ JournalError::Corrupt { .. } => {
            let message = err.to_string();
            let JournalError::Corrupt { offset, reason, .. } = err else {
                unreachable!()
            };
            assert_eq!(offset, victim, "{reason}");
            assert!(reason.contains("checksum"), "{reason}");
            // The message names the offset and never advises discarding
            // the journal: what follows may be acknowledged bookings.
            assert!(
                message.contains(&format!("truncate -s {victim}")),
                "{message}"
            );
            assert!(!message.contains("empty journal"), "{message}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(disk.contents("j").unwrap(), bad);
}

/// Regression (review): a power cut while a group commit's write is
/// unsynced may persist its sectors in any order, so the *first* change of
/// the batch can be garbage while later ones are whole. Nothing of that
/// batch was acknowledged: it is a torn tail, and the journal must reopen
/// with every acknowledged change instead of refusing as corrupt (which it
/// did in most seeds when each change was its own record).
#[test]
fn a_power_cut_during_an_unsynced_batch_is_a_torn_tail_whatever_sectors_land() {
    let config = JournalConfig {
        events: Some(vec![("E".into(), 100_000)]),
        // Enough to take the preallocation path; small, so that 200
        // crashes of the file stay quick.
        preallocate_bytes: 4096,
        ..JournalConfig::default()
    };
    let reserve = Operation::Reserve {
        event: EventId::new(1).unwrap(),
        quantity: NonZeroU32::new(1).unwrap(),
        booking: None,
    };
    let disk = SimDisk::new();
    let opened = Journal::open(Box::new(disk.clone()), "j", &config).unwrap();
    let (journal, mut ledger) = (opened.journal, opened.ledger);
    let mut append = |n: usize| {
        let mut last = None;
        for _ in 0..n {
            last = Some(
                journal
                    .append(&ledger.apply(&reserve).change().unwrap())
                    .unwrap(),
            );
        }
        last.unwrap()
    };
    journal.wait_durable(append(50)).unwrap(); // 50 acknowledged
    let lsn = append(300); // about 10 KiB: many sectors
    let before = disk.contents("j");
    let gate = disk.hold_syncs();
    let mut outcomes = std::collections::BTreeMap::new();
    // Failures are collected and asserted after the gate opens: a panic
    // with the fdatasync still held would leave the flushing thread blocked
    // and the scope waiting for it.
    let mut failures = Vec::new();
    std::thread::scope(|s| {
        let flush = s.spawn(|| journal.wait_durable(lsn));
        // The batch is written and its fdatasync held at the gate.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while disk.contents("j") == before && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        for seed in 0..200 {
            let after = disk.crash(seed, CrashMode::Scrambled);
            match Journal::open(Box::new(after), "j", &JournalConfig::default()) {
                Ok(opened) => {
                    let replayed = opened.recovery.changes_replayed;
                    if replayed != 50 && replayed != 350 {
                        failures.push(format!("seed {seed}: replayed {replayed}"));
                    }
                    let torn = opened.recovery.torn_tail.is_some();
                    *outcomes.entry((replayed, torn)).or_insert(0) += 1;
                }
                Err(e) => failures.push(format!("seed {seed}: {e}")),
            }
        }
        gate.open();
        assert!(flush.join().unwrap().is_err(), "the disk is gone");
    });
    assert!(
        failures.is_empty(),
        "{} of 200 power cuts: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    // The cuts do reach damaged batches (a whole one is rare: 20-odd
    // sectors must all land).
    let torn: u32 = outcomes
        .iter()
        .filter(|((_, t), _)| *t)
        .map(|(_, n)| n)
        .sum();
    assert!(torn > 100, "{outcomes:?}");
}

/// Format 1 wrote one record per change; this build still reads it.
#[test]
fn a_format_1_journal_is_still_read() {
    let header = record::Header {
        format_version: 1,
        max_bookings: 100,
        snapshot_records: 0,
        events: vec![("A".into(), 10)],
    };
    let reserved = crate::ledger::Change::Reserved {
        booking: BookingId::new(42).unwrap(),
        event: EventId::new(1).unwrap(),
        quantity: NonZeroU32::new(3).unwrap(),
    };
    let cancelled = crate::ledger::Change::Cancelled {
        booking: BookingId::new(42).unwrap(),
    };
    let mut bytes = Vec::new();
    record::encode_header_as(&mut bytes, &header, 1);
    record::encode_change(&mut bytes, 1, &reserved);
    record::encode_change(&mut bytes, 2, &cancelled);
    let disk = SimDisk::new();
    disk.put("j", &bytes);
    let opened = Journal::open(Box::new(disk.clone()), "j", &JournalConfig::default()).unwrap();
    assert_eq!(opened.recovery.changes_replayed, 2);
    let booking = opened.ledger.booking(BookingId::new(42).unwrap()).unwrap();
    assert_eq!(booking.state, crate::ledger::BookingState::Cancelled);
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

/// A directory that panics where `armed` says: `"sync NAME"` in the
/// `sync_data` of the file created or opened as NAME (`"sync *"`: of any
/// file), `"rename"` in a rename. A `Storage` is the
/// embedder's code, and may panic.
#[derive(Clone, Default)]
struct PanickyDir {
    disk: SimDisk,
    armed: std::sync::Arc<Mutex<Option<&'static str>>>,
}

impl PanickyDir {
    fn arm(&self, at: Option<&'static str>) {
        *self.armed.lock().unwrap() = at;
    }

    fn panic_if_armed(&self, at: &str) {
        let armed = *self.armed.lock().unwrap();
        if armed == Some(at) || (armed == Some("sync *") && at.starts_with("sync ")) {
            panic!("deliberate panic at {at} (test)");
        }
    }

    fn wrap(&self, name: &str, inner: Box<dyn Storage>) -> Box<dyn Storage> {
        Box::new(PanickyFile {
            inner,
            sync_point: format!("sync {name}"),
            dir: self.clone(),
        })
    }
}

struct PanickyFile {
    inner: Box<dyn Storage>,
    sync_point: String,
    dir: PanickyDir,
}

impl Storage for PanickyFile {
    fn len_bytes(&self) -> std::io::Result<u64> {
        self.inner.len_bytes()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.inner.write_at(offset, data)
    }
    fn sync_data(&mut self) -> std::io::Result<()> {
        self.dir.panic_if_armed(&self.sync_point);
        self.inner.sync_data()
    }
    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.inner.truncate(len)
    }
}

impl Dir for PanickyDir {
    fn open(&self, name: &str) -> std::io::Result<Option<Box<dyn Storage>>> {
        Ok(self.disk.open(name)?.map(|f| self.wrap(name, f)))
    }
    fn create(&self, name: &str) -> std::io::Result<Box<dyn Storage>> {
        Ok(self.wrap(name, self.disk.create(name)?))
    }
    fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        self.panic_if_armed("rename");
        self.disk.rename(from, to)
    }
    fn remove(&self, name: &str) -> std::io::Result<bool> {
        self.disk.remove(name)
    }
    fn sync(&self) -> std::io::Result<()> {
        self.disk.sync()
    }
    fn lock(&self, name: &str) -> std::io::Result<Option<LockGuard>> {
        self.disk.lock(name)
    }
    fn describe(&self) -> String {
        self.disk.describe()
    }
}

#[test]
fn a_storage_that_panics_fails_the_journal_and_no_waiter_hangs() {
    let dir = PanickyDir::default();
    let opened = Journal::open(Box::new(dir.clone()), "j", &config()).unwrap();
    let journal = std::sync::Arc::new(opened.journal);
    let ledger = Mutex::new(opened.ledger);
    run(&journal, &ledger, &ops(7, 10)).unwrap();
    dir.arm(Some("sync *"));
    // The leader's flush panics inside the storage: a typed failure here…
    let err = run(&journal, &ledger, &ops(8, 10)).unwrap_err();
    assert!(matches!(err, JournalError::Failed(_)), "{err}");
    assert!(err.to_string().contains("panicked"), "{err}");
    assert!(journal.is_failed());
    assert!(!journal.is_flushing());
    // …and for every later waiter, at once: none is left asleep behind a
    // flush that will never finish (a hang would time the test out).
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let journal = std::sync::Arc::clone(&journal);
            std::thread::spawn(move || journal.wait_durable(journal.appended()))
        })
        .collect();
    for waiter in waiters {
        assert!(waiter.join().unwrap().is_err());
    }
    let closed = journal.close_by(std::time::Instant::now() + std::time::Duration::from_secs(5));
    assert!(matches!(closed, Err(JournalError::Failed(_))), "{closed:?}");
}

#[test]
fn a_compaction_whose_storage_panics_before_the_rename_is_abandoned_not_stuck() {
    let dir = PanickyDir::default();
    let opened = Journal::open(Box::new(dir.clone()), "j", &config()).unwrap();
    let (journal, ledger) = (opened.journal, Mutex::new(opened.ledger));
    run(&journal, &ledger, &ops(10, 50)).unwrap();
    dir.arm(Some("sync j.compact"));
    assert!(journal.compact(&ledger.lock().unwrap()).is_err());
    assert!(!journal.is_failed());
    assert_eq!(journal.stats().compactions_failed, 1);
    // The old journal is still in use, and a later compaction can run:
    // the panic did not leave one marked as running.
    dir.arm(None);
    run(&journal, &ledger, &ops(11, 50)).unwrap();
    assert!(journal.compact(&ledger.lock().unwrap()).unwrap());
    run(&journal, &ledger, &ops(12, 50)).unwrap();
    journal.close().unwrap();
    drop(journal);
    let reopened = Journal::open(Box::new(dir.disk.clone()), "j", &config()).unwrap();
    assert_eq!(reopened.ledger, ledger.into_inner().unwrap());
}

#[test]
fn a_compaction_whose_storage_panics_in_the_swap_fails_the_journal_not_hangs_it() {
    let dir = PanickyDir::default();
    let opened = Journal::open(Box::new(dir.clone()), "j", &config()).unwrap();
    let (journal, ledger) = (opened.journal, Mutex::new(opened.ledger));
    run(&journal, &ledger, &ops(13, 50)).unwrap();
    dir.arm(Some("rename"));
    let err = journal.compact(&ledger.lock().unwrap()).unwrap_err();
    assert!(matches!(err, JournalError::Failed(_)), "{err}");
    assert!(journal.is_failed());
    assert!(!journal.is_flushing());
    assert!(run(&journal, &ledger, &ops(14, 5)).is_err());
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
    assert!(journal.compact(&ledger.lock().unwrap()).unwrap());
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
        if journal.compact_if_due(&ledger.lock().unwrap()).unwrap() {
            journal.close().unwrap(); // waits for the compaction
        }
        // Within the limit: twice the snapshot of the live state (or the
        // minimum), plus a chunk appended since the last check.
        let snapshot = compact::encode_image(&ledger.lock().unwrap()).bytes.len() as u64;
        let limit = MIN_COMPACT_MIN_BYTES.max(COMPACT_GROWTH_FACTOR * snapshot);
        let size = journal.stats().file_bytes;
        // A change is at most 38 bytes: a batch record of one reservation.
        assert!(size <= limit + 38 * chunk_ops as u64, "{size} > {limit}");
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
                let result = journal.compact(&ledger.lock().unwrap());
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

#[test]
fn a_failure_after_open_names_the_file_by_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bookings");
    let opened = Journal::open_path(&path, &config()).unwrap();
    let journal = opened.journal;
    let cause = {
        let mut st = journal.lock_state();
        let error = JournalError::io("fdatasync", "bookings")(std::io::Error::other("disk gone"));
        journal.fail(&mut st, error)
    };
    let shown = format!(
        "{}",
        journal
            .append(&crate::ledger::Change::Cancelled {
                booking: BookingId::new(1).unwrap(),
            })
            .unwrap_err()
    );
    let full = path.display().to_string();
    assert!(cause.to_string().contains(&full), "{cause}");
    assert!(shown.contains(&full), "{shown}");
}
