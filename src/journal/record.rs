//! The bytes of one journal record: a checksummed frame around a payload.
//!
//! ```text
//! offset  size  field
//!      0     4  len      payload bytes, 1 to MAX_PAYLOAD_BYTES (u32 LE)
//!      4     8  seq      record number in this file: 0 for the header (u64 LE)
//!     12     4  crc      CRC32C of bytes 0..12 then of the payload (u32 LE)
//!     16   len  payload  kind (u8), then the kind's fields
//! ```
//!
//! Little-endian whatever the host: a journal is a file and may be copied to
//! another machine, unlike the wire protocol's messages. The checksum covers
//! `len` and `seq` too, so a damaged length or number is caught like a
//! damaged payload.
//!
//! Payload kinds:
//!
//! | kind | name      | fields |
//! |-----:|-----------|--------|
//! | 1    | header    | magic `b"GCHJ"`, format version u16, max_bookings u64, snapshot records u64, event count u32, then per event: name length u8, name (UTF-8), capacity u32 |
//! | 2    | reserved  | booking u64, event u32, quantity u32 (format 1 only; still read) |
//! | 3    | cancelled | booking u64 (format 1 only; still read) |
//! | 4    | snapshot  | count u32, then per booking: id u64, event u32, quantity u32, state u8 (0 active, 1 cancelled) |
//! | 5    | batch     | count u32 (at least 1), then per change: kind u8 (2, 3, 7, 8 or 9), then that kind's fields |
//! | 6    | snapshot 3 | count u32, then per booking: id u64, event u32, quantity u32, state u8 (0 active, 1 cancelled, 2 held, 3 confirmed hold, 4 cancelled hold, 5 expired hold), expires_at u64 (Unix ms; 0 unless held) (format 3) |
//! | 7    | held      | booking u64, event u32, quantity u32, expires_at u64 (Unix ms) (format 3, in batches) |
//! | 8    | confirmed | booking u64 (format 3, in batches) |
//! | 9    | expired   | booking u64 (format 3; never written by this build, read for symmetry) |
//!
//! Format 3 adds holds: their expiry is wall-clock time, so it means the
//! same after a restart; a replay expires every hold whose expiry has
//! passed. A snapshot record holding a hold is of kind 6; one of RESERVEs
//! only stays kind 4 (smaller). Formats 1 and 2 are still read.
//!
//! Format 2 writes each group commit — every change one `fdatasync`
//! covers — as **one** batch record, so that one checksum covers the whole
//! write. That is what lets a reader tell a torn tail from corruption when
//! the disk persists the sectors of an unsynced write in any order: the
//! writer starts a batch only after the previous one's fdatasync returned,
//! so only the last batch can be damaged by a crash, and a damaged batch
//! with a sound one after it is damage no crash explains. (With format 1's
//! one record per change, the first change of a torn batch could be
//! garbage while later ones were whole, which looked like corruption.)

use std::num::NonZeroU32;

use crate::ids::{BookingId, EventId};
use crate::ledger::{Booking, BookingState, Change, Origin, MAX_EVENTS, MAX_EVENT_NAME_BYTES};

/// Bytes before the payload: `len`, `seq`, `crc`.
pub const FRAME_HEADER_BYTES: usize = 16;
/// Largest payload a record may have: room for a header with
/// [`Ledger::MAX_EVENTS`](crate::ledger::Ledger::MAX_EVENTS) events of [`Ledger::MAX_EVENT_NAME_BYTES`](crate::ledger::Ledger::MAX_EVENT_NAME_BYTES)-byte names (about
/// 283 KiB), with margin. Bounds what a reader allocates for one record.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Bookings in one snapshot record: 4096 × 17 bytes, about 68 KiB.
pub const MAX_SNAPSHOT_BOOKINGS_PER_RECORD: usize = 4096;
/// First bytes of the header payload, after its kind.
pub const MAGIC: [u8; 4] = *b"GCHJ";
/// The format version this code writes. It reads this one and
/// [`OLDEST_FORMAT_VERSION`] onwards.
pub const FORMAT_VERSION: u16 = 3;
/// The oldest format version this code reads: 1, one record per change.
pub const OLDEST_FORMAT_VERSION: u16 = 1;
/// Most changes one batch record may announce. The writer's batches are
/// far smaller ([`crate::journal::MAX_BATCH_CHANGES`]); this bounds what a
/// reader allocates for a damaged count whose checksum happens to match.
pub const MAX_CHANGES_PER_BATCH: usize = MAX_PAYLOAD_BYTES / SMALLEST_CHANGE_BYTES;

