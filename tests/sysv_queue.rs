//! Sending, receiving, selecting, limits and removal on private queues.

mod sysv_support;

use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use guichet::sysv::{MessageBuf, Queue, QueueId, Received, SysvError, MAX_BODY_BYTES};
use sysv_support::{current_tid, tracked, wait_blocked};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn bodies_of_0_1_40_and_8192_bytes_round_trip() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        // A queue holds 16384 bytes by default; 8192 fits alone.
        for len in [0, 1, 40, 255, 256, 257, MAX_BODY_BYTES] {
            let body = pattern(len);
            owned.send(9, &body, None)?;
            assert_eq!(
                owned.stat()?.bytes,
                len as u64,
                "msgsz must be the body length"
            );
            let mut buf = MessageBuf::with_body_capacity(MAX_BODY_BYTES)?;
            let got = owned.recv(0, &mut buf, None)?;
            assert_eq!(
                got,
                Received {
                    mtype: 9,
                    body_len: len
                }
            );
            assert_eq!(buf.body(), &body[..], "len {len}");
            assert_eq!(buf.mtype(), 9);
        }
        Ok(())
    })
}

#[test]
fn msgtyp_selects_exact_first_or_lowest() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        let mut buf = MessageBuf::with_body_capacity(8)?;
        let fill = |q: &Queue| -> Result<(), SysvError> {
            for (mtype, body) in [(5, b"a"), (3, b"b"), (7, b"c"), (3, b"d")] {
                q.send(mtype, body, None)?;
            }
            Ok(())
        };
        let mut drain = |q: &Queue, msgtyp| -> Result<Vec<(i64, u8)>, SysvError> {
            let mut got = Vec::new();
            loop {
                match q.recv(msgtyp, &mut buf, Some(Instant::now())) {
                    Ok(r) => got.push((r.mtype, buf.body()[0])),
                    Err(SysvError::TimedOut { .. }) => return Ok(got),
                    Err(e) => return Err(e),
                }
            }
        };
        let q = owned.queue();

        fill(&q)?;
        // Exact type: only type 3, in FIFO order.
        assert_eq!(drain(&q, 3)?, [(3, b'b'), (3, b'd')]);
        assert_eq!(drain(&q, 0)?, [(5, b'a'), (7, b'c')]);

        fill(&q)?;
        // 0: whatever is first, FIFO.
        assert_eq!(drain(&q, 0)?, [(5, b'a'), (3, b'b'), (7, b'c'), (3, b'd')]);

        fill(&q)?;
        // Negative: lowest type <= |msgtyp| first; 7 is above 6 and stays.
        assert_eq!(drain(&q, -6)?, [(3, b'b'), (3, b'd'), (5, b'a')]);
        assert_eq!(drain(&q, 0)?, [(7, b'c')]);

        // The extreme msgtyp is well defined too (the kernel special-cases it).
        fill(&q)?;
        assert_eq!(drain(&q, i64::MIN)?.len(), 4);
        Ok(())
    })
}

#[test]
fn a_passed_deadline_on_an_empty_queue_times_out_at_once() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        let mut buf = MessageBuf::with_body_capacity(40)?;
        let err = owned.recv(0, &mut buf, Some(Instant::now())).unwrap_err();
        assert!(matches!(
            err,
            SysvError::TimedOut {
                op: "msgrcv",
                errno: libc::ENOMSG
            }
        ));
        assert!(buf.body().is_empty());
        // A message of another type does not match either.
        owned.send(2, b"x", None)?;
        let err = owned.recv(1, &mut buf, Some(Instant::now())).unwrap_err();
        assert!(matches!(err, SysvError::TimedOut { .. }));
        Ok(())
    })
}

