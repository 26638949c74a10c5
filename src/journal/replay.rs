//! Reading a journal back at start: the header, the snapshot, then every
//! change, replayed onto a fresh ledger; and telling a torn tail (cut short
//! by a crash: leave it out) from corruption (refuse to start).

use std::io;

use crate::ledger::{Booking, BookingState, Change, Ledger, Origin};

use super::error::JournalError;
use super::record::{
    announced_len, decode_payload, parse_frame, FrameError, Header, Payload, FRAME_HEADER_BYTES,
    MAX_PAYLOAD_BYTES,
};
use super::storage::Storage;

/// Bytes read from the file at a time.
const WINDOW_BYTES: usize = 4 << 20;

/// What a scan found.
pub(crate) struct Scanned {
    pub(crate) header: Header,
    pub(crate) ledger: Ledger,
    /// End of the last sound record: where the next one goes.
    pub(crate) end_bytes: u64,
    /// End of the header and snapshot: the size of the last compaction.
    pub(crate) base_bytes: u64,
    /// Number of the next record.
    pub(crate) next_seq: u64,
    /// Changes replayed after the snapshot.
    pub(crate) changes: u64,
    /// Bookings restored from the snapshot.
    pub(crate) snapshot_bookings: u64,
    /// `Some((offset, bytes))` if a torn tail starts at `offset`.
    pub(crate) torn: Option<(u64, u64)>,
    /// The file's length, preallocated zeros included.
    pub(crate) physical_bytes: u64,
}

/// Why the bytes at an offset are not a record to replay.
enum BadFrame {
    /// Cut short, or checksum wrong: what a crash during an unsynced write
    /// leaves (if nothing sound follows).
    Damaged(FrameError),
    /// The checksum matches but the payload does not decode. No crash
    /// makes one: the writer checksums only payloads it encoded. A bug or a
    /// format mix-up, and the record may hold acknowledged changes, so it
    /// is never cut off as a torn tail.
    Undecodable(String),
}

impl std::fmt::Display for BadFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadFrame::Damaged(e) => write!(f, "{e}"),
            BadFrame::Undecodable(reason) => {
                write!(
                    f,
                    "checksum matches but the payload does not decode: {reason}"
                )
            }
        }
    }
}

/// Reads a file through a window, so that a large journal is never held in
/// memory whole.
struct Reader<'a> {
    storage: &'a dyn Storage,
    len: u64,
    start: u64,
    window: Vec<u8>,
}

impl<'a> Reader<'a> {
    fn new(storage: &'a dyn Storage, len: u64) -> Self {
        Self {
            storage,
            len,
            start: 0,
            window: Vec::new(),
        }
    }

    /// Up to `n` bytes at `offset`: fewer only where the file ends.
    fn get(&mut self, offset: u64, n: usize) -> io::Result<&[u8]> {
        let available = usize::try_from(self.len.saturating_sub(offset)).unwrap_or(usize::MAX);
        let n = n.min(available);
        let end = self.start + self.window.len() as u64;
        if offset < self.start || offset + n as u64 > end {
            let size = n.max(WINDOW_BYTES).min(available);
            self.window.resize(size, 0);
            self.storage.read_at(offset, &mut self.window)?;
            self.start = offset;
        }
        let at = (offset - self.start) as usize;
        Ok(&self.window[at..at + n])
    }

    /// The frame at `offset`, checked.
    fn frame(&mut self, offset: u64) -> io::Result<Result<(u64, Payload, u64), BadFrame>> {
        let head = self.get(offset, FRAME_HEADER_BYTES)?;
        let len = match announced_len(head) {
            Ok(len) => len,
            Err(e) => return Ok(Err(BadFrame::Damaged(e))),
        };
        let bytes = self.get(offset, FRAME_HEADER_BYTES + len)?;
        let frame = match parse_frame(bytes) {
            Ok(frame) => frame,
            Err(e) => return Ok(Err(BadFrame::Damaged(e))),
        };
        let total = frame.total_bytes() as u64;
        Ok(match decode_payload(frame.payload) {
            Ok(payload) => Ok((frame.seq, payload, total)),
            Err(reason) => Err(BadFrame::Undecodable(reason)),
        })
    }

    /// Whether every byte from `offset` to the end is zero: preallocated
    /// space, never written.
    fn zeros_from(&mut self, offset: u64) -> io::Result<bool> {
        let mut at = offset;
        while at < self.len {
            let chunk = self.get(at, WINDOW_BYTES)?;
            if chunk.iter().any(|b| *b != 0) {
                return Ok(false);
            }
            at += chunk.len() as u64;
        }
        Ok(true)
    }

