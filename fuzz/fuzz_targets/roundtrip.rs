//! Valid requests and replies built by `arbitrary`: encode, decode, compare.
//! The check is `guichet::fuzzing::roundtrip`, shared with `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guichet::fuzzing::roundtrip(data));