const KIND_HEADER: u8 = 1;
const KIND_RESERVED: u8 = 2;
const KIND_CANCELLED: u8 = 3;
const KIND_SNAPSHOT: u8 = 4;
const KIND_BATCH: u8 = 5;
const KIND_SNAPSHOT_HOLDS: u8 = 6;
const KIND_HELD: u8 = 7;
const KIND_CONFIRMED: u8 = 8;
const KIND_EXPIRED: u8 = 9;

/// A cancelled change in a batch: kind and booking id.
const SMALLEST_CHANGE_BYTES: usize = 1 + 8;

const SNAPSHOT_BOOKING_BYTES: usize = 8 + 4 + 4 + 1;
const SNAPSHOT_HOLDS_BOOKING_BYTES: usize = SNAPSHOT_BOOKING_BYTES + 8;

/// The first record of every journal file: the ledger's configuration, and
/// how many snapshot records follow it (all of which must be present).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The format version the header was read with; [`encode_header`]
    /// always writes [`FORMAT_VERSION`].
    pub format_version: u16,
    /// The ledger's `max_bookings`.
    pub max_bookings: u64,
    /// Snapshot records right after the header; a compacted journal's base.
    pub snapshot_records: u64,
    /// Events with their capacities, event 1 first.
    pub events: Vec<(String, u32)>,
}

/// A decoded payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// The header.
    Header(Header),
    /// A change to the ledger (format 1).
    Change(Change),
    /// The changes of one group commit, in order (format 2).
    Batch(Vec<Change>),
    /// Part of a snapshot: bookings as a compaction found them.
    Snapshot(Vec<(BookingId, Booking)>),
}

/// Why the bytes at some offset are not a sound record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes remain than the frame needs: a write cut short.
    Incomplete,
    /// `len` is 0 or over [`MAX_PAYLOAD_BYTES`].
    BadLength(u32),
    /// The checksum does not match.
    BadChecksum,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Incomplete => f.write_str("incomplete record"),
            FrameError::BadLength(len) => write!(f, "impossible record length {len}"),
            FrameError::BadChecksum => f.write_str("checksum mismatch"),
        }
    }
}

/// A frame whose checksum matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Its record number.
    pub seq: u64,
    /// Its payload, not yet decoded.
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// Bytes the frame takes in the file.
    pub fn total_bytes(&self) -> usize {
        FRAME_HEADER_BYTES + self.payload.len()
    }
}

/// The payload length a frame header announces, if `bytes` holds the
/// header and the length is possible.
///
/// # Errors
///
/// [`FrameError::Incomplete`] when `bytes` is shorter than the length
/// field, [`FrameError::BadLength`] when the length is 0 or over
/// [`MAX_PAYLOAD_BYTES`].
pub fn announced_len(bytes: &[u8]) -> Result<usize, FrameError> {
    let Some(len) = bytes.get(0..4) else {
        return Err(FrameError::Incomplete);
    };
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
    match usize::try_from(len) {
        Ok(n) if (1..=MAX_PAYLOAD_BYTES).contains(&n) => Ok(n),
        _ => Err(FrameError::BadLength(len)),
    }
}

/// Parses the frame at the start of `bytes` (which may hold more after it).
///
/// # Errors
///
/// [`FrameError`] when the bytes are too few, the length impossible or the
/// checksum wrong.
pub fn parse_frame(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    if bytes.len() < FRAME_HEADER_BYTES {
        // A length already impossible says more than "incomplete".
        if bytes.len() >= 4 {
            announced_len(bytes)?;
        }
        return Err(FrameError::Incomplete);
    }
    let len = announced_len(bytes)?;
    let Some(payload) = bytes.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len) else {
        return Err(FrameError::Incomplete);
    };
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&bytes[4..12]);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[12..16]);
    if checksum(&bytes[0..12], payload) != u32::from_le_bytes(crc) {
        return Err(FrameError::BadChecksum);
    }
    Ok(Frame {
        seq: u64::from_le_bytes(seq),
        payload,
    })
}

