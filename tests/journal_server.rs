//! The server with a journal: restarts keep every booking, replies wait for
//! durability (reads included), a journal failure stops the server without
//! an OK reply.

use std::time::{Duration, Instant};

use guichet::journal::JournalError;
use guichet::journal::{CrashMode, SimDisk};
use guichet::server::{Dispatch, Server, ServerError};
use guichet::{ClientError, Status};

#[test]
fn a_restarted_server_has_every_booking_and_issues_new_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let server = Server::builder()
        .event("A", 10)
        .event("B", 5)
        .journal(&path)
        .spawn()
        .unwrap();
    let client = server.client();
    client.reserve_with_id(1, 3, 42).unwrap();
    let server_id = client.reserve(2, 2).unwrap().booking;
    client.reserve_with_id(1, 1, 43).unwrap();
    client.cancel(43u64).unwrap();
    let stats = server.shutdown().unwrap();
    let journal = stats.journal.expect("journal counters");
    assert_eq!(journal.changes_synced, 4, "{journal:?}");
    assert!(journal.fsyncs >= 1 && journal.fsyncs <= 4, "{journal:?}");

    let server = Server::builder().journal(&path).spawn().unwrap();
    let recovery = server.journal_recovery().unwrap();
    assert_eq!(recovery.changes_replayed, 4);
    assert!(recovery.torn_tail.is_none());
    let client = server.client();
    assert_eq!(client.query(1).unwrap().remaining, 7);
    assert_eq!(client.query(2).unwrap().remaining, 3);
    assert_eq!(client.reserve_with_id(1, 3, 42).unwrap().quantity, 3);
    assert!(matches!(
        client.reserve_with_id(1, 1, 43),
        Err(ClientError::BookingCancelled { .. })
    ));
    assert_eq!(client.cancel(server_id).unwrap().quantity, 2);
    let next = client.reserve(2, 1).unwrap().booking;
    assert!(next > server_id, "{next} reissues {server_id}?");
    server
        .with_ledger(|l| l.check_invariants())
        .unwrap()
        .unwrap();
    server.shutdown().unwrap();
}

