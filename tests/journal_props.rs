//! Property tests of the journal over the crash-simulating disk:
//!
//! - a journal cut at any byte reopens to exactly the changes whose records
//!   it holds whole (a cut inside the header is refused);
//! - a flipped byte in a record followed by others is refused with that
//!   record's offset; in the last record, the record is cut off;
//! - power cut before any disk operation, single-threaded or with threads
//!   racing through group commit and compaction: every change (and every
//!   state a reply showed) acknowledged before the cut is there after it,
//!   and what recovery finds is the state after some prefix of the changes.
//!
//! Failures persist under `proptest-regressions/journal_props.txt`.

mod support;

use std::sync::{Arc, Mutex};

use guichet::journal::{CrashMode, SimDisk};
use guichet::journal::{Journal, JournalConfig, JournalError, Lsn, Opened, MIN_COMPACT_MIN_BYTES};
use guichet::ledger::Change;
use guichet::{Ledger, Operation};
use proptest::prelude::*;
use support::{ledger_config, operation, proptest_config, LedgerConfig};

const REGRESSIONS: &str = "proptest-regressions/journal_props.txt";

fn journal_config(config: &LedgerConfig) -> JournalConfig {
    JournalConfig {
        events: Some(
            config
                .ledger()
                .events()
                .map(|e| (e.name.to_owned(), e.seats.capacity))
                .collect(),
        ),
        max_bookings: Some(config.max_bookings),
        compact_min_bytes: MIN_COMPACT_MIN_BYTES,
        // Small, so that cuts and flips land in the zeros too.
        preallocate_bytes: 256,
        ..JournalConfig::default()
    }
}

fn open(disk: &SimDisk, config: &LedgerConfig) -> Result<Opened, JournalError> {
    Journal::open(Box::new(disk.clone()), "j", &journal_config(config))
}

/// A journal built by applying `ops` one at a time: its bytes, the end
/// offset of each change record, and the ledger after each change
/// (`states[0]` before any).
struct Built {
    bytes: Vec<u8>,
    header_end: u64,
    record_ends: Vec<u64>,
    states: Vec<Ledger>,
}

fn build(config: &LedgerConfig, ops: &[Operation]) -> Built {
    let disk = SimDisk::new();
    let opened = open(&disk, config).expect("a new journal");
    let (journal, mut ledger) = (opened.journal, opened.ledger);
    let header_end = journal.stats().file_bytes;
    let mut record_ends = Vec::new();
    let mut states = vec![ledger.clone()];
    for op in ops {
        if let Some(change) = ledger.apply(op).change() {
            let lsn = journal.append(&change).expect("append");
            journal.wait_durable(lsn).expect("durable");
            record_ends.push(journal.stats().file_bytes);
            states.push(ledger.clone());
        }
    }
    Built {
        bytes: disk.contents("j").expect("the journal"),
        header_end,
        record_ends,
        states,
    }
}

fn history() -> impl Strategy<Value = (LedgerConfig, Vec<Operation>)> {
    ledger_config().prop_flat_map(|config| {
        let events = config.capacities.len();
        (
            Just(config),
            prop::collection::vec(operation(events), 1..60),
        )
    })
}

