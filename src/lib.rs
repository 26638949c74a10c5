//! guichet: book seats over System V message queues.
//!
//! The crate is laid out the way a request travels:
//!
//! - [`wire`]: wire v1 (PROTOCOL.md): the `#[repr(C)]` byte layouts, the
//!   checked domain types ([`Request`], [`Reply`], [`Status`]) and the
//!   decoder that turns any bytes into one of them or a typed error;
//! - [`classic`]: the course's original protocol (CLASSIC.md), its layouts
//!   and codec, served beside wire v1 by
//!   [`Builder::classic_key`](server::Builder::classic_key);
//! - [`ledger`]: the seat ledger, whose invariants are asserted on every change;
//! - [`sysv`]: the only module with `unsafe`, a typed System V queue API;
//! - [`journal`]: the durable record of the ledger's changes, replayed at start;
//! - [`server`]: the dispatcher (thread-per-request, pool, sequential);
//! - [`client`]: typed calls with timeouts.
//!
//! Features (all off by default):
//! - `arbitrary`: `arbitrary::Arbitrary` for the codec's types, for
//!   structure-aware fuzzing;
//! - `sim`: [`journal::SimDisk`](crate::journal), an in-memory disk that
//!   simulates power loss, and the journal's own API, to test crash safety
//!   in your own suites.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
compile_error!(
    "guichet supports 64-bit Linux only: wire v1 fixes `long` (the SysV mtype) at 8 bytes \
     and relies on Linux's msgsnd(2)/msgrcv(2) semantics"
);

pub mod classic;
pub mod client;
mod codec;
mod ids;
pub mod journal;
pub mod ledger;
pub mod server;
mod status;
pub mod sysv;
#[cfg(test)]
mod test_support;
pub mod wire;

pub use client::{Client, ClientError};
pub use wire::{decode_reply, decode_request, DecodeError, Operation, Reply, Request, Violation};

/// What guichet-testkit's fuzz checks reach below the public API; not part
/// of it, and absent without the `testkit` feature.
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod __testkit {
    pub use crate::classic::layout::MAX_TEXT_BYTES;
    pub use crate::classic::text::{listing_text, ReserveText, LIST_HEADER};
    pub use crate::server::{handle_message, Handled};
    pub use crate::sysv::alarm::thread_cpu_time;
}
pub use ids::{BookingId, ClientBookingId, EventId, ReplyTo, RequestId};
pub use ledger::Ledger;
pub use server::Server;
pub use status::Status;

// The examples of the README and of docs/ are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/durability.md")]
struct DurabilityDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/testing.md")]
struct TestingDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/classic.md")]
struct ClassicDocDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/holds.md")]
struct HoldsDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/embedding.md")]
struct EmbeddingDoctests;