#[test]
fn a_passed_deadline_on_a_full_queue_times_out_at_once() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        owned.set_max_bytes(100)?;
        assert_eq!(owned.stat()?.max_bytes, 100);
        owned.send(1, &[1; 40], Some(Instant::now()))?;
        owned.send(1, &[2; 40], Some(Instant::now()))?;
        let err = owned.send(1, &[3; 40], Some(Instant::now())).unwrap_err();
        assert!(
            matches!(
                err,
                SysvError::TimedOut {
                    op: "msgsnd",
                    errno: libc::EAGAIN
                }
            ),
            "{err:?}"
        );
        // A body that still fits is accepted.
        owned.send(1, &[4; 20], Some(Instant::now()))?;
        let st = owned.stat()?;
        assert_eq!((st.messages, st.bytes), (3, 100));
        Ok(())
    })
}

#[test]
fn a_too_long_message_is_refused_and_stays_queued() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        let body = pattern(100);
        let mut buf = MessageBuf::with_body_capacity(41)?;

        owned.send(1, &body, None)?;
        let err = owned.recv(1, &mut buf, Some(Instant::now())).unwrap_err();
        assert!(
            matches!(
                err,
                SysvError::TooBig {
                    op: "msgrcv",
                    errno: Some(libc::E2BIG),
                    limit_bytes: 41
                }
            ),
            "{err:?}"
        );
        assert!(buf.body().is_empty());
        assert_eq!(owned.stat()?.messages, 1, "E2BIG leaves the message queued");
        let mut big = MessageBuf::with_body_capacity(100)?;
        let got = owned.recv(1, &mut big, None)?;
        assert_eq!((got.mtype, big.body()), (1, &body[..]));
        Ok(())
    })
}

#[test]
fn a_truncating_buffer_takes_a_too_long_message_off_the_queue() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        let body = pattern(100);
        let mut buf = MessageBuf::truncating(41)?;
        owned.send(1, &body, None)?;
        let got = owned.recv(1, &mut buf, Some(Instant::now()))?;
        assert_eq!((got.body_len, buf.body()), (41, &body[..41]));
        assert_eq!(
            owned.stat()?.messages,
            0,
            "the tail is discarded, not requeued"
        );
        // A message that fits is whole.
        owned.send(1, &body[..7], None)?;
        let got = owned.recv(1, &mut buf, None)?;
        assert_eq!((got.body_len, buf.body()), (7, &body[..7]));
        Ok(())
    })
}

#[test]
fn invalid_arguments_are_refused_before_the_syscall() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        for mtype in [0, -1, i64::MIN] {
            let err = owned.send(mtype, b"x", None).unwrap_err();
            assert!(matches!(err, SysvError::InvalidArgument { .. }), "{err:?}");
            assert_eq!(err.errno(), None);
        }
        let err = owned
            .send(1, &vec![0; MAX_BODY_BYTES + 1], None)
            .unwrap_err();
        assert!(
            matches!(
                err,
                SysvError::TooBig {
                    errno: None,
                    limit_bytes: MAX_BODY_BYTES,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(MessageBuf::with_body_capacity(MAX_BODY_BYTES + 1).is_err());
        assert!(owned.set_max_bytes(0).is_err());
        assert!(owned.set_max_bytes(u64::MAX).is_err());
        let st = owned.stat()?;
        assert_eq!((st.messages, st.last_send_pid), (0, None));
        Ok(())
    })
}

#[test]
fn stat_reports_counts_bytes_pids_and_times() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        let before = owned.stat()?;
        assert_eq!((before.messages, before.bytes), (0, 0));
        assert_eq!((before.last_send_pid, before.last_recv_pid), (None, None));
        assert_eq!((before.last_send_time, before.last_recv_time), (None, None));
        assert!(before.last_change_time.is_some());
        assert_eq!(before.mode.bits(), 0o600);

        owned.send(1, &[0; 40], None)?;
        owned.send(2, &[0; 8], None)?;
        let st = owned.stat()?;
        assert_eq!((st.messages, st.bytes), (2, 48));
        assert_eq!(st.last_send_pid, Some(std::process::id()));
        assert!(st.last_send_time.is_some());
        assert_eq!(st.last_recv_pid, None);

        let mut buf = MessageBuf::with_body_capacity(40)?;
        owned.recv(1, &mut buf, None)?;
        let st = owned.stat()?;
        assert_eq!((st.messages, st.bytes), (1, 8));
        assert_eq!(st.last_recv_pid, Some(std::process::id()));
        assert!(st.last_recv_time.is_some());
        Ok(())
    })
}

