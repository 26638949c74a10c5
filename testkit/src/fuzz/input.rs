//! The byte formats of the `handle` and `ledger` targets' inputs, with
//! encoders for the seed generator (`tests/fuzz_seeds.rs`).
//!
//! Every format is total: any bytes read as *some* run (a missing header
//! byte reads as 0, a trailing partial record is ignored), so the fuzzer
//! never wastes an execution on an input that sets nothing up. Values are
//! drawn from small pools on purpose: a few events with tiny capacities
//! (so SOLD_OUT is common), a handful of booking ids (so ids collide,
//! retry and cancel one another), and a few extremes (`u32::MAX` seats,
//! the largest ids) for the arithmetic.
//!
//! # Set-up header (both targets), [`HEADER_LEN`] bytes
//!
//! | byte | meaning |
//! |---:|---|
//! | 0 | events: `b % 4 + 1` |
//! | 1–4 | capacity of event 1–4 (see [`capacity`]); unused ones ignored |
//! | 5 | `max_bookings`: `0xFF` is the server's default, else `b % 16 + 1` |
//!
//! # `handle`: messages after the header
//!
//! Each message is one control byte then its body: the body's length is
//! `ctl & 0x3F` (0 to 63 bytes, so bodies shorter and longer than 40 are
//! both reachable), and the server is shutting down for it when
//! `ctl >= 0xC0`; when `ctl & 0xC0 == 0x80`, [`HOLD_MS`] pass on the
//! ledger's clock before it (so every hold made before expires). A body cut
//! short by the end of the input is handled as it is.
//!
//! # `ledger`: 4-byte operation records after the header
//!
//! `[kind, a, b, c]`, `kind % 5` choosing: 0 QUERY of [`event`]`(a)`;
//! 1 RESERVE of [`event`]`(a)`, [`quantity`]`(b)` seats, booking id
//! [`client_booking`]`(c)`; 2 CANCEL of [`booking`]`(a)`; 3 HOLD as
//! RESERVE; 4 CONFIRM as CANCEL. For QUERY, CANCEL and CONFIRM, which do
//! not use `c`, `c % 32` milliseconds pass on the ledger's clock before
//! the operation ([`pause_ms`]; holds last [`HOLD_MS`]).
//!
//! # Bounds
//!
//! A run reads at most [`MAX_MESSAGES`] messages or [`MAX_RECORDS`]
//! records and ignores the rest: the reference model is quadratic on
//! purpose, and longer runs would cost the fuzzer far more executions than
//! they add states (no pool above holds more than 16 ids).

use core::num::{NonZeroU32, NonZeroU64};

use guichet::ledger::{ConfigError, Ledger, ManualClock};

const DEFAULT_MAX_BOOKINGS: usize = Ledger::DEFAULT_MAX_BOOKINGS;
use guichet::wire::Operation;
use guichet::wire::SERVER_BOOKING_BIT;
use guichet::{BookingId, ClientBookingId, EventId};

/// Bytes of the set-up header.
pub const HEADER_LEN: usize = 6;
/// Bytes of one `ledger` operation record.
pub const RECORD_LEN: usize = 4;
/// Longest `handle` message body a control byte can announce.
pub const MAX_MESSAGE_LEN: usize = 0x3F;
/// Control bytes at or above this mark a message handled while shutting down.
pub const SHUTTING_DOWN_CTL: u8 = 0xC0;
/// Most `handle` messages a run reads.
pub const MAX_MESSAGES: usize = 64;
/// Most `ledger` records a run reads.
pub const MAX_RECORDS: usize = 256;
/// Most events a set-up configures.
pub const MAX_EVENTS: usize = 4;
/// How long holds last in both targets' ledgers, in milliseconds.
pub const HOLD_MS: u64 = 16;
/// Control bytes with these two bits equal to this let [`HOLD_MS`] pass.
pub const PASS_CTL: u8 = 0x80;
/// The largest client-chosen booking id: bit 63 clear, every other bit set.
pub const LARGEST_CLIENT_ID: u64 = SERVER_BOOKING_BIT - 1;

/// A ledger configuration read from a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Capacity of event `n` at index `n - 1`; 1 to [`MAX_EVENTS`] of them.
    pub capacities: Vec<u32>,
    /// Most bookings the ledger holds, cancelled ones included.
    pub max_bookings: usize,
}

impl Setup {
    /// Reads the header at the start of `data` (missing bytes read as 0)
    /// and returns the set-up and the bytes after the header.
    pub fn read(data: &[u8]) -> (Self, &[u8]) {
        let byte = |i: usize| data.get(i).copied().unwrap_or(0);
        let events = usize::from(byte(0)) % MAX_EVENTS + 1;
        let capacities = (1..=events).map(|i| capacity(byte(i))).collect();
        let max_bookings = match byte(5) {
            0xFF => DEFAULT_MAX_BOOKINGS,
            b => usize::from(b % 16) + 1,
        };
        let rest = data.get(HEADER_LEN..).unwrap_or(&[]);
        (
            Self {
                capacities,
                max_bookings,
            },
            rest,
        )
    }