proptest! {
    #![proptest_config(proptest_config(48, REGRESSIONS))]

    #[test]
    fn a_journal_cut_at_any_byte_reopens_to_the_records_it_holds_whole(
        (config, ops) in history()
    ) {
        let built = build(&config, &ops);
        for cut in 0..=built.bytes.len() {
            let disk = SimDisk::new();
            disk.put("j", &built.bytes[..cut]);
            let result = open(&disk, &config);
            if (cut as u64) < built.header_end {
                prop_assert!(
                    matches!(result, Err(JournalError::NotAJournal { .. })),
                    "cut {} in the header: {:?}", cut, result.map(|o| o.recovery)
                );
                continue;
            }
            let opened = result.map_err(|e| TestCaseError::fail(format!("cut {cut}: {e}")))?;
            let whole = built.record_ends.iter().filter(|end| **end <= cut as u64).count();
            prop_assert_eq!(&opened.ledger, &built.states[whole], "cut {}", cut);
            opened.ledger.check_invariants().map_err(|e| TestCaseError::fail(e.to_string()))?;
            // Torn if the bytes after the last whole record are not all
            // zeros (preallocated, never written).
            let last_end = if whole == 0 { built.header_end } else { built.record_ends[whole - 1] };
            let torn = built.bytes[last_end as usize..cut].iter().any(|b| *b != 0);
            prop_assert_eq!(opened.recovery.torn_tail.is_some(), torn, "cut {}", cut);
            // The cut-off bytes are gone from the file, and it goes on.
            let kept = disk.contents("j").expect("still there").len();
            prop_assert!(kept <= cut);
        }
    }

    /// A compacted journal's snapshot only ever appears whole (it is synced
    /// before it takes the journal's name), so a cut inside it is damage,
    /// refused; a cut after it reopens to the snapshot plus the changes
    /// held whole.
    #[test]
    fn a_compacted_journal_cut_at_any_byte_refuses_or_reopens_to_a_prefix(
        (config, ops) in history(),
        split in any::<prop::sample::Index>(),
    ) {
        let (before, after) = ops.split_at(split.index(ops.len()));
        let disk = SimDisk::new();
        let opened = open(&disk, &config).expect("a new journal");
        let journal = opened.journal;
        let ledger = Mutex::new(opened.ledger);
        let apply = |op: &Operation| {
            let mut ledger = ledger.lock().unwrap();
            if let Some(change) = ledger.apply(op).change() {
                let lsn = journal.append(&change).expect("append");
                journal.wait_durable(lsn).expect("durable");
                return Some((journal.stats().file_bytes, ledger.clone()));
            }
            None
        };
        before.iter().for_each(|op| { apply(op); });
        prop_assert!(journal.compact(&ledger.lock().unwrap()).expect("compaction"));
        let base = journal.stats().file_bytes;
        let mut states = vec![(base, ledger.lock().unwrap().clone())];
        states.extend(after.iter().filter_map(apply));
        let bytes = disk.contents("j").expect("the journal");
        for cut in 0..=bytes.len() {
            let cut_disk = SimDisk::new();
            cut_disk.put("j", &bytes[..cut]);
            let result = open(&cut_disk, &config);
            if (cut as u64) < base {
                prop_assert!(
                    matches!(result, Err(JournalError::NotAJournal { .. } | JournalError::Corrupt { .. })),
                    "cut {} inside the snapshot: {:?}", cut, result.map(|o| o.recovery)
                );
                continue;
            }
            let opened = result.map_err(|e| TestCaseError::fail(format!("cut {cut}: {e}")))?;
            let whole = states.iter().filter(|(end, _)| *end <= cut as u64).count();
            prop_assert_eq!(&opened.ledger, &states[whole - 1].1, "cut {}", cut);
        }
    }

    #[test]
    fn a_flipped_byte_is_refused_in_the_middle_and_cut_off_at_the_end(
        (config, ops) in history(),
        pick in any::<prop::sample::Index>(),
        flip in 1..=255u8,
    ) {
        let built = build(&config, &ops);
        prop_assume!(!built.record_ends.is_empty());
        let at = built.header_end as usize
            + pick.index(built.bytes.len() - built.header_end as usize);
        let mut bad = built.bytes.clone();
        bad[at] ^= flip;
        let disk = SimDisk::new();
        disk.put("j", &bad);
        let record = built.record_ends.iter().filter(|end| **end <= at as u64).count();
        let start = if record == 0 { built.header_end } else { built.record_ends[record - 1] };
        // The last record, or the preallocated zeros after it.
        let last = record + 1 >= built.record_ends.len();
        match open(&disk, &config) {
            Ok(opened) => {
                prop_assert!(last, "byte {} of record {} not the last: accepted", at, record);
                prop_assert_eq!(opened.recovery.torn_tail.map(|t| t.offset), Some(start));
                prop_assert_eq!(&opened.ledger, &built.states[record]);
            }
            Err(JournalError::Corrupt { offset, .. }) => {
                prop_assert!(!last, "the last record was refused, not cut off");
                prop_assert_eq!(offset, start);
                prop_assert_eq!(disk.contents("j"), Some(bad), "refusing changes nothing");
            }
            Err(other) => prop_assert!(false, "{}", other),
        }
    }

    /// Single-threaded, so the run is the same each time and the power cut
    /// can land before any operation; `group` changes share each wait, so
    /// batches of many changes are written and cut too.
    #[test]
    fn a_power_cut_anywhere_keeps_everything_acknowledged(
        (config, ops) in history(),
        compact_every in prop::option::of(3..20usize),
        group in prop_oneof![Just(1usize), 2..80usize],
        cut_fraction in 0.0..1.0f64,
        seed in any::<u64>(),
        scrambled in any::<bool>(),
    ) {
        let mode = if scrambled { CrashMode::Scrambled } else { CrashMode::Ordered };
        // A dry run counts the operations, then the real one is cut.
        let dry = SimDisk::new();
        let base = dry.changes();
        let dry_run = run_until_cut(&dry, &config, &ops, compact_every, group);
        prop_assert!(!dry_run.cut_short, "the run failed with the power on");
        let total = dry.changes() - base;
        let disk = SimDisk::new();
        let n = 1 + (cut_fraction * total as f64) as u64;
        disk.cut_power_before(n, seed, mode);
        let run = run_until_cut(&disk, &config, &ops, compact_every, group);
        let cut = disk.after_cut();
        prop_assert!(!run.cut_short || cut.is_some(), "the run failed before the power cut");
        let after = cut.unwrap_or_else(|| disk.crash(seed, mode));
        check_recovery(&after, &config, &run, mode)?;
    }
}