fn checksum(head: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(head), payload)
}

/// Appends one record to `out`: frame header, then the payload `write_payload`
/// puts after it.
fn encode_with(out: &mut Vec<u8>, seq: u64, write_payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    write_payload(out);
    let payload_len = out.len() - start - FRAME_HEADER_BYTES;
    // Every payload this module builds is far below MAX_PAYLOAD_BYTES (the
    // header is bounded by MAX_EVENTS, snapshots by their chunk size).
    debug_assert!((1..=MAX_PAYLOAD_BYTES).contains(&payload_len));
    let len = u32::try_from(payload_len).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 12].copy_from_slice(&seq.to_le_bytes());
    let crc = checksum(&out[start..start + 12], &out[start + FRAME_HEADER_BYTES..]);
    out[start + 12..start + 16].copy_from_slice(&crc.to_le_bytes());
}

/// Appends a record around `payload` as it is, whatever it holds: for
/// tests that need a frame whose checksum matches a payload the writer
/// would never encode.
#[cfg(test)]
pub(crate) fn encode_raw(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    encode_with(out, seq, |out| out.extend_from_slice(payload));
}

/// Appends a change's kind and fields (no frame).
fn put_change(out: &mut Vec<u8>, change: &Change) {
    match *change {
        Change::Reserved {
            booking,
            event,
            quantity,
        } => {
            out.push(KIND_RESERVED);
            out.extend_from_slice(&booking.get().to_le_bytes());
            out.extend_from_slice(&event.get().to_le_bytes());
            out.extend_from_slice(&quantity.get().to_le_bytes());
        }
        Change::Cancelled { booking } => {
            out.push(KIND_CANCELLED);
            out.extend_from_slice(&booking.get().to_le_bytes());
        }
        Change::Held {
            booking,
            event,
            quantity,
            expires_at_ms,
        } => {
            out.push(KIND_HELD);
            out.extend_from_slice(&booking.get().to_le_bytes());
            out.extend_from_slice(&event.get().to_le_bytes());
            out.extend_from_slice(&quantity.get().to_le_bytes());
            out.extend_from_slice(&expires_at_ms.to_le_bytes());
        }
        Change::Confirmed { booking } => {
            out.push(KIND_CONFIRMED);
            out.extend_from_slice(&booking.get().to_le_bytes());
        }
        Change::Expired { booking } => {
            out.push(KIND_EXPIRED);
            out.extend_from_slice(&booking.get().to_le_bytes());
        }
    }
}

/// Appends the record of one change, as format 1 wrote it. This build
/// writes [`encode_batch`] records; it keeps reading these, which the
/// tests check with records made here.
#[cfg(test)]
pub fn encode_change(out: &mut Vec<u8>, seq: u64, change: &Change) {
    encode_with(out, seq, |out| put_change(out, change));
}