#[test]
fn receiver_blocked_in_another_thread_sees_queue_removed() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        let q = owned.queue();
        let (tid_tx, tid_rx) = mpsc::channel();
        let receiver = thread::spawn(move || {
            let _ = tid_tx.send(current_tid());
            let mut buf = MessageBuf::with_body_capacity(40)?;
            q.recv(1, &mut buf, None)
        });
        // Removed once the receiver sleeps in msgrcv (a receiver that
        // comes late sees EINVAL instead).
        let tid = tid_rx.recv().expect("receiver started");
        wait_blocked(tid, libc::SYS_msgrcv, owned.id());
        owned.remove()?;
        let result = receiver.join().expect("receiver panicked");
        assert!(
            matches!(
                result,
                Err(SysvError::QueueRemoved {
                    op: "msgrcv",
                    errno: libc::EIDRM
                })
            ),
            "{result:?}"
        );
        Ok(())
    })
}

#[test]
fn every_call_on_a_removed_queue_reports_queue_removed() -> Result<(), SysvError> {
    tracked(|created| {
        let q = created.private()?.into_unowned();
        q.remove()?;
        let mut buf = MessageBuf::with_body_capacity(8)?;
        let results = [
            ("send", q.send(1, b"x", Some(Instant::now())).map(drop)),
            ("send empty", q.send(1, b"", Some(Instant::now())).map(drop)),
            ("recv", q.recv(0, &mut buf, Some(Instant::now())).map(drop)),
            ("stat", q.stat().map(drop)),
            ("set_max_bytes", q.set_max_bytes(10)),
            ("remove", q.remove()),
        ];
        for (what, r) in results {
            assert!(
                matches!(
                    r,
                    Err(SysvError::QueueRemoved {
                        errno: libc::EINVAL,
                        ..
                    })
                ),
                "{what}: {r:?}"
            );
        }
        let never = Queue::from_id(QueueId::new(i32::MAX)?);
        assert!(matches!(never.stat(), Err(SysvError::QueueRemoved { .. })));
        Ok(())
    })
}

#[test]
fn blocked_send_resumes_when_a_receiver_makes_room() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        owned.set_max_bytes(40)?;
        owned.send(1, &[1; 40], None)?;
        let q = owned.queue();
        let (tid_tx, tid_rx) = mpsc::channel();
        let sender = thread::spawn(move || {
            let _ = tid_tx.send(current_tid());
            q.send(2, &[2; 40], None)
        });
        let tid = tid_rx.recv().expect("sender started");
        wait_blocked(tid, libc::SYS_msgsnd, owned.id());
        assert!(!sender.is_finished(), "send to a full queue must block");
        let mut buf = MessageBuf::with_body_capacity(40)?;
        owned.recv(1, &mut buf, None)?;
        sender.join().expect("sender panicked")?;
        let got = owned.recv(0, &mut buf, Some(Instant::now()))?;
        assert_eq!((got.mtype, buf.body()), (2, &[2u8; 40][..]));
        Ok(())
    })
}

#[test]
fn message_buf_moves_to_a_worker_thread() -> Result<(), SysvError> {
    tracked(|created| {
        let owned = created.private()?;
        let mut workers = Vec::new();
        for i in 0..4u8 {
            owned.send(1, &[i; 40], None)?;
            let mut buf = MessageBuf::with_body_capacity(41)?;
            owned.recv(1, &mut buf, None)?;
            workers.push(thread::spawn(move || buf.body().to_vec()));
        }
        for (i, w) in workers.into_iter().enumerate() {
            assert_eq!(w.join().expect("worker panicked"), vec![i as u8; 40]);
        }
        Ok(())
    })
}