proptest! {
    #![proptest_config(proptest_config(24, REGRESSIONS))]

    /// Batches of tens to hundreds of changes (kilobytes: many sectors),
    /// cut by power anywhere and landed in any sector order. Regression
    /// (review): with one record per change, the first change of a torn
    /// batch could be garbage while later ones were whole, and the journal
    /// refused to start as corrupt.
    #[test]
    fn a_power_cut_during_a_large_batch_keeps_everything_acknowledged(
        config in roomy_config(),
        ops in prop::collection::vec(operation(2), 100..400),
        group in 20..200usize,
        cut_fraction in 0.0..1.0f64,
        seed in any::<u64>(),
    ) {
        let dry = SimDisk::new();
        let base = dry.changes();
        let dry_run = run_until_cut(&dry, &config, &ops, None, group);
        prop_assert!(!dry_run.cut_short, "the run failed with the power on");
        let total = dry.changes() - base;
        let disk = SimDisk::new();
        let n = 1 + (cut_fraction * total as f64) as u64;
        disk.cut_power_before(n, seed, CrashMode::Scrambled);
        let run = run_until_cut(&disk, &config, &ops, None, group);
        let cut = disk.after_cut();
        prop_assert!(!run.cut_short || cut.is_some(), "the run failed before the power cut");
        let after = cut.unwrap_or_else(|| disk.crash(seed, CrashMode::Scrambled));
        check_recovery(&after, &config, &run, CrashMode::Scrambled)?;
    }
}

/// What a run did: every change in journal order and the highest number
/// a wait acknowledged.
#[derive(Default)]
struct Run {
    changes: Vec<(u64, Change)>,
    acknowledged: u64,
    /// An error stopped it: only the power cut may cause one.
    cut_short: bool,
}

fn run_until_cut(
    disk: &SimDisk,
    config: &LedgerConfig,
    ops: &[Operation],
    compact_every: Option<usize>,
    group: usize,
) -> Run {
    let mut run = Run::default();
    let Ok(opened) = open(disk, config) else {
        run.cut_short = true;
        return run;
    };
    let (journal, ledger) = (opened.journal, Mutex::new(opened.ledger));
    for (i, op) in ops.iter().enumerate() {
        let lsn = {
            let mut ledger = ledger.lock().unwrap();
            match ledger.apply(op).change() {
                Some(change) => match journal.append(&change) {
                    Ok(lsn) => {
                        run.changes.push((lsn.get(), change));
                        lsn
                    }
                    Err(_) => {
                        run.cut_short = true;
                        return run;
                    }
                },
                None => journal.appended(),
            }
        };
        // Groups of operations share one wait, as concurrent clients do:
        // one group commit then writes a batch of many changes, whose
        // sectors a Scrambled crash may land in any order.
        if i % group != group - 1 && i + 1 != ops.len() {
            continue;
        }
        match journal.wait_durable(lsn) {
            Ok(()) => run.acknowledged = run.acknowledged.max(lsn.get()),
            Err(_) => {
                run.cut_short = true;
                return run;
            }
        }
        if compact_every.is_some_and(|k| i % k == k - 1)
            && journal.compact(&ledger.lock().unwrap()).is_err()
        {
            run.cut_short = true;
            return run;
        }
    }
    run
}

/// After a crash, in either mode, the journal must reopen: only the last
/// group commit can be unsynced, and it is one checksummed batch record,
/// so whatever order its sectors landed in it is a torn tail. (Scrambled
/// crashes used to be allowed to refuse as corrupt; that refused journals
/// a power cut had only torn.) Recovered, the ledger is the state after
/// some prefix of the changes holding every one acknowledged, and the
/// journal goes on working.
fn check_recovery(
    after: &SimDisk,
    config: &LedgerConfig,
    run: &Run,
    mode: CrashMode,
) -> Result<(), TestCaseError> {
    let opened = open(after, config).map_err(|e| TestCaseError::fail(format!("{mode:?}: {e}")))?;
    check_prefix(&opened.ledger, config, run)
        .map_err(|e| TestCaseError::fail(format!("{mode:?}: {e}")))?;
    // And it goes on: one more change, reopened.
    let (journal, mut ledger) = (opened.journal, opened.ledger);
    let more = Operation::Reserve {
        event: guichet::EventId::new(1).unwrap(),
        quantity: 1.try_into().unwrap(),
        booking: None,
    };
    let fail = |e: JournalError| TestCaseError::fail(e.to_string());
    if let Some(change) = ledger.apply(&more).change() {
        let lsn = journal.append(&change).map_err(fail)?;
        journal.wait_durable(lsn).map_err(fail)?;
    }
    journal.close().map_err(fail)?;
    drop(journal);
    let reopened = open(after, config).map_err(fail)?;
    prop_assert_eq!(reopened.ledger, ledger);
    Ok(())
}