/// Appends one batch record holding `changes` in order: what one group
/// commit writes. The caller keeps batches to at most
/// [`crate::journal::MAX_BATCH_CHANGES`] changes, far below the payload limit.
pub fn encode_batch(out: &mut Vec<u8>, seq: u64, changes: &[Change]) {
    debug_assert!(!changes.is_empty() && changes.len() <= MAX_CHANGES_PER_BATCH / 2);
    encode_with(out, seq, |out| {
        out.push(KIND_BATCH);
        let count = u32::try_from(changes.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for change in changes {
            put_change(out, change);
        }
    });
}

/// Appends a header record (always record 0).
///
/// Event names longer than [`Ledger::MAX_EVENT_NAME_BYTES`](crate::ledger::Ledger::MAX_EVENT_NAME_BYTES) cannot come from a
/// [`Ledger`](crate::Ledger), which refuses them; they would be cut here.
pub fn encode_header(out: &mut Vec<u8>, header: &Header) {
    encode_header_as(out, header, FORMAT_VERSION);
}

/// [`encode_header`] claiming another format version: for tests that read
/// journals older builds wrote.
pub(crate) fn encode_header_as(out: &mut Vec<u8>, header: &Header, version: u16) {
    encode_with(out, 0, |out| {
        out.push(KIND_HEADER);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&header.max_bookings.to_le_bytes());
        out.extend_from_slice(&header.snapshot_records.to_le_bytes());
        let count = u32::try_from(header.events.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for (name, capacity) in &header.events {
            let name = &name.as_bytes()[..name.len().min(MAX_EVENT_NAME_BYTES)];
            out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(name);
            out.extend_from_slice(&capacity.to_le_bytes());
        }
    });
}

/// Appends a snapshot record of at most [`MAX_SNAPSHOT_BOOKINGS_PER_RECORD`]
/// bookings (the caller chunks).
pub fn encode_snapshot(out: &mut Vec<u8>, seq: u64, bookings: &[(BookingId, Booking)]) {
    debug_assert!(bookings.len() <= MAX_SNAPSHOT_BOOKINGS_PER_RECORD);
    // Kind 4 (17 bytes a booking) unless a hold needs kind 6's states and expiry.
    let holds = bookings.iter().any(|(_, b)| b.origin == Origin::Hold);
    encode_with(out, seq, |out| {
        out.push(if holds {
            KIND_SNAPSHOT_HOLDS
        } else {
            KIND_SNAPSHOT
        });
        let count = u32::try_from(bookings.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for (id, b) in bookings {
            out.extend_from_slice(&id.get().to_le_bytes());
            out.extend_from_slice(&b.event.get().to_le_bytes());
            out.extend_from_slice(&b.quantity.get().to_le_bytes());
            let (state, expires_at_ms) = match (b.origin, b.state) {
                (Origin::Reserve, BookingState::Cancelled) => (1, 0),
                (Origin::Reserve, _) => (0, 0),
                (Origin::Hold, BookingState::Held { expires_at_ms }) => (2, expires_at_ms),
                (Origin::Hold, BookingState::Active) => (3, 0),
                (Origin::Hold, BookingState::Cancelled) => (4, 0),
                (Origin::Hold, BookingState::Expired) => (5, 0),
            };
            out.push(state);
            if holds {
                out.extend_from_slice(&expires_at_ms.to_le_bytes());
            }
        }
    });
}

/// The booking a snapshot's state byte and expiry describe.
fn snapshot_booking(
    event: EventId,
    quantity: NonZeroU32,
    state: u8,
    expires_at_ms: u64,
) -> Result<Booking, String> {
    let (origin, state) = match state {
        0 => (Origin::Reserve, BookingState::Active),
        1 => (Origin::Reserve, BookingState::Cancelled),
        2 => (Origin::Hold, BookingState::Held { expires_at_ms }),
        3 => (Origin::Hold, BookingState::Active),
        4 => (Origin::Hold, BookingState::Cancelled),
        5 => (Origin::Hold, BookingState::Expired),
        other => return Err(format!("booking state {other}")),
    };
    if expires_at_ms != 0 && !matches!(state, BookingState::Held { .. }) {
        return Err(format!("an expiry on a booking {state:?}"));
    }
    Ok(Booking {
        event,
        quantity,
        state,
        origin,
    })
}

/// Reads fields off a payload, failing with a description instead of panicking.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("payload shorter than its fields");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, &'static str> {
        self.array().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        self.array().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, &'static str> {
        self.array().map(u64::from_le_bytes)
    }
    fn booking(&mut self) -> Result<BookingId, &'static str> {
        BookingId::new(self.u64()?).ok_or("booking id 0")
    }
    fn event(&mut self) -> Result<EventId, &'static str> {
        EventId::new(self.u32()?).ok_or("event id 0")
    }
    fn quantity(&mut self) -> Result<NonZeroU32, &'static str> {
        NonZeroU32::new(self.u32()?).ok_or("quantity 0")
    }
    /// The fields of a change of `kind`, as `put_change` writes them.
    fn change(&mut self, kind: u8) -> Result<Change, String> {
        Ok(match kind {
            KIND_RESERVED => Change::Reserved {
                booking: self.booking()?,
                event: self.event()?,
                quantity: self.quantity()?,
            },
            KIND_CANCELLED => Change::Cancelled {
                booking: self.booking()?,
            },
            KIND_HELD => Change::Held {
                booking: self.booking()?,
                event: self.event()?,
                quantity: self.quantity()?,
                expires_at_ms: self.u64()?,
            },
            KIND_CONFIRMED => Change::Confirmed {
                booking: self.booking()?,
            },
            KIND_EXPIRED => Change::Expired {
                booking: self.booking()?,
            },
            other => return Err(format!("unknown change kind {other}")),
        })
    }
    fn end(&self) -> Result<(), &'static str> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err("payload longer than its fields")
        }
    }
}

