//! Valid requests and replies built by `arbitrary`: encode, decode, compare.
//! The check is `guichet_testkit::fuzz::roundtrip`, shared with `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guichet_testkit::fuzz::roundtrip(data));
