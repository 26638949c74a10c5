//! Holds through the server: HOLD and CONFIRM answered OK only once durable,
//! acknowledged holds and confirmations kept across a power cut, and no
//! hold outliving its expiry across a restart.

use guichet_testkit::fixture::deadline_in_ms;
use std::sync::Arc;
use std::time::{Duration, Instant};

use guichet::journal::{CrashMode, SimDisk};
use guichet::ledger::{BookingState, Clock, ManualClock, SystemClock};

fn unix_now_ms() -> u64 {
    SystemClock::new().now_ms()
}
use guichet::server::{Dispatch, Server, ServerError};
use guichet::{BookingId, ClientError};

const MINUTE_MS: u64 = 60_000;

/// Waits until booking `id` is in `state` in the server's ledger.
fn until_state(server: &Server, id: u64, state: impl Fn(BookingState) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = BookingId::new(id).unwrap();
    while !server
        .with_ledger(|l| l.booking(id).is_some_and(|b| state(b.state)))
        .unwrap()
    {
        assert!(Instant::now() < deadline, "booking {id} never got there");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn hold_and_confirm_are_answered_only_once_durable() {
    for dispatch in [Dispatch::ThreadPerRequest, Dispatch::Pool(4)] {
        let disk = SimDisk::new();
        let server = Server::builder()
            .event("A", 10)
            .dispatch(dispatch)
            .journal_in(disk.clone(), "j")
            .spawn()
            .unwrap();
        let client = server.client();
        let quick = client.with_timeout_ms(300);
        for step in ["hold", "confirm"] {
            let gate = disk.hold_syncs();
            std::thread::scope(|s| {
                let call = s.spawn(|| match step {
                    "hold" => client.hold(1, 4, 7),
                    _ => client.confirm(7u64),
                });
                match step {
                    "hold" => until_state(&server, 7, |s| matches!(s, BookingState::Held { .. })),
                    _ => until_state(&server, 7, |s| s == BookingState::Active),
                }
                // In the ledger, not on disk: neither the call nor a read
                // that would show it may be answered yet.
                let early = quick.query(1);
                assert!(
                    matches!(early, Err(ClientError::Timeout { .. })),
                    "{dispatch} {step}: a QUERY answered before it was durable: {early:?}"
                );
                assert!(!call.is_finished(), "{dispatch} {step}: answered early");
                gate.open();
                assert_eq!(call.join().unwrap().unwrap().remaining, 6);
            });
        }
        server.shutdown().unwrap();
    }
}

#[test]
fn a_power_cut_keeps_acknowledged_holds_and_expires_those_due_by_the_restart() {
    for (seed, mode) in (0..8).flat_map(|s| [(s, CrashMode::Ordered), (s, CrashMode::Scrambled)]) {
        let disk = SimDisk::new();
        // The server's clock two hours behind the wall clock, holds of 90
        // minutes: what it holds first is due before the restart.
        let clock = ManualClock::new(unix_now_ms() - 120 * MINUTE_MS);
        let server = Server::builder()
            .event("A", 10)
            .hold_ms(90 * MINUTE_MS)
            .clock(Arc::new(clock.clone()))
            .journal_in(disk.clone(), "j")
            .spawn()
            .unwrap();
        let client = server.client();
        client.hold(1, 1, 1).unwrap(); // due 30 minutes before the restart
        client.hold(1, 2, 2).unwrap();
        client.confirm(2u64).unwrap(); // for good
        clock.advance_ms(60 * MINUTE_MS);
        client.hold(1, 3, 3).unwrap(); // due 30 minutes after the restart
        assert_eq!(client.query(1).unwrap().remaining, 4);
        let after = disk.crash(seed, mode);
        match server.shutdown() {
            Ok(_) | Err(ServerError::Journal(_)) => {}
            Err(e) => panic!("{e}"),
        }

        let server = Server::builder().journal_in(after, "j").spawn().unwrap();
        let client = server.client();
        assert_eq!(
            client.query(1).unwrap().remaining,
            5,
            "seed {seed} {mode:?}"
        );
        assert!(
            matches!(client.confirm(1u64), Err(ClientError::HoldExpired { .. })),
            "seed {seed} {mode:?}: a hold outlived its expiry across the restart"
        );
        assert_eq!(client.confirm(2u64).unwrap().quantity, 2);
        assert_eq!(client.hold(1, 3, 3).unwrap().remaining, 5); // still held
        assert_eq!(client.confirm(3u64).unwrap().remaining, 5);
        server
            .with_ledger(|l| l.check_invariants())
            .unwrap()
            .unwrap();
        server.shutdown().unwrap();
    }
}

#[test]
fn hold_ms_out_of_range_is_refused() {
    for hold_ms in [0, 24 * 60 * MINUTE_MS + 1] {
        let err = Server::builder()
            .event("A", 1)
            .hold_ms(hold_ms)
            .spawn()
            .unwrap_err();
        assert!(err.to_string().contains("hold_ms"), "{err}");
    }
}

/// The classic protocol's listing counts held seats as taken, and gives
/// them back at the hold's deadline like every other read.
#[test]
fn the_classic_listing_counts_holds_until_they_expire() {
    use guichet::classic::{decode_classic_reply, ClassicRequest, MTYPE_LIST_REPLY};
    use guichet::sysv::{Key, MessageBuf, Queue};

    let clock = ManualClock::new(unix_now_ms());
    let server = Server::builder()
        .event("Concert", 5)
        .hold_ms(MINUTE_MS)
        .clock(Arc::new(clock.clone()))
        .classic_key(Key::PRIVATE)
        .spawn()
        .unwrap();
    let queue = Queue::from_id(server.classic_queue_id().unwrap());
    let listing = || {
        let (mtype, body) = ClassicRequest::List.encode();
        queue
            .send(mtype, &body, Some(deadline_in_ms(60_000)))
            .unwrap();
        let mut buf = MessageBuf::with_body_capacity(1_024).unwrap();
        queue
            .recv(MTYPE_LIST_REPLY, &mut buf, Some(deadline_in_ms(60_000)))
            .unwrap();
        let reply = decode_classic_reply(MTYPE_LIST_REPLY, buf.body()).unwrap();
        reply.text.as_str().to_owned()
    };
    server.client().hold(1, 2, 7).unwrap();
    assert!(
        listing().contains("[0] Concert : 3 places"),
        "{}",
        listing()
    );
    clock.advance_ms(MINUTE_MS);
    assert!(
        listing().contains("[0] Concert : 5 places"),
        "{}",
        listing()
    );
    server.shutdown().unwrap();
}
