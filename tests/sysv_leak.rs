//! The guards leave no queue behind, whatever way a test ends.
//!
//! Every other `tests/sysv_*.rs` test runs inside `sysv_support::tracked`,
//! which checks that the queues it created are gone from msgctl(2) and from
//! `/proc/sysvipc/msg`. This suite checks the mechanism itself on the paths
//! where leaks happen: panics, early error returns, and threads.

mod sysv_support;

use std::thread;

use guichet::sysv::{OwnedQueue, Queue, SysvError};
use sysv_support::{listed_queue_ids, tracked, Created};

#[test]
fn a_panicking_test_still_removes_its_queues() {
    let mut created = Created::default();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let a = created.private().expect("create");
        let b = created.private().expect("create");
        a.send(1, b"left in the queue", None).expect("send");
        assert!(listed_queue_ids().contains(&b.id()));
        panic!("simulated test failure");
    }));
    assert!(panicked.is_err());
    assert_eq!(created.ids().len(), 2);
    created.assert_all_removed();
}

#[test]
fn an_early_error_return_still_removes_its_queues() {
    let mut ids = Vec::new();
    let result = tracked(|created| {
        let owned = created.private()?;
        ids.push(owned.id());
        owned.send(0, b"", None)?; // InvalidArgument: returns early
        unreachable!("send with mtype 0 must fail");
    });
    assert!(matches!(result, Err(SysvError::InvalidArgument { .. })));
    let listed = listed_queue_ids();
    assert!(ids.iter().all(|id| !listed.contains(id)));
}

#[test]
fn queues_handed_to_threads_are_removed_once() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        let handles: Vec<Queue> = (0..4).map(|_| owned.queue()).collect();
        let senders: Vec<_> = handles
            .into_iter()
            .enumerate()
            .map(|(i, q)| thread::spawn(move || q.send(i as i64 + 1, b"x", None)))
            .collect();
        for s in senders {
            s.join().expect("sender panicked")?;
        }
        assert_eq!(owned.stat()?.messages, 4);
        // Removing through a copy first must not make the guard's drop fail
        // loudly: it ignores "already removed".
        owned.queue().remove()?;
        drop(owned);
        Ok(())
    })
}

#[test]
fn into_unowned_keeps_the_queue_until_removed_by_hand() -> Result<(), SysvError> {
    tracked(|created| {
        let q = created.private()?.into_unowned();
        assert!(
            listed_queue_ids().contains(&q.id()),
            "into_unowned must not remove"
        );
        q.remove()?;
        let owned = created.record(OwnedQueue::create_private(Default::default())?);
        owned.remove()
    })
}
