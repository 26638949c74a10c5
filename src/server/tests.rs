//! Unit tests of what the end-to-end suites cannot reach: no message or
//! client can make a receive loop panic, so its guard is tested alone.

use std::error::Error;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crate::ledger::Ledger;
use crate::sysv::{Mode, OwnedQueue};

use super::config::Limits;
use super::error::ServerError;
use super::shared::{ReceiverGuard, Shared};

fn shared_on(queue: &OwnedQueue) -> Result<Arc<Shared>, Box<dyn Error>> {
    let ledger = Ledger::new([("E", 1)], 10)?;
    Ok(Arc::new(Shared::new(
        queue.queue(),
        ledger,
        Limits::default(),
        1,
    )))
}

#[test]
fn a_receive_loop_that_panics_fails_and_stops_the_server() -> Result<(), Box<dyn Error>> {
    let queue = OwnedQueue::create_private(Mode::DEFAULT)?;
    let shared = shared_on(&queue)?;
    let in_loop = Arc::clone(&shared);
    let died = thread::Builder::new()
        .name("guichet-recv-0".into())
        .spawn(move || {
            let _guard = ReceiverGuard(in_loop);
            panic!("a receive loop panics on purpose");
        })?
        .join();
    assert!(died.is_err());
    // What `Server::wait` waits for, then reports.
    assert!(shared.is_stopping());
    shared.wait_for_stop();
    match shared.take_failure() {
        Some(ServerError::ReceiverPanicked { thread }) => assert_eq!(thread, "guichet-recv-0"),
        other => panic!("expected ReceiverPanicked, got {other:?}"),
    }
    assert!(shared.wait_idle(Instant::now()));
    queue.remove()?;
    Ok(())
}

#[test]
fn a_receive_loop_that_returns_fails_nothing() -> Result<(), Box<dyn Error>> {
    let queue = OwnedQueue::create_private(Mode::DEFAULT)?;
    let shared = shared_on(&queue)?;
    let in_loop = Arc::clone(&shared);
    let returned = thread::spawn(move || drop(ReceiverGuard(in_loop))).join();
    assert!(returned.is_ok());
    assert!(!shared.is_stopping());
    assert!(shared.take_failure().is_none());
    assert!(shared.wait_idle(Instant::now()));
    queue.remove()?;
    Ok(())
}