#[test]
fn events_or_limits_that_disagree_with_the_journal_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    Server::builder()
        .event("A", 10)
        .journal(&path)
        .spawn()
        .unwrap()
        .shutdown()
        .unwrap();
    let err = Server::builder()
        .event("A", 11)
        .journal(&path)
        .spawn()
        .unwrap_err();
    assert!(
        matches!(err, ServerError::Journal(JournalError::Mismatch { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("A=10"), "{err}");
    let err = Server::builder()
        .max_bookings(7)
        .journal(&path)
        .spawn()
        .unwrap_err();
    assert!(err.to_string().contains("max_bookings"), "{err}");
    // The same events are fine.
    Server::builder()
        .event("A", 10)
        .journal(&path)
        .spawn()
        .unwrap()
        .shutdown()
        .unwrap();
}

#[test]
fn a_journal_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let first = Server::builder()
        .event("A", 1)
        .journal(&path)
        .spawn()
        .unwrap();
    let err = Server::builder().journal(&path).spawn().unwrap_err();
    assert!(
        matches!(err, ServerError::Journal(JournalError::Locked { .. })),
        "{err}"
    );
    first.shutdown().unwrap();
}

/// A server on event "A" of 10 seats, journaling to a new simulated disk.
fn on_sim_disk(dispatch: Dispatch) -> (SimDisk, Server) {
    let disk = SimDisk::new();
    let server = Server::builder()
        .event("A", 10)
        .dispatch(dispatch)
        .journal_in(disk.clone(), "j")
        .spawn()
        .unwrap();
    (disk, server)
}

/// Waits until the ledger holds booking `id`.
fn until_applied(server: &Server, id: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = guichet::BookingId::new(id).unwrap();
    while server.with_ledger(|l| l.booking(id)).unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the RESERVE never reached the ledger"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn no_reply_shows_a_change_before_it_is_durable() {
    for dispatch in [Dispatch::ThreadPerRequest, Dispatch::Pool(4)] {
        let (disk, server) = on_sim_disk(dispatch);
        let client = server.client();
        let gate = disk.hold_syncs();
        std::thread::scope(|s| {
            let booking = s.spawn(|| client.reserve_with_id(1, 4, 7));
            until_applied(&server, 7);
            // The change is in the ledger, not on disk: a QUERY, an
            // idempotent retry and a refusal must all wait for it.
            let quick = client.with_timeout_ms(300);
            for (what, result) in [
                ("query", quick.query(1).map(|a| a.remaining)),
                ("retry", quick.reserve_with_id(1, 4, 7).map(|r| r.remaining)),
                ("sold out", quick.reserve(1, 7).map(|r| r.remaining)),
            ] {
                assert!(
                    matches!(result, Err(ClientError::Timeout { .. })),
                    "{dispatch}: {what} answered before the change was durable: {result:?}"
                );
            }
            gate.open();
            assert_eq!(booking.join().unwrap().unwrap().remaining, 6);
        });
        assert_eq!(client.query(1).unwrap().remaining, 6);
        server.shutdown().unwrap();
    }
}

#[test]
fn a_crash_before_the_fsync_loses_only_what_nobody_was_told() {
    let (disk, server) = on_sim_disk(Dispatch::ThreadPerRequest);
    let client = server.client();
    client.reserve_with_id(1, 2, 1).unwrap();
    let gate = disk.hold_syncs();
    let after = std::thread::scope(|s| {
        let pending = s.spawn(|| client.with_timeout_ms(1_000).reserve_with_id(1, 3, 2));
        until_applied(&server, 2);
        let after = disk.crash(9, CrashMode::Ordered);
        gate.open();
        // Its fsync fails on the dead disk: no reply, the server stops.
        assert!(matches!(
            pending.join().unwrap(),
            Err(ClientError::Timeout { .. })
        ));
        after
    });
    let stats = server.stats();
    assert_eq!(stats.replies(Status::Ok), 1, "{stats:?}");
    let err = server.shutdown().unwrap_err();
    assert!(matches!(err, ServerError::Journal(_)), "{err}");

    let server = Server::builder().journal_in(after, "j").spawn().unwrap();
    let client = server.client();
    // The booking told OK is there: its retry books nothing anew.
    let left = client.query(1).unwrap().remaining;
    let retry = client.reserve_with_id(1, 2, 1).unwrap();
    assert_eq!((retry.quantity, retry.remaining), (2, left));
    server.shutdown().unwrap();
}

#[test]
fn a_failed_fsync_stops_the_server_with_no_ok_reply() {
    let (disk, server) = on_sim_disk(Dispatch::ThreadPerRequest);
    let client = server.client().with_timeout_ms(1_000);
    disk.fail_sync_after(1);
    assert!(matches!(
        client.reserve(1, 1),
        Err(ClientError::Timeout { .. })
    ));
    // The client gives up by its clock; the server may take longer on a
    // loaded machine to fail and stop.
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.stats().replies_withheld == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Stopped: later requests are not applied.
    assert!(client.reserve(1, 1).is_err());
    let stats = server.stats();
    assert_eq!(stats.replies(Status::Ok), 0, "{stats:?}");
    // The reply queued for that fsync was dropped, and counted.
    assert_eq!(stats.replies_withheld, 1, "{stats:?}");
    let err = server.shutdown().unwrap_err();
    assert!(
        err.to_string().contains("fdatasync") && err.to_string().contains("os error 5"),
        "{err}"
    );
}

/// Regression (review): `limits()` marked `max_bookings` as set even when
/// the caller only filled it from `Limits::default()`, so an existing
/// journal with another `max_bookings` refused to open.
#[test]
fn limits_with_a_default_max_bookings_take_the_journals() {
    use guichet::server::Limits;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    Server::builder()
        .event("A", 10)
        .max_bookings(7)
        .journal(&path)
        .spawn()
        .unwrap()
        .shutdown()
        .unwrap();
    let server = Server::builder()
        .limits(Limits {
            reply_timeout_ms: 500,
            ..Limits::default()
        })
        .journal(&path)
        .spawn()
        .unwrap();
    assert_eq!(server.with_ledger(|l| l.max_bookings()).unwrap(), 7);
    server.shutdown().unwrap();
    // A max_bookings that differs is still a choice, checked.
    let err = Server::builder()
        .limits(Limits {
            max_bookings: 9,
            ..Limits::default()
        })
        .journal(&path)
        .spawn()
        .unwrap_err();
    assert!(
        matches!(err, ServerError::Journal(JournalError::Mismatch { .. })),
        "{err}"
    );
}

/// Regression (review): a restarted server replayed a batch its crashed
/// predecessor had written but never synced (it was still in the page
/// cache), then answered an idempotent retry OK from it without any
/// fsync; a power cut then lost the booking the client was told about.
/// Opening now makes everything replayed durable before serving — also
/// when the failed fsync marked those writes clean, so that a later fsync
/// would not carry them (`fail_sync_losing_writes_after`).
#[test]
fn a_restart_makes_what_it_replayed_durable_before_serving() {
    use guichet::journal::{Journal, JournalConfig};
    for lossy in [false, true] {
        for preallocate in [0u64, 1 << 20] {
            let disk = SimDisk::new();
            let first = Server::builder()
                .event("A", 10)
                .journal_preallocate_bytes(preallocate)
                .journal_in(disk.clone(), "j")
                .spawn()
                .unwrap();
            // The process dies with its batch written and not synced.
            if lossy {
                disk.fail_sync_losing_writes_after(1);
            } else {
                disk.fail_sync_after(1);
            }
            // Applied (written, its fsync failing) before the shutdown,
            // however slow the machine.
            let unanswered = std::thread::scope(|s| {
                let call = s.spawn(|| {
                    first
                        .client()
                        .with_timeout_ms(300)
                        .reserve_with_id(1, 3, 42)
                });
                until_applied(&first, 42);
                call.join().unwrap()
            });
            assert!(
                matches!(unanswered, Err(ClientError::Timeout { .. })),
                "{unanswered:?}"
            );
            assert!(first.shutdown().is_err());
            // Restarted on the same disk: the write is still readable.
            let second = Server::builder()
                .journal_preallocate_bytes(preallocate)
                .journal_in(disk.clone(), "j")
                .spawn()
                .unwrap();
            let retry = second.client().reserve_with_id(1, 3, 42).unwrap();
            assert_eq!(retry.quantity, 3);
            second.shutdown().unwrap();
            // Power loss, in many ways: the booking answered OK stays.
            for seed in 0..20 {
                let after = disk.crash(seed, CrashMode::Ordered);
                let opened = Journal::open(Box::new(after), "j", &JournalConfig::default())
                    .unwrap_or_else(|e| panic!("lossy {lossy} seed {seed}: {e}"));
                let booking = opened.ledger.booking(guichet::BookingId::new(42).unwrap());
                assert!(
                    booking.is_some(),
                    "lossy {lossy}, preallocate {preallocate}, seed {seed}: the retry was \
                     answered OK, and a power cut lost the booking"
                );
            }
        }
    }
}

/// Regression (review): with a journal, shutdown waited for the last
/// fdatasync without a deadline, so a disk that stopped answering held
/// shutdown (and SIGTERM) for ever. Now it returns by its deadline, says
/// the pending changes were not confirmed, and sends no reply for them.
#[test]
fn shutdown_is_bounded_when_the_disk_stalls() {
    use guichet::server::Limits;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    for dispatch in [
        Dispatch::Sequential,
        Dispatch::ThreadPerRequest,
        Dispatch::Pool(2),
    ] {
        let disk = SimDisk::new();
        let server = Server::builder()
            .event("E", 10)
            .dispatch(dispatch)
            .limits(Limits {
                shutdown_timeout_ms: 300,
                ..Limits::default()
            })
            .journal_in(disk.clone(), "j")
            .spawn()
            .unwrap();
        let gate = disk.hold_syncs();
        // The change must be in the ledger (waiting for its fsync) before
        // the shutdown begins: however slow the machine, not a request
        // still queued, which the shutdown would answer SHUTTING_DOWN.
        let unanswered = std::thread::scope(|s| {
            let call = s.spawn(|| {
                server
                    .client()
                    .with_timeout_ms(200)
                    .reserve_with_id(1, 1, 1)
            });
            until_applied(&server, 1);
            call.join().unwrap()
        });
        assert!(
            matches!(unanswered, Err(ClientError::Timeout { .. })),
            "{dispatch}: {unanswered:?}"
        );
        // The gate opens only after shutdown returned, or after a minute
        // so that a shutdown that does hang fails this test instead of
        // hanging it.
        let returned = Arc::new(AtomicBool::new(false));
        let opener = {
            let returned = Arc::clone(&returned);
            std::thread::spawn(move || {
                let until = Instant::now() + Duration::from_secs(60);
                while !returned.load(Ordering::Acquire) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(10));
                }
                let opened_early = !returned.load(Ordering::Acquire);
                gate.open();
                opened_early
            })
        };
        let result = server.shutdown();
        returned.store(true, Ordering::Release);
        let opened_early = opener.join().unwrap();
        assert!(
            !opened_early,
            "{dispatch}: shutdown returned only once the disk answered again"
        );
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                ServerError::Journal(JournalError::Unconfirmed { changes: 1, .. })
            ),
            "{dispatch}: {err}"
        );
        assert!(err.to_string().contains("not confirmed"), "{err}");
    }
}

