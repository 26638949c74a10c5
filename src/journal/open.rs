//! Opening a journal, step by step: take its lock, clear what an
//! interrupted compaction left, then create a new journal or replay the
//! existing one, and make whatever was replayed durable before anything is
//! served from it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::ledger::{Ledger, DEFAULT_MAX_BOOKINGS};

use super::compact::{encode_image, rename_into_place, write_aside};
use super::error::JournalError;
use super::handle::Counters;
use super::record::{Header, FORMAT_VERSION};
use super::replay::{scan, Scanned};
use super::state::{FileState, State};
use super::storage::{Dir, LockGuard, Storage};
use super::{
    Journal, JournalConfig, Opened, Recovery, TornTail, MAX_COMPACT_MIN_BYTES,
    MAX_GROUP_COMMIT_DELAY_US, MAX_PREALLOCATE_BYTES, MIN_COMPACT_MIN_BYTES,
};

/// Where a journal is being opened, and with what: what every step needs.
struct Opening<'a> {
    dir: &'a dyn Dir,
    name: &'a str,
    /// Where a new journal or a compaction is written before it takes the name.
    aside_name: String,
    config: &'a JournalConfig,
    compact_min_bytes: u64,
}

impl Journal {
    /// Opens the journal `name` in `dir`, creating it if there is none.
    ///
    /// A new journal is written under another name, synced, renamed into
    /// place and its directory synced, so a journal never exists without
    /// its header. An existing one is replayed: a torn tail is left out (and
    /// reported in [`Recovery`]); anything else wrong refuses. Whatever was
    /// replayed is durable when this returns: unless the file held only
    /// its snapshot, the replayed ledger is written as a new journal the
    /// way a compaction writes one ([`Recovery::rewritten`]).
    ///
    /// # Errors
    ///
    /// - [`JournalError::Locked`]: another process has it open;
    /// - [`JournalError::NotAJournal`], [`JournalError::Corrupt`],
    ///   [`JournalError::Replay`], [`JournalError::Invariant`],
    ///   [`JournalError::Config`]: the file is damaged or not a journal —
    ///   nothing on disk was changed;
    /// - [`JournalError::Mismatch`]: `config` disagrees with the journal;
    /// - [`JournalError::Io`]: a file operation failed.
    pub fn open(
        dir: Box<dyn Dir>,
        name: &str,
        config: &JournalConfig,
    ) -> Result<Opened, JournalError> {
        let lock = take_lock(&*dir, name)?;
        let opening = Opening {
            dir: &*dir,
            name,
            aside_name: format!("{name}.compact"),
            config,
            compact_min_bytes: config
                .compact_min_bytes
                .clamp(MIN_COMPACT_MIN_BYTES, MAX_COMPACT_MIN_BYTES),
        };
        let mut recovery = Recovery {
            stale_compaction_removed: opening.remove_stale_compaction()?,
            ..Recovery::default()
        };
        let (ledger, file) = match dir.open(name).map_err(JournalError::io("open", name))? {
            None => opening.create(&mut recovery)?,
            Some(storage) => opening.recover(storage, &mut recovery)?,
        };
        let aside_name = opening.aside_name;
        let counters = Counters::default();
        counters.file_bytes.store(file.len_bytes, Ordering::Relaxed);
        let journal = Journal {
            name: name.to_owned(),
            shown_dir: None,
            aside_name,
            compact_min_bytes: opening.compact_min_bytes,
            preallocate_bytes: config.preallocate_bytes.min(MAX_PREALLOCATE_BYTES),
            group_commit_delay: Duration::from_micros(
                config
                    .group_commit_delay_us
                    .min(MAX_GROUP_COMMIT_DELAY_US)
                    .into(),
            ),
            state: Mutex::new(State::default()),
            flushed: Condvar::new(),
            counters,
            file: Mutex::new(file),
            writing: AtomicBool::new(false),
            compaction_due: AtomicBool::new(false),
            compacting: AtomicBool::new(false),
            durable_hint: AtomicU64::new(0),
            failed_hint: AtomicBool::new(false),
            compactor: Mutex::new(None),
            recovery: recovery.clone(),
            dir,
            _lock: lock,
        };
        Ok(Opened {
            journal,
            ledger,
            recovery,
        })
    }
}

/// The journal's lock file, held for as long as the journal is open.
fn take_lock(dir: &dyn Dir, name: &str) -> Result<LockGuard, JournalError> {
    let lock_name = format!("{name}.lock");
    dir.lock(&lock_name)
        .map_err(JournalError::io("lock", &lock_name))?
        .ok_or_else(|| JournalError::Locked {
            name: name.to_owned(),
            lock: lock_name.clone(),
        })
}

