//! Short constructors of the id newtypes from literals, for tests that
//! spell out requests and replies. Panics on a literal the type refuses:
//! that is a bug in the test.
//!
//! Included with `#[path = "support/ids.rs"] mod ids;`.
#![allow(dead_code)]

use std::num::NonZeroU32;

use guichet::{BookingId, ClientBookingId, EventId};

pub fn event(raw: u32) -> EventId {
    EventId::new(raw).expect("non-zero event id")
}

pub fn qty(raw: u32) -> NonZeroU32 {
    NonZeroU32::new(raw).expect("non-zero quantity")
}

pub fn client(raw: u64) -> ClientBookingId {
    ClientBookingId::new(raw).expect("valid client id")
}

pub fn server(n: u64) -> BookingId {
    BookingId::server(n).expect("valid server id")
}
