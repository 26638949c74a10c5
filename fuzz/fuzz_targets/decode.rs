//! Arbitrary bytes as a request body and as a reply body.
//! The check is `guichet_testkit::fuzz::decode`, shared with `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guichet_testkit::fuzz::decode(data));
