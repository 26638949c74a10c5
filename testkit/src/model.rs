//! A deliberately naive reference model of the seat ledger.
//!
//! Written from PROTOCOL.md and the documented choices of
//! `guichet::Ledger::apply` / `Outcome::reply`, and separately from
//! `src/ledger`: nothing here calls into the ledger's logic. It is slow on
//! purpose and easy to read:
//!
//! - events are a `Vec` of capacities (event `n` is at index `n - 1`);
//! - bookings are a `Vec` of [`ModelBooking`]s, `(id, event, quantity,
//!   cancelled)`, scanned linearly and never removed;
//! - an event's `remaining` is never stored: it is derived, every time, as
//!   its capacity minus the seats of its active bookings;
//! - the number of server ids issued is never stored either: it is the
//!   number of stored bookings whose id has bit 63 set.
//!
//! [`Model::apply`] takes a `guichet::Operation` and returns the reply the
//! server must send (with `request_id` 0) and whether the ledger changed, so
//! a test compares it with `ledger.apply(&op).reply(RequestId(0))` and
//! `outcome.change().is_some()`.
//!
//! The rules it implements, in the order they are decided:
//!
//! - QUERY: UNKNOWN_EVENT (event named, nothing else) or OK with the event's
//!   `remaining` and `capacity`.
//! - RESERVE with a client-chosen id: the id is looked up *first*. If a
//!   booking has it: same event and quantity and active → OK with that
//!   booking, nothing changes; another event or quantity → BOOKING_CONFLICT
//!   naming the *existing* booking's event and that event's seats; same event
//!   and quantity but cancelled → BOOKING_CANCELLED. Only a new id goes on.
//! - RESERVE of a new booking: UNKNOWN_EVENT, then SOLD_OUT (fewer than
//!   `quantity` seats remain), then LEDGER_FULL (the bookings stored,
//!   cancelled ones included, number `max_bookings`), else OK and a new
//!   active booking. Its id is the client's, or `(1 << 63) | n` for the
//!   `n`th booking the server names (`n` from 1).
//! - CANCEL: UNKNOWN_BOOKING echoing the id; HOLD_EXPIRED for an expired
//!   hold; else OK with the booking's event and quantity and the event's
//!   seats after the request. Cancelling a cancelled booking answers the
//!   same way and changes nothing.
//! - HOLD: as RESERVE, but a booking made by RESERVE under its id is a
//!   BOOKING_CONFLICT (and a HOLD's id under RESERVE too), an expired hold
//!   answers HOLD_EXPIRED (after the conflict and cancelled checks), and a
//!   new booking is held until `now + hold_ms`.
//! - CONFIRM: UNKNOWN_BOOKING; cancelled: BOOKING_CANCELLED; expired:
//!   HOLD_EXPIRED; a live hold becomes active (changed); an active booking
//!   answers OK and nothing changes.
//!
//! Time: the model has its own `now_ms` (from 0), moved by
//! [`Model::advance_ms`]. Expiry is never stored: a booking is expired
//! when it was held, never confirmed nor cancelled, and its expiry is at
//! or before `now_ms`, checked by a scan every time.
//!
//! Reply fields: `booking` and `event` are the ones "concerned" (see each
//! rule above; SOLD_OUT and LEDGER_FULL name no booking), `quantity` is set
//! only for RESERVE or CANCEL answered OK, and `remaining`/`capacity` are
//! filled whenever the event named is known, else 0.
//!
//! Self-contained (only `guichet`'s public types and `std`) so that fuzz
//! targets and the linearizability checker can include it with `#[path]`.
#![allow(dead_code)]

use guichet::{BookingId, EventId, Operation, Reply, RequestId, Status};

/// Bit 63: set on ids the server picks, clear on ids clients pick.
const SERVER_BIT: u64 = 1 << 63;

/// One booking as the model stores it. Only `cancelled` (from `false` to
/// `true`) and `expires_at_ms` (from `Some` to `None`, at CONFIRM) change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModelBooking {
    /// Its id (wire value).
    pub id: u64,
    /// Its event (wire value, always a known event).
    pub event: u32,
    /// Seats booked (at least 1).
    pub quantity: u32,
    /// Whether it was cancelled.
    pub cancelled: bool,
    /// Whether HOLD made it.
    pub held: bool,
    /// A hold's expiry until it is confirmed; `None` otherwise.
    pub expires_at_ms: Option<u64>,
    /// Expired by [`Model::expire`] (an expiry as an event, whatever the clock).
    pub expired: bool,
}

