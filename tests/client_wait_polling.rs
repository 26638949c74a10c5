//! Without the wake-up signal (`GUICHET_WAKE_SIGNAL=off`, as a program that
//! needs the signal itself would set it) the client polls, and its
//! timeouts still never end early. Its own test binary: the variable is
//! read once per process, at the first wait.

use std::time::{Duration, Instant};

use guichet::server::Server;
use guichet::sysv::{wake_signal, Mode, OwnedQueue};

const WAKE_SIGNAL_ENV: &str = "GUICHET_WAKE_SIGNAL";
use guichet::{Client, ClientError};

#[test]
fn without_the_wake_up_signal_calls_poll_and_still_never_end_early() {
    // The only test of this binary: nothing has waited yet.
    std::env::set_var(WAKE_SIGNAL_ENV, "off");
    assert_eq!(wake_signal(), None);
    let queue = OwnedQueue::create_private(Mode::DEFAULT).unwrap(); // nobody serves it
    for timeout_ms in [1u32, 5, 50] {
        let client = Client::from_queue(queue.queue()).with_timeout_ms(timeout_ms);
        let start = Instant::now();
        let result = client.query(1);
        let waited = start.elapsed();
        assert!(
            matches!(result, Err(ClientError::Timeout { .. })),
            "{result:?}"
        );
        assert!(
            waited >= Duration::from_millis(timeout_ms.into()),
            "a {timeout_ms} ms timeout ended after {waited:?}"
        );
    }
    queue.remove().unwrap();
    // And replies still come back.
    let server = Server::builder().event("E", 10).spawn().unwrap();
    assert_eq!(
        server
            .client()
            .with_timeout_ms(20_000)
            .reserve(1, 3)
            .unwrap()
            .remaining,
        7
    );
}
