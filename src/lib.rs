//! guichet: book seats over System V message queues.
//!
//! The crate is laid out the way a request travels:
//!
//! - [`wire`]: the `#[repr(C)]` byte layouts of wire v1 (PROTOCOL.md);
//! - [`classic`]: the course's original protocol (CLASSIC.md), its layouts and codec;
//! - [`codec`]: checked domain types ([`Request`], [`Reply`], [`Status`])
//!   and the decoder that turns any bytes into one of them or a typed error;
//! - [`ledger`]: the seat ledger, whose invariants are asserted on every change;
//! - [`sysv`]: the only module with `unsafe`, a typed System V queue API;
//! - [`journal`]: the durable record of the ledger's changes, replayed at start;
//! - [`server`]: the dispatcher (thread-per-request, pool, sequential);
//! - [`client`]: typed calls with timeouts;
//! - [`mod@bench`]: the benchmark harness (echo floor, load driver, reports).
//!
//! Feature `arbitrary` implements `arbitrary::Arbitrary` for the codec's
//! types; feature `fuzzing` adds `guichet::fuzzing`, the checks the fuzz
//! targets in `fuzz/` run.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
compile_error!(
    "guichet supports 64-bit Linux only: wire v1 fixes `long` (the SysV mtype) at 8 bytes \
     and relies on Linux's msgsnd(2)/msgrcv(2) semantics"
);

pub mod bench;
pub mod classic;
pub mod client;
pub mod codec;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod ids;
pub mod journal;
pub mod ledger;
pub mod server;
mod status;
pub mod sysv;
pub mod wire;

pub use client::{Client, ClientError};
pub use codec::{decode_reply, decode_request, DecodeError, Operation, Reply, Request, Violation};
pub use ids::{BookingId, ClientBookingId, EventId, ReplyTo, RequestId};
pub use ledger::Ledger;
pub use server::Server;
pub use status::Status;

// `guichet::fuzzing` compiles the property tests' reference model
// (`tests/support/model.rs`), which names this crate `guichet` as any test
// does; this alias lets that one file serve both without a copy.
#[cfg(feature = "fuzzing")]
extern crate self as guichet;

// The README's examples are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(doctest)]
#[doc = include_str!("../docs/classic.md")]
struct ClassicDocDoctests;