/// The reference ledger. See the module documentation for its rules.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Model {
    /// `capacities[n - 1]` is the capacity of event `n`.
    capacities: Vec<u32>,
    /// Every booking ever made, in creation order.
    bookings: Vec<ModelBooking>,
    /// Most bookings stored at once, cancelled ones included.
    max_bookings: usize,
    /// The model's clock.
    now_ms: u64,
    /// How long a HOLD keeps its seats.
    hold_ms: u64,
}

impl Model {
    /// A model of a ledger whose events have these capacities (event 1
    /// first) and which holds at most `max_bookings` bookings. Give it the
    /// same configuration as a ledger that `Ledger::new` accepted.
    pub fn new(capacities: &[u32], max_bookings: usize) -> Self {
        Self {
            capacities: capacities.to_vec(),
            bookings: Vec::new(),
            max_bookings,
            now_ms: 0,
            hold_ms: 600_000,
        }
    }

    /// This model with holds of `hold_ms`.
    pub fn with_hold_ms(mut self, hold_ms: u64) -> Self {
        self.hold_ms = hold_ms;
        self
    }

    /// Moves the model's clock forward.
    pub fn advance_ms(&mut self, ms: u64) {
        self.now_ms += ms;
    }

    /// The model's clock.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Whether `b` is an expired hold now.
    pub fn is_expired(&self, b: &ModelBooking) -> bool {
        !b.cancelled
            && b.expires_at_ms
                .is_some_and(|t| b.expired || t <= self.now_ms)
    }

    /// Expires the hold `id` now, whatever its expiry says, if it is a live
    /// hold; returns whether that changed anything. For checkers that model
    /// an expiry as an event of its own.
    pub fn expire(&mut self, id: u64) -> bool {
        let Some(position) = self.bookings.iter().position(|b| b.id == id) else {
            return false;
        };
        let b = self.bookings[position];
        if b.cancelled || b.expires_at_ms.is_none() || self.is_expired(&b) {
            return false;
        }
        self.bookings[position].expired = true;
        true
    }

    /// Applies one operation: the reply a server must send (`request_id`
    /// 0) and whether the ledger changed.
    pub fn apply(&mut self, operation: &Operation) -> (Reply, bool) {
        match *operation {
            Operation::Query { event } => (self.query(event.get()), false),
            Operation::Reserve {
                event,
                quantity,
                booking,
            } => self.reserve(event.get(), quantity.get(), booking.map(|id| id.get())),
            Operation::Cancel { booking } => self.cancel(booking.get()),
            Operation::Hold {
                event,
                quantity,
                booking,
            } => self.book(
                event.get(),
                quantity.get(),
                booking.map(|id| id.get()),
                true,
            ),
            Operation::Confirm { booking } => self.confirm(booking.get()),
        }
    }

    /// Number of events (numbered 1 to this).
    pub fn event_count(&self) -> usize {
        self.capacities.len()
    }

    /// The capacities, event 1 first.
    pub fn capacities(&self) -> &[u32] {
        &self.capacities
    }

    /// Capacity of `event`, if it exists.
    pub fn capacity(&self, event: u32) -> Option<u32> {
        let index = usize::try_from(event).ok()?.checked_sub(1)?;
        self.capacities.get(index).copied()
    }

    /// Seats of `event` taken by active bookings, if the event exists.
    pub fn booked(&self, event: u32) -> Option<u64> {
        self.capacity(event)?;
        let mut sum = 0u64;
        for b in &self.bookings {
            if b.event == event && !b.cancelled && !self.is_expired(b) {
                sum += u64::from(b.quantity);
            }
        }
        Some(sum)
    }

    /// Seats of `event` not taken, derived from its bookings, if it exists.
    ///
    /// # Panics
    ///
    /// If the active bookings exceed the capacity: the model itself is broken.
    pub fn remaining(&self, event: u32) -> Option<u32> {
        let capacity = u64::from(self.capacity(event)?);
        let booked = self.booked(event)?;
        let remaining = capacity
            .checked_sub(booked)
            .expect("model broken: more seats booked than the event has");
        Some(u32::try_from(remaining).expect("remaining <= capacity fits u32"))
    }

    /// Every booking ever made, in creation order.
    pub fn bookings(&self) -> &[ModelBooking] {
        &self.bookings
    }