/// Regression (issue 6's target): each of a pool's workers used to wait
/// for its own change's fsync before receiving the next request, so a
/// pool of 2 never put more than 2 changes in one fdatasync however many
/// clients waited. Workers now queue the reply and go back to receiving;
/// the commit thread's fsync covers everything appended meanwhile.
#[test]
fn a_pool_of_two_batches_the_changes_of_many_clients() {
    const CLIENTS: u64 = 8;
    let disk = SimDisk::new();
    // A slow disk, so that clients pile up behind each fsync.
    disk.set_sync_delay(Duration::from_millis(3));
    let server = Server::builder()
        .event("A", 1_000_000)
        .dispatch(Dispatch::Pool(2))
        .journal_in(disk.clone(), "j")
        .spawn()
        .unwrap();
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let client = server.client();
            s.spawn(move || {
                for i in 0..20 {
                    client.reserve_with_id(1, 1, 1 + c * 1000 + i).unwrap();
                }
            });
        }
    });
    let stats = server.shutdown().unwrap();
    let journal = stats.journal.unwrap();
    assert_eq!(journal.changes_synced, CLIENTS * 20, "{journal:?}");
    assert_eq!(stats.replies(Status::Ok), CLIENTS * 20, "{stats:?}");
    assert!(
        journal.largest_batch > 2,
        "a pool of 2 still syncs at most 2 changes at a time: {journal:?}"
    );
}

