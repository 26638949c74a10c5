//! An mtype (the first 8 bytes) and a body, into the classic protocol's
//! decoders and text builders. The check is `guichet_testkit::fuzz::classic`,
//! shared with `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guichet_testkit::fuzz::classic(data));