    /// The header that [`Setup::read`] reads back as this set-up, or `None`
    /// if the format cannot express it.
    pub fn header(&self) -> Option<[u8; HEADER_LEN]> {
        let events = self.capacities.len();
        if !(1..=MAX_EVENTS).contains(&events) {
            return None;
        }
        let mut header = [0u8; HEADER_LEN];
        header[0] = u8::try_from(events - 1).ok()?;
        for (slot, &c) in header[1..].iter_mut().zip(&self.capacities) {
            *slot = capacity_byte(c)?;
        }
        header[5] = match self.max_bookings {
            DEFAULT_MAX_BOOKINGS => 0xFF,
            n @ 1..=16 => u8::try_from(n - 1).ok()?,
            _ => return None,
        };
        Some(header)
    }

    /// A fresh ledger with this set-up, events named `e1`, `e2`…
    ///
    /// # Errors
    ///
    /// Never for a set-up [`Setup::read`] made (its names are valid and its
    /// `max_bookings` in range); the checks treat an error as a bug.
    pub fn ledger(&self) -> Result<Ledger, ConfigError> {
        self.ledger_on(&ManualClock::new(0))
    }

    /// [`Setup::ledger`] reading `clock`, with holds of [`HOLD_MS`].
    ///
    /// # Errors
    ///
    /// As [`Setup::ledger`].
    pub fn ledger_on(&self, clock: &ManualClock) -> Result<Ledger, ConfigError> {
        let events = self
            .capacities
            .iter()
            .enumerate()
            .map(|(i, &c)| (format!("e{}", i + 1), c));
        Ledger::new(events, self.max_bookings)?
            .with_clock(std::sync::Arc::new(clock.clone()))
            .with_hold_ms(HOLD_MS)
    }
}

/// A capacity byte: `0xF8..=0xFF` are the eight largest `u32`s (so seat
/// arithmetic runs at its limit), anything else `b % 8` (0 to 7 seats).
pub fn capacity(b: u8) -> u32 {
    if b >= 0xF8 {
        u32::MAX - u32::from(0xFF - b)
    } else {
        u32::from(b % 8)
    }
}

fn capacity_byte(c: u32) -> Option<u8> {
    match c {
        0..=7 => u8::try_from(c).ok(),
        _ if c >= u32::MAX - 7 => u8::try_from(u32::MAX - c).ok().map(|d| 0xFF - d),
        _ => None,
    }
}

/// An event byte: `0xFF` is `u32::MAX`, anything else event `b % 8 + 1`
/// (1 to 8, so some are unknown to a ledger of at most 4 events).
pub fn event(b: u8) -> EventId {
    let raw = if b == 0xFF {
        u32::MAX
    } else {
        u32::from(b % 8) + 1
    };
    EventId::from(nonzero32(raw))
}

/// A quantity byte: `0xF8..=0xFF` are the eight largest `u32`s, anything
/// else `b % 8 + 1` (1 to 8 seats).
pub fn quantity(b: u8) -> NonZeroU32 {
    let raw = if b >= 0xF8 {
        u32::MAX - u32::from(0xFF - b)
    } else {
        u32::from(b % 8) + 1
    };
    nonzero32(raw)
}

/// A RESERVE's booking byte: 0 lets the server pick, `0xFF` is
/// [`LARGEST_CLIENT_ID`], anything else client id `b % 8 + 1`.
pub fn client_booking(b: u8) -> Option<ClientBookingId> {
    match b {
        0 => None,
        0xFF => ClientBookingId::new(LARGEST_CLIENT_ID),
        _ => ClientBookingId::new(u64::from(b % 8) + 1),
    }
}

/// A CANCEL's booking byte: below `0x80` a client id (`0x7F` is
/// [`LARGEST_CLIENT_ID`], else `b % 8 + 1`); `0xFF` is `u64::MAX` (a server
/// id never issued); else the server's `(b & 0x0F) + 1`th id.
pub fn booking(b: u8) -> BookingId {
    let raw = match b {
        0x7F => LARGEST_CLIENT_ID,
        0..=0x7E => u64::from(b % 8) + 1,
        0xFF => u64::MAX,
        _ => SERVER_BOOKING_BIT | (u64::from(b & 0x0F) + 1),
    };
    BookingId::from(NonZeroU64::new(raw).unwrap_or(NonZeroU64::MIN))
}

/// Every raw value above is non-zero by construction; the fallback only
/// keeps these functions total without a panic path.
fn nonzero32(raw: u32) -> NonZeroU32 {
    NonZeroU32::new(raw).unwrap_or(NonZeroU32::MIN)
}

/// The operation a `ledger` record stands for.
pub fn operation(record: [u8; RECORD_LEN]) -> Operation {
    let [kind, a, b, c] = record;
    match kind % 5 {
        0 => Operation::Query { event: event(a) },
        1 => Operation::Reserve {
            event: event(a),
            quantity: quantity(b),
            booking: client_booking(c),
        },
        2 => Operation::Cancel {
            booking: booking(a),
        },
        3 => Operation::Hold {
            event: event(a),
            quantity: quantity(b),
            booking: client_booking(c),
        },
        _ => Operation::Confirm {
            booking: booking(a),
        },
    }
}

