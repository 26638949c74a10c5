//! The client's timeouts end at their deadline, never before, and a call
//! waiting for a reply that never comes costs almost no CPU: it waits in
//! the kernel. (How late a timeout ends is measured, not asserted: see
//! `examples/client_wait.rs`.)

use std::time::{Duration, Instant};

use guichet::__testkit::thread_cpu_time;
use guichet::sysv::{wake_signal, Mode, OwnedQueue};
use guichet::{Client, ClientError};

#[test]
fn timeouts_never_end_early() {
    let queue = OwnedQueue::create_private(Mode::DEFAULT).unwrap(); // nobody serves it
    for (timeout_ms, calls) in [(1u32, 20), (5, 10), (50, 3), (300, 1)] {
        let client = Client::from_queue(queue.queue()).with_timeout_ms(timeout_ms);
        for _ in 0..calls {
            let start = Instant::now();
            let result = client.query(1);
            let waited = start.elapsed();
            assert!(
                matches!(result, Err(ClientError::Timeout { timeout_ms: t }) if t == timeout_ms),
                "{result:?}"
            );
            assert!(
                waited >= Duration::from_millis(timeout_ms.into()),
                "a {timeout_ms} ms timeout ended after {waited:?}"
            );
        }
    }
    queue.remove().unwrap();
}

#[test]
fn a_300_ms_wait_uses_at_most_1_percent_of_a_cpu() {
    if wake_signal().is_none() {
        // Polling by choice (GUICHET_WAKE_SIGNAL=off) costs more, by design.
        eprintln!("SKIPPED: no wake-up signal in this process");
        return;
    }
    let queue = OwnedQueue::create_private(Mode::DEFAULT).unwrap();
    let client = Client::from_queue(queue.queue()).with_timeout_ms(300);
    let before = thread_cpu_time().unwrap();
    let result = client.query(1);
    let used = thread_cpu_time().unwrap() - before;
    assert!(
        matches!(result, Err(ClientError::Timeout { .. })),
        "{result:?}"
    );
    // CPU time, not wall time: load elsewhere does not inflate it.
    assert!(
        used <= Duration::from_millis(3),
        "{used:?} of CPU for a 300 ms wait"
    );
    queue.remove().unwrap();
}
