//! Test support shared by guichet's suites (`tests/`, `cli/tests/`,
//! `bench/tests/`) and its fuzz targets (`fuzz/`): one copy of each piece.
//!
//! - [`model`]: the deliberately naive reference model of the seat ledger;
//! - [`fuzz`]: the checks behind the fuzz targets, replayed by `cargo test`;
//! - [`fixture`]: raw wire messages, reply readers, `ftok` keys on temporary
//!   files, keyed servers, child processes, a held ledger lock;
//! - [`rng`], [`ids`], [`tools`]: a seeded PRNG, short id constructors, and
//!   how a test says a missing tool kept it from running.
//!
//! Not published: it exists for guichet's own tests.

pub mod fixture;
pub mod fuzz;
pub mod ids;
pub mod model;
pub mod rng;
pub mod tools;
