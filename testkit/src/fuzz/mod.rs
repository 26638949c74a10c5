//! The checks behind the fuzz targets.
//!
//! Each function takes the raw bytes libFuzzer hands a target and panics,
//! with a message naming the broken property, if guichet misbehaves on
//! them. The fuzz targets in `fuzz/fuzz_targets/` are one-line calls to
//! these, and `tests/fuzz_regressions.rs` replays every committed seed and
//! every crash ever found (`fuzz/seeds/<target>/`, `fuzz/regressions/<target>/`)
//! through the same functions, so a target's body exists once.
//!
//! | target | input | properties |
//! |---|---|---|
//! | [`decode`] | any bytes, as a request body and as a reply body | no panic; what decodes re-encodes to the same bytes; errors name the first rule broken, and a malformed request is answerable exactly when PROTOCOL.md says |
//! | [`roundtrip`] | bytes read by `arbitrary` into requests and replies | every valid request and reply encodes to 40 bytes that decode back equal |
//! | [`handle`] | a ledger set-up, then length-prefixed message bodies ([`input`]) | the server's `handle_message` never panics; every reply is a valid wire-v1 reply to the right `reply_to`, with the status the input calls for and the fields the reference model predicts; nothing changes unless the outcome says so; the ledger's invariants hold after every message |
//! | [`classic`] | an mtype (8 bytes) and a body | no panic; the classic decoders agree with CLASSIC.md read off the bytes; what decodes re-encodes; every text built from the bytes stays within 511 bytes, and a listing ends after a whole line |
//! | [`ledger`] | a ledger set-up, then 4-byte operation records ([`input`]) | the ledger answers every operation as the reference model does, changes exactly when the model does, keeps its invariants, and a replica fed only the recorded changes ends equal |
//!
//! The reference model is [`crate::model`], the one the property tests use,
//! so the fuzz targets check against the same oracle.
//!
//! Panicking is the point of this module: its `assert!`s are the
//! properties. The input formats are total, so no input fails to set up a
//! run; a panic always means guichet (or the model) is wrong.

mod classic_checks;
mod codec_checks;
pub mod input;
mod ledger_checks;
mod server_checks;

pub use classic_checks::classic;
pub use codec_checks::{decode, roundtrip};
pub use ledger_checks::ledger;
pub use server_checks::handle;

/// A target's check: panics if guichet misbehaves on these bytes.
pub type Check = fn(&[u8]);

/// The fuzz targets, by name, each with its check: what
/// `tests/fuzz_regressions.rs` iterates over, and what `fuzz/fuzz_targets/`
/// must have one file for each.
pub const TARGETS: [(&str, Check); 5] = [
    ("classic", classic),
    ("decode", decode),
    ("roundtrip", roundtrip),
    ("handle", handle),
    ("ledger", ledger),
];
