//! Sends and receives with a deadline.
//!
//! What is checked is "returns, and not before the deadline", and for calls
//! that must end for another reason, that they end by it and not by their
//! deadline. Upper bounds on time are liveness bounds in seconds, never
//! speed requirements: CI machines are shared and have 2 cores.

mod sysv_support;

use guichet_testkit::fixture::deadline_in_ms;
use std::thread;
use std::time::{Duration, Instant};

use guichet::sysv::{MessageBuf, SysvError};
use sysv_support::tracked;

/// A liveness bound: a call due to return within milliseconds must return
/// within this, however loaded the machine.
const LIVENESS: Duration = Duration::from_secs(10);
/// The timeout of calls that must end for another reason (a message, an
/// error): far past [`LIVENESS`], so that ending by the timeout
/// instead fails the test.
const LONG_TIMEOUT_MS: u32 = 60_000;

#[test]
fn recv_with_a_deadline_times_out_on_an_empty_queue_never_before_it() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        let mut buf = MessageBuf::with_body_capacity(40)?;
        for timeout_ms in [0u32, 1, 50] {
            let start = Instant::now();
            let deadline = start + Duration::from_millis(timeout_ms.into());
            let err = owned.recv(2, &mut buf, Some(deadline)).unwrap_err();
            assert!(Instant::now() >= deadline, "gave up before its deadline");
            let elapsed = start.elapsed();
            assert_eq!(
                err,
                SysvError::TimedOut {
                    op: "msgrcv",
                    errno: libc::ENOMSG
                }
            );
            assert!(
                elapsed >= Duration::from_millis(timeout_ms.into()),
                "{elapsed:?}"
            );
            assert!(
                elapsed < Duration::from_millis(timeout_ms.into()) + LIVENESS,
                "{elapsed:?}"
            );
        }
        Ok(())
    })
}

#[test]
fn recv_with_a_deadline_returns_a_message_that_arrives_mid_wait() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        let q = owned.queue();
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            q.send(2, b"late reply", None)
        });
        let start = Instant::now();
        let mut buf = MessageBuf::with_body_capacity(40)?;
        let got = owned.recv(2, &mut buf, Some(deadline_in_ms(LONG_TIMEOUT_MS)))?;
        let elapsed = start.elapsed();
        sender.join().expect("sender panicked")?;
        assert_eq!((got.mtype, buf.body()), (2, &b"late reply"[..]));
        assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
        // Returned when the message came, not at the deadline.
        assert!(elapsed < LIVENESS, "{elapsed:?}");
        Ok(())
    })
}

#[test]
fn recv_with_a_passed_deadline_still_takes_a_queued_message() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        owned.send(3, b"ready", None)?;
        let mut buf = MessageBuf::with_body_capacity(40)?;
        let got = owned.recv(3, &mut buf, Some(Instant::now()))?;
        assert_eq!(got.body_len, 5);
        Ok(())
    })
}

#[test]
fn recv_with_a_deadline_reports_other_errors_at_once() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        owned.send(1, &[0; 100], None)?;
        let mut buf = MessageBuf::with_body_capacity(40)?;
        let start = Instant::now();
        let err = owned
            .recv(1, &mut buf, Some(deadline_in_ms(LONG_TIMEOUT_MS)))
            .unwrap_err();
        assert!(matches!(err, SysvError::TooBig { .. }), "{err:?}");
        // At the first poll, not after polling until the deadline.
        assert!(start.elapsed() < LIVENESS);

        let q = owned.queue();
        let remover = thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            q.remove()
        });
        let err = owned
            .recv(2, &mut buf, Some(deadline_in_ms(LONG_TIMEOUT_MS)))
            .unwrap_err();
        remover.join().expect("remover panicked")?;
        // Polling never sleeps inside msgrcv, so a removal shows as EINVAL.
        assert!(matches!(err, SysvError::QueueRemoved { .. }), "{err:?}");
        assert!(start.elapsed() < LIVENESS);
        Ok(())
    })
}

#[test]
fn send_with_a_deadline_waits_for_room_then_times_out() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        owned.set_max_bytes(40)?;
        owned.send(2, &[1; 40], Some(Instant::now()))?;

        let start = Instant::now();
        let deadline = start + Duration::from_millis(30);
        let err = owned.send(2, &[2; 40], Some(deadline)).unwrap_err();
        assert!(Instant::now() >= deadline, "gave up before its deadline");
        let elapsed = start.elapsed();
        assert_eq!(
            err,
            SysvError::TimedOut {
                op: "msgsnd",
                errno: libc::EAGAIN
            }
        );
        assert!(elapsed >= Duration::from_millis(30), "{elapsed:?}");
        assert!(
            elapsed < Duration::from_millis(30) + LIVENESS,
            "{elapsed:?}"
        );

        // A reader making room mid-wait lets the send through.
        let q = owned.queue();
        let reader = thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            let mut buf = MessageBuf::with_body_capacity(40)?;
            q.recv(2, &mut buf, None)
        });
        owned.send(2, &[3; 40], Some(deadline_in_ms(LONG_TIMEOUT_MS)))?;
        reader.join().expect("reader panicked")?;
        assert_eq!(owned.stat()?.messages, 1);
        Ok(())
    })
}