/// Whether `recovered` is the ledger after some prefix of the run's
/// changes (in journal order) that holds every acknowledged one.
fn check_prefix(recovered: &Ledger, config: &LedgerConfig, run: &Run) -> Result<(), String> {
    recovered.check_invariants().map_err(|e| e.to_string())?;
    let mut changes = run.changes.clone();
    changes.sort_by_key(|(lsn, _)| *lsn);
    let mut state = config.ledger();
    for k in 0..=changes.len() {
        if k > 0 {
            state.replay(&changes[k - 1].1).map_err(|e| e.to_string())?;
        }
        let holds_acknowledged = k == changes.len() || changes[k].0 > run.acknowledged;
        if holds_acknowledged && state == *recovered {
            return Ok(());
        }
    }
    Err(format!(
        "recovered a state that is no prefix holding the {} acknowledged changes ({} made)",
        run.acknowledged,
        changes.len()
    ))
}

/// Two events with room for most reservations, so that most operations
/// change the ledger and the journal grows past compaction.
fn roomy_config() -> impl Strategy<Value = LedgerConfig> {
    (1_000..1_000_000u32, 0..50u32).prop_map(|(a, b)| LedgerConfig {
        capacities: vec![a, b],
        max_bookings: 100_000,
    })
}

/// Threads race through apply, append and group commit, with background
/// compactions, and the power is cut at some point among their operations.
fn threaded_run(disk: &SimDisk, config: &LedgerConfig, ops: &[Operation], threads: usize) -> Run {
    let Ok(opened) = open(disk, config) else {
        return Run {
            cut_short: true,
            ..Run::default()
        };
    };
    let journal = Arc::new(opened.journal);
    let ledger = Mutex::new(opened.ledger);
    let run = Mutex::new(Run::default());
    std::thread::scope(|s| {
        for chunk in ops.chunks(ops.len().div_ceil(threads)) {
            let (journal, ledger, run) = (&journal, &ledger, &run);
            s.spawn(move || {
                for op in chunk {
                    let lsn: Lsn = {
                        let mut ledger = ledger.lock().unwrap();
                        match ledger.apply(op).change() {
                            Some(change) => match journal.append(&change) {
                                Ok(lsn) => {
                                    run.lock().unwrap().changes.push((lsn.get(), change));
                                    lsn
                                }
                                Err(_) => return run.lock().unwrap().cut_short = true,
                            },
                            None => journal.appended(),
                        }
                    };
                    if journal.wait_durable(lsn).is_err() {
                        return run.lock().unwrap().cut_short = true;
                    }
                    let mut r = run.lock().unwrap();
                    r.acknowledged = r.acknowledged.max(lsn.get());
                    drop(r);
                    if journal.compact_if_due(&ledger.lock().unwrap()).is_err() {
                        return run.lock().unwrap().cut_short = true;
                    }
                }
            });
        }
    });
    let mut run = run.into_inner().unwrap();
    run.cut_short |= journal.close().is_err();
    run
}

proptest! {
    #![proptest_config(proptest_config(24, REGRESSIONS))]

    #[test]
    fn a_power_cut_during_concurrent_group_commits_keeps_everything_acknowledged(
        config in roomy_config(),
        ops in prop::collection::vec(operation(2), 200..600),
        threads in 2..6usize,
        cut_fraction in 0.0..1.0f64,
        seed in any::<u64>(),
        scrambled in any::<bool>(),
    ) {
        let mode = if scrambled { CrashMode::Scrambled } else { CrashMode::Ordered };
        let disk = SimDisk::new();
        // Threads overlap in the journal as on a real disk, so batches form
        // and compactions run while changes are flushed.
        disk.set_sync_delay(std::time::Duration::from_micros(200));
        // Roughly two disk operations per change; a cut past the end
        // becomes a crash after the run.
        let n = 1 + (cut_fraction * 2.0 * ops.len() as f64) as u64;
        disk.cut_power_before(n, seed, mode);
        let run = threaded_run(&disk, &config, &ops, threads);
        let cut = disk.after_cut();
        prop_assert!(!run.cut_short || cut.is_some(), "the run failed before the power cut");
        let after = cut.unwrap_or_else(|| disk.crash(seed, mode));
        check_recovery(&after, &config, &run, mode)?;
    }
}
