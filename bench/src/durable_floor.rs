//! The durable floor (`floor+journal`): the echo floor with a group commit,
//! what any server that answers only durable changes must do at the least.
//!
//! One loop receives a request (as the echo floor does), then takes every
//! request that comes until as many have come as were waiting when its
//! last fdatasync ended (those it answered, and those queued meanwhile), or
//! one fdatasync's time has passed since its replies went out; writes
//! [`RECORD_BYTES`] per request into a preallocated file in the journal
//! directory, `fdatasync`s it, and replies OK to all. No ledger, no journal
//! format, no checksum, no second thread: beside it, a `+journal` row shows
//! what guichet's group commit costs over the disk and the message queue
//! themselves, in the same run. Its rows are durable floors: the `+journal`
//! rows' ×floor figures are taken against it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use guichet::journal::JournalStats;
use guichet::sysv::{MessageBuf, Queue, SysvError};
use guichet::wire::{BODY_SIZE, REQUEST_MTYPE};

use super::floor::{receive, reply_to, REPLY_REQUEST_ID};

/// Bytes written per request: its `reply_to` and `request_id`, and 8 bytes
/// standing for the change (a journal's smallest record is about this).
const RECORD_BYTES: usize = 24;
/// Zeros written ahead once, as the journal preallocates: each fdatasync
/// then overwrites data in place, with no size change to sync. The writes
/// wrap around within it.
const PREALLOCATED_BYTES: u64 = 1 << 20;
/// Most requests one fdatasync covers.
const MAX_BATCH: usize = 4096;
/// Longest a gather waits for the answered clients, whatever the last
/// fdatasync took (the server's group commit is bounded alike).
const MAX_GATHER: Duration = Duration::from_millis(1);

// A full batch fits the preallocated region, so wrapping to its start
// keeps every write inside it.
const _: () = assert!(MAX_BATCH * RECORD_BYTES <= PREALLOCATED_BYTES as usize);

/// What the loop counts, read as a journal's counters, and the write or
/// fdatasync failure that ended it, if one did.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    fsyncs: AtomicU64,
    changes: AtomicU64,
    bytes: AtomicU64,
    sync_ns: AtomicU64,
    largest: AtomicU64,
    failure: Mutex<Option<io::Error>>,
}

impl Counters {
    pub(crate) fn stats(&self) -> JournalStats {
        let changes = self.changes.load(Ordering::Relaxed);
        JournalStats {
            changes_appended: changes,
            changes_synced: changes,
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            largest_batch: self.largest.load(Ordering::Relaxed),
            bytes_written: self.bytes.load(Ordering::Relaxed),
            sync_ns: self.sync_ns.load(Ordering::Relaxed),
            file_bytes: PREALLOCATED_BYTES,
            ..JournalStats::default()
        }
    }

    /// The failure that ended the loop: its clients timed out after it,
    /// so the cell's figures say nothing.
    pub(crate) fn take_failure(&self) -> Option<io::Error> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn failed(&self, error: io::Error) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    fn synced(&self, changes: usize, bytes: usize, took: Duration) {
        let changes = changes as u64;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.changes.fetch_add(changes, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sync_ns.fetch_add(ns, Ordering::Relaxed);
        self.largest.fetch_max(changes, Ordering::Relaxed);
    }
}

/// A new file of [`PREALLOCATED_BYTES`] zeros, synced, in `dir`: owner-only
/// and removed when dropped (`tempfile`).
pub(crate) fn preallocated_file(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    let file = tempfile::Builder::new()
        .prefix("guichet-bench-durable-floor-")
        .tempfile_in(dir)?;
    let zeros = vec![0u8; PREALLOCATED_BYTES as usize];
    file.as_file().write_all_at(&zeros, 0)?;
    file.as_file().sync_all()?;
    Ok(file)
}

/// Receive, gather, write and sync, reply: until the queue is removed or
/// the file fails (the failure is kept in `counters`; its clients time
/// out).
pub(crate) fn durable_echo_loop(
    queue: Queue,
    template: &[u8; BODY_SIZE],
    file: &File,
    counters: &Counters,
) {
    let Ok(mut buf) = MessageBuf::truncating(BODY_SIZE) else {
        return;
    };
    let mut batch: Vec<(i64, [u8; 8])> = Vec::with_capacity(MAX_BATCH);
    let mut records: Vec<u8> = Vec::with_capacity(MAX_BATCH * RECORD_BYTES);
    let mut reply = *template;
    let mut offset = 0u64;
    // How many clients waited when the last fdatasync ended (those it
    // answered, and those whose requests were queued meanwhile: waiting
    // for the answered ones alone would split the clients into two groups
    // for good), and when the replies went out.
    let mut last = Gather {
        waiting: 0,
        window: Duration::ZERO,
        replied_at: Instant::now(),
    };
    loop {
        if receive(queue, &mut buf).is_err() {
            return;
        }
        batch.extend(reply_to(buf.body()));
        if gather(queue, &mut buf, &mut batch, &last).is_err() {
            return;
        }
        if batch.is_empty() {
            continue; // Malformed bodies only: nothing to sync or answer.
        }
        records.clear();
        for (to, id) in &batch {
            let mut record = [0u8; RECORD_BYTES];
            record[..8].copy_from_slice(&to.to_ne_bytes());
            record[8..16].copy_from_slice(id);
            records.extend_from_slice(&record);
        }
        if offset + records.len() as u64 > PREALLOCATED_BYTES {
            offset = 0;
        }
        let started = Instant::now();
        let written = file.write_all_at(&records, offset);
        if let Err(error) = written.and_then(|()| file.sync_data()) {
            return counters.failed(error);
        }
        let took = started.elapsed();
        counters.synced(batch.len(), records.len(), took);
        offset += records.len() as u64;
        // msgctl(2) IPC_STAT: requests queued during the fdatasync (and any
        // reply not yet read, which only widens the next wait, within its
        // bound).
        let queued = queue.stat().map_or(0, |stat| stat.messages);
        last = Gather {
            waiting: batch.len() + usize::try_from(queued).unwrap_or(MAX_BATCH),
            window: took.min(MAX_GATHER),
            replied_at: Instant::now(),
        };
        for (to, id) in batch.drain(..) {
            reply[REPLY_REQUEST_ID].copy_from_slice(&id);
            // As the echo floor: a lost reply is the client's error to count.
            let _ = queue.send(to, &reply, Some(last.replied_at));
        }
    }
}

/// What the next gather waits for: `waiting` requests, for at most
/// `window` after `replied_at`.
struct Gather {
    waiting: usize,
    window: Duration,
    replied_at: Instant,
}

/// Takes every request queued, then polls (yielding) for the rest of
/// those `last` waits for; `Err` once the queue is gone.
fn gather(
    queue: Queue,
    buf: &mut MessageBuf,
    batch: &mut Vec<(i64, [u8; 8])>,
    last: &Gather,
) -> Result<(), SysvError> {
    while batch.len() < MAX_BATCH {
        // A deadline of now: one attempt with IPC_NOWAIT.
        match queue.recv(REQUEST_MTYPE, buf, Some(Instant::now())) {
            Ok(_) => batch.extend(reply_to(buf.body())),
            Err(SysvError::TimedOut { .. })
                if batch.len() < last.waiting && last.replied_at.elapsed() < last.window =>
            {
                thread::yield_now();
            }
            Err(SysvError::TimedOut { .. }) => return Ok(()),
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
