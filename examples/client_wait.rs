//! How exact the client's timeouts are, and what a wait costs: calls to a
//! queue that nobody serves, timed from the caller, with the waiting
//! thread's CPU time.
//!
//! ```text
//! cargo run --release --example client_wait [ROUNDS]
//! ```
//!
//! Prints, for timeouts of 1, 5, 50 and 300 ms, how late each call gave up
//! (min, median, max over the rounds; never early, or it says so) and the
//! CPU its thread used as a share of the wait.

use std::time::{Duration, Instant};

use guichet::__testkit::thread_cpu_time;
use guichet::sysv::{wake_signal, Mode, OwnedQueue};
use guichet::{Client, ClientError};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args().nth(1).map_or(Ok(10), |a| a.parse())?;
    let queue = OwnedQueue::create_private(Mode::DEFAULT)?; // nobody serves it
    match wake_signal() {
        Some(signal) => println!("deadline: a timer signal ({signal}) wakes the blocked msgrcv"),
        None => println!("deadline: polling (no wake-up signal)"),
    }
    let mut early = 0;
    for timeout_ms in [1u32, 5, 50, 300] {
        let client = Client::from_queue(queue.queue()).with_timeout_ms(timeout_ms);
        let timeout = Duration::from_millis(timeout_ms.into());
        let mut late = Vec::with_capacity(rounds);
        let (mut cpu, mut wall) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..rounds {
            let cpu_before = thread_cpu_time()?;
            let start = Instant::now();
            let result = client.query(1);
            let waited = start.elapsed();
            cpu += thread_cpu_time()? - cpu_before;
            wall += waited;
            if !matches!(result, Err(ClientError::Timeout { .. })) {
                return Err(format!("expected a timeout, got {result:?}").into());
            }
            match waited.checked_sub(timeout) {
                Some(l) => late.push(l),
                None => {
                    early += 1;
                    println!("EARLY: {timeout_ms} ms gave up after {waited:?}");
                }
            }
        }
        late.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        if let (Some(min), Some(max)) = (late.first(), late.last()) {
            println!(
                "{timeout_ms:>4} ms x{rounds}: late by min {:.0} µs, median {:.0} µs, max {:.0} µs; \
                 thread CPU {:.3} % of the wait",
                us(*min),
                us(late[late.len() / 2]),
                us(*max),
                cpu.as_secs_f64() / wall.as_secs_f64() * 100.0
            );
        }
    }
    queue.remove()?;
    if early > 0 {
        return Err(format!("{early} call(s) gave up early").into());
    }
    Ok(())
}
