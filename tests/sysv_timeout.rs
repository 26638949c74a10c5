//! Polling calls: `recv_timeout`, `send_timeout` and their stoppable forms.
//!
//! Bounds are generous (hundreds of ms) because CI machines are shared and
//! have 2 cores; the point is "returns, and not before the deadline".

mod sysv_support;

use std::thread;
use std::time::{Duration, Instant};

use guichet::sysv::{MessageBuf, RecvFlags, SendFlags, StopToken, SysvError};
use sysv_support::tracked;

const SLACK: Duration = Duration::from_millis(500);

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
                elapsed < Duration::from_millis(timeout_ms.into()) + SLACK,
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
        let got = owned.recv_timeout(2, &mut buf, RecvFlags::empty(), 5_000)?;
        let elapsed = start.elapsed();
        sender.join().expect("sender panicked")?;
        assert_eq!((got.mtype, buf.body()), (2, &b"late reply"[..]));
        assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(50) + SLACK, "{elapsed:?}");
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
            .recv_timeout(1, &mut buf, RecvFlags::empty(), 10_000)
            .unwrap_err();
        assert!(matches!(err, SysvError::TooBig { .. }), "{err:?}");
        assert!(start.elapsed() < SLACK);

        let q = owned.queue();
        let remover = thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            q.remove()
        });
        let err = owned
            .recv_timeout(2, &mut buf, RecvFlags::empty(), 10_000)
            .unwrap_err();
        remover.join().expect("remover panicked")?;
        // Polling never sleeps inside msgrcv, so a removal shows as EINVAL.
        assert!(matches!(err, SysvError::QueueRemoved { .. }), "{err:?}");
        assert!(start.elapsed() < Duration::from_millis(30) + SLACK);
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
        assert!(elapsed < Duration::from_millis(30) + SLACK, "{elapsed:?}");

        // A reader making room mid-wait lets the send through.
        let q = owned.queue();
        let reader = thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            let mut buf = MessageBuf::with_body_capacity(40)?;
            q.recv(2, &mut buf, RecvFlags::empty())
        });
        owned.send_timeout(2, &[3; 40], 5_000)?;
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
            .recv_timeout_stoppable(2, &mut buf, RecvFlags::empty(), 60_000, &stop)
            .unwrap_err();
        let stopped_at = stopper.join().expect("stopper panicked");
        assert!(
            matches!(err, SysvError::Stopped { op: "msgrcv" }),
            "{err:?}"
        );
        // One max-length backoff sleep (1 ms) plus scheduling.
        assert!(stopped_at.elapsed() < Duration::from_millis(200));

        owned.set_max_bytes(1)?;
        owned.send(1, b"x", SendFlags::empty())?;
        let err = owned
            .send_timeout_stoppable(1, b"y", 60_000, &stop)
            .unwrap_err();
        assert!(
            matches!(err, SysvError::Stopped { op: "msgsnd" }),
            "{err:?}"
        );
        Ok(())
    })
}