    /// The booking with this id, if any.
    pub fn booking(&self, id: u64) -> Option<ModelBooking> {
        self.bookings.iter().copied().find(|b| b.id == id)
    }

    /// Bookings stored, cancelled ones included.
    pub fn booking_count(&self) -> usize {
        self.bookings.len()
    }

    /// The configured maximum of bookings.
    pub fn max_bookings(&self) -> usize {
        self.max_bookings
    }

    /// Server ids issued so far (counted, not cached).
    pub fn server_ids_issued(&self) -> u64 {
        self.bookings
            .iter()
            .filter(|b| b.id & SERVER_BIT != 0)
            .count() as u64
    }

    /// The id the server assigns to its next booking.
    pub fn next_server_id(&self) -> u64 {
        SERVER_BIT | (self.server_ids_issued() + 1)
    }

    /// The reply for `event`: named, with its seats if it is known.
    fn reply(&self, status: Status, booking: u64, event: u32, quantity: u32) -> Reply {
        let (remaining, capacity) = match self.capacity(event) {
            Some(capacity) => (self.remaining(event).unwrap_or(0), capacity),
            None => (0, 0),
        };
        Reply {
            status,
            request_id: RequestId(0),
            booking: BookingId::new(booking),
            event: EventId::new(event),
            quantity,
            remaining,
            capacity,
        }
    }

    fn query(&self, event: u32) -> Reply {
        if self.capacity(event).is_none() {
            return self.reply(Status::UnknownEvent, 0, event, 0);
        }
        self.reply(Status::Ok, 0, event, 0)
    }

    fn reserve(&mut self, event: u32, quantity: u32, client_id: Option<u64>) -> (Reply, bool) {
        self.book(event, quantity, client_id, false)
    }

    fn book(
        &mut self,
        event: u32,
        quantity: u32,
        client_id: Option<u64>,
        held: bool,
    ) -> (Reply, bool) {
        if let Some(id) = client_id {
            if let Some(existing) = self.booking(id) {
                let reply = if existing.held != held
                    || existing.event != event
                    || existing.quantity != quantity
                {
                    self.reply(Status::BookingConflict, id, existing.event, 0)
                } else if existing.cancelled {
                    self.reply(Status::BookingCancelled, id, event, 0)
                } else if self.is_expired(&existing) {
                    self.reply(Status::HoldExpired, id, event, 0)
                } else {
                    self.reply(Status::Ok, id, event, quantity)
                };
                return (reply, false);
            }
        }
        let Some(remaining) = self.remaining(event) else {
            return (self.reply(Status::UnknownEvent, 0, event, 0), false);
        };
        if remaining < quantity {
            return (self.reply(Status::SoldOut, 0, event, 0), false);
        }
        if self.bookings.len() == self.max_bookings {
            return (self.reply(Status::LedgerFull, 0, event, 0), false);
        }
        let id = match client_id {
            Some(id) => id,
            None => self.next_server_id(),
        };
        self.bookings.push(ModelBooking {
            id,
            event,
            quantity,
            cancelled: false,
            held,
            expires_at_ms: held.then_some(self.now_ms + self.hold_ms),
            expired: false,
        });
        (self.reply(Status::Ok, id, event, quantity), true)
    }

    fn confirm(&mut self, id: u64) -> (Reply, bool) {
        let Some(position) = self.bookings.iter().position(|b| b.id == id) else {
            return (self.reply(Status::UnknownBooking, id, 0, 0), false);
        };
        let b = self.bookings[position];
        if b.cancelled {
            return (self.reply(Status::BookingCancelled, id, b.event, 0), false);
        }
        if self.is_expired(&b) {
            return (self.reply(Status::HoldExpired, id, b.event, 0), false);
        }
        let changed = b.expires_at_ms.is_some();
        self.bookings[position].expires_at_ms = None;
        (self.reply(Status::Ok, id, b.event, b.quantity), changed)
    }

    fn cancel(&mut self, id: u64) -> (Reply, bool) {
        let Some(position) = self.bookings.iter().position(|b| b.id == id) else {
            return (self.reply(Status::UnknownBooking, id, 0, 0), false);
        };
        let b = self.bookings[position];
        if self.is_expired(&b) {
            return (self.reply(Status::HoldExpired, id, b.event, 0), false);
        }
        let changed = !self.bookings[position].cancelled;
        self.bookings[position].cancelled = true;
        let b = self.bookings[position];
        (self.reply(Status::Ok, id, b.event, b.quantity), changed)
    }
}