/// Decodes a payload whose frame checksum matched.
///
/// # Errors
///
/// A description of what is wrong: unknown kind, fields missing or left
/// over, a zero id, a bad magic or version, a name that is not UTF-8.
pub fn decode_payload(payload: &[u8]) -> Result<Payload, String> {
    let mut f = Fields(payload);
    let decoded = match f.u8()? {
        KIND_HEADER => Payload::Header(decode_header(&mut f)?),
        kind @ (KIND_RESERVED | KIND_CANCELLED) => Payload::Change(f.change(kind)?),
        KIND_BATCH => {
            let count = f.u32()? as usize;
            if count == 0 || count > MAX_CHANGES_PER_BATCH {
                return Err(format!("batch record announces {count} changes"));
            }
            let mut changes = Vec::with_capacity(count.min(f.0.len() / SMALLEST_CHANGE_BYTES));
            for _ in 0..count {
                let kind = f.u8()?;
                changes.push(f.change(kind)?);
            }
            Payload::Batch(changes)
        }
        kind @ (KIND_SNAPSHOT | KIND_SNAPSHOT_HOLDS) => {
            let holds = kind == KIND_SNAPSHOT_HOLDS;
            let each = if holds {
                SNAPSHOT_HOLDS_BOOKING_BYTES
            } else {
                SNAPSHOT_BOOKING_BYTES
            };
            let count = f.u32()? as usize;
            if count > MAX_SNAPSHOT_BOOKINGS_PER_RECORD || f.0.len() != count * each {
                return Err(format!("snapshot record announces {count} bookings"));
            }
            let mut bookings = Vec::with_capacity(count);
            for _ in 0..count {
                let id = f.booking()?;
                let event = f.event()?;
                let quantity = f.quantity()?;
                let state = f.u8()?;
                // Kind 4 knows only active (0) and cancelled (1) RESERVEs.
                if !holds && state > 1 {
                    return Err(format!("booking state {state}"));
                }
                let expires_at_ms = if holds { f.u64()? } else { 0 };
                bookings.push((id, snapshot_booking(event, quantity, state, expires_at_ms)?));
            }
            Payload::Snapshot(bookings)
        }
        other => return Err(format!("unknown record kind {other}")),
    };
    f.end()?;
    Ok(decoded)
}