    /// Whether any checksum-valid frame starts after `offset`.
    fn valid_frame_after(&mut self, offset: u64) -> io::Result<Option<u64>> {
        let mut at = offset + 1;
        while at + FRAME_HEADER_BYTES as u64 <= self.len {
            let head = self.get(at, FRAME_HEADER_BYTES)?;
            if let Ok(len) = announced_len(head) {
                if at + (FRAME_HEADER_BYTES + len) as u64 <= self.len {
                    let bytes = self.get(at, FRAME_HEADER_BYTES + len)?;
                    if parse_frame(bytes).is_ok() {
                        return Ok(Some(at));
                    }
                }
            }
            at += 1;
        }
        Ok(None)
    }
}

/// Scans and replays a whole journal file. Changes nothing on disk.
pub(crate) fn scan(storage: &dyn Storage, name: &str) -> Result<Scanned, JournalError> {
    let len = storage
        .len_bytes()
        .map_err(JournalError::io("stat", name))?;
    if len == 0 {
        return Err(not_a_journal(name, "the file is empty".into()));
    }
    let mut reader = Reader::new(storage, len);
    let (header, header_bytes) = read_header(&mut reader, name)?;
    let ledger =
        Ledger::new(header.events.clone(), usize_of(header.max_bookings)).map_err(|source| {
            JournalError::Config {
                name: name.to_owned(),
                source,
            }
        })?;
    let mut replay = Replay {
        reader,
        name,
        ledger,
        offset: header_bytes,
        seq: 1,
    };
    let snapshot_bookings = replay.snapshot(header.snapshot_records)?;
    let base_bytes = replay.offset;
    let (changes, torn) = replay.changes()?;
    let Replay {
        mut ledger,
        offset,
        seq,
        ..
    } = replay;
    // Holds whose expiry (wall-clock time) passed while the server was
    // down are expired now, before anything is served or compacted.
    ledger.expire_due();
    ledger
        .check_invariants()
        .map_err(|source| JournalError::Invariant {
            name: name.to_owned(),
            source,
        })?;
    Ok(Scanned {
        header,
        ledger,
        end_bytes: offset,
        base_bytes,
        next_seq: seq,
        changes,
        snapshot_bookings,
        torn,
        physical_bytes: len,
    })
}

fn not_a_journal(name: &str, reason: String) -> JournalError {
    JournalError::NotAJournal {
        name: name.to_owned(),
        reason,
    }
}

/// The header, and the bytes it takes. A journal file only ever appears
/// under its name complete (it is written aside, synced, then renamed), so
/// a bad header is never a torn write: it is damage, or another file.
fn read_header(reader: &mut Reader<'_>, name: &str) -> Result<(Header, u64), JournalError> {
    match reader.frame(0).map_err(JournalError::io("read", name))? {
        Ok((0, Payload::Header(header), total)) => Ok((header, total)),
        Ok(_) => Err(not_a_journal(
            name,
            "its first record is not a header".into(),
        )),
        Err(reason) => Err(not_a_journal(name, format!("no valid header ({reason})"))),
    }
}

/// A replay in progress: where it is in the file, and the ledger so far.
struct Replay<'a> {
    reader: Reader<'a>,
    name: &'a str,
    ledger: Ledger,
    /// Where the next record starts.
    offset: u64,
    /// The number the next record must have.
    seq: u64,
}