/// A reply waiting for its fsync when shutdown begins is sent once the
/// fsync completes, if that is before the deadline.
#[test]
fn shutdown_sends_the_replies_whose_changes_are_synced_by_the_deadline() {
    for dispatch in [Dispatch::ThreadPerRequest, Dispatch::Pool(2)] {
        // A deadline no loaded machine reaches: the gate opens 100 ms into
        // the shutdown, and the reply must go out when it does.
        let disk = SimDisk::new();
        let server = Server::builder()
            .event("A", 10)
            .dispatch(dispatch)
            .shutdown_timeout_ms(120_000)
            .journal_in(disk.clone(), "j")
            .spawn()
            .unwrap();
        let client = server.client();
        let gate = disk.hold_syncs();
        let stats = std::thread::scope(|s| {
            let booking = s.spawn(|| client.reserve_with_id(1, 2, 5));
            until_applied(&server, 5);
            // The stop is requested before the gate can open, however slow
            // the machine: the reply goes out during the shutdown.
            server.stop_handle().stop();
            let opener = s.spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                gate.open();
            });
            let stats = server.shutdown().unwrap();
            opener.join().unwrap();
            assert_eq!(booking.join().unwrap().unwrap().quantity, 2, "{dispatch}");
            stats
        });
        assert_eq!(stats.replies(Status::Ok), 1, "{dispatch}: {stats:?}");
        assert_eq!(stats.replies_withheld, 0, "{dispatch}: {stats:?}");
    }
}