fn decode_header(f: &mut Fields<'_>) -> Result<Header, String> {
    if f.array::<4>()? != MAGIC {
        return Err("bad magic: not a guichet journal".into());
    }
    let version = f.u16()?;
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(format!(
            "journal format version {version}; this build reads versions \
             {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}"
        ));
    }
    let max_bookings = f.u64()?;
    let snapshot_records = f.u64()?;
    let count = f.u32()? as usize;
    if count > MAX_EVENTS {
        return Err(format!("{count} events; at most {MAX_EVENTS} are allowed"));
    }
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::from(f.u8()?);
        let name = std::str::from_utf8(f.take(len)?)
            .map_err(|_| "event name is not UTF-8".to_owned())?
            .to_owned();
        events.push((name, f.u32()?));
    }
    Ok(Header {
        format_version: version,
        max_bookings,
        snapshot_records,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_len_reads_the_length_field() {
        assert_eq!(announced_len(&[40, 0, 0, 0]), Ok(40));
        assert_eq!(announced_len(&[0, 0, 0, 0]), Err(FrameError::BadLength(0)));
        assert_eq!(announced_len(&[40, 0]), Err(FrameError::Incomplete));
    }

    #[test]
    fn a_batch_round_trips_and_one_flipped_bit_refuses_it_whole() {
        let cancelled = Change::Cancelled {
            booking: BookingId::new(7).unwrap(),
        };
        let mut out = Vec::new();
        encode_batch(&mut out, 3, &[cancelled, cancelled]);
        let frame = parse_frame(&out).expect("one sound record");
        assert_eq!(frame.seq, 3);
        assert_eq!(
            decode_payload(frame.payload),
            Ok(Payload::Batch(vec![cancelled, cancelled]))
        );
        out[30] ^= 1;
        assert!(parse_frame(&out).is_err());
    }

    fn change_reserved() -> Change {
        Change::Reserved {
            booking: BookingId::new(7).unwrap(),
            event: EventId::new(2).unwrap(),
            quantity: NonZeroU32::new(3).unwrap(),
        }
    }

    #[test]
    fn records_round_trip() {
        let header = Header {
            format_version: FORMAT_VERSION,
            max_bookings: 10,
            snapshot_records: 1,
            events: vec![("Concert".into(), 100), ("Opéra".into(), u32::MAX)],
        };
        let booking = |id: u64, state, origin| {
            let booking = Booking {
                event: EventId::new(1).unwrap(),
                quantity: NonZeroU32::new(4).unwrap(),
                state,
                origin,
            };
            (BookingId::new(id).unwrap(), booking)
        };
        let snapshot = vec![
            booking(1 << 63 | 1, BookingState::Cancelled, Origin::Reserve),
            booking(2, BookingState::Active, Origin::Reserve),
            booking(3, BookingState::Active, Origin::Hold),
            booking(4, BookingState::Cancelled, Origin::Hold),
            booking(5, BookingState::Expired, Origin::Hold),
            booking(
                6,
                BookingState::Held {
                    expires_at_ms: 1_800_000_000_123,
                },
                Origin::Hold,
            ),
        ];
        let cancelled = Change::Cancelled {
            booking: BookingId::new(7).unwrap(),
        };
        let held = Change::Held {
            booking: BookingId::new(8).unwrap(),
            event: EventId::new(2).unwrap(),
            quantity: NonZeroU32::new(2).unwrap(),
            expires_at_ms: u64::MAX,
        };
        let confirmed = Change::Confirmed {
            booking: BookingId::new(8).unwrap(),
        };
        let expired = Change::Expired {
            booking: BookingId::new(9).unwrap(),
        };
        let mut out = Vec::new();
        encode_header(&mut out, &header);
        encode_snapshot(&mut out, 1, &snapshot);
        encode_change(&mut out, 2, &change_reserved());
        encode_change(&mut out, 3, &cancelled);
        encode_batch(&mut out, 4, &[cancelled, change_reserved()]);
        encode_batch(&mut out, 5, &[held, confirmed, expired]);
        let expected = [
            Payload::Header(header),
            Payload::Snapshot(snapshot),
            Payload::Change(change_reserved()),
            Payload::Change(cancelled),
            Payload::Batch(vec![cancelled, change_reserved()]),
            Payload::Batch(vec![held, confirmed, expired]),
        ];
        let mut rest = &out[..];
        for (seq, want) in expected.iter().enumerate() {
            let frame = parse_frame(rest).unwrap();
            assert_eq!(frame.seq, seq as u64);
            assert_eq!(&decode_payload(frame.payload).unwrap(), want);
            rest = &rest[frame.total_bytes()..];
        }
        assert!(rest.is_empty());
    }

    /// Format 2's snapshot kind (4) is still read, as RESERVEs; a hold's
    /// state in it is refused.
    #[test]
    fn an_older_snapshot_is_still_read() {
        let mut payload = vec![KIND_SNAPSHOT];
        payload.extend_from_slice(&1u32.to_le_bytes());
        payload.extend_from_slice(&7u64.to_le_bytes());
        payload.extend_from_slice(&1u32.to_le_bytes());
        payload.extend_from_slice(&3u32.to_le_bytes());
        payload.push(1);
        let Ok(Payload::Snapshot(bookings)) = decode_payload(&payload) else {
            panic!("kind 4 not read");
        };
        assert_eq!(bookings[0].1.state, BookingState::Cancelled);
        assert_eq!(bookings[0].1.origin, Origin::Reserve);
        *payload.last_mut().unwrap() = 2;
        assert!(decode_payload(&payload).is_err());
    }

    #[test]
    fn a_snapshot_expiry_on_a_settled_booking_is_refused() {
        let mut out = Vec::new();
        let b = Booking {
            event: EventId::new(1).unwrap(),
            quantity: NonZeroU32::MIN,
            state: BookingState::Held { expires_at_ms: 5 },
            origin: Origin::Hold,
        };
        encode_snapshot(&mut out, 1, &[(BookingId::new(1).unwrap(), b)]);
        let mut payload = parse_frame(&out).unwrap().payload.to_vec();
        let state_at = 1 + 4 + 8 + 4 + 4;
        assert_eq!(payload[state_at], 2);
        payload[state_at] = 3; // confirmed, with an expiry left on it
        assert!(decode_payload(&payload).is_err());
    }

    #[test]
    fn a_reserved_record_is_33_bytes_and_little_endian() {
        let mut out = Vec::new();
        encode_change(&mut out, 0x0102, &change_reserved());
        assert_eq!(out.len(), 33);
        assert_eq!(&out[0..4], &17u32.to_le_bytes());
        assert_eq!(&out[4..12], &0x0102u64.to_le_bytes());
        assert_eq!(out[16], KIND_RESERVED);
        assert_eq!(&out[17..25], &7u64.to_le_bytes());
    }

    #[test]
    fn a_batch_of_one_reservation_is_38_bytes() {
        let mut out = Vec::new();
        encode_batch(&mut out, 9, &[change_reserved()]);
        assert_eq!(out.len(), 16 + 1 + 4 + 17);
        assert_eq!(out[16], KIND_BATCH);
        assert_eq!(&out[17..21], &1u32.to_le_bytes());
        assert_eq!(out[21], KIND_RESERVED);
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let mut out = Vec::new();
        encode_change(&mut out, 5, &change_reserved());
        for byte in 0..out.len() {
            for bit in 0..8 {
                let mut bad = out.clone();
                bad[byte] ^= 1 << bit;
                assert!(parse_frame(&bad).is_err(), "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn every_cut_is_incomplete() {
        let mut out = Vec::new();
        encode_change(&mut out, 5, &change_reserved());
        for cut in 0..out.len() {
            assert_eq!(parse_frame(&out[..cut]), Err(FrameError::Incomplete));
        }
    }

    #[test]
    fn impossible_lengths_are_refused_before_reading() {
        assert_eq!(parse_frame(&[0; 16]), Err(FrameError::BadLength(0)));
        let mut huge = [0u8; 16];
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_frame(&huge), Err(FrameError::BadLength(u32::MAX)));
        assert_eq!(
            parse_frame(&huge[..5]),
            Err(FrameError::BadLength(u32::MAX))
        );
    }

    #[test]
    fn bad_payloads_are_described_not_panicked_on() {
        for payload in [
            &[][..],
            &[0],
            &[KIND_RESERVED, 1, 2],
            &[KIND_CANCELLED, 0, 0, 0, 0, 0, 0, 0, 0],
            &[KIND_CANCELLED, 1, 0, 0, 0, 0, 0, 0, 0, 9],
            &[KIND_SNAPSHOT, 255, 255, 255, 255],
            &[KIND_HEADER, b'G', b'C', b'H', b'X'],
            &[KIND_BATCH, 0, 0, 0, 0],
            &[KIND_BATCH, 1, 0, 0, 0],
            &[KIND_BATCH, 1, 0, 0, 0, KIND_SNAPSHOT, 0, 0, 0, 0],
            &[
                KIND_BATCH,
                255,
                255,
                255,
                255,
                KIND_CANCELLED,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ],
            &[
                KIND_BATCH,
                2,
                0,
                0,
                0,
                KIND_CANCELLED,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ],
            &[99],
        ] {
            assert!(decode_payload(payload).is_err(), "{payload:?}");
        }
    }
}
