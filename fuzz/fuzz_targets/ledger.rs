//! Operation sequences against the ledger and the reference model.
//! The check is `guichet_testkit::fuzz::ledger`, shared with `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guichet_testkit::fuzz::ledger(data));
