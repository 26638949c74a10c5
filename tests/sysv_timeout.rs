//! Polling calls: `recv_timeout`, `send_timeout` and their stoppable forms.
//!
//! What is checked is "returns, and not before the deadline", and for calls
//! that must end for another reason, that they end by it and not by their
//! timeout. Upper bounds on time are liveness bounds in seconds, never
//! speed requirements: CI machines are shared and have 2 cores.

mod sysv_support;

use std::thread;
use std::time::{Duration, Instant};

use guichet::sysv::{MessageBuf, RecvFlags, SendFlags, StopToken, SysvError};
use sysv_support::tracked;

/// A liveness bound: a call due to return within milliseconds must return
/// within this, however loaded the machine.
const LIVENESS: Duration = Duration::from_secs(10);
/// The timeout of calls that must end for another reason (a message, an
/// error, a stop): far past [`LIVENESS`], so that ending by the timeout
/// instead fails the test.
const LONG_TIMEOUT_MS: u32 = 60_000;

#[test]
fn recv_timeout_times_out_on_an_empty_queue() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        let mut buf = MessageBuf::with_body_capacity(40)?;
        for timeout_ms in [0u32, 1, 50] {
            let start = Instant::now();
            let err = owned
                .recv_timeout(2, &mut buf, RecvFlags::empty(), timeout_ms)
                .unwrap_err();
            let elapsed = start.elapsed();
            assert!(
                matches!(err, SysvError::TimedOut { op: "msgrcv", timeout_ms: t } if t == timeout_ms),
                "{err:?}"
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
fn recv_timeout_returns_a_message_that_arrives_mid_wait() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        let q = owned.queue();
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            q.send(2, b"late reply", SendFlags::empty())
        });
        let start = Instant::now();
        let mut buf = MessageBuf::with_body_capacity(40)?;
        let got = owned.recv_timeout(2, &mut buf, RecvFlags::empty(), LONG_TIMEOUT_MS)?;
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
fn recv_timeout_with_zero_still_takes_a_queued_message() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        owned.send(3, b"ready", SendFlags::empty())?;
        let mut buf = MessageBuf::with_body_capacity(40)?;
        let got = owned.recv_timeout(3, &mut buf, RecvFlags::empty(), 0)?;
        assert_eq!(got.body_len, 5);
        Ok(())
    })
}

#[test]
fn recv_timeout_reports_errors_other_than_no_message_at_once() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        owned.send(1, &[0; 100], SendFlags::empty())?;
        let mut buf = MessageBuf::with_body_capacity(40)?;
        let start = Instant::now();
        let err = owned
            .recv_timeout(1, &mut buf, RecvFlags::empty(), LONG_TIMEOUT_MS)
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
            .recv_timeout(2, &mut buf, RecvFlags::empty(), LONG_TIMEOUT_MS)
            .unwrap_err();
        remover.join().expect("remover panicked")?;
        // Polling never sleeps inside msgrcv, so a removal shows as EINVAL.
        assert!(matches!(err, SysvError::QueueRemoved { .. }), "{err:?}");
        assert!(start.elapsed() < LIVENESS);
        Ok(())
    })
}

#[test]
fn send_timeout_waits_for_room_then_times_out() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        owned.set_max_bytes(40)?;
        owned.send_timeout(2, &[1; 40], 0)?;

        let start = Instant::now();
        let err = owned.send_timeout(2, &[2; 40], 30).unwrap_err();
        let elapsed = start.elapsed();
        assert!(
            matches!(
                err,
                SysvError::TimedOut {
                    op: "msgsnd",
                    timeout_ms: 30
                }
            ),
            "{err:?}"
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
            q.recv(2, &mut buf, RecvFlags::empty())
        });
        owned.send_timeout(2, &[3; 40], LONG_TIMEOUT_MS)?;
        reader.join().expect("reader panicked")?;
        assert_eq!(owned.stat()?.messages, 1);
        Ok(())
    })
}

#[test]
fn stop_token_ends_polling_calls_promptly() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        let stop = StopToken::new();
        let stopper = {
            let stop = stop.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(30));
                stop.stop();
                Instant::now()
            })
        };
        let mut buf = MessageBuf::with_body_capacity(40)?;
        let err = owned
            .recv_timeout_stoppable(2, &mut buf, RecvFlags::empty(), LONG_TIMEOUT_MS, &stop)
            .unwrap_err();
        let stopped_at = stopper.join().expect("stopper panicked");
        assert!(
            matches!(err, SysvError::Stopped { op: "msgrcv" }),
            "{err:?}"
        );
        // Ended by the stop (at the next poll, within a 1 ms backoff sleep
        // on an idle machine), long before the timeout.
        assert!(stopped_at.elapsed() < LIVENESS);

        owned.set_max_bytes(1)?;
        owned.send(1, b"x", SendFlags::empty())?;
        let err = owned
            .send_timeout_stoppable(1, b"y", LONG_TIMEOUT_MS, &stop)
            .unwrap_err();
        assert!(
            matches!(err, SysvError::Stopped { op: "msgsnd" }),
            "{err:?}"
        );
        Ok(())
    })
}