impl Opening<'_> {
    /// Removes what a compaction that a crash interrupted before its rename
    /// left: the journal under `name` is complete without it. Returns
    /// whether there was one.
    fn remove_stale_compaction(&self) -> Result<bool, JournalError> {
        let removed = self
            .dir
            .remove(&self.aside_name)
            .map_err(JournalError::io("remove", &self.aside_name))?;
        if removed {
            self.dir
                .sync()
                .map_err(JournalError::io("fsync", &self.dir.describe()))?;
        }
        Ok(removed)
    }

    /// No journal yet: a new one, with the configuration's events and
    /// `max_bookings`.
    fn create(&self, recovery: &mut Recovery) -> Result<(Ledger, FileState), JournalError> {
        let events = self.config.events.clone().unwrap_or_default();
        let max_bookings = self.config.max_bookings.unwrap_or(DEFAULT_MAX_BOOKINGS);
        let ledger = Ledger::new(events, max_bookings).map_err(|source| JournalError::Config {
            name: self.name.to_owned(),
            source,
        })?;
        let file = self.install(&ledger)?;
        recovery.created = true;
        Ok((ledger, file))
    }

    /// An existing journal: replays it, checks it against the
    /// configuration, and makes what it replayed durable.
    fn recover(
        &self,
        storage: Box<dyn Storage>,
        recovery: &mut Recovery,
    ) -> Result<(Ledger, FileState), JournalError> {
        let scanned = scan(&*storage, self.name)?;
        check_config(self.name, self.config, &scanned.header)?;
        recovery.torn_tail = scanned
            .torn
            .map(|(offset, bytes)| TornTail { offset, bytes });
        recovery.snapshot_bookings = scanned.snapshot_bookings;
        recovery.changes_replayed = scanned.changes;
        // Everything replayed must be durable before anything is served
        // from it: a reply may show it (an idempotent retry answered OK).
        // The changes after the snapshot may be a batch a crashed process
        // wrote and never synced, read back from the page cache; and if its
        // fdatasync failed, the kernel may have marked those pages clean, so
        // that another fdatasync of this file would return Ok without
        // writing them. Only writing the bytes again makes them durable: the
        // replayed ledger becomes a new journal (a snapshot), written aside,
        // synced, renamed into place. That also drops a torn tail and
        // upgrades an older format.
        if scanned.changes > 0
            || scanned.torn.is_some()
            || scanned.header.format_version != FORMAT_VERSION
        {
            drop(storage);
            let file = self.install(&scanned.ledger)?;
            recovery.rewritten = true;
            return Ok((scanned.ledger, file));
        }
        self.keep(storage, scanned)
    }

    /// A file that is only a header and snapshot was synced before it took
    /// the name; its name (a rename whose directory sync may have failed)
    /// is made durable here, and the file kept as it is.
    fn keep(
        &self,
        mut storage: Box<dyn Storage>,
        scanned: Scanned,
    ) -> Result<(Ledger, FileState), JournalError> {
        storage
            .sync_data()
            .map_err(JournalError::io("fdatasync", self.name))?;
        self.dir
            .sync()
            .map_err(JournalError::io("fsync", &self.dir.describe()))?;
        // Only a journal without a torn tail is kept (see `recover`): past
        // its end, preallocated zeros.
        let file = FileState::reopened(
            storage,
            (scanned.end_bytes, scanned.physical_bytes),
            scanned.next_seq,
            scanned.base_bytes,
            self.compact_min_bytes,
        );
        Ok((scanned.ledger, file))
    }

    fn install(&self, ledger: &Ledger) -> Result<FileState, JournalError> {
        install_new(
            self.dir,
            &self.aside_name,
            self.name,
            ledger,
            self.compact_min_bytes,
        )
    }
}

/// Writes `ledger` as a new journal (header and snapshot) under
/// `aside_name`, syncs it, renames it to `name` and syncs the directory:
/// a journal never exists without its header.
fn install_new(
    dir: &dyn Dir,
    aside_name: &str,
    name: &str,
    ledger: &Ledger,
    compact_min_bytes: u64,
) -> Result<FileState, JournalError> {
    let image = encode_image(ledger);
    let storage = write_aside(dir, aside_name, &image.bytes)?;
    rename_into_place(dir, aside_name, name)?;
    let len_bytes = image.bytes.len() as u64;
    Ok(FileState::new(
        storage,
        len_bytes,
        image.next_seq,
        compact_min_bytes,
    ))
}

/// Refuses a configuration that disagrees with the journal's.
fn check_config(name: &str, config: &JournalConfig, header: &Header) -> Result<(), JournalError> {
    let mismatch = |recorded: String, given: String| JournalError::Mismatch {
        name: name.to_owned(),
        recorded,
        given,
    };
    let list = |events: &[(String, u32)]| {
        let items: Vec<String> = events.iter().map(|(n, c)| format!("{n}={c}")).collect();
        format!("events [{}]", items.join(", "))
    };
    if let Some(events) = &config.events {
        if *events != header.events {
            return Err(mismatch(list(&header.events), list(events)));
        }
    }
    if let Some(max) = config.max_bookings {
        if u64::try_from(max).ok() != Some(header.max_bookings) {
            return Err(mismatch(
                format!("max_bookings {}", header.max_bookings),
                format!("max_bookings {max}"),
            ));
        }
    }
    Ok(())
}