/// The operations of a `ledger` input's body (after the header): the
/// first [`MAX_RECORDS`] whole records.
pub fn operations(body: &[u8]) -> impl Iterator<Item = Operation> + '_ {
    steps(body).map(|(_, op)| op)
}

/// [`operations`], each with the milliseconds that pass before it ([`pause_ms`]).
pub fn steps(body: &[u8]) -> impl Iterator<Item = (u64, Operation)> + '_ {
    body.chunks_exact(RECORD_LEN)
        .take(MAX_RECORDS)
        .map(|chunk| {
            let mut record = [0u8; RECORD_LEN];
            record.copy_from_slice(chunk);
            (pause_ms(record), operation(record))
        })
}

/// The milliseconds a record lets pass before its operation: `c % 32` for
/// the kinds that leave `c` unused (QUERY, CANCEL, CONFIRM), else 0.
pub fn pause_ms(record: [u8; RECORD_LEN]) -> u64 {
    let [kind, _, _, c] = record;
    match kind % 5 {
        0 | 2 | 4 => u64::from(c % 32),
        _ => 0,
    }
}

/// The record [`operation`] reads back as `op`, or `None` if the pools
/// above do not hold its values.
pub fn record(op: &Operation) -> Option<[u8; RECORD_LEN]> {
    match *op {
        Operation::Query { event } => Some([0, event_byte(event)?, 0, 0]),
        Operation::Reserve {
            event,
            quantity,
            booking,
        }
        | Operation::Hold {
            event,
            quantity,
            booking,
        } => Some([
            if matches!(op, Operation::Hold { .. }) {
                3
            } else {
                1
            },
            event_byte(event)?,
            quantity_byte(quantity)?,
            match booking.map(ClientBookingId::get) {
                None => 0,
                Some(LARGEST_CLIENT_ID) => 0xFF,
                // Byte 0 means "no id", so client id k is written `k + 7`.
                Some(id @ 1..=8) => u8::try_from(id + 7).ok()?,
                Some(_) => return None,
            },
        ]),
        Operation::Cancel { booking } => Some([2, booking_byte(booking)?, 0, 0]),
        Operation::Confirm { booking } => Some([4, booking_byte(booking)?, 0, 0]),
    }
}

fn event_byte(event: EventId) -> Option<u8> {
    match event.get() {
        u32::MAX => Some(0xFF),
        e @ 1..=8 => u8::try_from(e - 1).ok(),
        _ => None,
    }
}

fn quantity_byte(quantity: NonZeroU32) -> Option<u8> {
    match quantity.get() {
        q @ 1..=8 => u8::try_from(q - 1).ok(),
        q if q >= u32::MAX - 7 => u8::try_from(u32::MAX - q).ok().map(|d| 0xFF - d),
        _ => None,
    }
}

fn booking_byte(booking: BookingId) -> Option<u8> {
    match booking.get() {
        u64::MAX => Some(0xFF),
        LARGEST_CLIENT_ID => Some(0x7F),
        id @ 1..=8 => u8::try_from(id - 1).ok(),
        id if id & SERVER_BOOKING_BIT != 0 => match id & !SERVER_BOOKING_BIT {
            n @ 1..=16 => u8::try_from(n - 1).ok().map(|n| 0x80 | n),
            _ => None,
        },
        _ => None,
    }
}

/// One `handle` message: its body, and whether the server is shutting down.
pub type Message<'a> = (&'a [u8], bool);

/// The `handle` messages of `data` (after the header): the first
/// [`MAX_MESSAGES`], each a control byte and the body it announces (cut
/// short by the end of `data`).
pub fn messages(data: &[u8]) -> impl Iterator<Item = Message<'_>> + '_ {
    timed_messages(data).map(|(message, _)| message)
}

/// [`messages`], each with the milliseconds that pass before it (0 or [`HOLD_MS`]).
pub fn timed_messages(data: &[u8]) -> impl Iterator<Item = (Message<'_>, u64)> + '_ {
    let mut rest = data;
    core::iter::from_fn(move || {
        let (&ctl, tail) = rest.split_first()?;
        let len = usize::from(ctl) & MAX_MESSAGE_LEN;
        let (body, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        let pause_ms = if ctl & SHUTTING_DOWN_CTL == PASS_CTL {
            HOLD_MS
        } else {
            0
        };
        Some(((body, ctl >= SHUTTING_DOWN_CTL), pause_ms))
    })
    .take(MAX_MESSAGES)
}

/// The bytes [`messages`] reads as `body`, or `None` for a body over
/// [`MAX_MESSAGE_LEN`] bytes.
pub fn message(body: &[u8], shutting_down: bool) -> Option<Vec<u8>> {
    let len = u8::try_from(body.len())
        .ok()
        .filter(|&l| usize::from(l) <= MAX_MESSAGE_LEN)?;
    let ctl = if shutting_down {
        SHUTTING_DOWN_CTL | len
    } else {
        len
    };
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(ctl);
    out.extend_from_slice(body);
    Some(out)
}