impl Replay<'_> {
    fn corrupt(&self, reason: String) -> JournalError {
        JournalError::Corrupt {
            name: self.name.to_owned(),
            offset: self.offset,
            reason,
        }
    }

    fn replay_error(&self, source: crate::ledger::ReplayError) -> JournalError {
        JournalError::Replay {
            name: self.name.to_owned(),
            offset: self.offset,
            source,
        }
    }

    /// The snapshot's `records`: every one must be there (it was synced
    /// before the file got its name), so any damage is corruption. Returns
    /// the bookings restored.
    fn snapshot(&mut self, records: u64) -> Result<u64, JournalError> {
        let mut restored = 0u64;
        for _ in 0..records {
            let frame = self
                .reader
                .frame(self.offset)
                .map_err(JournalError::io("read", self.name))?;
            let (bookings, total) = match frame {
                Ok((s, Payload::Snapshot(bookings), total)) if s == self.seq => (bookings, total),
                Ok((s, _, _)) if s != self.seq => {
                    let expected = self.seq;
                    return Err(
                        self.corrupt(format!("record number {s} where {expected} was expected"))
                    );
                }
                Ok(_) => return Err(self.corrupt("a snapshot record was expected".into())),
                Err(reason) => {
                    return Err(self.corrupt(format!(
                        "damaged snapshot record ({reason}); a snapshot is written whole"
                    )))
                }
            };
            self.offset += total;
            for (id, booking) in bookings {
                restore(&mut self.ledger, id, booking).map_err(|e| self.replay_error(e))?;
                restored += 1;
            }
            self.seq += 1;
        }
        Ok(restored)
    }

    /// The changes after the snapshot, up to the end or a torn tail.
    /// Returns how many were replayed, and the torn tail if any.
    fn changes(&mut self) -> Result<(u64, Option<(u64, u64)>), JournalError> {
        let mut changes = 0u64;
        while self.offset < self.reader.len {
            let frame = self
                .reader
                .frame(self.offset)
                .map_err(JournalError::io("read", self.name))?;
            match frame {
                Ok((s, payload, total)) => changes += self.change_record(s, payload, total)?,
                Err(reason @ BadFrame::Undecodable(_)) => {
                    return Err(self.corrupt(format!("{reason}; no crash leaves such a record")));
                }
                Err(BadFrame::Damaged(reason)) => return Ok((changes, self.torn(&reason)?)),
            }
        }
        Ok((changes, None))
    }

    /// Replays one sound record of changes; returns how many it held.
    fn change_record(&mut self, s: u64, payload: Payload, total: u64) -> Result<u64, JournalError> {
        if s != self.seq {
            let expected = self.seq;
            return Err(self.corrupt(format!("record number {s} where {expected} was expected")));
        }
        let batch = match payload {
            Payload::Change(change) => vec![change],
            Payload::Batch(batch) => batch,
            Payload::Header(_) | Payload::Snapshot(_) => {
                return Err(self.corrupt("a header or snapshot among changes".into()))
            }
        };
        for change in &batch {
            self.ledger
                .replay(change)
                .map_err(|e| self.replay_error(e))?;
        }
        self.offset += total;
        self.seq += 1;
        Ok(batch.len() as u64)
    }

    /// A damaged record at `offset`: the end of what was written if only
    /// preallocated zeros follow; a torn tail (`Some((offset, bytes))`) if
    /// nothing sound follows; corruption otherwise.
    fn torn(&mut self, reason: &FrameError) -> Result<Option<(u64, u64)>, JournalError> {
        let read = || JournalError::io("read", self.name);
        if self.reader.zeros_from(self.offset).map_err(read())? {
            return Ok(None);
        }
        if let Some(valid) = self.reader.valid_frame_after(self.offset).map_err(read())? {
            return Err(self.corrupt(format!(
                "bad record ({reason}) followed by a valid one at offset {valid}"
            )));
        }
        Ok(Some((self.offset, self.reader.len - self.offset)))
    }
}

/// Puts back one booking of a snapshot. Snapshots list cancelled and
/// expired bookings before active and held ones, so each of the former
/// finds its seats free (it once fitted an event with at most its current
/// live bookings).
fn restore(
    ledger: &mut Ledger,
    id: crate::BookingId,
    b: Booking,
) -> Result<(), crate::ledger::ReplayError> {
    let booking = id;
    let (event, quantity) = (b.event, b.quantity);
    ledger.replay(&match (b.origin, b.state) {
        (Origin::Reserve, _) => Change::Reserved {
            booking,
            event,
            quantity,
        },
        (Origin::Hold, state) => Change::Held {
            booking,
            event,
            quantity,
            expires_at_ms: match state {
                BookingState::Held { expires_at_ms } => expires_at_ms,
                // Made held only to be settled at once, below.
                _ => 0,
            },
        },
    })?;
    match b.state {
        BookingState::Cancelled => ledger.replay(&Change::Cancelled { booking }),
        BookingState::Expired => ledger.replay(&Change::Expired { booking }),
        BookingState::Active if b.origin == Origin::Hold => {
            ledger.replay(&Change::Confirmed { booking })
        }
        BookingState::Active | BookingState::Held { .. } => Ok(()),
    }
}

fn usize_of(n: u64) -> usize {
    // A value past usize is past MAX_BOOKINGS_LIMIT too: Ledger::new refuses it.
    usize::try_from(n).unwrap_or(usize::MAX)
}

// The bound the frame parser relies on fits in a window.
const _: () = assert!(MAX_PAYLOAD_BYTES + FRAME_HEADER_BYTES <= WINDOW_BYTES);
