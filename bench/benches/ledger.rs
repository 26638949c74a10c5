//! Ledger micro-benchmarks (criterion): RESERVE, QUERY and CANCEL on one
//! thread, and RESERVE from 4 threads sharing one `Mutex<Ledger>` as the
//! server shares it.
//!
//! `cargo bench --bench ledger`. Each figure is the time per operation;
//! RESERVE includes the bookings map's growth, amortised, as in a server.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use guichet::{BookingId, EventId, Ledger, Operation, RequestId, Status};

const THREADS: u64 = 4;

fn event() -> EventId {
    EventId::new(1).expect("1 is an event id")
}

fn reserve_one() -> Operation {
    Operation::Reserve {
        event: event(),
        quantity: NonZeroU32::MIN,
        booking: None,
    }
}

fn fresh() -> Ledger {
    Ledger::new([("bench", u32::MAX)], Ledger::MAX_BOOKINGS_LIMIT).expect("valid configuration")
}

/// Runs `iters` operations in ledgers of at most `MAX_BOOKINGS_LIMIT`
/// bookings, timing only the operations.
fn timed_reserves(iters: u64) -> Duration {
    let op = reserve_one();
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let batch = left.min(Ledger::MAX_BOOKINGS_LIMIT as u64);
        let mut ledger = fresh();
        let start = Instant::now();
        for _ in 0..batch {
            black_box(ledger.apply(black_box(&op)));
        }
        total += start.elapsed();
        left -= batch;
    }
    total
}

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("ledger");
    group.bench_function("reserve", |b| b.iter_custom(timed_reserves));
    group.bench_function("query", |b| {
        let ledger = fresh();
        let op = Operation::Query { event: event() };
        let mut ledger = ledger;
        b.iter(|| black_box(ledger.apply(black_box(&op))));
    });
    group.bench_function("cancel", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let batch = left.min(Ledger::MAX_BOOKINGS_LIMIT as u64);
                let mut ledger = fresh();
                let ids: Vec<BookingId> = (0..batch)
                    .filter_map(|_| ledger.apply(&reserve_one()).reply(RequestId(0)).booking)
                    .collect();
                let start = Instant::now();
                for &booking in &ids {
                    black_box(ledger.apply(black_box(&Operation::Cancel { booking })));
                }
                total += start.elapsed();
                left -= batch;
            }
            total
        });
    });
    group.finish();
}

/// Wall time for `iters` RESERVEs spread over `THREADS` threads locking one
/// ledger: the time per operation the lock lets through.
fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("ledger_4_threads");
    group.bench_function("reserve", |b| {
        b.iter_custom(|iters| {
            let per_thread = iters
                .div_ceil(THREADS)
                .min(Ledger::MAX_BOOKINGS_LIMIT as u64 / THREADS);
            let ledger = Mutex::new(fresh());
            let barrier = Barrier::new(THREADS as usize + 1);
            thread::scope(|s| {
                for _ in 0..THREADS {
                    s.spawn(|| {
                        let op = reserve_one();
                        barrier.wait();
                        for _ in 0..per_thread {
                            let outcome = ledger.lock().expect("not poisoned").apply(&op);
                            debug_assert_eq!(outcome.status(), Status::Ok);
                            black_box(outcome);
                        }
                    });
                }
                barrier.wait();
                let start = Instant::now();
                // Scoped threads are joined when the scope ends.
                start
            })
            .elapsed()
                * u32::try_from(iters).unwrap_or(u32::MAX)
                / u32::try_from(per_thread * THREADS)
                    .unwrap_or(u32::MAX)
                    .max(1)
        });
    });
    group.finish();
}

criterion_group!(benches, uncontended, contended);
criterion_main!(benches);
