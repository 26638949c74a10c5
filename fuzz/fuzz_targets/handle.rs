//! Message bodies through the server's per-message core against a small ledger.
//! The check is `guichet_testkit::fuzz::handle`, shared with `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guichet_testkit::fuzz::handle(data));
