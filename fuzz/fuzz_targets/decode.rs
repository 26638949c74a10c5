//! Arbitrary bytes as a request body and as a reply body.
//! The check is `guichet::fuzzing::decode`, shared with `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guichet::fuzzing::decode(data));