/// Regression (review): a journal can fail with no change pending — a
/// compaction whose directory fsync fails after its rename — and no request
/// comes to find out. The server must still stop on its own, with the
/// journal's error.
#[test]
fn a_journal_failing_with_nothing_pending_stops_the_server_on_its_own() {
    use guichet::journal::MIN_COMPACT_MIN_BYTES;
    let disk = SimDisk::new();
    let server = Server::builder()
        .event("A", 1_000_000)
        .journal_in(disk.clone(), "j")
        .journal_compact_min_bytes(MIN_COMPACT_MIN_BYTES)
        .spawn()
        .unwrap();
    let client = server.client().with_timeout_ms(2_000);
    // One change per fsync until the file has outgrown its limit: the next
    // request starts a compaction. (A fresh journal's header is far below
    // MIN_COMPACT_MIN_BYTES / COMPACT_GROWTH_FACTOR, so the limit is the
    // minimum.)
    let mut remaining = 0;
    for _ in 0..1_000 {
        remaining = client.reserve(1, 1).unwrap().remaining;
        if server.journal_stats().unwrap().file_bytes >= MIN_COMPACT_MIN_BYTES {
            break;
        }
    }
    assert_eq!(server.journal_stats().unwrap().compactions, 0);
    // The compaction's syncs: its file (1), then the directory after the
    // rename (2), which fails: from the rename on, a failure is fatal.
    let syncs = disk.syncs();
    disk.fail_sync_after(2);
    // Nothing pending: answered at once, and it starts the compaction.
    assert_eq!(client.query(1).unwrap().remaining, remaining);
    let deadline = Instant::now() + Duration::from_secs(10);
    while disk.syncs() < syncs + 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(disk.syncs(), syncs + 2, "the compaction did not run");
    assert_eq!(server.journal_stats().unwrap().compactions_failed, 0);
    // No request from here on: the server stops without one, in bounded
    // time (or the test stops it, so that its queue is removed anyway).
    let stop = server.stop_handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        // The receiver may have given up waiting: nothing to tell then.
        let _ = tx.send(server.wait());
    });
    let waited = rx.recv_timeout(Duration::from_secs(10));
    if waited.is_err() {
        stop.stop();
    }
    waiter.join().unwrap();
    let err = waited
        .expect("the server did not stop on its own")
        .unwrap_err();
    assert!(
        matches!(err, ServerError::Journal(_)) && err.to_string().contains("fsync"),
        "{err}"
    );
}

/// Every journal setting out of its range is refused at spawn, naming it.
#[test]
fn journal_settings_out_of_range_are_refused_by_name() {
    use guichet::journal::{
        MAX_GROUP_COMMIT_DELAY_US, MAX_PREALLOCATE_BYTES, MIN_COMPACT_MIN_BYTES,
    };
    let builder = || {
        Server::builder()
            .event("A", 1)
            .journal_in(SimDisk::new(), "j")
    };
    let refusals = [
        (
            builder().journal_compact_min_bytes(MIN_COMPACT_MIN_BYTES - 1),
            "journal_compact_min_bytes",
        ),
        (
            builder().journal_group_commit_delay_us(MAX_GROUP_COMMIT_DELAY_US + 1),
            "journal_group_commit_delay_us",
        ),
        (
            builder().journal_preallocate_bytes(MAX_PREALLOCATE_BYTES + 1),
            "journal_preallocate_bytes",
        ),
    ];
    for (builder, name) in refusals {
        match builder.spawn() {
            Err(ServerError::Limit(e)) => assert_eq!(e.name, name),
            other => panic!("{name}: {:?}", other.map(|_| ())),
        }
    }
}
